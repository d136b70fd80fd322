use serde_json::{Value, json};

use super::*;

fn valid() -> Value {
    json!({
        "request_id": "req-1",
        "company_id": "acme",
        "client_id": "flows",
        "message_id": "msg-1",
        "priority": "high",
        "send_time": "2026-11-26T15:00:00Z",
        "response_metadata": {"flow": "cart", "n": [1, 2]},
        "channel_settings": {
            "channel": "email",
            "template": {"id": "spring_sale", "version": 3},
            "from_email": "news@shop.example",
            "from_label": "Shop",
        },
        "render_recipients": [
            {"recipient_id": "r1", "profile_id": "p1"},
            {"recipient_id": "r2", "profile_id": "p2", "context": {"cart": []}},
        ],
    })
}

fn parse(value: &Value) -> Result<RenderRequest, RequestError> {
    RenderRequest::from_json(value.to_string().as_bytes(), &RequestLimits::default())
}

fn error_for(mutate: impl FnOnce(&mut Value)) -> RequestError {
    let mut request = valid();
    mutate(&mut request);
    parse(&request).expect_err("request should be rejected")
}

#[test]
fn parses_a_valid_request() {
    let request = parse(&valid()).unwrap();
    assert_eq!(request.request_id().as_str(), "req-1");
    assert_eq!(request.priority(), Priority::High);
    assert_eq!(request.render_recipients().len(), 2);
    assert_eq!(
        request.response_metadata(),
        &json!({"flow": "cart", "n": [1, 2]})
    );
    let ChannelSettings::Email(email) = request.channel_settings() else {
        panic!("email settings expected")
    };
    assert_eq!(email.from_email.as_str(), "news@shop.example");
    assert_eq!(
        email.template,
        TemplateRef::Stored {
            id: TemplateId::parse("spring_sale").unwrap(),
            version: Some(3)
        }
    );
    assert_eq!(*request.render_recipients()[0].context, json!({}));
}

#[test]
fn serializes_back_to_an_equivalent_request() {
    let request = parse(&valid()).unwrap();
    let again = parse(&serde_json::to_value(&request).unwrap()).unwrap();
    assert_eq!(
        serde_json::to_value(&request).unwrap(),
        serde_json::to_value(&again).unwrap()
    );
}

#[test]
fn empty_ids_name_their_field() {
    let error = error_for(|r| r["render_recipients"][1]["profile_id"] = json!(""));
    assert_eq!(error.path(), "render_recipients[1].profile_id");
    assert!(error.message().contains("must not be empty"), "{error}");
    let error = error_for(|r| r["company_id"] = json!("  "));
    assert_eq!(error.path(), "company_id");
}

#[test]
fn missing_and_mistyped_fields_name_their_field() {
    let error = error_for(|r| {
        r.as_object_mut().unwrap().remove("message_id");
    });
    assert!(
        error.to_string().contains("missing field `message_id`"),
        "{error}"
    );
    let error = error_for(|r| r["render_recipients"][0]["context"] = json!("cart"));
    assert_eq!(error.path(), "render_recipients[0].context");
    let error = error_for(|r| r["send_time"] = json!("yesterday"));
    assert_eq!(error.path(), "send_time");
    let error = error_for(|r| r["priority"] = json!("urgent"));
    assert_eq!(error.path(), "priority");
    assert!(
        error.message().contains("unknown variant `urgent`"),
        "{error}"
    );
}

#[test]
fn unknown_fields_are_rejected_not_ignored() {
    let error = error_for(|r| r["trackng_options"] = json!({}));
    assert!(
        error.message().contains("unknown field `trackng_options`"),
        "{error}"
    );
    let error = error_for(|r| r["render_recipients"][0]["profileid"] = json!("x"));
    assert_eq!(error.path(), "render_recipients[0].profileid");
}

#[test]
fn malformed_json_gives_line_and_column() {
    let error = RenderRequest::from_json(
        b"{\n  \"request_id\": \"r\",\n  \"company_id\": acme\n}",
        &RequestLimits::default(),
    )
    .unwrap_err();
    assert_eq!(error.position(), Some((3, 17)));
    assert!(error.to_string().contains("line 3, column 17"), "{error}");
    let error = RenderRequest::from_json(b"", &RequestLimits::default()).unwrap_err();
    assert!(error.message().contains("EOF"), "{error}");
}

#[test]
fn trailing_garbage_is_an_error() {
    let mut bytes = valid().to_string().into_bytes();
    bytes.extend_from_slice(b" }");
    let error = RenderRequest::from_json(&bytes, &RequestLimits::default()).unwrap_err();
    assert!(error.message().contains("trailing characters"), "{error}");
}

