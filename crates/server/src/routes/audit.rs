//! `GET` and `DELETE /v1/companies/{company}/audit`: what the sampled
//! recipients' renders read, when the service audits a sample of traffic.

use artifact_pipeline::audit::{MAX_AUDITED_RENDERS, TrafficAudit};
use artifact_render::request::CompanyId;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::json;
use crate::error::{ApiError, Problem};
use crate::extract::{Params, PathParams, Shared, parse_id};

fn audit_of<'a>(
    state: &'a crate::AppState,
    company: &str,
    params: Params,
) -> Result<(&'a TrafficAudit, CompanyId), ApiError> {
    params.only(&[])?;
    let company = parse_id("company", company, CompanyId::parse)?;
    let audit = state.audit.as_deref().ok_or_else(|| {
        ApiError::not_found(
            "the traffic audit is off: start the service with --audit-sample FRACTION \
             (or [service] audit_sample) to audit a sample of recipients",
        )
    })?;
    Ok((audit, company))
}

/// The company's audit so far: each template's reads (path, part, lines,
/// renders, present, missing), its payload JSON Schema, and the profile
/// fields no audited render read. Sampling pauses after
/// `MAX_AUDITED_RENDERS` renders until the audit is reset.
#[utoipa::path(
    get,
    path = "/v1/companies/{company}/audit",
    operation_id = "get_audit",
    tag = "operations",
    params(("company" = String, Path, description = "The company")),
    responses(
        (status = 200, description = "The audit: `sample`, `audited_renders`, `profiles`, \
            `templates` (each with `reads` and `schema`) and `unread_profile_fields`", body = Object),
        (status = 404, description = "The audit is off, or nothing of the company was audited yet",
            body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get(
    State(state): State<Shared>,
    PathParams(company): PathParams<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let (audit, company) = audit_of(&state, &company, params)?;
    match audit.report(&company) {
        Some(report) => Ok(json(StatusCode::OK, &report)),
        None => Err(ApiError::not_found(format!(
            "nothing of company {:?} has been audited yet (the audit samples recipients as \
             workers render them; at most {MAX_AUDITED_RENDERS} renders are kept)",
            company.as_str()
        ))),
    }
}

/// Forgets the company's audit, so sampling starts over.
#[utoipa::path(
    delete,
    path = "/v1/companies/{company}/audit",
    operation_id = "reset_audit",
    tag = "operations",
    params(("company" = String, Path, description = "The company")),
    responses(
        (status = 204, description = "The audit is reset"),
        (status = 404, description = "The audit is off", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub(crate) async fn reset(
    State(state): State<Shared>,
    PathParams(company): PathParams<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let (audit, company) = audit_of(&state, &company, params)?;
    audit.reset(&company);
    Ok(StatusCode::NO_CONTENT.into_response())
}
