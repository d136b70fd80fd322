//! The HTTP API of the artifact pipeline, on axum: render requests onto the
//! queue, synchronous previews, templates, profiles, stored artifacts,
//! response and engagement events, the tracking endpoints, dead letters,
//! metrics, health and the OpenAPI document.
//!
//! The server renders nothing by itself: it validates at the edge, binds
//! requests to templates through the pipeline's [`Renderer`] (so a request
//! it accepts is one a worker can render) and talks to the ports. Every
//! error is an RFC 9457 problem ([`ApiError`]).
//!
//! ```no_run
//! # async fn run(state: artifact_server::AppState) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let app = artifact_server::router(state);
//! // Whoever owns `stop` ends the server; requests in flight finish first.
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! # drop(stop);
//! artifact_server::serve(listener, app, async {
//!     let _ = stopped.await;
//! })
//! .await
//! # }
//! ```
//!
//! [`Renderer`]: artifact_pipeline::worker::Renderer

pub mod error;
mod extract;
pub mod openapi;
mod routes;
mod state;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use tracing::debug;

pub use error::{ApiError, Problem, ProblemKind};
pub use routes::profiles::IMPORT_CHUNK;
pub use state::{ApiLimits, AppState};

use error::ProblemKind as Kind;

/// Every route of the API on one router, tracking endpoints included.
pub fn router(state: AppState) -> Router {
    let limits = state.limits.clone();
    let state = Arc::new(state);
    Router::new()
        .route("/v1/render-requests", post(routes::requests::submit))
        .route("/v1/render-requests/{id}", get(routes::requests::status))
        .route("/v1/previews", post(routes::previews::preview))
        .route(
            "/v1/companies/{company}/templates/{id}",
            get(routes::templates::get).put(routes::templates::put),
        )
        .route(
            "/v1/companies/{company}/profiles/{id}",
            get(routes::profiles::get).put(routes::profiles::put),
        )
        .route(
            "/v1/companies/{company}/profiles:import",
            post(routes::profiles::import).layer(DefaultBodyLimit::max(limits.max_import_bytes)),
        )
        .route(
            "/v1/artifacts/{company}/{request_id}",
            get(routes::artifacts::list),
        )
        .route(
            "/v1/artifacts/{company}/{request_id}/{recipient_id}",
            get(routes::artifacts::get),
        )
        .route(
            "/v1/companies/{company}/response-events",
            get(routes::events::responses),
        )
        .route(
            "/v1/companies/{company}/engagement-events",
            get(routes::events::engagement),
        )
        .route(
            "/v1/companies/{company}/audit",
            get(routes::audit::get).delete(routes::audit::reset),
        )
        .route("/v1/flags", get(routes::flags::list))
        .route(
            "/v1/flags/{name}",
            put(routes::flags::put).delete(routes::flags::delete),
        )
        .route("/c/{token}", get(routes::tracking::click))
        .route("/o/{token}", get(routes::tracking::open))
        .route(
            "/u/{token}",
            get(routes::tracking::unsubscribe_page)
                .post(routes::tracking::unsubscribe)
                .layer(DefaultBodyLimit::max(
                    routes::tracking::ONE_CLICK_BODY_BYTES,
                )),
        )
        .route("/v1/dead-letters", get(routes::ops::dead_letters))
        .route("/metrics", get(routes::ops::metrics))
        .route("/healthz", get(routes::ops::healthz))
        .route("/readyz", get(routes::ops::readyz))
        .route("/openapi.json", get(routes::ops::openapi))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// What a canary or control lane worker serves: `/metrics` (the pipeline's
/// counters, among them the lane's recipients by outcome) and `/healthz`.
pub fn lane_router(metrics: std::sync::Arc<artifact_pipeline::metrics::Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(routes::ops::lane_metrics))
        .route("/healthz", get(routes::ops::healthz))
        .fallback(no_route)
        .with_state(metrics)
}

/// Serves `router` on `listener` until `shutdown` completes, then lets the
/// requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn no_route(request: Request) -> Response {
    ApiError::not_found(format!(
        "no route for {} {}; see /openapi.json for the API",
        request.method(),
        request.uri().path()
    ))
    .into_response()
}

async fn wrong_method(request: Request) -> Response {
    ApiError::new(
        Kind::MethodNotAllowed,
        format!(
            "{} is not allowed on {}; see /openapi.json for the methods it takes",
            request.method(),
            request.uri().path()
        ),
    )
    .into_response()
}

/// Logs each request at debug; failures are logged where they happen
/// (5xx at warn, with their cause, by [`ApiError`]).
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    debug!(
        %method,
        %path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "http request"
    );
    response
}
