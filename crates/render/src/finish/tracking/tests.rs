use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::request::RenderRequest;
use crate::template::{Channel, RenderLimits, TemplateParts};
use crate::{Artifact, Outcome, PreparedRequest};

const HTML: &str = concat!(
    "<html><head></head><body>\n",
    "<a href=\"https://shop.example/sale?x=1&amp;y=2#top\">Sale</a>\n",
    "<a href=\"https://shop.example/account/orders\">Orders</a>\n",
    "{% for item in event.cart %}<a href=\"{{ item.url }}\">{{ item.name }}</a>{% endfor %}\n",
    "<a href=\"mailto:help@shop.example\">Help</a> <a href=\"{{ unsubscribe_url }}\">Unsubscribe</a>\n",
    "</body></html>"
);

fn config(keys: &[(&str, &str)]) -> Arc<TrackingConfig> {
    let keys = keys
        .iter()
        .map(|(id, secret)| SigningKey {
            id: (*id).to_owned(),
            secret: secret.as_bytes().to_vec(),
        })
        .collect();
    Arc::new(
        TrackingConfig::new(
            "t.shop.example",
            keys,
            Some(crate::request::EmailAddress::parse("unsub@shop.example").unwrap()),
        )
        .unwrap(),
    )
}

fn current() -> Arc<TrackingConfig> {
    config(&[("k2", "second-secret-of-at-least-32-bytes!")])
}

fn template(version: Option<u32>) -> Arc<CompiledTemplate> {
    let parts = TemplateParts {
        subject: Some("Hi".into()),
        html: Some(HTML.into()),
        ..Default::default()
    };
    Arc::new(
        CompiledTemplate::compile("news", Channel::Email, &parts, &RenderLimits::default())
            .unwrap()
            .with_version(version),
    )
}

fn request(tracking: serde_json::Value, opt_out: bool) -> Arc<RenderRequest> {
    let request = json!({
        "request_id": "r1", "company_id": "acme", "client_id": "flows", "message_id": "m1",
        "send_time": "2026-11-26T09:00:00Z",
        "channel_settings": {"channel": "email", "from_email": "news@shop.example",
            "message_name": "Spring sale", "template": {"id": "news"}},
        "render_recipients": [{"recipient_id": "rcpt-1", "profile_id": "p1",
            "tracking_opt_out": opt_out,
            "context": {"cart": [{"name": "Sweater", "url": "https://shop.example/p/1?c=red"}]}}],
        "tracking_options": tracking,
    });
    Arc::new(RenderRequest::from_json(request.to_string().as_bytes(), &Default::default()).unwrap())
}

fn all_on() -> serde_json::Value {
    json!({"click_tracking": true, "open_tracking": true,
        "utm": {"source": "newsletter", "campaign": "{{ message.message_name }}"},
        "link_exclusions": ["https://shop.example/account/*"]})
}

fn render(
    request: Arc<RenderRequest>,
    template: Arc<CompiledTemplate>,
    config: Arc<TrackingConfig>,
) -> Artifact {
    let prepared = PreparedRequest::new(request, template, Some(config)).unwrap();
    let recipient = &prepared.request().render_recipients()[0];
    prepared.render(recipient, Some(&Arc::new(json!({}))))
}

fn email(artifact: &Artifact) -> &crate::artifact::EmailArtifact {
    match &artifact.outcome {
        Outcome::Email(email) => email,
        other => panic!("not an email: {other:?}"),
    }
}

/// Every `https://t.shop.example/<kind>/<token>` in `html`, in order.
fn tokens<'a>(html: &'a str, kind: &str) -> Vec<&'a str> {
    let prefix = format!("https://t.shop.example/{kind}/");
    html.match_indices(&prefix)
        .map(|(at, _)| {
            let rest = &html[at + prefix.len()..];
            &rest[..rest.find(['"', '\n', ' ']).unwrap_or(rest.len())]
        })
        .collect()
}

/// Resolves fixed links the way the tracking endpoint will: by compiling
/// the stored version the token names.
struct Store(Arc<CompiledTemplate>);

impl TemplateLinks for Store {
    fn fixed_link(&self, company: &str, id: &str, version: u32, index: u32) -> Option<String> {
        let template = &self.0;
        (company == "acme" && id == template.name() && Some(version) == template.version())
            .then(|| template.fixed_link(index).map(str::to_owned))
            .flatten()
    }
}

