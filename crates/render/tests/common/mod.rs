//! Shared helpers for the render core's integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use artifact_render::finish::tracking::{SigningKey, TrackingConfig};
use artifact_render::request::{EmailAddress, ProfileId, TemplateRef};
use artifact_render::template::TemplateFolder;
use artifact_render::{Artifact, PreparedRequest, RenderRequest, TemplateCache, TemplateKey};

pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// The tracking configuration of `examples/artifact.toml`.
pub fn example_tracking() -> Arc<TrackingConfig> {
    let key = SigningKey {
        id: "dev1".into(),
        secret: b"development-only-secret-do-not-use-in-production".to_vec(),
    };
    let mailto = EmailAddress::parse("unsubscribe@shop.example").unwrap();
    Arc::new(TrackingConfig::new("t.shop.example", vec![key], Some(mailto)).unwrap())
}

/// Reads `examples/templates/<id>/`.
pub fn example_template(id: &str) -> TemplateFolder {
    let files: Vec<(String, String)> = std::fs::read_dir(examples().join("templates").join(id))
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    TemplateFolder::from_files(files.iter().map(|(n, c)| (n.as_str(), c.as_str()))).unwrap()
}

pub fn example_profiles() -> HashMap<ProfileId, Arc<serde_json::Value>> {
    std::fs::read_to_string(examples().join("profiles.ndjson"))
        .unwrap()
        .lines()
        .map(|line| {
            let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
            let id = ProfileId::parse(value["profile_id"].as_str().unwrap()).unwrap();
            (id, Arc::new(value["properties"].take()))
        })
        .collect()
}

pub fn example_request(file: &str) -> RenderRequest {
    let bytes = std::fs::read(examples().join(file)).unwrap();
    RenderRequest::from_json(&bytes, &Default::default()).unwrap()
}

/// Compiles the request's template (stored ones from `examples/templates`)
/// and binds it with the examples' tracking configuration.
pub fn prepare(request: RenderRequest) -> PreparedRequest {
    let (id, folder) = match request.channel_settings().template() {
        TemplateRef::Inline(parts) => (
            None,
            TemplateFolder {
                parts: parts.clone(),
                version: None,
            },
        ),
        TemplateRef::Stored { id, .. } => (Some(id.clone()), example_template(id.as_str())),
    };
    let cache = TemplateCache::new(4, Default::default());
    let key = TemplateKey::new(
        request.company_id().clone(),
        id,
        folder.version,
        &folder.parts,
    );
    let template = cache
        .get_or_compile(&key, request.channel_settings().channel(), &folder.parts)
        .unwrap();
    PreparedRequest::new(Arc::new(request), template, Some(example_tracking())).unwrap()
}

pub fn render_all(
    prepared: &PreparedRequest,
    profiles: &HashMap<ProfileId, Arc<serde_json::Value>>,
) -> Vec<Artifact> {
    prepared
        .request()
        .render_recipients()
        .iter()
        .map(|r| prepared.render(r, profiles.get(&r.profile_id)))
        .collect()
}

/// A one-recipient request with an inline template, for focused cases.
pub fn inline_request(
    channel_settings: serde_json::Value,
    context: serde_json::Value,
) -> RenderRequest {
    let json = serde_json::json!({
        "request_id": "req-1", "company_id": "acme", "client_id": "tests", "message_id": "msg-1",
        "send_time": "2026-11-26T15:00:00Z",
        "channel_settings": channel_settings,
        "render_recipients": [{"recipient_id": "r1", "profile_id": "p1", "context": context}],
    });
    RenderRequest::from_json(json.to_string().as_bytes(), &Default::default()).unwrap()
}

/// Renders `parts` (an inline email or SMS bundle) for one profile.
pub fn render_inline(
    parts: serde_json::Value,
    profile: serde_json::Value,
    context: serde_json::Value,
) -> Artifact {
    let settings = if parts.get("sms").is_some() {
        serde_json::json!({"channel": "sms", "from_number": "+15550100", "template": {"inline": parts}})
    } else {
        serde_json::json!({"channel": "email", "from_email": "news@shop.example", "from_label": "Shop",
            "template": {"inline": parts}})
    };
    let prepared = prepare(inline_request(settings, context));
    let recipient = &prepared.request().render_recipients()[0];
    prepared.render(recipient, Some(&Arc::new(profile)))
}
