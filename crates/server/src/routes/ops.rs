//! Operations: `/metrics` (Prometheus), `/healthz` (the process is alive),
//! `/readyz` (the queue answers), `/v1/dead-letters` (batches that ran out
//! of attempts) and `/openapi.json`.

use std::sync::OnceLock;

use artifact_pipeline::{DeadLetter, LaneDepths};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;
use tracing::warn;
use utoipa::{OpenApi, ToSchema};

use super::{MAX_PAGE, json, page_limit};
use crate::error::{ApiError, Problem, ProblemKind};
use crate::extract::{Params, Shared};

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LaneLabel {
    lane: &'static str,
}

fn text(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<axum::body::Body>,
) -> Response {
    let mut response = (status, body.into()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The pipeline's metrics and the queue depth per lane, in the OpenMetrics
/// text format.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text")),
)]
pub(crate) async fn metrics(State(state): State<Shared>) -> Result<Response, ApiError> {
    // The registry only holds handles to the shared metrics, so building it
    // per scrape is cheap, and it lets the queue depth be read at scrape
    // time rather than kept up to date by a background task.
    let mut registry = Registry::default();
    state.metrics.register(&mut registry);
    state.flags.register(&mut registry);
    let depth = Family::<LaneLabel, Gauge>::default();
    registry.register(
        "artifact_queue_depth",
        "Batches waiting in the queue, by priority lane",
        depth.clone(),
    );
    match state.queue.depths().await {
        Ok(LaneDepths { high, normal, low }) => {
            for (lane, n) in [("high", high), ("normal", normal), ("low", low)] {
                depth
                    .get_or_create(&LaneLabel { lane })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
        Err(error) => warn!(%error, "cannot read the queue depth for /metrics"),
    }
    openmetrics(registry)
}

/// A lane worker's metrics: the pipeline's counters and its memory.
pub(crate) async fn lane_metrics(
    State(metrics): State<std::sync::Arc<artifact_pipeline::metrics::Metrics>>,
) -> Result<Response, ApiError> {
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    openmetrics(registry)
}

/// `registry` and the process's memory, in the OpenMetrics text format.
fn openmetrics(mut registry: Registry) -> Result<Response, ApiError> {
    let (resident, peak) = (Gauge::<i64>::default(), Gauge::<i64>::default());
    registry.register(
        "artifact_process_resident_memory_bytes",
        "Resident memory of this process",
        resident.clone(),
    );
    registry.register(
        "artifact_process_peak_resident_memory_bytes",
        "Peak resident memory of this process since it started",
        peak.clone(),
    );
    if let Some(memory) = artifact_pipeline::metrics::process_memory() {
        resident.set(i64::try_from(memory.resident).unwrap_or(i64::MAX));
        peak.set(i64::try_from(memory.peak).unwrap_or(i64::MAX));
    }
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, &registry)
        .map_err(|error| ApiError::internal("cannot encode the metrics", error))?;
    Ok(text(
        StatusCode::OK,
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        body,
    ))
}

/// Answers while the process runs.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "operations",
    responses((status = 200, description = "ok", content_type = "text/plain")),
)]
pub(crate) async fn healthz() -> Response {
    text(StatusCode::OK, "text/plain; charset=utf-8", "ok\n")
}

/// Ready when the queue answers: the API can accept requests.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "operations",
    responses(
        (status = 200, description = "ready", content_type = "text/plain"),
        (status = 503, description = "The queue does not answer", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub(crate) async fn readyz(State(state): State<Shared>) -> Result<Response, ApiError> {
    match state.queue.depths().await {
        Ok(_) => Ok(text(StatusCode::OK, "text/plain; charset=utf-8", "ready\n")),
        Err(error) => Err(ApiError::new(
            ProblemKind::Unavailable,
            "the request queue does not answer; not ready",
        )
        .caused_by(error)),
    }
}

/// The most recent dead letters.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterPage {
    /// Newest first. Each has `company_id`, `request_id`, `recipients`
    /// (the batch, as `start` and `end` indexes into the request's
    /// `render_recipients`), `attempts`, `reason` and `at`.
    #[schema(value_type = Vec<Object>)]
    pub dead_letters: Vec<DeadLetter>,
}

/// The batches that ran out of attempts, newest first, for operators: each
/// failed its request. The listing spans every company, so it belongs
/// where only operators reach the API.
#[utoipa::path(
    get,
    path = "/v1/dead-letters",
    operation_id = "list_dead_letters",
    tag = "operations",
    params(
        ("limit" = Option<usize>, Query, description = "How many, 1 to 1000 (default 100)"),
    ),
    responses(
        (status = 200, description = "The most recent dead letters", body = DeadLetterPage),
        (status = 400, description = "A parameter is invalid", body = Problem,
            content_type = "application/problem+json"),
        (status = 503, description = "The queue does not answer", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub(crate) async fn dead_letters(
    State(state): State<Shared>,
    params: Params,
) -> Result<Response, ApiError> {
    let limit = page_limit(&params.only(&["limit"])?, MAX_PAGE)?;
    let dead_letters = state.queue.dead_letters(limit).await?;
    Ok(json(StatusCode::OK, &DeadLetterPage { dead_letters }))
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI document", body = Object)),
)]
pub(crate) async fn openapi() -> Response {
    static DOCUMENT: OnceLock<axum::body::Bytes> = OnceLock::new();
    let document = DOCUMENT.get_or_init(|| {
        crate::openapi::ApiDoc::openapi()
            .to_json()
            .unwrap_or_else(|error| {
                warn!(%error, "cannot serialize the OpenAPI document");
                "{}".to_owned()
            })
            .into()
    });
    text(StatusCode::OK, "application/json", document.clone())
}