#[test]
fn every_click_token_resolves_to_its_destination_with_utm_added_once() {
    let template = template(Some(7));
    let artifact = render(request(all_on(), false), template.clone(), current());
    let email = email(&artifact);
    let clicks = tokens(&email.html, "c");
    assert_eq!(clicks.len(), 2, "{}", email.html);
    let store = Store(template);
    let destinations: Vec<String> = clicks
        .iter()
        .map(|token| current().resolve_click(token, &store).unwrap().destination)
        .collect();
    assert_eq!(
        destinations,
        [
            "https://shop.example/sale?x=1&y=2&utm_campaign=Spring%20sale&utm_source=newsletter#top",
            "https://shop.example/p/1?c=red&utm_campaign=Spring%20sale&utm_source=newsletter",
        ]
    );
    let click = current().resolve_click(clicks[0], &store).unwrap();
    assert_eq!(
        (
            click.index,
            click.recipient.recipient_id.as_str(),
            click.recipient.message_id.as_str()
        ),
        (0, "rcpt-1", "m1")
    );
    // Excluded and non-http links are written out with UTM, untracked.
    assert!(email.html.contains(
        "href=\"https://shop.example/account/orders?utm_campaign=Spring%20sale&amp;utm_source=newsletter\""
    ));
    assert!(email.html.contains("href=\"mailto:help@shop.example\""));
    assert_eq!(
        email.links,
        [
            TrackedLink {
                index: 0,
                url: "https://shop.example/sale?x=1&y=2#top".into()
            },
            TrackedLink {
                index: 2,
                url: "https://shop.example/p/1?c=red".into()
            },
        ]
    );
}

#[test]
fn tokens_hold_no_profile_data_and_renders_are_reproducible() {
    let first = render(request(all_on(), false), template(Some(7)), current());
    let second = render(request(all_on(), false), template(Some(7)), current());
    assert_eq!(first, second);
    for token in tokens(&email(&first).html, "c") {
        let signed = token.split('.').next().unwrap();
        let claims = current().signer().verify(signed).unwrap();
        assert_eq!(claims.recipient_id, "rcpt-1");
    }
}

#[test]
fn the_pixel_sits_at_the_top_of_the_body_and_unsubscribe_is_signed() {
    let artifact = render(request(all_on(), false), template(Some(7)), current());
    let email = email(&artifact);
    let body = email.html.find("<body>").unwrap() + "<body>".len();
    assert!(email.html[body..].starts_with("<img src=\"https://t.shop.example/o/"));
    let open = tokens(&email.html, "o")[0];
    let who = current().resolve_open(open).unwrap();
    assert_eq!(who.recipient_id, "rcpt-1");
    let unsubscribe = tokens(&email.html, "u")[0];
    assert_eq!(current().resolve_unsubscribe(unsubscribe).unwrap(), who);
    assert_eq!(
        current().resolve_unsubscribe(open),
        Err(ResolveError::WrongKind("unsubscribe")),
        "a pixel URL cannot unsubscribe"
    );
    assert_eq!(
        email.headers["List-Unsubscribe"],
        format!(
            "<https://t.shop.example/u/{unsubscribe}>, <mailto:unsub@shop.example?subject=unsubscribe-{unsubscribe}>"
        )
    );
    assert_eq!(
        email.headers["List-Unsubscribe-Post"],
        "List-Unsubscribe=One-Click"
    );
    assert_eq!(
        current().resolve_click(open, &Store(template(Some(7)))),
        Err(ResolveError::WrongKind("click"))
    );
}

#[test]
fn opted_out_recipients_get_utm_but_no_tracking() {
    let artifact = render(request(all_on(), true), template(Some(7)), current());
    let email = email(&artifact);
    assert!(tokens(&email.html, "c").is_empty());
    assert!(tokens(&email.html, "o").is_empty());
    assert!(email.links.is_empty());
    assert!(email.html.contains(
        "href=\"https://shop.example/p/1?c=red&amp;utm_campaign=Spring%20sale&amp;utm_source=newsletter\""
    ));
    assert_eq!(
        tokens(&email.html, "u").len(),
        1,
        "unsubscribe is not tracking"
    );
}

#[test]
fn inline_templates_sign_each_destination() {
    let artifact = render(request(all_on(), false), template(None), current());
    let email = email(&artifact);
    let clicks = tokens(&email.html, "c");
    assert!(clicks.iter().all(|token| !token.contains('.')));
    let click = current()
        .resolve_click(clicks[0], &Store(template(None)))
        .unwrap();
    assert_eq!(click.index, 0);
    assert!(
        click
            .destination
            .starts_with("https://shop.example/sale?x=1&y=2&utm_")
    );
}

