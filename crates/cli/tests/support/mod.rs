//! What the end-to-end tests of the embedded and the scaled-out mode share.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};

pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// An SMS request for the demo company's seeded `sms` template, with the
/// request id as its response metadata.
pub fn sms_request(id: &str, priority: &str, recipients: usize) -> Vec<u8> {
    let recipients: Vec<Value> = (0..recipients)
        .map(|n| {
            json!({
                "recipient_id": format!("r-{n:06}"),
                "profile_id": format!("p-{:05}", n % 10_000),
                "context": {"cart": [{"name": "Tote", "price": 24}], "subtotal": "24.00",
                    "discount_code": "spring15", "expires_at": "2026-12-01T04:59:00Z"}
            })
        })
        .collect();
    serde_json::to_vec(&json!({
        "request_id": id, "company_id": "demo", "client_id": "flows", "message_id": id,
        "priority": priority, "send_time": "2026-11-26T09:00:00Z",
        "response_metadata": {"batch": id},
        "channel_settings": {"channel": "sms", "from_number": "+15550100",
            "template": {"id": "sms"}},
        "render_recipients": recipients,
    }))
    .unwrap()
}

/// The JSON report of `artifact canary verify --format json`, and whether
/// it passed.
pub fn verify_report(output: &Output) -> (Value, bool) {
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    (report, output.status.success())
}
