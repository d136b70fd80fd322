//! The test app and small helpers for requests and responses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use artifact_pipeline::adapters::embedded::{EmbeddedOptions, EmbeddedStore};
use artifact_pipeline::audit::TrafficAudit;
use artifact_pipeline::metrics::Metrics;
use artifact_pipeline::worker::{Renderer, WorkerPool, WorkerPorts, WorkerSettings};
use artifact_render::RenderLimits;
use artifact_render::finish::tracking::{ClaimKind, Claims, SigningKey, TrackingConfig};
use artifact_server::{ApiLimits, AppState, router};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tempfile::TempDir;
use tower::ServiceExt;

/// The router over a fresh store, with one worker rendering into it.
pub struct TestApp {
    pub app: Router,
    /// The store behind every port, for tests that reach past the API.
    pub store: Arc<EmbeddedStore>,
    renderer: Arc<Renderer>,
    metrics: Arc<Metrics>,
    audit: Option<Arc<TrafficAudit>>,
    workers: Option<WorkerPool>,
    _dir: TempDir,
}

/// How to build a [`TestApp`].
#[derive(Default)]
pub struct Options {
    pub tracking: bool,
    pub limits: Option<ApiLimits>,
    /// Leave artifacts out of the state, as a server whose sink is not a
    /// store would.
    pub no_artifact_store: bool,
    /// No workers: requests stay queued until [`TestApp::start_workers`].
    pub no_workers: bool,
    /// The store's options; batches of 2 and the defaults otherwise.
    pub store: Option<EmbeddedOptions>,
    /// Audit this fraction of recipients.
    pub audit_sample: Option<f64>,
}

/// The tracking configuration of the tracking tests.
pub fn tracking_config() -> Arc<TrackingConfig> {
    Arc::new(
        TrackingConfig::new(
            "t.shop.example",
            vec![SigningKey {
                id: "k1".into(),
                secret: b"a-test-secret-of-at-least-32-bytes!".to_vec(),
            }],
            None,
        )
        .expect("valid tracking config"),
    )
}

/// A tracking token of `kind` for recipient `r1` of message `m1` of
/// `company`, signed with the test server's key.
pub fn signed_token(company: &str, kind: ClaimKind<'static>) -> String {
    tracking_config().signer().sign(&Claims {
        company_id: company.into(),
        message_id: "m1".into(),
        recipient_id: "r1".into(),
        kind,
    })
}

impl TestApp {
    pub fn new() -> Self {
        Self::with(Options::default())
    }

