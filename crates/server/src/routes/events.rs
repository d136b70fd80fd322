//! `GET /v1/companies/{company}/response-events` and `…/engagement-events`:
//! the logs clients poll instead of subscribing, read a page at a time by
//! sequence number.

use artifact_render::request::CompanyId;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

use super::{MAX_PAGE, json, page_limit};
use crate::error::{ApiError, Problem};
use crate::extract::{Params, PathParams, Shared, parse_id};

/// An event with its sequence number.
#[derive(Debug, Serialize)]
struct Sequenced<E> {
    seq: u64,
    #[serde(flatten)]
    event: E,
}

/// One page of events.
#[derive(Debug, Serialize)]
struct EventPage<E> {
    events: Vec<Sequenced<E>>,
    next_after: u64,
}

/// One page of events.
// `EventPage` is generic over the event type; this describes it for the
// OpenAPI document, which is all it is for.
#[derive(Debug, ToSchema)]
#[schema(as = EventPage)]
#[allow(dead_code)]
pub struct EventPageSchema {
    /// Oldest first; each has `seq` and the event's fields.
    #[schema(value_type = Vec<Object>)]
    events: Vec<serde_json::Value>,
    /// Pass as `after` for the next page (unchanged when this one is empty).
    next_after: u64,
}

impl<E> EventPage<E> {
    fn of(events: Vec<(u64, E)>, after: u64) -> Self {
        let next_after = events.last().map_or(after, |(seq, _)| *seq);
        Self {
            events: events
                .into_iter()
                .map(|(seq, event)| Sequenced { seq, event })
                .collect(),
            next_after,
        }
    }
}

/// The company and paging parameters of an event listing.
fn paging(company: &str, params: Params) -> Result<(CompanyId, u64, usize), ApiError> {
    let params = params.only(&["after", "limit"])?;
    let company = parse_id("company", company, CompanyId::parse)?;
    let after = params.parse::<u64>("after")?.unwrap_or(0);
    Ok((company, after, page_limit(&params, MAX_PAGE)?))
}

/// Response events: one per finished or failed request, with its counts
/// and `response_metadata`.
#[utoipa::path(
    get,
    path = "/v1/companies/{company}/response-events",
    operation_id = "list_response_events",
    tag = "events",
    params(
        ("company" = String, Path, description = "The company"),
        ("after" = Option<u64>, Query, description = "Sequence number to start after (default 0)"),
        ("limit" = Option<usize>, Query, description = "Page size, 1 to 1000 (default 100)"),
    ),
    responses(
        (status = 200, description = "One page of events", body = EventPageSchema),
        (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn responses(
    State(state): State<Shared>,
    PathParams(company): PathParams<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let (company, after, limit) = paging(&company, params)?;
    let events = state.responses.list(&company, after, limit).await?;
    Ok(json(StatusCode::OK, &EventPage::of(events, after)))
}

/// Engagement events: clicks, opens and unsubscribes recorded by the
/// tracking endpoints.
#[utoipa::path(
    get,
    path = "/v1/companies/{company}/engagement-events",
    operation_id = "list_engagement_events",
    tag = "events",
    params(
        ("company" = String, Path, description = "The company"),
        ("after" = Option<u64>, Query, description = "Sequence number to start after (default 0)"),
        ("limit" = Option<usize>, Query, description = "Page size, 1 to 1000 (default 100)"),
    ),
    responses(
        (status = 200, description = "One page of events", body = EventPageSchema),
        (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn engagement(
    State(state): State<Shared>,
    PathParams(company): PathParams<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let (company, after, limit) = paging(&company, params)?;
    let events = state.engagement.list(&company, after, limit).await?;
    Ok(json(StatusCode::OK, &EventPage::of(events, after)))
}
