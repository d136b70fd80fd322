//! Health, metrics, the OpenAPI document and the router's own errors.

use axum::http::{Method, StatusCode};
use serde_json::Value;

use crate::support::{Options, TestApp};

fn app() -> TestApp {
    TestApp::with(Options {
        no_workers: true,
        ..Options::default()
    })
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = app();
    let health = app.get("/healthz").await;
    assert_eq!(
        (health.status, health.text().as_str()),
        (StatusCode::OK, "ok\n")
    );
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_include_the_queue_depth_per_lane() {
    let app = app();
    let reply = app.get("/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply
            .header("content-type")
            .starts_with("application/openmetrics-text")
    );
    let text = reply.text();
    for lane in ["high", "normal", "low"] {
        assert!(
            text.contains(&format!("artifact_queue_depth{{lane=\"{lane}\"}} 0")),
            "{text}"
        );
    }
    assert!(
        text.contains("artifact_accepted_requests_total 0"),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"));
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let app = app();
    let reply = app.get("/openapi.json").await;
    assert_eq!(reply.status, StatusCode::OK);
    let document: Value = reply.json();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = document["paths"].as_object().unwrap();
    let expected = [
        ("/v1/render-requests", "post"),
        ("/v1/render-requests/{id}", "get"),
        ("/v1/previews", "post"),
        ("/v1/companies/{company}/templates/{id}", "put"),
        ("/v1/companies/{company}/templates/{id}", "get"),
        ("/v1/companies/{company}/profiles/{id}", "put"),
        ("/v1/companies/{company}/profiles/{id}", "get"),
        ("/v1/companies/{company}/profiles:import", "post"),
        ("/v1/artifacts/{company}/{request_id}", "get"),
        ("/v1/artifacts/{company}/{request_id}/{recipient_id}", "get"),
        ("/v1/companies/{company}/response-events", "get"),
        ("/v1/companies/{company}/engagement-events", "get"),
        ("/c/{token}", "get"),
        ("/o/{token}", "get"),
        ("/u/{token}", "get"),
        ("/u/{token}", "post"),
        ("/metrics", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/openapi.json", "get"),
    ];
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from the document"
        );
    }
    assert_eq!(paths.len(), 17, "{:?}", paths.keys().collect::<Vec<_>>());
    assert!(document["components"]["schemas"]["Problem"].is_object());
    // Generated clients name methods after operation ids: each is unique.
    let mut ids: Vec<&str> = paths
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|operation| operation["operationId"].as_str())
        .collect();
    assert_eq!(ids.len(), expected.len());
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        expected.len(),
        "duplicate operation ids: {ids:?}"
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = app();
    let problem = app.get("/v2/nothing").await.problem(StatusCode::NOT_FOUND);
    assert!(problem["detail"].as_str().unwrap().contains("/v2/nothing"));
    let problem = app
        .raw(
            Method::DELETE,
            "/v1/render-requests",
            "application/json",
            "",
        )
        .await
        .problem(StatusCode::METHOD_NOT_ALLOWED);
    assert!(problem["detail"].as_str().unwrap().contains("DELETE"));
}

#[tokio::test]
async fn serve_answers_on_a_socket_and_shuts_down_gracefully() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = app();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(artifact_server::serve(listener, app.app.clone(), async {
        let _ = stopped.await;
    }));

    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.ends_with("ok\n"), "{response}");

    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), server)
        .await
        .expect("the server stops")
        .unwrap()
        .expect("serve returns Ok");
}