    pub fn with(options: Options) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = EmbeddedStore::open(
            &dir.path().join("pipeline.db"),
            options.store.unwrap_or(EmbeddedOptions {
                batch_size: 2,
                sms_batch_size: 2,
                ..EmbeddedOptions::default()
            }),
        )
        .expect("open store");
        let tracking = options.tracking.then(tracking_config);
        let renderer = Arc::new(Renderer::new(
            store.clone(),
            tracking,
            64,
            RenderLimits::default(),
        ));
        let metrics = Arc::new(Metrics::default());
        let artifacts: Option<Arc<dyn artifact_pipeline::ArtifactStore>> =
            (!options.no_artifact_store).then(|| store.clone() as _);
        let audit = options
            .audit_sample
            .map(|sample| Arc::new(TrafficAudit::new(sample).expect("a valid sample")));
        let state = AppState {
            queue: store.clone(),
            profiles: store.clone(),
            templates: store.clone(),
            artifacts,
            responses: store.clone(),
            engagement: store.clone(),
            renderer: renderer.clone(),
            metrics: metrics.clone(),
            audit: audit.clone(),
            flags: Arc::default(),
            limits: options.limits.unwrap_or_default(),
        };
        let mut app = Self {
            app: router(state),
            store,
            renderer,
            metrics,
            audit,
            workers: None,
            _dir: dir,
        };
        if !options.no_workers {
            app.start_workers();
        }
        app
    }

    /// Starts the worker an app built with `no_workers` lacks.
    pub fn start_workers(&mut self) {
        assert!(self.workers.is_none(), "workers already started");
        let store = &self.store;
        self.workers = Some(WorkerPool::start(
            WorkerSettings {
                audit: self.audit.clone(),
                ..WorkerSettings::new(1)
            },
            WorkerPorts {
                queue: store.clone(),
                profiles: store.clone(),
                sink: store.clone(),
                responses: store.clone(),
            },
            self.renderer.clone(),
            self.metrics.clone(),
        ));
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self
            .app
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("read body")
            .to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    pub async fn json(&self, method: Method, uri: &str, body: &Value) -> Reply {
        self.raw(method, uri, "application/json", body.to_string())
            .await
    }

    pub async fn raw(
        &self,
        method: Method,
        uri: &str,
        content_type: &str,
        body: impl Into<Body>,
    ) -> Reply {
        self.send(
            Request::builder()
                .method(method)
                .uri(uri)
                .header(header::CONTENT_TYPE, content_type)
                .body(body.into())
                .unwrap(),
        )
        .await
    }

    /// Stores a template through the API; returns its version.
    pub async fn put_template(&self, company: &str, id: &str, template: Value) -> u64 {
        let reply = self
            .json(
                Method::PUT,
                &format!("/v1/companies/{}/templates/{id}", enc(company)),
                &template,
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
        reply.json()["version"].as_u64().expect("version")
    }

    /// Stores a profile through the API.
    pub async fn put_profile(&self, company: &str, id: &str, properties: Value) {
        let reply = self
            .json(
                Method::PUT,
                &format!("/v1/companies/{}/profiles/{id}", enc(company)),
                &properties,
            )
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    }

    /// Submits a request and expects it accepted.
    pub async fn submit(&self, request: &Value) -> Reply {
        let reply = self
            .json(Method::POST, "/v1/render-requests", request)
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
        reply
    }

    /// Polls the status URL until the request is done or failed.
    pub async fn wait_finished(&self, status_url: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let reply = self.get(status_url).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
            let status = reply.json();
            if matches!(status["state"].as_str(), Some("done" | "failed")) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "request did not finish in time: {status}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// `id` as a URL path segment.
pub fn enc(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    /// Asserts a problem+json body with `status`, and returns it.
    pub fn problem(&self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.header("content-type"), "application/problem+json");
        let problem = self.json();
        assert_eq!(problem["status"], status.as_u16());
        for member in ["type", "title", "detail"] {
            assert!(
                problem[member].as_str().is_some_and(|s| !s.is_empty()),
                "problem without {member}: {problem}"
            );
        }
        problem
    }
}

/// An email template greeting `profile.first_name`.
pub fn welcome_template() -> Value {
    json!({
        "channel": "email",
        "parts": {
            "subject": "Welcome, {{ profile.first_name }}!",
            "html": "<html><body><p>Hi {{ profile.first_name }}</p></body></html>"
        }
    })
}

/// An email request for `company` rendering stored template `template`
/// for recipients `r1` (profile `p1`) and `r2` (profile `p2`).
pub fn email_request(request_id: &str, company: &str, template: &str) -> Value {
    json!({
        "request_id": request_id,
        "company_id": company,
        "client_id": "flows",
        "message_id": "m1",
        "send_time": "2026-11-26T09:00:00Z",
        "response_metadata": {"campaign": 7},
        "channel_settings": {
            "channel": "email",
            "from_email": "news@shop.example",
            "template": {"id": template}
        },
        "render_recipients": [
            {"recipient_id": "r1", "profile_id": "p1"},
            {"recipient_id": "r2", "profile_id": "p2"}
        ]
    })
}

/// Stores the welcome template and profiles `p1` (Ada) and `p2` (Grace)
/// for `company`.
pub async fn seed(app: &TestApp, company: &str) {
    app.put_template(company, "welcome", welcome_template())
        .await;
    app.put_profile(company, "p1", json!({"first_name": "Ada"}))
        .await;
    app.put_profile(company, "p2", json!({"first_name": "Grace"}))
        .await;
}
