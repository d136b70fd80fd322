//! Tenancy: another company's ids answer exactly like missing ones.

use axum::http::{Method, StatusCode};

use crate::support::{TestApp, email_request, seed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn company_b_cannot_reach_company_a_data() {
    let app = TestApp::new();
    seed(&app, "a").await;
    app.submit(&email_request("req-1", "a", "welcome")).await;
    app.wait_finished("/v1/render-requests/req-1?company_id=a")
        .await;

    // Each read as company B answers what a missing id answers.
    let pairs = [
        (
            "/v1/render-requests/req-1?company_id=b",
            "/v1/render-requests/req-404?company_id=b",
        ),
        (
            "/v1/companies/b/templates/welcome",
            "/v1/companies/b/templates/missing",
        ),
        (
            "/v1/companies/b/profiles/p1",
            "/v1/companies/b/profiles/p404",
        ),
        ("/v1/artifacts/b/req-1", "/v1/artifacts/b/req-404"),
        ("/v1/artifacts/b/req-1/r1", "/v1/artifacts/b/req-404/r1"),
    ];
    for (foreign, missing) in pairs {
        let foreign = app.get(foreign).await.problem(StatusCode::NOT_FOUND);
        let missing = app.get(missing).await.problem(StatusCode::NOT_FOUND);
        assert_eq!(foreign["type"], missing["type"]);
        assert_eq!(foreign["title"], missing["title"]);
        assert!(!foreign["detail"].as_str().unwrap().contains("\"a\""));
    }

    // B naming A's template gets "not found", and nothing is queued.
    let problem = app
        .json(
            Method::POST,
            "/v1/render-requests",
            &email_request("req-2", "b", "welcome"),
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "channel_settings.template.id");
    assert!(problem["detail"].as_str().unwrap().contains("not found"));

    // And B's event logs are empty.
    let events = app.get("/v1/companies/b/response-events").await.json();
    assert_eq!(events["events"].as_array().unwrap().len(), 0);
}