#[test]
fn a_destination_repeated_in_a_message_is_signed_once_for_its_first_link() {
    let parts = TemplateParts {
        subject: Some("Hi".into()),
        html: Some(
            "<body>{% for item in event.cart %}<a href=\"{{ item.url }}\"><img src=\"x.png\"></a>\n\
             <a href=\"{{ item.url }}\">{{ item.name }}</a>{% endfor %}\n\
             <a href=\"https://shop.example/other\">Other</a></body>"
                .into(),
        ),
        text: Some("{% for item in event.cart %}{{ item.url }}{% endfor %}\n".into()),
        ..Default::default()
    };
    let template = Arc::new(
        CompiledTemplate::compile("news", Channel::Email, &parts, &RenderLimits::default())
            .unwrap(),
    );
    let artifact = render(request(all_on(), false), template.clone(), current());
    let email = email(&artifact);
    let html_clicks = tokens(&email.html, "c");
    let text_clicks = tokens(&email.text, "c");
    assert_eq!(html_clicks.len(), 3, "{}", email.html);
    assert_eq!(
        html_clicks[0], html_clicks[1],
        "same destination, same token"
    );
    assert_eq!(text_clicks, [html_clicks[0]], "the text part reuses it too");
    assert_ne!(html_clicks[2], html_clicks[0]);
    let click = current()
        .resolve_click(text_clicks[0], &Store(template))
        .unwrap();
    assert_eq!(click.index, 0, "the token names the first link");
    assert_eq!(
        click.destination,
        "https://shop.example/p/1?c=red&utm_campaign=Spring%20sale&utm_source=newsletter"
    );
    // Every site is still listed as tracked.
    let indexes: Vec<u32> = email.links.iter().map(|link| link.index).collect();
    assert_eq!(indexes.len(), 4, "{:?}", email.links);
}

#[test]
fn bad_tokens_are_refused_with_a_reason() {
    let template = template(Some(7));
    let artifact = render(request(all_on(), false), template.clone(), current());
    let token = tokens(&email(&artifact).html, "c")[0].to_owned();
    let store = Store(template);
    let (signed, index) = token.split_once('.').unwrap();

    let mut tampered = signed.to_owned().into_bytes();
    tampered[12] = if tampered[12] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{}.{index}", String::from_utf8(tampered).unwrap());
    let refusal = current().resolve_click(&tampered, &store).unwrap_err();
    assert!(
        matches!(
            refusal,
            ResolveError::Token(TokenError::BadSignature | TokenError::Malformed(_))
        ),
        "{refusal}"
    );

    let truncated = &signed[..signed.len() - 5];
    assert_eq!(
        current()
            .resolve_click(truncated, &store)
            .unwrap_err()
            .to_string(),
        "token is truncated"
    );

    let other_key = config(&[("k9", "another-secret-of-at-least-32-bytes")]);
    assert_eq!(
        other_key
            .resolve_click(&token, &store)
            .unwrap_err()
            .to_string(),
        "token signed with unknown key \"k2\""
    );

    assert_eq!(
        current()
            .resolve_click(&format!("{signed}.99"), &store)
            .unwrap_err()
            .to_string(),
        "template \"news\" version 7 has no fixed link 99"
    );
    // Link 2 is built from data: its URL is not the template's to give.
    assert!(
        current()
            .resolve_click(&format!("{signed}.2"), &store)
            .is_err()
    );
    assert_eq!(
        current()
            .resolve_click(&format!("{signed}.x"), &store)
            .unwrap_err()
            .to_string(),
        "link number \"x\" after the token is not a number"
    );
}

#[test]
fn old_keys_still_verify_after_rotation() {
    let old = config(&[("k1", "first-secret-of-at-least-32-bytes!!")]);
    let artifact = render(request(all_on(), false), template(Some(7)), old);
    let token = tokens(&email(&artifact).html, "o")[0];
    let rotated = config(&[
        ("k2", "second-secret-of-at-least-32-bytes!"),
        ("k1", "first-secret-of-at-least-32-bytes!!"),
    ]);
    assert_eq!(rotated.resolve_open(token).unwrap().recipient_id, "rcpt-1");
    assert_eq!(rotated.signer().signing_key_id(), "k2");
}

#[test]
fn tracking_without_configuration_is_refused_up_front() {
    let error =
        PreparedRequest::new(request(all_on(), false), template(Some(7)), None).unwrap_err();
    assert_eq!(
        error.to_string(),
        "tracking_options.click_tracking: needs a tracking domain and signing keys in the renderer's configuration"
    );
    let error =
        PreparedRequest::new(request(json!({}), false), template(Some(7)), None).unwrap_err();
    assert!(
        error.to_string().contains("uses `unsubscribe_url`"),
        "{error}"
    );
}

