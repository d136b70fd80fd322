//! The demo company `artifact serve --demo` seeds: the example newsletter and
//! SMS templates, 10,000 synthetic profiles, and two requests to paste.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use artifact_loadgen::data::{self, CITIES, FIRST_NAMES, TIERS};
use artifact_pipeline::{ProfileStore, TemplateStore};
use artifact_render::request::{CompanyId, ProfileId, TemplateId};
use artifact_render::template::Channel;
use serde_json::{Value, json};

pub const COMPANY: &str = "demo";
pub const PROFILES: usize = 10_000;
pub const NEWSLETTER_RECIPIENTS: usize = 1_000;
pub const NEWSLETTER_REQUEST_ID: &str = "demo-newsletter-1";
pub const SMS_REQUEST_ID: &str = "demo-sms-1";

/// The example request: its settings, tracking and first recipient's event
/// data are reused for every demo recipient.
const EXAMPLE_REQUEST: &str = include_str!("../../../examples/request.json");

/// What [`seed`] wrote.
#[derive(Debug)]
pub struct Seeded {
    pub templates: Vec<String>,
    pub profiles: usize,
    pub newsletter_request: PathBuf,
    pub sms_request: PathBuf,
}

/// Stores the demo templates (a new version each time) and profiles (the
/// same ones each time), and writes the requests into `data_dir/demo/`.
pub async fn seed(
    template_store: &dyn TemplateStore,
    profile_store: &dyn ProfileStore,
    data_dir: &Path,
) -> Result<Seeded> {
    let company = CompanyId::parse(COMPANY).map_err(anyhow::Error::msg)?;
    let mut templates = Vec::new();
    for (id, channel, parts) in [
        ("newsletter", Channel::Email, data::newsletter_parts()),
        ("sms", Channel::Sms, data::sms_parts()),
    ] {
        let id = TemplateId::parse(id).map_err(anyhow::Error::msg)?;
        let stored = template_store.put(&company, &id, channel, parts).await?;
        templates.push(format!("{}@{}", id.as_str(), stored.version));
    }

    let profiles: Vec<(ProfileId, Value)> = (0..PROFILES)
        .map(|n| {
            let id = ProfileId::parse(&profile_id(n)).map_err(anyhow::Error::msg)?;
            Ok((id, profile(n)))
        })
        .collect::<Result<_>>()?;
    for chunk in profiles.chunks(2_000) {
        profile_store.put(&company, chunk.to_vec()).await?;
    }

    let dir = data_dir.join("demo");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let newsletter_request = dir.join("newsletter-request.json");
    let sms_request = dir.join("sms-request.json");
    for (path, request) in [
        (&newsletter_request, newsletter(NEWSLETTER_RECIPIENTS)?),
        (&sms_request, sms(100)?),
    ] {
        std::fs::write(path, serde_json::to_vec_pretty(&request)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(Seeded {
        templates,
        profiles: PROFILES,
        newsletter_request,
        sms_request,
    })
}

fn profile_id(n: usize) -> String {
    format!("p-{n:05}")
}

/// A varied but deterministic profile: profile `n` is the same on every run.
fn profile(n: usize) -> Value {
    let first_name = FIRST_NAMES[n % FIRST_NAMES.len()];
    let (city, country, timezone) = CITIES[(n / 3) % CITIES.len()];
    json!({
        "first_name": first_name,
        "email": format!("{}.{n}@demo.example", first_name.to_lowercase()),
        "timezone": timezone,
        "location": {"city": city, "country": country},
        "loyalty": {"tier": TIERS[(n / 7) % TIERS.len()], "points": (n * 137) % 20_000},
        "signup_date": format!("20{:02}-{:02}-14T10:00:00Z", 15 + n % 10, 1 + n % 12),
    })
}

fn example() -> Result<Value> {
    serde_json::from_str(EXAMPLE_REQUEST).context("examples/request.json is not JSON")
}

fn recipients(count: usize, event: &Value) -> Vec<Value> {
    (0..count)
        .map(|n| {
            json!({
                "recipient_id": format!("r-{n:05}"),
                "profile_id": profile_id(n % PROFILES),
                "context": event,
            })
        })
        .collect()
}

fn newsletter(count: usize) -> Result<Value> {
    let mut request = example()?;
    let event = request["render_recipients"][0]["context"].clone();
    request["request_id"] = json!(NEWSLETTER_REQUEST_ID);
    request["company_id"] = json!(COMPANY);
    request["channel_settings"]["template"] = json!({"id": "newsletter"});
    request["render_recipients"] = json!(recipients(count, &event));
    Ok(request)
}

fn sms(count: usize) -> Result<Value> {
    let example = example()?;
    let event = &example["render_recipients"][0]["context"];
    Ok(json!({
        "request_id": SMS_REQUEST_ID,
        "company_id": COMPANY,
        "client_id": "flows",
        "message_id": "msg-demo-sms",
        "priority": "high",
        "send_time": example["send_time"],
        "channel_settings": {"channel": "sms", "from_number": "+15550100", "template": {"id": "sms"}},
        "render_recipients": recipients(count, event),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use artifact_render::{RenderRequest, RequestLimits};

    #[test]
    fn demo_requests_are_valid_and_name_seeded_profiles() {
        for (request, count) in [
            (
                newsletter(NEWSLETTER_RECIPIENTS).unwrap(),
                NEWSLETTER_RECIPIENTS,
            ),
            (sms(100).unwrap(), 100),
        ] {
            let request =
                RenderRequest::from_json(request.to_string().as_bytes(), &RequestLimits::default())
                    .unwrap();
            assert_eq!(request.company_id().as_str(), COMPANY);
            assert_eq!(request.render_recipients().len(), count);
            let last = request.render_recipients().last().unwrap();
            assert_eq!(last.profile_id.as_str(), profile_id(count - 1));
        }
    }

    #[test]
    fn profiles_are_deterministic_objects() {
        assert_eq!(profile(42), profile(42));
        assert_ne!(profile(1)["first_name"], profile(2)["first_name"]);
        assert!(profile(9_999)["location"]["city"].is_string());
    }
}
