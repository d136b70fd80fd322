//! Render requests: accepted, rendered by the workers, idempotent, and
//! refused with a problem naming the field.

use artifact_pipeline::TemplateStore;
use artifact_render::request::{CompanyId, TemplateId};
use artifact_render::template::{Channel, TemplateParts};
use artifact_server::ApiLimits;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Options, TestApp, email_request, seed, welcome_template};

/// The email subjects of a request's artifacts, by recipient id.
async fn subjects(app: &TestApp, company: &str, request_id: &str) -> Vec<String> {
    let list = app
        .get(&format!("/v1/artifacts/{company}/{request_id}"))
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text());
    list.json()["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|artifact| artifact["email"]["subject"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_request_is_rendered_and_its_artifacts_listed() {
    let app = TestApp::new();
    seed(&app, "acme").await;

    let reply = app.submit(&email_request("req-1", "acme", "welcome")).await;
    let accepted = reply.json();
    let status_url = "/v1/render-requests/req-1?company_id=acme";
    assert_eq!(accepted["status_url"], status_url);
    assert_eq!(reply.header("location"), status_url);
    assert_eq!(accepted["request_id"], "req-1");
    assert_eq!(accepted["company_id"], "acme");
    assert_eq!(accepted["status"]["recipients"], 2);

    let status = app.wait_finished(status_url).await;
    assert_eq!(status["state"], "done", "{status}");
    assert_eq!(
        status["counts"],
        json!({"rendered": 2, "skipped": 0, "failed": 0})
    );
    assert_eq!(status["response_metadata"], json!({"campaign": 7}));
    assert!(status["finished_at"].is_string());

    let list = app.get("/v1/artifacts/acme/req-1").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text());
    let list = list.json();
    let subjects: Vec<&str> = list["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|artifact| artifact["email"]["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["Welcome, Ada!", "Welcome, Grace!"]);
    assert_eq!(list["next_after"], json!(null));

    // Paging: one at a time.
    let first = app.get("/v1/artifacts/acme/req-1?limit=1").await.json();
    assert_eq!(first["next_after"], "r1");
    let second = app
        .get("/v1/artifacts/acme/req-1?limit=1&after=r1")
        .await
        .json();
    assert_eq!(second["artifacts"][0]["recipient_id"], "r2");

    let one = app.get("/v1/artifacts/acme/req-1/r2").await;
    assert_eq!(one.status, StatusCode::OK);
    assert!(
        one.json()["email"]["html"]
            .as_str()
            .unwrap()
            .contains("Hi Grace")
    );
    let sms = app.get("/v1/artifacts/acme/req-1/r2?channel=sms").await;
    sms.problem(StatusCode::NOT_FOUND);

    let events = app.get("/v1/companies/acme/response-events").await.json();
    assert_eq!(events["events"].as_array().unwrap().len(), 1, "{events}");
    assert_eq!(events["events"][0]["seq"], events["next_after"]);
    assert_eq!(events["events"][0]["request_id"], "req-1");
    assert_eq!(events["events"][0]["state"], "done");
    assert_eq!(
        events["events"][0]["response_metadata"],
        json!({"campaign": 7})
    );
    let after = events["next_after"].as_u64().unwrap();
    let none = app
        .get(&format!("/v1/companies/acme/response-events?after={after}"))
        .await
        .json();
    assert_eq!(none, json!({"events": [], "next_after": after}));

    let metrics = app.get("/metrics").await;
    let text = metrics.text();
    assert!(
        text.contains("artifact_recipients_total{outcome=\"rendered\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("artifact_accepted_requests_total 1"),
        "{text}"
    );
    assert!(
        text.contains("artifact_queue_depth{lane=\"normal\"} 0"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubmitting_a_request_id_answers_the_existing_request() {
    let app = TestApp::new();
    seed(&app, "acme").await;
    let request = email_request("req-1", "acme", "welcome");
    app.submit(&request).await;
    app.wait_finished("/v1/render-requests/req-1?company_id=acme")
        .await;

    let again = app
        .json(Method::POST, "/v1/render-requests", &request)
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
    assert_eq!(again.json()["status"]["state"], "done");
    assert_eq!(
        again.header("location"),
        "/v1/render-requests/req-1?company_id=acme"
    );

    // Still one render: one response event, one set of artifacts, one
    // accepted request.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let events = app.get("/v1/companies/acme/response-events").await.json();
    assert_eq!(events["events"].as_array().unwrap().len(), 1, "{events}");
    let list = app.get("/v1/artifacts/acme/req-1").await.json();
    assert_eq!(list["artifacts"].as_array().unwrap().len(), 2);
    let metrics = app.get("/metrics").await.text();
    assert!(
        metrics.contains("artifact_accepted_requests_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("artifact_recipients_total{outcome=\"rendered\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_invalid_field_is_named_by_its_json_path() {
    let app = TestApp::with(Options {
        no_workers: true,
        ..Options::default()
    });
    let mut request = email_request("req-1", "acme", "welcome");
    request["render_recipients"][0]["profile_id"] = json!("");
    let reply = app
        .json(Method::POST, "/v1/render-requests", &request)
        .await;
    let problem = reply.problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "render_recipients[0].profile_id");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("must not be empty"),
        "{problem}"
    );
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("invalid-request")
    );

    // A missing field is named too, not just the object that lacks it.
    let mut request = email_request("req-1", "acme", "welcome");
    request["render_recipients"][1]
        .as_object_mut()
        .unwrap()
        .remove("profile_id");
    let problem = app
        .json(Method::POST, "/v1/render-requests", &request)
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        problem["field"], "render_recipients[1].profile_id",
        "{problem}"
    );

    let mut request = email_request("req-1", "acme", "welcome");
    request.as_object_mut().unwrap().remove("request_id");
    let problem = app
        .json(Method::POST, "/v1/render-requests", &request)
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "request_id", "{problem}");

    // Nothing was queued.
    let depth = app.get("/metrics").await.text();
    assert!(depth.contains("artifact_queue_depth{lane=\"normal\"} 0"));
}

#[tokio::test]
async fn malformed_json_is_reported_with_line_and_column() {
    let app = TestApp::with(Options {
        no_workers: true,
        ..Options::default()
    });
    let body = "{\n  \"request_id\": \"req-1\",\n  \"company_id\": acme\n}";
    let reply = app
        .raw(
            Method::POST,
            "/v1/render-requests",
            "application/json",
            body,
        )
        .await;
    let problem = reply.problem(StatusCode::BAD_REQUEST);
    assert_eq!(problem["line"], 3, "{problem}");
    assert_eq!(problem["column"], 17, "{problem}");
    assert_eq!(problem["field"], "company_id", "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("malformed-json")
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = TestApp::with(Options {
        no_workers: true,
        limits: Some(ApiLimits {
            max_body_bytes: 1024,
            ..ApiLimits::default()
        }),
        ..Options::default()
    });
    let mut request = email_request("req-1", "acme", "welcome");
    request["response_metadata"] = json!("x".repeat(2000));
    let problem = app
        .json(Method::POST, "/v1/render-requests", &request)
        .await
        .problem(StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        problem["detail"].as_str().unwrap().contains("1024 bytes"),
        "{problem}"
    );
}

#[tokio::test]
async fn too_many_recipients_is_refused_naming_the_field() {
    let app = TestApp::with(Options {
        no_workers: true,
        limits: Some(ApiLimits {
            max_recipients: 1,
            ..ApiLimits::default()
        }),
        ..Options::default()
    });
    let problem = app
        .json(
            Method::POST,
            "/v1/render-requests",
            &email_request("req-1", "acme", "welcome"),
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "render_recipients");
    assert!(problem["detail"].as_str().unwrap().contains("maximum of 1"));
}

#[tokio::test]
async fn a_missing_stored_template_names_the_template_id() {
    let app = TestApp::with(Options {
        no_workers: true,
        ..Options::default()
    });
    let problem = app
        .json(
            Method::POST,
            "/v1/render-requests",
            &email_request("req-1", "acme", "nope"),
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "channel_settings.template.id");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("\"nope\" not found")
    );
    let status = app.get("/v1/render-requests/req-1?company_id=acme").await;
    status.problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_request_that_does_not_fit_its_template_is_refused() {
    let app = TestApp::with(Options {
        no_workers: true,
        ..Options::default()
    });
    seed(&app, "acme").await;
    // Click tracking needs a tracking configuration this server lacks.
    let mut request = email_request("req-1", "acme", "welcome");
    request["tracking_options"] = json!({"click_tracking": true});
    let problem = app
        .json(Method::POST, "/v1/render-requests", &request)
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        problem["field"], "tracking_options.click_tracking",
        "{problem}"
    );
}

#[tokio::test]
async fn the_body_must_be_json() {
    let app = TestApp::with(Options {
        no_workers: true,
        ..Options::default()
    });
    let reply = app
        .raw(Method::POST, "/v1/render-requests", "text/plain", "{}")
        .await;
    let problem = reply.problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(problem["field"], "content-type");
}

#[tokio::test]
async fn status_needs_a_company_id() {
    let app = TestApp::with(Options {
        no_workers: true,
        ..Options::default()
    });
    let problem = app
        .get("/v1/render-requests/req-1")
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert_eq!(problem["field"], "company_id");
    let problem = app
        .get("/v1/render-requests/req-1?company=acme")
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert_eq!(problem["field"], "company");
    assert!(problem["detail"].as_str().unwrap().contains("company_id"));
    app.get("/v1/render-requests/req-1?company_id=acme")
        .await
        .problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn ids_with_reserved_characters_round_trip_through_the_status_url() {
    let app = TestApp::with(Options {
        no_workers: true,
        ..Options::default()
    });
    seed(&app, "acme & co").await;
    let reply = app
        .submit(&email_request("batch/7?x", "acme & co", "welcome"))
        .await;
    let url = reply.json()["status_url"].as_str().unwrap().to_owned();
    assert_eq!(
        url,
        "/v1/render-requests/batch%2F7%3Fx?company_id=acme%20%26%20co"
    );
    let status = app.get(&url).await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.text());
    assert_eq!(status.json()["request_id"], "batch/7?x");
    assert_eq!(status.json()["state"], "queued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_naming_no_version_renders_the_version_latest_at_acceptance() {
    let mut app = TestApp::with(Options {
        no_workers: true,
        ..Options::default()
    });
    seed(&app, "acme").await;
    app.submit(&email_request("req-1", "acme", "welcome")).await;
    // A new version lands while req-1 waits in the queue.
    let mut second = welcome_template();
    second["parts"]["subject"] = json!("Version two, {{ profile.first_name }}");
    assert_eq!(app.put_template("acme", "welcome", second).await, 2);
    app.submit(&email_request("req-2", "acme", "welcome")).await;

    app.start_workers();
    for id in ["req-1", "req-2"] {
        let status = app
            .wait_finished(&format!("/v1/render-requests/{id}?company_id=acme"))
            .await;
        assert_eq!(status["state"], "done", "{status}");
    }
    assert_eq!(
        subjects(&app, "acme", "req-1").await,
        ["Welcome, Ada!", "Welcome, Grace!"]
    );
    assert_eq!(
        subjects(&app, "acme", "req-2").await,
        ["Version two, Ada", "Version two, Grace"]
    );
}

#[tokio::test]
async fn a_resubmission_answers_the_existing_request_before_its_template_is_checked() {
    let app = TestApp::with(Options {
        no_workers: true,
        ..Options::default()
    });
    seed(&app, "acme").await;
    let mut request = email_request("req-1", "acme", "welcome");
    request["channel_settings"]["template"]["version"] = json!(1);
    let first = app.submit(&request).await.json();

    // The same request id, now naming a version that does not exist.
    request["channel_settings"]["template"]["version"] = json!(9);
    let again = app
        .json(Method::POST, "/v1/render-requests", &request)
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
    assert_eq!(again.json(), first);
    let metrics = app.get("/metrics").await.text();
    assert!(
        metrics.contains("artifact_accepted_requests_total 1"),
        "{metrics}"
    );
}

/// An email request for `acme` whose template is `template`.
fn request_with_template(template: Value) -> Value {
    let mut request = email_request("req-1", "acme", "unused");
    request["channel_settings"]["template"] = template;
    request
}

#[tokio::test]
async fn a_template_error_names_the_part_and_line() {
    let app = TestApp::with(Options {
        no_workers: true,
        ..Options::default()
    });
    let html = "<p>one</p>\n<p>two</p>\n<p>{{ profile.name </p>";

    // Inline: the part is a field of the body, in the request and in a
    // preview of it.
    let inline = request_with_template(json!({"inline": {"subject": "Hi", "html": html}}));
    let problem = app
        .json(Method::POST, "/v1/render-requests", &inline)
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        problem["field"], "channel_settings.template.inline.html",
        "{problem}"
    );
    assert_eq!(
        (&problem["part"], &problem["line"]),
        (&json!("html"), &json!(3))
    );
    let problem = app
        .json(
            Method::POST,
            "/v1/previews",
            &json!({"request": inline, "profile": {}}),
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        problem["field"], "request.channel_settings.template.inline.html",
        "{problem}"
    );

    // Stored (here past the API's compile check, as a version stored by an
    // older release might be): the reference is the field, the part and
    // line are members of their own.
    let parts: TemplateParts =
        serde_json::from_value(json!({"subject": "Hi", "html": html})).unwrap();
    let company = CompanyId::parse("acme").unwrap();
    let id = TemplateId::parse("broken").unwrap();
    app.store
        .put(&company, &id, Channel::Email, parts)
        .await
        .expect("store a template");
    let problem = app
        .json(
            Method::POST,
            "/v1/render-requests",
            &request_with_template(json!({"id": "broken"})),
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "channel_settings.template", "{problem}");
    assert_eq!(
        (&problem["part"], &problem["line"], &problem["column"]),
        (&json!("html"), &json!(3), &json!(21))
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("template \"broken\" part html line 3 column 21:"),
        "{problem}"
    );
}
