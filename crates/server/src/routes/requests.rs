//! `POST /v1/render-requests` and `GET /v1/render-requests/{id}`: accepting
//! render requests onto the queue and reporting where they stand.
//!
//! A request is accepted only once it is known to render: it parses, its
//! template exists for its company and compiles, and it fits the template.
//! Nothing is half-accepted, and a retried request id never renders twice.
//! A stored template named without a version is pinned to the version that
//! is latest at acceptance, so every batch renders the same one.

use std::sync::Arc;

use artifact_pipeline::{RequestStatus, Submitted};
use artifact_render::request::{CompanyId, RequestId, TemplateRef};
use artifact_render::{RenderRequest, RequestLimits};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

use super::{check_template_size, json, segment, with_location};
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, Params, PathParams, Shared, parse_id};
use crate::state::AppState;

/// The answer to a submission.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubmitResponse {
    /// The request's idempotency key.
    #[schema(value_type = String)]
    pub request_id: RequestId,
    /// The company that submitted it.
    #[schema(value_type = String)]
    pub company_id: CompanyId,
    /// The request's status: `state` (`queued`, `rendering`, `done`,
    /// `failed`), `recipients`, `counts`, `response_metadata`, timestamps.
    #[schema(value_type = Object)]
    pub status: RequestStatus,
    /// Where to poll the status.
    pub status_url: String,
}

/// The status URL of a request.
pub(crate) fn status_url(company: &CompanyId, request: &RequestId) -> String {
    format!(
        "/v1/render-requests/{}?company_id={}",
        segment(request.as_str()),
        segment(company.as_str())
    )
}

/// Parses and validates a render request off the async threads: a body of
/// a million recipients takes a while.
pub(crate) async fn parse_request(
    body: axum::body::Bytes,
    limits: RequestLimits,
) -> Result<RenderRequest, ApiError> {
    tokio::task::spawn_blocking(move || {
        RenderRequest::from_json(&body, &limits)
            .map_err(|error| ApiError::from_request_error(&error, &body))
    })
    .await
    .map_err(|error| ApiError::internal("request parsing failed", error))?
}

/// The limits a render request is parsed with.
pub(crate) fn request_limits(state: &AppState) -> RequestLimits {
    RequestLimits {
        max_recipients: state.limits.max_recipients,
        max_bytes: state.limits.max_body_bytes,
    }
}

/// Refuses an inline template larger than the template limit; `prefix` is
/// the request's JSON path in the body.
pub(crate) fn check_inline_size(
    request: &RenderRequest,
    state: &AppState,
    prefix: &str,
) -> Result<(), ApiError> {
    match request.channel_settings().template() {
        TemplateRef::Inline(parts) => check_template_size(
            parts,
            state.limits.max_template_bytes,
            &format!("{prefix}channel_settings.template.inline"),
        ),
        TemplateRef::Stored { .. } => Ok(()),
    }
}

/// Pins a stored template named without a version to the version that is
/// latest now, so that every batch, and any re-render after a crash,
/// renders that version even if a newer one is stored meanwhile.
async fn pin_latest_version(state: &AppState, request: &mut RenderRequest) -> Result<(), ApiError> {
    let TemplateRef::Stored { id, version: None } = request.channel_settings().template() else {
        return Ok(());
    };
    let latest = state
        .renderer
        .stored(request.company_id(), id, None)
        .await
        .map_err(|failure| ApiError::from_prepare(failure, request, ""))?;
    // A stored template always has a version.
    if let Some(version) = latest.version() {
        request.pin_template_version(version);
    }
    Ok(())
}

/// The answer to a submission: `code` with the request's status.
fn submitted(code: StatusCode, status: RequestStatus) -> Response {
    let url = status_url(&status.company_id, &status.request_id);
    let body = SubmitResponse {
        request_id: status.request_id.clone(),
        company_id: status.company_id.clone(),
        status_url: url.clone(),
        status,
    };
    with_location(json(code, &body), &url)
}

/// Accepts a render request.
///
/// The request is parsed and validated, then bound to its template (stored
/// for its company, or inline) exactly as a worker will bind it; only then
/// is it queued. A stored template named without a version is pinned to
/// the latest version. Resubmitting a request id the company already used
/// answers 200 with that request's status at once, whatever its template
/// has become since, and queues nothing.
#[utoipa::path(
    post,
    path = "/v1/render-requests",
    operation_id = "submit_render_request",
    tag = "render requests",
    request_body(content = Object, content_type = "application/json",
        description = "A render request: request_id, company_id, client_id, message_id, \
                       priority, send_time, response_metadata, channel_settings, \
                       render_recipients, tracking_options"),
    responses(
        (status = 202, description = "Accepted and queued", body = SubmitResponse,
            headers(("location" = String, description = "The status URL"))),
        (status = 200, description = "This company already submitted this request id; nothing was \
                                      queued or checked against its template", body = SubmitResponse),
        (status = 400, description = "Malformed JSON (with line and column)", body = Problem,
            content_type = "application/problem+json"),
        (status = 413, description = "Body or inline template over its limit", body = Problem,
            content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid, the template is missing or does not compile; \
                                      `field` names the JSON path", body = Problem,
            content_type = "application/problem+json"),
        (status = 503, description = "The queue or a store is unavailable", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub(crate) async fn submit(
    State(state): State<Shared>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let mut request = parse_request(body, request_limits(&state)).await?;
    // A retry of an accepted request answers as it did, even when its
    // template changed or went away since.
    if let Some(status) = state
        .queue
        .status(request.company_id(), request.request_id())
        .await?
    {
        return Ok(submitted(StatusCode::OK, status));
    }
    check_inline_size(&request, &state, "")?;
    pin_latest_version(&state, &mut request).await?;
    let request = Arc::new(request);
    state
        .renderer
        .prepare(request.clone())
        .await
        .map_err(|failure| ApiError::from_prepare(failure, &request, ""))?;
    // The queue still decides between two submissions racing past the
    // check above.
    Ok(match state.queue.submit(request).await? {
        Submitted::Accepted(status) => {
            state.metrics.accepted.inc();
            submitted(StatusCode::ACCEPTED, status)
        }
        Submitted::Existing(status) => submitted(StatusCode::OK, status),
    })
}

/// Where a render request stands: its state, per-recipient counts, its
/// `response_metadata` and timestamps.
///
/// Every lookup is scoped by `company_id`: another company's request id
/// answers the same 404 as one that does not exist.
#[utoipa::path(
    get,
    path = "/v1/render-requests/{id}",
    operation_id = "get_render_request_status",
    tag = "render requests",
    params(
        ("id" = String, Path, description = "The request_id"),
        ("company_id" = String, Query, description = "The company that submitted it (required)"),
    ),
    responses(
        (status = 200, description = "The request's status", body = Object),
        (status = 400, description = "company_id missing or an id malformed", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such request for this company", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub(crate) async fn status(
    State(state): State<Shared>,
    PathParams(id): PathParams<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let params = params.only(&["company_id"])?;
    let company = parse_id(
        "company_id",
        params.required("company_id")?,
        CompanyId::parse,
    )?;
    let request_id = parse_id("id", &id, RequestId::parse)?;
    match state.queue.status(&company, &request_id).await? {
        Some(status) => Ok(json(StatusCode::OK, &status)),
        None => Err(ApiError::not_found(format!(
            "render request {:?} not found for company {:?}",
            request_id.as_str(),
            company.as_str()
        ))),
    }
}