#[test]
fn recipients_must_be_present_unique_and_within_the_limit() {
    let error = error_for(|r| r["render_recipients"] = json!([]));
    assert_eq!(error.path(), "render_recipients");
    assert!(error.message().contains("at least one recipient"));

    let error = error_for(|r| r["render_recipients"][1]["recipient_id"] = json!("r1"));
    assert_eq!(error.path(), "render_recipients[1].recipient_id");
    assert!(
        error
            .message()
            .contains("duplicate recipient_id \"r1\" (first at render_recipients[0])")
    );

    let limits = RequestLimits {
        max_recipients: 1,
        ..Default::default()
    };
    let error = RenderRequest::from_json(valid().to_string().as_bytes(), &limits).unwrap_err();
    assert_eq!(error.path(), "render_recipients");
    assert!(
        error
            .message()
            .contains("2 recipients, more than the maximum of 1")
    );
}

#[test]
fn oversized_requests_are_refused_before_parsing() {
    let limits = RequestLimits {
        max_bytes: 10,
        ..Default::default()
    };
    let error = RenderRequest::from_json(valid().to_string().as_bytes(), &limits).unwrap_err();
    assert!(
        error.message().contains("more than the maximum of 10"),
        "{error}"
    );
}

#[test]
fn from_email_must_be_an_address() {
    let error =
        error_for(|r| r["channel_settings"]["from_email"] = json!("Shop <news@shop.example>"));
    assert_eq!(error.path(), "channel_settings.from_email");
    assert!(
        error.message().contains("is not an email address"),
        "{error}"
    );
    let error = error_for(|r| r["channel_settings"]["reply_to_email"] = json!("help"));
    assert_eq!(error.path(), "channel_settings.reply_to_email");
}

#[test]
fn channel_settings_must_fit_their_channel() {
    let error = error_for(|r| {
        r["channel_settings"]
            .as_object_mut()
            .unwrap()
            .remove("from_email");
    });
    assert_eq!(error.path(), "channel_settings");
    assert!(
        error
            .message()
            .contains("missing field `from_email` (required for channel email)")
    );

    let error = error_for(|r| r["channel_settings"]["from_number"] = json!("+15550100"));
    assert!(
        error
            .message()
            .contains("`from_number` does not apply to channel email")
    );

    let error = error_for(|r| r["channel_settings"]["channel"] = json!("fax"));
    assert_eq!(error.path(), "channel_settings.channel");

    let error = error_for(|r| {
        r["channel_settings"] =
            json!({"channel": "sms", "template": {"id": "t"}, "from_number": "555-CALL-NOW"});
    });
    assert!(error.message().contains("not an E.164 number"), "{error}");
}

#[test]
fn tracking_options_name_the_bad_parameter_or_pattern() {
    let cases = [
        (
            json!({"utm": {"camp aign": "x"}}),
            "tracking_options.utm.camp aign: a parameter name uses only letters, digits, `_`, `-` and `.`",
        ),
        (
            json!({"utm": {"source": "a", "utm_source": "b"}}),
            "tracking_options.utm.utm_source: adds the same parameter as tracking_options.utm.source (utm_source)",
        ),
        (
            json!({"utm": {"campaign": "{{ message.message_name"}}),
            "tracking_options.utm.campaign: line 1: unexpected end of input, expected end of variable block",
        ),
        (
            json!({"link_exclusions": ["https://shop.example/*", " "]}),
            "tracking_options.link_exclusions[1]: must not be empty",
        ),
    ];
    for (options, expected) in cases {
        let error = error_for(|r| r["tracking_options"] = options.clone());
        assert_eq!(error.to_string(), expected, "{options}");
    }
    let mut request = valid();
    request["tracking_options"] =
        json!({"utm": {"campaign": "{{ message.message_name }}", "ref": "mail"}});
    request["render_recipients"][0]["tracking_opt_out"] = json!(true);
    let request = parse(&request).unwrap();
    assert!(request.render_recipients()[0].tracking_opt_out);
    assert!(!request.render_recipients()[1].tracking_opt_out);
    assert_eq!(TrackingOptions::parameter_name("campaign"), "utm_campaign");
    assert_eq!(TrackingOptions::parameter_name("ref"), "ref");
}

