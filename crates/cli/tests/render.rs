//! `artifact render` end to end: the real binary on the shipped examples and
//! on broken inputs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn render(request: &Path, templates: &Path, out: &str) -> Output {
    render_with(request, &examples().join("profiles.ndjson"), templates, out)
}

fn render_with(request: &Path, profiles: &Path, templates: &Path, out: &str) -> Output {
    artifact(&[("--config", &examples().join("artifact.toml"))], &[])
        .arg("--request")
        .arg(request)
        .arg("--profiles")
        .arg(profiles)
        .arg("--templates")
        .arg(templates)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

/// `artifact render` with `args`, and only the `ARTIFACT_*` variables in
/// `env`, whatever the test's own environment holds.
fn artifact(args: &[(&str, &Path)], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_artifact"));
    command.arg("render");
    for (name, _) in std::env::vars() {
        if name.starts_with("ARTIFACT_") {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied());
    for (flag, value) in args {
        command.arg(flag).arg(value);
    }
    command
}

fn example_args(out: &Path) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("--request", examples().join("request.json")),
        ("--profiles", examples().join("profiles.ndjson")),
        ("--templates", examples().join("templates")),
        ("--out", out.to_owned()),
    ]
}

/// A temporary folder, removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("artifact-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn renders_the_example_into_files() {
    let out = Scratch::new("files");
    let output = render(
        &examples().join("request.json"),
        &examples().join("templates"),
        out.to_str().unwrap(),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.starts_with("rendered 3, skipped 0, failed 1 in "),
        "{stderr}"
    );
    let ada: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("rcpt-ada.json")).unwrap()).unwrap();
    assert_eq!(
        ada["email"]["subject"],
        "Ada, your cart is waiting (Gold perks inside)"
    );
    let eml = std::fs::read_to_string(out.join("rcpt-ada.eml")).unwrap();
    assert!(eml.contains("Content-Type: multipart/alternative"), "{eml}");
    let ghost: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("rcpt-ghost.json")).unwrap()).unwrap();
    assert_eq!(ghost["error"]["kind"], "profile_not_found");
    assert!(!out.join("rcpt-ghost.eml").exists());
}

#[test]
fn tracks_links_with_the_configured_domain_and_environment_overrides() {
    let out = Scratch::new("tracked");
    let mut args = example_args(&out);
    args.push(("--config", examples().join("artifact.toml")));
    let args: Vec<(&str, &Path)> = args.iter().map(|(f, p)| (*f, p.as_path())).collect();
    let output = artifact(&args, &[("ARTIFACT_TRACKING_DOMAIN", "click.shop.example")])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let ada: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("rcpt-ada.json")).unwrap()).unwrap();
    let email = &ada["email"];
    let html = email["html"].as_str().unwrap();
    assert!(
        html.contains("href=\"https://click.shop.example/c/"),
        "{html}"
    );
    assert!(
        html.contains("<img src=\"https://click.shop.example/o/"),
        "{html}"
    );
    assert!(
        !html.contains("t.shop.example"),
        "the environment wins over the file"
    );
    assert!(
        email["headers"]["List-Unsubscribe"]
            .as_str()
            .unwrap()
            .starts_with("<https://click.shop.example/u/")
    );
    assert!(email["links"].as_array().unwrap().len() > 20);
    let eml = std::fs::read_to_string(out.join("rcpt-ada.eml")).unwrap();
    assert!(eml.contains("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
}

#[test]
fn tracking_without_configuration_is_an_error_that_names_the_option() {
    let out = Scratch::new("unconfigured");
    let args = example_args(&out);
    let args: Vec<(&str, &Path)> = args.iter().map(|(f, p)| (*f, p.as_path())).collect();
    let output = artifact(&args, &[]).output().unwrap();
    assert!(!output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: tracking_options.click_tracking: needs a tracking domain and signing keys \
         in the renderer's configuration\n"
    );
    let bad = Scratch::new("bad-config");
    let config = bad.join("artifact.toml");
    std::fs::write(&config, "[tracking]\ndomain = \"t.example\"\nsecret = 1\n").unwrap();
    let mut with_config = args.clone();
    with_config.push(("--config", &config));
    let output = artifact(&with_config, &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("artifact.toml") && stderr.contains("unknown field `secret`"),
        "{stderr}"
    );
}

#[test]
fn writes_ndjson_to_stdout() {
    let output = render(
        &examples().join("sms-request.json"),
        &examples().join("templates"),
        "-",
    );
    assert!(output.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["sms"]["encoding"], "GSM-7");
    assert_eq!(
        lines[1]["skipped"]["reason"],
        "missing data in `{{ event.cart | length }}`"
    );
}

#[test]
fn an_invalid_request_names_the_field_and_exits_non_zero() {
    let dir = Scratch::new("invalid");
    let mut request: serde_json::Value =
        serde_json::from_slice(&std::fs::read(examples().join("request.json")).unwrap()).unwrap();
    request["render_recipients"][2]["profile_id"] = "".into();
    let path = dir.join("request.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&request).unwrap()).unwrap();
    let output = render(
        &path,
        &examples().join("templates"),
        dir.join("out").to_str().unwrap(),
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("render_recipients[2].profile_id: must not be empty"),
        "{stderr}"
    );
    assert!(
        !dir.join("out").exists(),
        "nothing is written for an invalid request"
    );
}

/// Renders the example request against a `spring_sale` folder holding
/// `files`, expecting a failure; returns what it printed.
fn fail_with_template(files: &[(&str, &str)]) -> String {
    let dir = Scratch::new(&format!("template-{}", files.len()));
    let templates = dir.join("templates/spring_sale");
    std::fs::create_dir_all(&templates).unwrap();
    for (name, source) in files {
        std::fs::write(templates.join(name), source).unwrap();
    }
    let output = render(
        &examples().join("request.json"),
        &dir.join("templates"),
        dir.join("out").to_str().unwrap(),
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(!dir.join("out").exists(), "nothing is written");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_broken_template_names_part_and_line() {
    let stderr = fail_with_template(&[
        ("subject.jinja", "Hi"),
        ("html.jinja", "<p>\n{{ profile.name }\n<p>"),
    ]);
    assert!(
        stderr.contains("template \"spring_sale\" part html line 2 column 17: "),
        "{stderr}"
    );
}

#[test]
fn an_unexpected_template_file_is_reported() {
    let stderr = fail_with_template(&[
        ("subject.jinja", "Hi"),
        ("html.jinja", "<p>x</p>"),
        ("body.jinja", "<p>x</p>"),
    ]);
    assert!(
        stderr.contains("unexpected file") && stderr.contains("body.jinja"),
        "{stderr}"
    );
}

#[test]
fn bad_profile_lines_name_file_and_line() {
    let dir = Scratch::new("profiles");
    for (contents, expected) in [
        (
            "{\"profile_id\": \"p1\", \"properties\": {}}\n{\"profile_id\": \"p2\", \"properties\": []}\n",
            "profiles.ndjson line 2: not a profile: invalid type: sequence, expected a map",
        ),
        (
            "{\"profile_id\": \"p1\", \"properties\": {}}\n\n{\"profile_id\": \"p1\", \"properties\": {}}\n",
            "profiles.ndjson line 3: profile p1 appears twice",
        ),
    ] {
        let profiles = dir.join("profiles.ndjson");
        std::fs::write(&profiles, contents).unwrap();
        let output = render_with(
            &examples().join("request.json"),
            &profiles,
            &examples().join("templates"),
            dir.join("out").to_str().unwrap(),
        );
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!dir.join("out").exists(), "nothing is written");
    }
}
