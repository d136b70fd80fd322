//! Link finding and rewriting: any HTML source either fails to compile with
//! an error, or renders with click and open tracking into an email whose
//! every click token resolves.
#![no_main]

use std::sync::Arc;

use artifact_render::finish::tracking::{SigningKey, TemplateLinks, TrackingConfig};
use artifact_render::template::{Channel, TemplateParts};
use artifact_render::{CompiledTemplate, Outcome, PreparedRequest, RenderLimits, RenderRequest};
use libfuzzer_sys::fuzz_target;

struct Store(Arc<CompiledTemplate>);

impl TemplateLinks for Store {
    fn fixed_link(&self, _: &str, _: &str, _: u32, index: u32) -> Option<String> {
        self.0.fixed_link(index).map(str::to_owned)
    }
}

fuzz_target!(|source: &str| {
    let parts = TemplateParts {
        subject: Some("s".into()),
        html: Some(source.to_owned()),
        ..Default::default()
    };
    let limits = RenderLimits {
        fuel: 50_000,
        ..Default::default()
    };
    let Ok(template) = CompiledTemplate::compile("fuzz", Channel::Email, &parts, &limits) else {
        return;
    };
    let template = Arc::new(template.with_version(Some(1)));
    let request = RenderRequest::from_json(
        br#"{"request_id": "r", "company_id": "c", "client_id": "k", "message_id": "m",
             "send_time": "2026-11-26T15:00:00Z",
             "channel_settings": {"channel": "email", "from_email": "a@b.example", "template": {"id": "fuzz"}},
             "render_recipients": [{"recipient_id": "a", "profile_id": "p",
                 "context": {"items": [{"url": "https://x.example/a?b=1"}, {"url": "javascript:x"}]}}],
             "tracking_options": {"click_tracking": true, "open_tracking": true, "utm": {"source": "s"}}}"#,
        &Default::default(),
    )
    .unwrap();
    let key = SigningKey {
        id: "k".into(),
        secret: vec![7; 32],
    };
    let config = Arc::new(TrackingConfig::new("t.example", vec![key], None).unwrap());
    let prepared =
        PreparedRequest::new(Arc::new(request), template.clone(), Some(config.clone())).unwrap();
    let profile = Arc::new(serde_json::json!({"name": "Ada", "url": "https://p.example/"}));
    let recipient = &prepared.request().render_recipients()[0];
    let artifact = prepared.render(recipient, Some(&profile));
    let Outcome::Email(email) = &artifact.outcome else {
        return;
    };
    let store = Store(template);
    for (at, _) in email.html.match_indices("https://t.example/c/") {
        let rest = &email.html[at + "https://t.example/c/".len()..];
        let token: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        config
            .resolve_click(&token, &store)
            .unwrap_or_else(|error| panic!("token {token:?} from the render: {error}"));
    }
});
