//! `artifact audit` end to end on the shipped examples.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn audit(extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_artifact"))
        .arg("audit")
        .arg("--request")
        .arg(examples().join("request.json"))
        .arg("--request")
        .arg(examples().join("sms-request.json"))
        .arg("--profiles")
        .arg(examples().join("profiles.ndjson"))
        .arg("--templates")
        .arg(examples().join("templates"))
        .arg("--config")
        .arg(examples().join("artifact.toml"))
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn the_audit_reports_reads_schemas_and_unread_fields() {
    let output = audit(&[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("template spring_sale version 3: 3 renders"),
        "{stdout}"
    );
    assert!(
        stdout.contains("template spring_sale_sms: 3 renders"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\"title\": \"what template spring_sale (version 3) reads\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("  profile.last_name  (in 1 profile)"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("left out: their profiles are not in the profiles file"),
        "{stderr}"
    );

    let output = audit(&["--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["profiles"], 3);
    let price = report["templates"][0]["reads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["path"] == "event.cart[].price" && row["part"] == "html")
        .unwrap();
    assert_eq!(price["lines"], serde_json::json!([88]));
}

#[test]
fn a_missing_template_is_an_error_naming_it() {
    let output = Command::new(env!("CARGO_BIN_EXE_artifact"))
        .arg("audit")
        .arg("--request")
        .arg(examples().join("request.json"))
        .arg("--profiles")
        .arg(examples().join("profiles.ndjson"))
        .arg("--templates")
        .arg(examples())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("template \"spring_sale\" not found"),
        "{stderr}"
    );
}
