//! `GET /v1/artifacts/{company}/{request_id}[/{recipient_id}]`: reading
//! back stored artifacts, when the server's sink is a store.

use std::sync::Arc;

use artifact_pipeline::{ArtifactKey, ArtifactStore, Lane};
use artifact_render::Artifact;
use artifact_render::request::{CompanyId, RecipientId, RequestId};
use artifact_render::template::Channel;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

use super::{MAX_ARTIFACT_PAGE, json, page_limit};
use crate::error::{ApiError, Problem};
use crate::extract::{Params, PathParams, Shared, parse_id};
use crate::state::AppState;

/// One page of a request's artifacts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArtifactPage {
    /// Artifacts by recipient id.
    #[schema(value_type = Vec<Object>)]
    pub artifacts: Vec<Artifact>,
    /// Pass as `after` for the next page; null when this page is the last.
    pub next_after: Option<String>,
}

fn store(state: &AppState) -> Result<&Arc<dyn ArtifactStore>, ApiError> {
    state
        .artifacts
        .as_ref()
        .ok_or_else(|| ApiError::not_found("artifacts are not stored by this server's sink"))
}

fn lane(params: &Params) -> Result<Lane, ApiError> {
    match params.get("lane") {
        // `primary` is what the production lane was called before.
        None | Some("primary") => Ok(Lane::Production),
        Some(name) => Lane::parse(name).ok_or_else(|| {
            ApiError::bad_parameter(
                "lane",
                format!("lane {name:?} is unknown; give production, canary or control"),
            )
        }),
    }
}

fn channel(params: &Params) -> Result<Option<Channel>, ApiError> {
    match params.get("channel") {
        None => Ok(None),
        Some("email") => Ok(Some(Channel::Email)),
        Some("sms") => Ok(Some(Channel::Sms)),
        Some(other) => Err(ApiError::bad_parameter(
            "channel",
            format!("channel {other:?} is unknown; give email or sms"),
        )),
    }
}

/// A request's artifacts in one lane, by recipient id, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/artifacts/{company}/{request_id}",
    operation_id = "list_artifacts",
    tag = "artifacts",
    params(
        ("company" = String, Path, description = "The company"),
        ("request_id" = String, Path, description = "The request"),
        ("after" = Option<String>, Query, description = "Start after this recipient id"),
        ("limit" = Option<usize>, Query, description = "Page size, 1 to 100 (default 100): \
                                                       an artifact can be megabytes"),
        ("lane" = Option<String>, Query, description = "`production` (default), `canary` or `control`"),
    ),
    responses(
        (status = 200, description = "One page of artifacts", body = ArtifactPage),
        (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request for this company, or artifacts are not \
                                      stored by this server", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list(
    State(state): State<Shared>,
    PathParams((company, request_id)): PathParams<(String, String)>,
    params: Params,
) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let params = params.only(&["after", "limit", "lane"])?;
    let company = parse_id("company", &company, CompanyId::parse)?;
    let request_id = parse_id("request_id", &request_id, RequestId::parse)?;
    let after = params
        .get("after")
        .map(|after| parse_id("after", after, RecipientId::parse))
        .transpose()?;
    let limit = page_limit(&params, MAX_ARTIFACT_PAGE)?;
    let lane = lane(&params)?;
    // An unknown request (or another company's) answers 404 rather than an
    // empty page, so a client can tell a typo from "not rendered yet".
    if state.queue.status(&company, &request_id).await?.is_none() {
        return Err(ApiError::not_found(format!(
            "render request {:?} not found for company {:?}",
            request_id.as_str(),
            company.as_str()
        )));
    }
    let artifacts = store
        .list(&company, &request_id, lane, after.as_ref(), limit)
        .await?;
    let next_after = (artifacts.len() == limit)
        .then(|| artifacts.last().map(|a| a.recipient_id.to_string()))
        .flatten();
    Ok(json(
        StatusCode::OK,
        &ArtifactPage {
            artifacts,
            next_after,
        },
    ))
}

/// One recipient's artifact. Without `channel`, the email artifact is
/// looked up first, then the SMS one.
#[utoipa::path(
    get,
    path = "/v1/artifacts/{company}/{request_id}/{recipient_id}",
    operation_id = "get_artifact",
    tag = "artifacts",
    params(
        ("company" = String, Path, description = "The company"),
        ("request_id" = String, Path, description = "The request"),
        ("recipient_id" = String, Path, description = "The recipient"),
        ("channel" = Option<String>, Query, description = "`email` or `sms`; both are tried when absent"),
        ("lane" = Option<String>, Query, description = "`production` (default), `canary` or `control`"),
    ),
    responses(
        (status = 200, description = "The artifact", body = Object),
        (status = 404, description = "No such artifact for this company, or artifacts are not stored",
            body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get(
    State(state): State<Shared>,
    PathParams((company, request_id, recipient_id)): PathParams<(String, String, String)>,
    params: Params,
) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let params = params.only(&["channel", "lane"])?;
    let company_id = parse_id("company", &company, CompanyId::parse)?;
    let request_id = parse_id("request_id", &request_id, RequestId::parse)?;
    let recipient_id = parse_id("recipient_id", &recipient_id, RecipientId::parse)?;
    let channels = match channel(&params)? {
        Some(channel) => vec![channel],
        None => vec![Channel::Email, Channel::Sms],
    };
    let mut key = ArtifactKey {
        company_id,
        request_id,
        recipient_id,
        channel: Channel::Email,
        lane: lane(&params)?,
    };
    for channel in channels {
        key.channel = channel;
        if let Some(artifact) = store.get(&key).await? {
            return Ok(json(StatusCode::OK, &artifact));
        }
    }
    Err(ApiError::not_found(format!(
        "no artifact for recipient {:?} of request {:?} of company {:?}",
        key.recipient_id.as_str(),
        key.request_id.as_str(),
        key.company_id.as_str()
    )))
}