#[test]
fn domains_must_be_host_names() {
    for bad in [
        "https://t.example",
        "t.example/c",
        "",
        "t..example",
        "-t.example",
        "t.example:0",
        "t.example:",
    ] {
        let keys = vec![SigningKey {
            id: "k".into(),
            secret: vec![7; 32],
        }];
        assert!(TrackingConfig::new(bad, keys, None).is_err(), "{bad}");
    }
    let keys = vec![SigningKey {
        id: "k".into(),
        secret: vec![7; 32],
    }];
    assert_eq!(
        TrackingConfig::new("T.Shop.Example:8443", keys, None)
            .unwrap()
            .domain(),
        "t.shop.example:8443"
    );
}

fn authored(parts: TemplateParts) -> Arc<CompiledTemplate> {
    Arc::new(
        CompiledTemplate::compile("news", Channel::Email, &parts, &RenderLimits::default())
            .unwrap()
            .with_version(Some(7)),
    )
}

/// Renders `template` with tracking on and resolves every click token.
fn destinations(template: Arc<CompiledTemplate>) -> (String, Vec<String>) {
    let artifact = render(request(all_on(), false), template.clone(), current());
    let html = email(&artifact).html.clone();
    let store = Store(template);
    let resolved = tokens(&html, "c")
        .iter()
        .map(|token| current().resolve_click(token, &store).unwrap().destination)
        .collect();
    (html, resolved)
}

#[test]
fn expression_hrefs_track_in_css_inlined_templates() {
    let (html, resolved) = destinations(authored(TemplateParts {
        subject: Some("Hi".into()),
        html: Some(
            "<html><head><style>.cta { color: #c0392b; }</style></head><body>\n\
             <table>{% for item in event.cart %}<tr><td><a class=\"cta\" href=\"{{ item.url }}\">{{ item.name }}</a></td></tr>{% endfor %}</table>\n\
             <a class=\"cta\" href=\"https://shop.example/sale\">Sale</a></body></html>"
                .into(),
        ),
        inline_css: true,
        ..Default::default()
    }));
    assert!(html.contains("color: #c0392b"), "{html}");
    assert_eq!(
        resolved,
        [
            "https://shop.example/p/1?c=red&utm_campaign=Spring%20sale&utm_source=newsletter",
            "https://shop.example/sale?utm_campaign=Spring%20sale&utm_source=newsletter",
        ]
    );
}

#[test]
fn expression_hrefs_track_in_mjml_templates() {
    let (html, resolved) = destinations(authored(TemplateParts {
        subject: Some("Hi".into()),
        mjml: Some(
            "<mjml><mj-body>\n\
             {% for item in event.cart %}<mj-section><mj-column>\n\
             <mj-text>{{ item.name }}</mj-text>\n\
             <mj-button href=\"{{ item.url }}\">View</mj-button>\n\
             </mj-column></mj-section>{% endfor %}\n\
             <mj-section><mj-column><mj-button href=\"https://shop.example/sale\">Sale</mj-button></mj-column></mj-section>\n\
             </mj-body></mjml>"
                .into(),
        ),
        ..Default::default()
    }));
    assert!(html.contains("Sweater"), "{html}");
    assert!(
        html.contains("<img src=\"https://t.shop.example/o/"),
        "pixel at the top: {html}"
    );
    assert_eq!(
        resolved,
        [
            "https://shop.example/p/1?c=red&utm_campaign=Spring%20sale&utm_source=newsletter",
            "https://shop.example/sale?utm_campaign=Spring%20sale&utm_source=newsletter",
        ]
    );
}

#[test]
fn a_link_that_renders_as_a_script_url_is_left_alone_with_a_warning() {
    let parts = TemplateParts {
        subject: Some("Hi".into()),
        html: Some(
            "<body>{% for item in event.cart %}<a href=\"{{ item.url }}\">x</a>{% endfor %}</body>"
                .into(),
        ),
        ..Default::default()
    };
    let template = Arc::new(
        CompiledTemplate::compile("news", Channel::Email, &parts, &RenderLimits::default())
            .unwrap(),
    );
    let mut request = serde_json::to_value(&*request(all_on(), false)).unwrap();
    request["render_recipients"][0]["context"]["cart"][0]["url"] = json!("javascript:alert(1)");
    let request = Arc::new(
        RenderRequest::from_json(request.to_string().as_bytes(), &Default::default()).unwrap(),
    );
    let artifact = render(request, template, current());
    let email = email(&artifact);
    assert!(
        email.html.contains("href=\"javascript:alert(1)\""),
        "{}",
        email.html
    );
    assert!(tokens(&email.html, "c").is_empty());
    assert_eq!(
        email.warnings,
        ["link 0 rendered as a `javascript:` URL, left untouched"]
    );
}
