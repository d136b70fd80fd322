//! The traffic audit: sampled renders' reads, per company, read and reset
//! through the API.

use axum::body::Body;
use axum::http::{Request, StatusCode};

use crate::support::{Options, TestApp, email_request, seed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sampled_company_audit_is_served_and_reset() {
    let app = TestApp::with(Options {
        audit_sample: Some(1.0),
        ..Options::default()
    });
    seed(&app, "acme").await;
    app.put_profile(
        "acme",
        "p1",
        serde_json::json!({"first_name": "Ada", "shoe_size": 38}),
    )
    .await;
    app.submit(&email_request("req-1", "acme", "welcome")).await;
    app.wait_finished("/v1/render-requests/req-1?company_id=acme")
        .await;

    let reply = app.get("/v1/companies/acme/audit").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let audit = reply.json();
    assert_eq!(
        (&audit["sample"], &audit["audited_renders"]),
        (&1.0.into(), &2.into())
    );
    let welcome = &audit["templates"][0];
    assert_eq!(welcome["name"], "welcome");
    let subject = welcome["reads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["path"] == "profile.first_name" && row["part"] == "subject")
        .unwrap();
    assert_eq!(
        (&subject["renders"], &subject["lines"]),
        (&2.into(), &serde_json::json!([1]))
    );
    assert_eq!(
        welcome["schema"]["properties"]["profile"]["required"],
        serde_json::json!(["first_name"])
    );
    assert_eq!(
        audit["unread_profile_fields"],
        serde_json::json!([{"path": "profile.shoe_size", "profiles": 1}])
    );
    // Another company's audit is its own.
    app.get("/v1/companies/globex/audit")
        .await
        .problem(StatusCode::NOT_FOUND);

    let reset = app
        .send(
            Request::delete("/v1/companies/acme/audit")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT);
    let problem = app
        .get("/v1/companies/acme/audit")
        .await
        .problem(StatusCode::NOT_FOUND);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("nothing of company \"acme\" has been audited yet"),
        "{problem}"
    );
}

#[tokio::test]
async fn without_a_sample_the_audit_says_how_to_turn_it_on() {
    let app = TestApp::new();
    let problem = app
        .get("/v1/companies/acme/audit")
        .await
        .problem(StatusCode::NOT_FOUND);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("--audit-sample"),
        "{problem}"
    );
}
