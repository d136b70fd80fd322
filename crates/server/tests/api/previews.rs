//! Previews: rendered synchronously, nothing queued or stored.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Options, TestApp, email_request, seed};

fn app() -> TestApp {
    TestApp::with(Options {
        no_workers: true,
        ..Options::default()
    })
}

fn inline_request() -> Value {
    json!({
        "request_id": "preview-1",
        "company_id": "acme",
        "client_id": "editor",
        "message_id": "m1",
        "send_time": "2026-11-26T09:00:00Z",
        "channel_settings": {
            "channel": "email",
            "from_email": "news@shop.example",
            "from_label": "Shop",
            "template": {"inline": {
                "subject": "Hi {{ profile.first_name }}{{ evnt.note }}",
                "html": "<html><body><p>{{ event.note }}</p><a href=\"{{ event.url }}\">x</a></body></html>"
            }}
        },
        "render_recipients": [{"recipient_id": "r1", "profile_id": "p1",
            "context": {"note": "See you", "url": "https://shop.example/p/1"}}]
    })
}

#[tokio::test]
async fn a_preview_renders_an_inline_template_with_an_inline_profile() {
    let app = app();
    let reply = app
        .json(
            Method::POST,
            "/v1/previews",
            &json!({"request": inline_request(), "profile": {"first_name": "Ada"}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let preview = reply.json();
    assert_eq!(preview["artifact"]["email"]["subject"], "Hi Ada");
    assert!(
        preview["artifact"]["email"]["html"]
            .as_str()
            .unwrap()
            .contains("See you")
    );
    let eml = preview["eml"].as_str().unwrap();
    assert!(eml.contains("Subject: Hi Ada"), "{eml}");
    assert!(eml.contains("From: Shop <news@shop.example>"), "{eml}");
    let warnings = preview["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .unwrap()
            .starts_with("part subject line 1 column 31: `evnt` is not in the context")),
        "{warnings:?}"
    );

    // Nothing was queued.
    app.get("/v1/render-requests/preview-1?company_id=acme")
        .await
        .problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_preview_reads_the_stored_profile_and_template() {
    let app = app();
    seed(&app, "acme").await;
    let reply = app
        .json(
            Method::POST,
            "/v1/previews",
            &json!({"request": email_request("x", "acme", "welcome"), "recipient_id": "r2"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let preview = reply.json();
    assert_eq!(preview["artifact"]["recipient_id"], "r2");
    assert_eq!(preview["artifact"]["email"]["subject"], "Welcome, Grace!");

    // A profile the store lacks renders as an error artifact, as in a send.
    let mut request = email_request("x", "acme", "welcome");
    request["render_recipients"][0]["profile_id"] = json!("ghost");
    let preview = app
        .json(Method::POST, "/v1/previews", &json!({"request": request}))
        .await
        .json();
    assert_eq!(preview["artifact"]["error"]["kind"], "profile_not_found");
    assert_eq!(preview["eml"], json!(null));
}

#[tokio::test]
async fn preview_errors_name_the_field_within_the_body() {
    let app = app();
    let mut request = inline_request();
    request["render_recipients"][0]["profile_id"] = json!("");
    let problem = app
        .json(Method::POST, "/v1/previews", &json!({"request": request}))
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "request.render_recipients[0].profile_id");

    let problem = app
        .json(
            Method::POST,
            "/v1/previews",
            &json!({"request": inline_request(), "recipient_id": "r9"}),
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "recipient_id");

    let problem = app
        .json(
            Method::POST,
            "/v1/previews",
            &json!({"request": email_request("x", "acme", "nope")}),
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "request.channel_settings.template.id");

    // Malformed JSON inside the embedded request is placed in the body.
    let body = "{\"request\": {\n  \"request_id\": \"x\",\n  \"company_id\": 5\n}}";
    let problem = app
        .raw(Method::POST, "/v1/previews", "application/json", body)
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "request.company_id");
    assert_eq!(problem["line"], 3, "{problem}");

    let body = "{\"request\": {\"request_id\": \"x\", \"company_id\": acme}}";
    let problem = app
        .raw(Method::POST, "/v1/previews", "application/json", body)
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert_eq!(
        (problem["line"].clone(), problem["column"].clone()),
        (json!(1), json!(47))
    );
}
