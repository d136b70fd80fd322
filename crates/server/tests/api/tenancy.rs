//! Tenancy: another company's ids answer exactly like ids that never
//! existed, and one company's event logs hold none of another's events.

use artifact_render::finish::tracking::ClaimKind;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Options, Reply, TestApp, email_request, seed, signed_token};

/// Asserts that `foreign` (company B naming A's `id`) answers `status`
/// exactly as `missing` (B naming `never`, an id no company has) does:
/// the same status and body, once `never` in it is read as `id`.
fn assert_alike(what: &str, status: StatusCode, foreign: Reply, missing: Reply, ids: (&str, &str)) {
    let (id, never) = ids;
    assert_eq!(foreign.status, status, "{what}: {}", foreign.text());
    assert_eq!(missing.status, status, "{what}: {}", missing.text());
    assert_eq!(
        foreign.header("content-type"),
        missing.header("content-type"),
        "{what}"
    );
    let missing: Value = serde_json::from_str(&missing.text().replace(never, id))
        .unwrap_or_else(|error| panic!("{what}: not JSON ({error})"));
    assert_eq!(foreign.json(), missing, "{what}");
}

/// A request of `company` with an inline template, for recipient `r1`
/// with profile `profile`.
fn inline_request(request_id: &str, company: &str, profile: &str) -> Value {
    let mut request = email_request(request_id, company, "unused");
    request["channel_settings"]["template"] =
        json!({"inline": {"subject": "Hi", "html": "<p>Hi {{ profile.first_name }}</p>"}});
    request["render_recipients"] = json!([{"recipient_id": "r1", "profile_id": profile}]);
    request
}

/// Records an open of message `m1` for `company`, through the pixel.
async fn open(app: &TestApp, company: &str) {
    let token = signed_token(company, ClaimKind::Open);
    assert_eq!(app.get(&format!("/o/{token}")).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn company_b_cannot_reach_company_a_data() {
    let app = TestApp::with(Options {
        tracking: true,
        ..Options::default()
    });
    seed(&app, "a").await;
    app.submit(&email_request("req-1", "a", "welcome")).await;
    app.wait_finished("/v1/render-requests/req-1?company_id=a")
        .await;
    open(&app, "a").await;

    // Each read as company B answers what an id that never existed does.
    for (foreign, missing, ids) in [
        (
            "/v1/render-requests/req-1?company_id=b",
            "/v1/render-requests/req-404?company_id=b",
            ("req-1", "req-404"),
        ),
        (
            "/v1/companies/b/templates/welcome",
            "/v1/companies/b/templates/tpl-404",
            ("welcome", "tpl-404"),
        ),
        (
            "/v1/companies/b/profiles/p1",
            "/v1/companies/b/profiles/p404",
            ("p1", "p404"),
        ),
        (
            "/v1/artifacts/b/req-1",
            "/v1/artifacts/b/req-404",
            ("req-1", "req-404"),
        ),
        (
            "/v1/artifacts/b/req-1/r1",
            "/v1/artifacts/b/req-404/r1",
            ("req-1", "req-404"),
        ),
    ] {
        assert_alike(
            foreign,
            StatusCode::NOT_FOUND,
            app.get(foreign).await,
            app.get(missing).await,
            ids,
        );
    }

    // B naming A's stored template, to render or to preview.
    let ids = ("welcome", "tpl-404");
    let submit = |template: &str| email_request("req-2", "b", template);
    let preview =
        |template: &str| json!({"request": submit(template), "profile": {"first_name": "Ada"}});
    let uri = "/v1/render-requests";
    assert_alike(
        "a render request naming A's template",
        StatusCode::UNPROCESSABLE_ENTITY,
        app.json(Method::POST, uri, &submit(ids.0)).await,
        app.json(Method::POST, uri, &submit(ids.1)).await,
        ids,
    );
    let uri = "/v1/previews";
    assert_alike(
        "a preview naming A's template",
        StatusCode::UNPROCESSABLE_ENTITY,
        app.json(Method::POST, uri, &preview(ids.0)).await,
        app.json(Method::POST, uri, &preview(ids.1)).await,
        ids,
    );
    // B naming A's profile: rendered as a profile that does not exist.
    let ids = ("p1", "p404");
    let preview = |profile: &str| json!({"request": inline_request("req-2", "b", profile)});
    assert_alike(
        "a preview naming A's profile",
        StatusCode::OK,
        app.json(Method::POST, uri, &preview(ids.0)).await,
        app.json(Method::POST, uri, &preview(ids.1)).await,
        ids,
    );
    app.get("/v1/render-requests/req-2?company_id=b")
        .await
        .problem(StatusCode::NOT_FOUND);

    // Both companies have events; each log lists its own company's only.
    app.submit(&inline_request("req-b", "b", "p1")).await;
    app.wait_finished("/v1/render-requests/req-b?company_id=b")
        .await;
    open(&app, "b").await;
    for log in ["response-events", "engagement-events"] {
        for company in ["a", "b"] {
            let page = app
                .get(&format!("/v1/companies/{company}/{log}"))
                .await
                .json();
            let owners: Vec<&Value> = page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|event| &event["company_id"])
                .collect();
            assert_eq!(owners, [company], "{log} of {company}: {page}");
        }
    }
}
