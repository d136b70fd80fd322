//! End-to-end renders through the public API: the shipped example request,
//! one snapshot per case file in `tests/cases/`, and the failure paths.

mod common;

use std::sync::Arc;

use artifact_render::artifact::{FailureKind, Outcome};
use artifact_render::template::{Channel, MissingData, TemplateParts};
use artifact_render::{CompiledTemplate, PreparedRequest, RenderLimits};
use common::*;
use serde_json::json;

fn email_of(artifact: &artifact_render::Artifact) -> &artifact_render::artifact::EmailArtifact {
    match &artifact.outcome {
        Outcome::Email(email) => email,
        other => panic!("expected an email, got {other:?}"),
    }
}

fn failure_of(artifact: &artifact_render::Artifact) -> &artifact_render::artifact::RenderFailure {
    match &artifact.outcome {
        Outcome::Error(failure) => failure,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn example_email_request_renders_every_recipient() {
    let prepared = prepare(example_request("request.json"));
    let artifacts = render_all(&prepared, &example_profiles());
    assert_eq!(artifacts.len(), 4);
    for artifact in &artifacts {
        let name = format!("example_email_{}", artifact.recipient_id);
        insta::assert_json_snapshot!(name, artifact);
    }
    let eml = prepared
        .eml(&artifacts[0])
        .expect("email artifacts serialize to .eml");
    insta::assert_snapshot!("example_email_rcpt-ada_eml", eml);
    let ghost = failure_of(&artifacts[3]);
    assert_eq!(ghost.kind, FailureKind::ProfileNotFound);
    assert_eq!(ghost.message, "profile \"prof-missing\" not found");
}

#[test]
fn example_sms_request_renders_every_recipient() {
    let prepared = prepare(example_request("sms-request.json"));
    let artifacts = render_all(&prepared, &example_profiles());
    insta::assert_json_snapshot!("example_sms", artifacts);
}

#[test]
fn artifacts_read_back_from_their_json() {
    let prepared = prepare(example_request("request.json"));
    let sms = prepare(example_request("sms-request.json"));
    let profiles = example_profiles();
    let artifacts = render_all(&prepared, &profiles)
        .into_iter()
        .chain(render_all(&sms, &profiles));
    for artifact in artifacts {
        let json = serde_json::to_string(&artifact).unwrap();
        let back: artifact_render::Artifact = serde_json::from_str(&json).unwrap();
        assert_eq!(back, artifact);
    }
}

#[test]
fn renders_are_byte_for_byte_reproducible() {
    let profiles = example_profiles();
    let first = render_all(&prepare(example_request("request.json")), &profiles);
    let second = render_all(&prepare(example_request("request.json")), &profiles);
    assert_eq!(first, second);
}

/// One snapshot per `tests/cases/*.json`: `{"template", "profile", "event"}`.
#[test]
fn cases() {
    insta::glob!("cases/*.json", |path| {
        let case: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let artifact = render_inline(
            case["template"].clone(),
            case["profile"].clone(),
            case.get("event").cloned().unwrap_or(json!({})),
        );
        insta::assert_json_snapshot!(artifact.outcome);
    });
}

#[test]
fn html_in_profile_data_is_escaped_in_html_and_plain_in_text() {
    let artifact = render_inline(
        json!({"subject": "Hi {{ profile.name }}", "html": "<p>Hi {{ profile.name }}</p>", "text": "Hi {{ profile.name }}"}),
        json!({"name": "<b>Mal</b> & 'Co' \"x\""}),
        json!({}),
    );
    let email = email_of(&artifact);
    assert_eq!(
        email.html,
        "<p>Hi &lt;b&gt;Mal&lt;/b&gt; &amp; &#39;Co&#39; &#34;x&#34;</p>"
    );
    assert_eq!(email.text, "Hi <b>Mal</b> & 'Co' \"x\"");
    assert_eq!(email.subject, "Hi <b>Mal</b> & 'Co' \"x\"");
}

#[test]
fn urls_keep_their_slashes_in_html() {
    let artifact = render_inline(
        json!({"subject": "s", "html": "<a href=\"{{ event.url }}\">x</a>"}),
        json!({}),
        json!({"url": "https://shop.example/a/b?c=1&d=2"}),
    );
    assert_eq!(
        email_of(&artifact).html,
        "<a href=\"https://shop.example/a/b?c=1&amp;d=2\">x</a>"
    );
}

#[test]
fn line_breaks_in_data_never_reach_a_header() {
    let artifact = render_inline(
        json!({"subject": "Hi {{ profile.name }}\n{{ event.x }}", "html": "<p>x</p>"}),
        json!({"name": "Mal\r\nBcc: everyone@example.com"}),
        json!({"x": "\u{2028}tail\t"}),
    );
    let email = email_of(&artifact);
    assert_eq!(email.subject, "Hi Mal Bcc: everyone@example.com tail");
    assert!(!email.subject.contains(['\r', '\n']));
}

#[test]
fn generated_text_part_keeps_links() {
    let artifact = render_inline(
        json!({"subject": "s", "html": "<html><body><p>Hi {{ profile.name }},</p><p><a href=\"https://shop.example/cart\">Open your cart</a></p></body></html>"}),
        json!({"name": "Ada"}),
        json!({}),
    );
    assert_eq!(
        email_of(&artifact).text,
        "Hi Ada,\n\nOpen your cart (https://shop.example/cart)"
    );
}

fn compile_with(parts: serde_json::Value, limits: RenderLimits) -> PreparedRequest {
    let parts: TemplateParts = serde_json::from_value(parts).unwrap();
    let template = CompiledTemplate::compile("runaway", Channel::Email, &parts, &limits).unwrap();
    let request = inline_request(
        json!({"channel": "email", "from_email": "news@shop.example", "template": {"inline": {"subject": "s", "html": "h"}}}),
        json!({}),
    );
    PreparedRequest::new(Arc::new(request), Arc::new(template), None).unwrap()
}

fn render_one(prepared: &PreparedRequest) -> artifact_render::Artifact {
    let recipient = &prepared.request().render_recipients()[0];
    prepared.render(recipient, Some(&Arc::new(json!({}))))
}

#[test]
fn a_template_for_another_channel_is_refused() {
    let sms: TemplateParts = serde_json::from_value(json!({"sms": "Hi"})).unwrap();
    let template =
        CompiledTemplate::compile("texts", Channel::Sms, &sms, &RenderLimits::default()).unwrap();
    let request = inline_request(
        json!({"channel": "email", "from_email": "news@shop.example", "template": {"id": "texts"}}),
        json!({}),
    );
    let error = PreparedRequest::new(Arc::new(request), Arc::new(template), None).unwrap_err();
    assert_eq!(
        error.to_string(),
        "template \"texts\": compiled for channel sms, but the request sends email"
    );
}

#[test]
fn a_nested_100k_by_100k_loop_runs_out_of_fuel() {
    let prepared = compile_with(
        json!({"subject": "s", "html": "<p>\n{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}</p>"}),
        RenderLimits::default(),
    );
    let failure = failure_of(&render_one(&prepared)).clone();
    assert_eq!(failure.kind, FailureKind::FuelExhausted);
    assert_eq!(failure.template.as_deref(), Some("runaway"));
    assert_eq!(failure.line, Some(2));
    assert!(
        failure.message.contains("ran out of fuel"),
        "{}",
        failure.message
    );
}

#[test]
fn output_over_the_limit_fails_with_output_too_large() {
    let limits = RenderLimits {
        max_output_bytes: 1_000,
        ..Default::default()
    };
    let prepared = compile_with(
        json!({"subject": "s", "html": "{% for i in range(100) %}0123456789abcdef{% endfor %}"}),
        limits,
    );
    let failure = failure_of(&render_one(&prepared)).clone();
    assert_eq!(failure.kind, FailureKind::OutputTooLarge);
    assert_eq!(
        failure.message,
        "output is 1600 bytes, more than the limit of 1000 bytes"
    );
    assert_eq!(
        failure.part,
        Some(artifact_render::template::PartName::Html)
    );
}

#[test]
fn an_exploding_string_is_stopped() {
    let prepared = compile_with(
        json!({"subject": "{{ 'x' * 1000000000 }}", "html": "h"}),
        RenderLimits::default(),
    );
    let failure = failure_of(&render_one(&prepared)).clone();
    assert_eq!(failure.kind, FailureKind::FuelExhausted, "{failure:?}");
}

#[test]
fn unbounded_recursion_hits_the_recursion_limit() {
    let prepared = compile_with(
        json!({"subject": "s", "html": "{% macro down(n) %}{{ down(n + 1) }}{% endmacro %}{{ down(0) }}"}),
        RenderLimits::default(),
    );
    let failure = failure_of(&render_one(&prepared)).clone();
    assert_eq!(failure.kind, FailureKind::RecursionLimit, "{failure:?}");
}

#[test]
fn one_failing_recipient_does_not_stop_the_batch() {
    let request = inline_request(
        json!({"channel": "sms", "from_number": "+15550100",
            "template": {"inline": {"sms": "Total {{ profile.total | currency }}"}}}),
        json!({}),
    );
    let prepared = prepare(request);
    let recipient = &prepared.request().render_recipients()[0];
    let bad = prepared.render(recipient, Some(&Arc::new(json!({"total": "lots"}))));
    let failure = failure_of(&bad);
    assert_eq!(failure.kind, FailureKind::Template);
    assert_eq!(failure.line, Some(1));
    assert!(failure.message.contains("\"lots\""), "{}", failure.message);
    let good = prepared.render(recipient, Some(&Arc::new(json!({"total": "4.99"}))));
    let Outcome::Sms(sms) = &good.outcome else {
        panic!("{good:?}")
    };
    assert_eq!(sms.body, "Total $4.99");
}

#[test]
fn missing_data_policies() {
    let template = |policy: MissingData| json!({"subject": "s", "html": "<p>\nHello {{ profile.location.city }}</p>", "missing_data": policy});
    let empty = render_inline(template(MissingData::Empty), json!({}), json!({}));
    assert_eq!(email_of(&empty).html, "<p>\nHello </p>");

    let skipped = render_inline(template(MissingData::Skip), json!({}), json!({}));
    let Outcome::Skipped(skip) = &skipped.outcome else {
        panic!("{skipped:?}")
    };
    assert_eq!(skip.line, Some(2));
    assert_eq!(skip.reason, "missing data in `{{ profile.location.city }}`");

    let failed = render_inline(template(MissingData::Fail), json!({}), json!({}));
    let failure = failure_of(&failed);
    assert_eq!(failure.kind, FailureKind::MissingData);
    assert!(
        failure.message.contains("profile.location"),
        "{}",
        failure.message
    );

    let present = render_inline(
        template(MissingData::Fail),
        json!({"location": {"city": "Oslo"}}),
        json!({}),
    );
    assert_eq!(email_of(&present).html, "<p>\nHello Oslo</p>");
}

#[test]
fn filters_leave_missing_data_to_the_policy() {
    for expression in [
        "profile.missing | e",
        "profile.missing | escape | upper",
        "profile.missing | truncate(3)",
        "profile.missing | wordcount",
        "profile.missing | striptags",
        "profile.missing | currency",
    ] {
        let html = format!("<p>{{{{ {expression} }}}}</p>");
        let failed = render_inline(
            json!({"subject": "s", "html": html, "missing_data": "fail"}),
            json!({}),
            json!({}),
        );
        assert_eq!(
            failure_of(&failed).kind,
            FailureKind::MissingData,
            "{expression}"
        );
        let empty = render_inline(json!({"subject": "s", "html": html}), json!({}), json!({}));
        assert_eq!(email_of(&empty).html, "<p></p>", "{expression}");
    }
}

#[test]
fn null_escapes_to_nothing() {
    let artifact = render_inline(
        json!({"subject": "s", "html": "<p>{{ profile.z | e }}|{{ profile.z | escape | upper }}</p>"}),
        json!({"z": null}),
        json!({}),
    );
    assert_eq!(email_of(&artifact).html, "<p>|</p>");
}

#[test]
fn stricter_policies_still_allow_checks_and_defaults() {
    let artifact = render_inline(
        json!({"subject": "s", "missing_data": "fail",
            "html": "{% if profile.vip %}VIP{% endif %}{{ profile.name | default('there') }}{{ profile.city is defined }}"}),
        json!({}),
        json!({}),
    );
    assert_eq!(email_of(&artifact).html, "thereFalse");
}
