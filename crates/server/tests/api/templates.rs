//! Templates: compiled before they are stored, versioned, size-limited.

use artifact_server::ApiLimits;
use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{Options, TestApp, welcome_template};

fn app() -> TestApp {
    TestApp::with(Options {
        no_workers: true,
        ..Options::default()
    })
}

#[tokio::test]
async fn each_put_adds_a_version_and_every_version_stays_readable() {
    let app = app();
    let first = app
        .json(
            Method::PUT,
            "/v1/companies/acme/templates/welcome",
            &welcome_template(),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    assert_eq!(first.json(), json!({"version": 1, "warnings": []}));
    assert_eq!(
        first.header("location"),
        "/v1/companies/acme/templates/welcome?version=1"
    );

    let mut second = welcome_template();
    second["parts"]["subject"] = json!("Hello again, {{ profile.first_name }}");
    let reply = app
        .json(Method::PUT, "/v1/companies/acme/templates/welcome", &second)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.json()["version"], 2);

    let latest = app.get("/v1/companies/acme/templates/welcome").await;
    assert_eq!(latest.status, StatusCode::OK);
    let latest = latest.json();
    assert_eq!(latest["version"], 2);
    assert_eq!(latest["versions"], json!([1, 2]));
    assert_eq!(latest["channel"], "email");
    assert_eq!(latest["company_id"], "acme");
    assert_eq!(latest["template_id"], "welcome");
    assert_eq!(
        latest["parts"]["subject"],
        "Hello again, {{ profile.first_name }}"
    );

    let v1 = app
        .get("/v1/companies/acme/templates/welcome?version=1")
        .await
        .json();
    assert_eq!(v1["version"], 1);
    assert_eq!(
        v1["parts"]["subject"],
        welcome_template()["parts"]["subject"]
    );
    assert_eq!(v1["parts"]["html"], welcome_template()["parts"]["html"]);

    let problem = app
        .get("/v1/companies/acme/templates/welcome?version=3")
        .await
        .problem(StatusCode::NOT_FOUND);
    assert!(problem["detail"].as_str().unwrap().contains("version 3"));
    let problem = app
        .get("/v1/companies/acme/templates/welcome?version=x")
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert_eq!(problem["field"], "version");
    app.get("/v1/companies/acme/templates/other")
        .await
        .problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_template_that_does_not_compile_is_refused_with_its_line() {
    let app = app();
    let template = json!({
        "channel": "email",
        "parts": {
            "subject": "Hi",
            "html": "<p>one</p>\n<p>two</p>\n<p>{{ profile.name </p>"
        }
    });
    let problem = app
        .json(
            Method::PUT,
            "/v1/companies/acme/templates/broken",
            &template,
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        (&problem["line"], &problem["column"]),
        (&json!(3), &json!(21)),
        "{problem}"
    );
    assert_eq!(problem["field"], "parts.html");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("template \"broken\" part html line 3 column 21:"),
        "{detail}"
    );
    // Nothing was stored.
    app.get("/v1/companies/acme/templates/broken")
        .await
        .problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn template_bodies_are_checked_field_by_field() {
    let app = app();
    // An unknown part is named with its path.
    let problem = app
        .json(
            Method::PUT,
            "/v1/companies/acme/templates/t",
            &json!({"channel": "email", "parts": {"subject": "Hi", "htm": "<p>"}}),
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "parts.htm", "{problem}");
    // A part the channel does not have.
    let problem = app
        .json(
            Method::PUT,
            "/v1/companies/acme/templates/t",
            &json!({"channel": "sms", "parts": {"subject": "Hi", "sms": "Hi"}}),
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        problem["detail"].as_str().unwrap().contains("subject"),
        "{problem}"
    );
    // A template id that could climb out of a folder.
    let problem = app
        .json(
            Method::PUT,
            "/v1/companies/acme/templates/..secret",
            &welcome_template(),
        )
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert_eq!(problem["field"], "id");
}

#[tokio::test]
async fn a_template_over_the_size_limit_is_413_naming_the_limit() {
    let app = TestApp::with(Options {
        no_workers: true,
        limits: Some(ApiLimits {
            max_template_bytes: 100,
            ..ApiLimits::default()
        }),
        ..Options::default()
    });
    let template = json!({
        "channel": "email",
        "parts": {"subject": "Hi", "html": "x".repeat(200)}
    });
    let problem = app
        .json(Method::PUT, "/v1/companies/acme/templates/big", &template)
        .await
        .problem(StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(problem["field"], "parts");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("limit of 100 bytes"),
        "{problem}"
    );
}

#[tokio::test]
async fn a_new_version_cannot_change_the_channel() {
    let app = app();
    app.put_template("acme", "welcome", welcome_template())
        .await;
    let problem = app
        .json(
            Method::PUT,
            "/v1/companies/acme/templates/welcome",
            &json!({"channel": "sms", "parts": {"sms": "Hi"}}),
        )
        .await
        .problem(StatusCode::CONFLICT);
    assert_eq!(problem["field"], "channel");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("email") && detail.contains("sms"),
        "{detail}"
    );
    let latest = app.get("/v1/companies/acme/templates/welcome").await.json();
    assert_eq!(latest["versions"], json!([1]));
    // Another id is free to use the other channel.
    app.put_template(
        "acme",
        "welcome-sms",
        json!({"channel": "sms", "parts": {"sms": "Hi"}}),
    )
    .await;
}

#[tokio::test]
async fn a_malformed_path_segment_is_named() {
    let app = app();
    let problem = app
        .get("/v1/companies/%FF/templates/welcome")
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert_eq!(problem["field"], "company", "{problem}");
    let problem = app
        .get("/v1/companies/acme/templates/%C3")
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert_eq!(problem["field"], "id", "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("/v1/companies/acme/templates/%C3"),
        "{problem}"
    );
}

#[tokio::test]
async fn a_put_reports_reads_outside_the_context_and_refuses_unknown_filters() {
    let app = app();
    let mut template = welcome_template();
    template["parts"]["subject"] = json!("Hello {{ profil.first_name }}");
    let reply = app
        .json(
            Method::PUT,
            "/v1/companies/acme/templates/welcome",
            &template,
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let warnings = reply.json()["warnings"].clone();
    assert_eq!(warnings.as_array().map(Vec::len), Some(1), "{warnings}");
    let warning = warnings[0].as_str().unwrap();
    assert!(
        warning.starts_with("part subject line 1 column 10: `profil` is not in the context")
            && warning.ends_with("did you mean `profile`?"),
        "{warning}"
    );

    template["parts"]["subject"] = json!("Hello {{ profile.first_name | shout }}");
    let problem = app
        .json(
            Method::PUT,
            "/v1/companies/acme/templates/welcome",
            &template,
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        (&problem["field"], &problem["line"], &problem["column"]),
        (&json!("parts.subject"), &json!(1), &json!(31)),
        "{problem}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .ends_with("unknown filter `shout`"),
        "{problem}"
    );
}
