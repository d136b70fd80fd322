//! Profiles: one at a time, and the all-or-nothing NDJSON import.

use artifact_server::ApiLimits;
use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{Options, TestApp};

fn app() -> TestApp {
    TestApp::with(Options {
        no_workers: true,
        ..Options::default()
    })
}

const NDJSON: &str = "application/x-ndjson";
const IMPORT: &str = "/v1/companies/acme/profiles:import";

#[tokio::test]
async fn a_profile_is_put_and_read_back() {
    let app = app();
    app.put_profile("acme", "p1", json!({"first_name": "Ada", "vip": true}))
        .await;
    let reply = app.get("/v1/companies/acme/profiles/p1").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({"first_name": "Ada", "vip": true}));
    app.get("/v1/companies/acme/profiles/p2")
        .await
        .problem(StatusCode::NOT_FOUND);
    let problem = app
        .json(
            Method::PUT,
            "/v1/companies/acme/profiles/p1",
            &json!([1, 2]),
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(problem["detail"].as_str().unwrap().contains("JSON object"));
}

#[tokio::test]
async fn an_import_with_a_bad_line_stores_nothing_and_names_the_line() {
    let app = app();
    let body = concat!(
        "{\"profile_id\": \"p1\", \"properties\": {\"first_name\": \"Ada\"}}\n",
        "{\"profile_id\": \"p2\", \"properties\": {\"first_name\": \"Grace\"}}\n",
        "{\"profile_id\": \"p3\", \"properties\": \"not an object\"}\n",
        "{\"profile_id\": \"p4\", \"properties\": {}}\n",
    );
    let problem = app
        .raw(Method::POST, IMPORT, NDJSON, body)
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["line"], 3, "{problem}");
    assert_eq!(problem["field"], "properties");
    assert!(problem["detail"].as_str().unwrap().starts_with("line 3: "));
    for id in ["p1", "p2"] {
        app.get(&format!("/v1/companies/acme/profiles/{id}"))
            .await
            .problem(StatusCode::NOT_FOUND);
    }

    // Malformed JSON on a line is a 400 with that line and the column.
    let problem = app
        .raw(
            Method::POST,
            IMPORT,
            NDJSON,
            "{\"profile_id\": \"p1\", \"properties\": {}}\n{\"profile_id\": p2}\n",
        )
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert_eq!(
        (problem["line"].clone(), problem["column"].clone()),
        (json!(2), json!(16))
    );
}

#[tokio::test]
async fn a_good_import_stores_every_profile() {
    let app = app();
    let mut body = String::new();
    // More than one chunk, and blank and CRLF lines in between.
    let count = artifact_server::IMPORT_CHUNK + 3;
    for i in 0..count {
        body.push_str(&format!(
            "{{\"profile_id\": \"p{i}\", \"properties\": {{\"n\": {i}}}}}\r\n"
        ));
        if i == 1 {
            body.push('\n');
        }
    }
    let reply = app.raw(Method::POST, IMPORT, NDJSON, body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json(), json!({"imported": count}));
    let last = app
        .get(&format!("/v1/companies/acme/profiles/p{}", count - 1))
        .await;
    assert_eq!(last.json(), json!({"n": count - 1}));
}

#[tokio::test]
async fn import_limits_are_enforced() {
    let app = TestApp::with(Options {
        no_workers: true,
        limits: Some(ApiLimits {
            max_import_lines: 2,
            max_import_bytes: 300,
            ..ApiLimits::default()
        }),
        ..Options::default()
    });
    let line = "{\"profile_id\": \"p\", \"properties\": {}}\n";
    let problem = app
        .raw(Method::POST, IMPORT, NDJSON, line.repeat(3))
        .await
        .problem(StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(problem["line"], 3);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("more than 2 profiles")
    );
    let problem = app
        .raw(Method::POST, IMPORT, NDJSON, "x".repeat(400))
        .await
        .problem(StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        problem["detail"].as_str().unwrap().contains("300 bytes"),
        "{problem}"
    );
    app.raw(Method::POST, IMPORT, "text/csv", line)
        .await
        .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
}
