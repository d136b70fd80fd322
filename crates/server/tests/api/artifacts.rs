//! Artifacts when the sink is not a store.

use axum::http::StatusCode;

use crate::support::{Options, TestApp};

#[tokio::test]
async fn without_an_artifact_store_the_artifact_endpoints_say_so() {
    let app = TestApp::with(Options {
        no_workers: true,
        no_artifact_store: true,
        ..Options::default()
    });
    for uri in ["/v1/artifacts/acme/req-1", "/v1/artifacts/acme/req-1/r1"] {
        let problem = app.get(uri).await.problem(StatusCode::NOT_FOUND);
        assert_eq!(
            problem["detail"],
            "artifacts are not stored by this server's sink"
        );
    }
}

#[tokio::test]
async fn artifact_parameters_are_checked() {
    let app = TestApp::with(Options {
        no_workers: true,
        ..Options::default()
    });
    for (uri, field) in [
        ("/v1/artifacts/acme/req-1?lane=blue", "lane"),
        ("/v1/artifacts/acme/req-1?limit=0", "limit"),
        ("/v1/artifacts/acme/req-1?limit=5000", "limit"),
        ("/v1/artifacts/acme/req-1?page=2", "page"),
        ("/v1/artifacts/acme/req-1/r1?channel=fax", "channel"),
    ] {
        let problem = app.get(uri).await.problem(StatusCode::BAD_REQUEST);
        assert_eq!(problem["field"], field, "{uri}");
    }
}

#[tokio::test]
async fn artifact_pages_hold_at_most_100_and_event_pages_1000() {
    let app = TestApp::with(Options {
        no_workers: true,
        ..Options::default()
    });
    let problem = app
        .get("/v1/artifacts/acme/req-1?limit=101")
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert_eq!(problem["field"], "limit");
    assert!(
        problem["detail"].as_str().unwrap().contains("1 to 100"),
        "{problem}"
    );
    // 100 is allowed: the unknown request is what answers.
    app.get("/v1/artifacts/acme/req-1?limit=100")
        .await
        .problem(StatusCode::NOT_FOUND);
    let events = app
        .get("/v1/companies/acme/response-events?limit=1000")
        .await;
    assert_eq!(events.status, StatusCode::OK, "{}", events.text());
    let problem = app
        .get("/v1/companies/acme/engagement-events?limit=1001")
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert!(
        problem["detail"].as_str().unwrap().contains("1 to 1000"),
        "{problem}"
    );

    let document = app.get("/openapi.json").await.json();
    let limit = |path: &str| {
        document["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|parameter| parameter["name"] == "limit")
            .map(|parameter| parameter["description"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert!(limit("/v1/artifacts/{company}/{request_id}").contains("1 to 100 "));
    assert!(limit("/v1/companies/{company}/response-events").contains("1 to 1000"));
}
