//! `artifact templates check` end to end: the real binary on the shipped
//! examples and on a folder of broken templates.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

fn check(dir: &Path, json: bool) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_artifact"));
    command.args(["templates", "check"]).arg(dir);
    if json {
        command.args(["--format", "json"]);
    }
    command.output().unwrap()
}

fn scratch(name: &str, templates: &[(&str, &str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("artifact-check-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    for (template, file, contents) in templates {
        fs::create_dir_all(dir.join(template)).unwrap();
        fs::write(dir.join(template).join(file), contents).unwrap();
    }
    dir
}

#[test]
fn the_shipped_templates_are_clean_and_say_what_they_read() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/templates");
    let output = check(&examples, false);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("spring_sale  email  ok"), "{stdout}");
    assert!(
        stdout.contains("profile.first_name                  subject:1  html:53  text:1"),
        "{stdout}"
    );
    assert!(stdout.contains("event.cart[].price"), "{stdout}");
    assert!(
        stdout.ends_with("2 templates: 0 errors, 0 warnings\n"),
        "{stdout}"
    );
}

#[test]
fn errors_fail_the_check_with_their_place_and_warnings_do_not() {
    let dir = scratch(
        "broken",
        &[
            ("syntax", "subject.jinja", "Hi"),
            ("syntax", "html.jinja", "<p>\n{{ profile.first_name }\n</p>"),
            ("filter", "subject.jinja", "Hi"),
            (
                "filter",
                "html.jinja",
                "<p>\n\n{{ event.total | currancy }}</p>",
            ),
            ("typo", "sms.jinja", "Hi {{ profil.first_name }}"),
        ],
    );
    let output = check(&dir, true);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let by_name = |name: &str| {
        report["templates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        by_name("syntax")["errors"],
        serde_json::json!([{"part": "html", "line": 2, "column": 23,
            "message": "unexpected `}`, expected end of variable block"}])
    );
    assert_eq!(
        by_name("filter")["errors"],
        serde_json::json!([{"part": "html", "line": 3, "column": 18,
            "message": "unknown filter `currancy`; did you mean `currency`?"}])
    );
    let typo = by_name("typo");
    assert_eq!(typo["errors"], serde_json::json!([]));
    assert_eq!(typo["warnings"][0]["line"], 1);
    assert_eq!(typo["warnings"][0]["column"], 7);
    assert!(
        typo["warnings"][0]["message"]
            .as_str()
            .unwrap()
            .ends_with("did you mean `profile`?"),
        "{typo}"
    );
    assert_eq!(
        (&report["errors"], &report["warnings"]),
        (&serde_json::json!(2), &serde_json::json!(1))
    );

    // A warning alone passes.
    let output = check(&dir.join("typo"), false);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("typo  sms  1 warning"), "{stdout}");
    assert!(
        stdout.contains("  warning  sms line 1 column 7: `profil` is not in the context"),
        "{stdout}"
    );

    // A folder that does not read as a template is an error of its own.
    fs::write(dir.join("typo").join("body.jinja"), "x").unwrap();
    let output = check(&dir.join("typo"), false);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("unexpected file body.jinja"), "{stdout}");
    fs::remove_dir_all(&dir).unwrap();
}
