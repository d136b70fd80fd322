//! The canary commands refuse bad input with the reason, before doing
//! anything.

use std::process::{Command, Output};

fn artifact(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_artifact"));
    for (name, _) in std::env::vars() {
        if name.starts_with("ARTIFACT_") {
            command.env_remove(name);
        }
    }
    command.args(args).env("RUST_LOG", "warn").output().unwrap()
}

fn refused(args: &[&str]) -> String {
    let output = artifact(args);
    assert_eq!(output.status.code(), Some(1), "{args:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_lane_worker_names_what_is_wrong_with_its_arguments() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &["worker", "--lane", "production", "--data-dir", dir],
            "production workers need the scaled-out mode's --queue and --store",
        ),
        (
            &["worker", "--lane", "blue", "--data-dir", dir],
            "--lane \"blue\": give production, canary or control",
        ),
        (
            &[
                "worker",
                "--lane",
                "canary",
                "--workers",
                "0",
                "--data-dir",
                dir,
            ],
            "--workers: must be at least 1",
        ),
        (
            &[
                "worker",
                "--lane",
                "canary",
                "--template-version",
                "spring_sale",
                "--data-dir",
                dir,
            ],
            "expected TEMPLATE_ID=VERSION",
        ),
        (
            &["worker", "--lane", "canary", "--data-dir", dir],
            "no store at",
        ),
    ];
    for (args, reason) in cases {
        let stderr = refused(args);
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
    }
}

#[test]
fn verify_names_bad_ignore_rules_and_a_missing_store() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let stderr = refused(&["canary", "verify", "--ignore", "body", "--data-dir", dir]);
    assert!(
        stderr.contains("ignore rule \"body\": give a part"),
        "{stderr}"
    );
    let stderr = refused(&["canary", "verify", "--data-dir", dir]);
    assert!(stderr.contains("no store at"), "{stderr}");
}

#[test]
fn serve_refuses_a_canary_lane_it_does_not_know() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("artifact.toml");
    std::fs::write(&config, "[canary]\nfraction = 0.1\nlanes = [\"blue\"]\n").unwrap();
    let stderr = refused(&[
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        data.path().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(
        stderr.contains("[canary] lanes: \"blue\" is not a lane"),
        "{stderr}"
    );
    let stderr = refused(&[
        "serve",
        "--canary-sample",
        "2",
        "--data-dir",
        data.path().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(
        stderr.contains("canary sample fraction = 2: must be between 0 and 1"),
        "{stderr}"
    );
}
