use std::sync::Arc;

use artifact_render::request::TemplateRef;
use artifact_render::{
    Artifact, PreparedRequest, RenderRequest, RequestLimits, TemplateCache, TemplateKey,
};
use serde_json::json;

use super::*;
use crate::ports::{ArtifactSink, Lane};

fn prepared() -> Arc<PreparedRequest> {
    let request = json!({
        "request_id": "req/1", "company_id": "acme", "client_id": "flows", "message_id": "m1",
        "send_time": "2026-11-26T09:00:00Z",
        "channel_settings": {"channel": "email", "from_email": "news@shop.example",
            "template": {"inline": {"subject": "Hi {{ profile.name }}", "html": "<p>Hello</p>"}}},
        "render_recipients": [
            {"recipient_id": "a", "profile_id": "p1"},
            {"recipient_id": "../b", "profile_id": "missing"}
        ]
    });
    let request =
        RenderRequest::from_json(request.to_string().as_bytes(), &RequestLimits::default())
            .unwrap();
    let TemplateRef::Inline(parts) = request.channel_settings().template() else {
        unreachable!()
    };
    let key = TemplateKey::new(request.company_id().clone(), None, None, parts);
    let template = TemplateCache::new(1, Default::default())
        .get_or_compile(&key, request.channel_settings().channel(), parts)
        .unwrap();
    Arc::new(PreparedRequest::new(Arc::new(request), template, None).unwrap())
}

fn artifacts(prepared: &PreparedRequest) -> Arc<[Artifact]> {
    let profile = Arc::new(json!({"name": "Ada"}));
    let recipients = prepared.request().render_recipients();
    Arc::new([
        prepared.render(&recipients[0], Some(&profile)),
        prepared.render(&recipients[1], None),
    ])
}

#[tokio::test]
async fn outbox_writes_json_and_eml_and_a_redelivery_replaces_them() {
    let dir = tempfile::tempdir().unwrap();
    let sink = OutboxSink::open(dir.path()).unwrap();
    let prepared = prepared();
    let artifacts = artifacts(&prepared);
    sink.write(Lane::Production, prepared.clone(), artifacts.clone())
        .await
        .unwrap();
    sink.write(Lane::Production, prepared.clone(), artifacts.clone())
        .await
        .unwrap();

    let request_dir = sink.request_dir(Lane::Production, "acme", "req/1");
    assert!(request_dir.ends_with("production/acme/req%2F1"));
    let mut names: Vec<String> = std::fs::read_dir(&request_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    // The error artifact has no .eml; no temporary files are left behind.
    assert_eq!(
        names,
        ["%2E.%2Fb.email.json", "a.email.eml", "a.email.json"]
    );
    let eml = std::fs::read_to_string(request_dir.join("a.email.eml")).unwrap();
    assert!(eml.contains("Subject: Hi Ada"), "{eml}");
    let error: serde_json::Value =
        serde_json::from_slice(&std::fs::read(request_dir.join("%2E.%2Fb.email.json")).unwrap())
            .unwrap();
    assert_eq!(error["error"]["kind"], "profile_not_found");
}

#[tokio::test]
async fn ndjson_appends_one_keyed_line_per_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out/artifacts.ndjson");
    let sink = NdjsonSink::open(&path).unwrap();
    let prepared = prepared();
    sink.write(Lane::Canary, prepared.clone(), artifacts(&prepared))
        .await
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["lane"], "canary");
    assert_eq!(lines[0]["company_id"], "acme");
    assert_eq!(lines[0]["request_id"], "req/1");
    assert_eq!(lines[0]["recipient_id"], "a");
    assert_eq!(lines[0]["email"]["subject"], "Hi Ada");
    assert_eq!(lines[1]["recipient_id"], "../b");
}

#[tokio::test]
async fn discard_counts_what_it_drops() {
    let sink = DiscardSink::default();
    let prepared = prepared();
    sink.write(Lane::Production, prepared.clone(), artifacts(&prepared))
        .await
        .unwrap();
    assert_eq!(sink.written(), 2);
}

#[test]
fn an_unwritable_outbox_names_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    let error = OutboxSink::open(&file.join("sub")).unwrap_err().to_string();
    assert!(error.contains("cannot create outbox"), "{error}");
    assert!(error.contains("file/sub"), "{error}");
}
