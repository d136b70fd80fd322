//! Health, metrics, the OpenAPI document and the router's own errors.

use std::time::Duration;

use artifact_pipeline::RequestQueue;
use artifact_pipeline::adapters::embedded::EmbeddedOptions;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Options, TestApp, email_request, seed};

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
    // This test process's own memory: more than nothing, peak ≥ current.
    let gauge = |name: &str| -> i64 {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing: {text}"))
            .parse()
            .unwrap()
    };
    let resident = gauge("artifact_process_resident_memory_bytes");
    assert!(resident > 1 << 20, "{resident}");
    assert!(gauge("artifact_process_peak_resident_memory_bytes") >= resident);
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
        ("/v1/dead-letters", "get"),
        ("/v1/companies/{company}/audit", "get"),
        ("/v1/companies/{company}/audit", "delete"),
        ("/v1/flags", "get"),
        ("/v1/flags/{name}", "put"),
        ("/v1/flags/{name}", "delete"),
    ];
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from the document"
        );
    }
    assert_eq!(paths.len(), 21, "{:?}", paths.keys().collect::<Vec<_>>());
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

#[tokio::test]
async fn dead_letters_are_listed_newest_first() {
    let app = TestApp::with(Options {
        no_workers: true,
        store: Some(EmbeddedOptions {
            batch_size: 2,
            sms_batch_size: 2,
            max_attempts: 2,
            retry_backoff: Duration::from_millis(1),
            ..EmbeddedOptions::default()
        }),
        ..Options::default()
    });
    let empty = app.get("/v1/dead-letters").await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.text());
    assert_eq!(empty.json(), json!({"dead_letters": []}));

    // Two requests whose one batch fails both its attempts.
    seed(&app, "acme").await;
    for id in ["req-1", "req-2"] {
        app.submit(&email_request(id, "acme", "welcome")).await;
        for _ in 0..2 {
            let lease = app
                .store
                .lease(Duration::from_secs(5))
                .await
                .expect("lease")
                .expect("a batch is ready");
            app.store.fail(&lease, "store down").await.expect("fail");
        }
    }
    let letters = app.get("/v1/dead-letters").await.json();
    let letters = letters["dead_letters"].as_array().unwrap();
    let ids: Vec<&str> = letters
        .iter()
        .map(|letter| letter["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["req-2", "req-1"]);
    assert_eq!(letters[0]["company_id"], "acme");
    assert_eq!(letters[0]["attempts"], 2);
    assert_eq!(letters[0]["reason"], "store down");
    assert_eq!(letters[0]["recipients"], json!({"start": 0, "end": 2}));
    let one = app.get("/v1/dead-letters?limit=1").await.json();
    assert_eq!(one["dead_letters"].as_array().unwrap().len(), 1);

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=x", "limit"),
        ("company_id=acme", "company_id"),
    ] {
        let problem = app
            .get(&format!("/v1/dead-letters?{query}"))
            .await
            .problem(StatusCode::BAD_REQUEST);
        assert_eq!(problem["field"], field, "{query}");
    }
}
