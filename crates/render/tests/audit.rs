//! The access audit on the shipped examples: an audited render is the plain
//! render, byte for byte, and the report says what each template read.

mod common;

use std::sync::Arc;

use artifact_render::audit::Audit;
use artifact_render::context::audit::AccessRecorder;
use common::{example_profiles, example_request, prepare};

/// Renders every recipient of `file` both ways, checks the artifacts match,
/// and returns the audit of the audited renders.
fn audit(files: &[&str]) -> Audit {
    let profiles = example_profiles();
    let mut audit = Audit::default();
    for file in files {
        let prepared = prepare(example_request(file));
        for recipient in prepared.request().render_recipients() {
            let Some(profile) = profiles.get(&recipient.profile_id) else {
                continue;
            };
            let recorder = Arc::new(AccessRecorder::default());
            let audited = prepared.render_audited(recipient, Some(profile), &recorder);
            let plain = prepared.render(recipient, Some(profile));
            assert_eq!(
                serde_json::to_string(&audited).unwrap(),
                serde_json::to_string(&plain).unwrap(),
                "the audit changed {}'s artifact",
                recipient.recipient_id
            );
            audit.add_render(prepared.template(), &recorder);
            audit.add_profile(recipient.profile_id.as_str(), profile);
        }
    }
    audit
}

#[test]
fn the_newsletter_audit_counts_branches_and_loops() {
    let report = audit(&["request.json"]).report();
    let newsletter = &report.templates[0];
    assert_eq!(newsletter.renders, 3);
    let row = |path: &str, part: &str| {
        newsletter
            .reads
            .iter()
            .find(|row| row.path == path && row.part.as_str() == part)
            .unwrap_or_else(|| panic!("no row for {path} in {part}"))
    };
    // Every recipient gets a greeting; only some have a loyalty tier and a
    // cart, so the rows inside those branches count fewer renders.
    assert_eq!(row("profile.first_name", "html").renders, 3);
    let tier = row("profile.loyalty", "html");
    assert!(tier.missing > 0 && tier.present > 0, "{tier:?}");
    let price = row("event.cart[].price", "html");
    assert!(price.renders < 3 && price.renders > 0, "{price:?}");
    assert_eq!(price.lines, [88]);
    insta::assert_snapshot!("newsletter_audit", report.to_text());
    insta::assert_json_snapshot!("newsletter_payload_schema", newsletter.schema);
}

#[test]
fn an_audit_over_two_templates_reports_each_and_the_fields_neither_reads() {
    let report = audit(&["request.json", "sms-request.json"]).report();
    let names: Vec<&str> = report.templates.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["spring_sale", "spring_sale_sms"]);
    let unread: Vec<&str> = report
        .unread_profile_fields
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert!(unread.contains(&"profile.last_name"), "{unread:?}");
    assert!(!unread.contains(&"profile.first_name"), "{unread:?}");
    assert!(!unread.contains(&"profile.location.city"), "{unread:?}");
}
