//! Rollout flags: changed at runtime, visible in the metrics.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn a_flag_is_set_read_shown_in_metrics_and_removed_without_a_restart() {
    let app = TestApp::new();
    let reply = app
        .json(
            Method::PUT,
            "/v1/flags/new_tracking",
            &json!({"percent": 5, "key": "company"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        app.get("/v1/flags").await.json(),
        json!({"new_tracking": {"percent": 5.0, "key": "company"}})
    );
    let metrics = app.get("/metrics").await.text();
    assert!(
        metrics.contains("artifact_flag_percent{flag=\"new_tracking\"} 5.0"),
        "{metrics}"
    );

    let problem = app
        .json(
            Method::PUT,
            "/v1/flags/new_tracking",
            &json!({"percent": 150, "key": "company"}),
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        problem["detail"],
        "flag new_tracking: percent 150 must be between 0 and 100"
    );
    let problem = app
        .json(
            Method::PUT,
            "/v1/flags/new_tracking",
            &json!({"percent": 5, "key": "tenant"}),
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("unknown variant `tenant`"),
        "{problem}"
    );

    let delete = || {
        app.send(
            Request::delete("/v1/flags/new_tracking")
                .body(Body::empty())
                .unwrap(),
        )
    };
    assert_eq!(delete().await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/v1/flags").await.json(), json!({}));
    delete().await.problem(StatusCode::NOT_FOUND);
}