#[test]
fn template_refs_are_stored_or_inline() {
    let error = error_for(|r| r["channel_settings"]["template"] = json!({"version": 2}));
    assert_eq!(error.path(), "channel_settings.template");
    assert!(error.message().contains("missing field `id`"), "{error}");

    let error = error_for(|r| r["channel_settings"]["template"]["id"] = json!("../../etc"));
    assert_eq!(error.path(), "channel_settings.template.id");

    let error = error_for(|r| {
        r["channel_settings"]["template"] = json!({"inline": {"html": "<p>hi</p>"}});
    });
    assert!(
        error
            .message()
            .contains("template.inline: channel email needs a `subject` part"),
        "{error}"
    );

    let error = error_for(|r| {
        r["channel_settings"]["template"] =
            json!({"inline": {"subject": "s", "html": "h", "body": "b"}});
    });
    assert_eq!(error.path(), "channel_settings.template.inline.body");
    assert!(error.message().contains("unknown field `body`"), "{error}");
}

mod robustness {
    use proptest::prelude::*;

    use super::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(".{0,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever arrives, parsing answers with a request or an error that
        /// names a place, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            if let Err(error) = RenderRequest::from_json(&bytes, &RequestLimits::default()) {
                prop_assert!(!error.to_string().is_empty());
            }
        }

        #[test]
        fn any_field_replaced_by_any_value_is_accepted_or_named(
            field in prop::sample::select(vec![
                "request_id", "company_id", "client_id", "message_id", "priority", "send_time",
                "response_metadata", "channel_settings", "render_recipients", "tracking_options",
            ]),
            value in json_value(),
        ) {
            let mut request = valid();
            request[field] = value;
            if let Err(error) = parse(&request) {
                prop_assert!(
                    error.path().starts_with(field) || error.path().is_empty(),
                    "{field}: {error}"
                );
            }
        }
    }
}

#[test]
fn pinning_fills_in_a_missing_version_only() {
    let stored = |request: &RenderRequest| request.channel_settings().template().clone();
    let mut unversioned = valid();
    unversioned["channel_settings"]["template"] = json!({"id": "spring_sale"});
    let mut request = parse(&unversioned).unwrap();
    request.pin_template_version(7);
    let pinned = TemplateRef::Stored {
        id: TemplateId::parse("spring_sale").unwrap(),
        version: Some(7),
    };
    assert_eq!(stored(&request), pinned);
    // Pinned, it stays pinned: and a version the request named is kept.
    request.pin_template_version(8);
    assert_eq!(stored(&request), pinned);
    let mut versioned = parse(&valid()).unwrap();
    versioned.pin_template_version(9);
    assert!(matches!(
        stored(&versioned),
        TemplateRef::Stored {
            version: Some(3),
            ..
        }
    ));
}

#[test]
fn a_request_is_stored_as_the_json_it_arrived_as_and_read_back_as_fixed_since() {
    let mut unversioned = valid();
    unversioned["channel_settings"]["template"] = json!({"id": "spring_sale"});
    let text = unversioned.to_string();
    let mut request = RenderRequest::from_json(text.as_bytes(), &RequestLimits::default())
        .unwrap()
        .with_request_id(RequestId::parse("req-copy").unwrap());
    request.pin_template_version(7);

    let json = request.stored_json().unwrap();
    assert!(matches!(json, Cow::Borrowed(_)), "copied, not serialized");
    assert_eq!(json, text);
    assert_eq!(request.pinned_template_version(), Some(7));

    let back = RenderRequest::from_stored(
        &json,
        request.request_id().clone(),
        request.pinned_template_version(),
    )
    .unwrap();
    assert_eq!(back.request_id().as_str(), "req-copy");
    assert_eq!(back.pinned_template_version(), Some(7));
    assert_eq!(
        serde_json::to_value(&back).unwrap(),
        serde_json::to_value(&request).unwrap()
    );
}

#[test]
fn a_request_without_its_json_is_serialized_for_storing() {
    let request: RenderRequest = serde_json::from_value(valid()).unwrap();
    let json = request.stored_json().unwrap();
    assert!(matches!(json, Cow::Owned(_)));
    let back = RenderRequest::from_stored(&json, request.request_id().clone(), None).unwrap();
    assert_eq!(
        serde_json::to_value(&back).unwrap(),
        serde_json::to_value(&request).unwrap()
    );
    // The version the request named is not a pin to apply again.
    assert_eq!(back.pinned_template_version(), Some(3));
}

#[test]
fn stored_json_that_no_longer_reads_back_says_why() {
    let id = RequestId::parse("req-1").unwrap();
    let error = RenderRequest::from_stored(r#"{"unknown": 1}"#, id.clone(), None).unwrap_err();
    assert!(error.contains("unknown field `unknown`"), "{error}");
    let mut empty = valid();
    empty["render_recipients"] = json!([]);
    let error = RenderRequest::from_stored(&empty.to_string(), id, None).unwrap_err();
    assert!(error.contains("at least one recipient"), "{error}");
}
