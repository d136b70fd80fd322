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
