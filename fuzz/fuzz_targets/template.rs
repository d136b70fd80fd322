//! Template compile and render: any source either fails to compile with an
//! error, or renders every recipient into an artifact, within the limits;
//! the audited render and a render from the profile projected to the keys
//! the template reads give that same artifact.
#![no_main]

use std::sync::Arc;

use artifact_render::context::audit::AccessRecorder;
use artifact_render::template::{Channel, TemplateParts};
use artifact_render::{CompiledTemplate, PreparedRequest, RenderLimits, RenderRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|source: &str| {
    let parts = TemplateParts {
        sms: Some(source.to_owned()),
        ..Default::default()
    };
    let limits = RenderLimits {
        fuel: 50_000,
        ..Default::default()
    };
    let Ok(template) = CompiledTemplate::compile("fuzz", Channel::Sms, &parts, &limits) else {
        return;
    };
    let request = RenderRequest::from_json(
        br#"{"request_id": "r", "company_id": "c", "client_id": "k", "message_id": "m",
             "send_time": "2026-11-26T15:00:00Z",
             "channel_settings": {"channel": "sms", "from_number": "+15550100", "template": {"id": "fuzz"}},
             "render_recipients": [{"recipient_id": "a", "profile_id": "p", "context": {"items": [1, "two", {"x": null}]}}]}"#,
        &Default::default(),
    )
    .unwrap();
    let prepared = PreparedRequest::new(Arc::new(request), Arc::new(template), None).unwrap();
    let profile =
        Arc::new(serde_json::json!({"name": "Ada", "n": 4.5, "tags": ["a"], "nested": {"k": "v"}}));
    let recipient = &prepared.request().render_recipients()[0];
    let artifact = serde_json::to_string(&prepared.render(recipient, Some(&profile))).unwrap();

    let recorder = Arc::new(AccessRecorder::default());
    let audited = prepared.render_audited(recipient, Some(&profile), &recorder);
    assert_eq!(serde_json::to_string(&audited).unwrap(), artifact);

    let projection = prepared.template().profile_projection();
    let projected = Arc::new(projection.parse(&profile.to_string()).unwrap());
    let from_projected = prepared.render(recipient, Some(&projected));
    assert_eq!(serde_json::to_string(&from_projected).unwrap(), artifact);
});
