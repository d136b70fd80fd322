//! Recipient profiles: `PUT` and `GET
//! /v1/companies/{company}/profiles/{id}`, and the bulk NDJSON import
//! `POST /v1/companies/{company}/profiles:import`.
//!
//! The import is all-or-nothing as far as the client's data goes: every
//! line is validated before the first is written, so a bad line stores
//! nothing. It is then written in chunks of [`IMPORT_CHUNK`]; only a
//! failure of the store itself, mid-way, can leave earlier chunks written,
//! and because a put replaces, retrying the whole import is safe.

use artifact_render::request::{CompanyId, ProfileId};
use artifact_render::template::ProfileProjection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::json;
use crate::error::{ApiError, Problem, ProblemKind};
use crate::extract::{JsonBody, NdjsonBody, Params, PathParams, Shared, parse_id, parse_json};

/// Profiles written per store call during an import: big enough to
/// amortize a transaction, small enough not to hold the store for long.
pub const IMPORT_CHUNK: usize = 5_000;

/// One line of an import.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportLine {
    profile_id: ProfileId,
    properties: serde_json::Map<String, serde_json::Value>,
}

/// How many profiles an import stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct Imported {
    /// Profiles stored (created or replaced).
    pub imported: usize,
}

/// Creates or replaces one profile. The body is its properties, a JSON
/// object.
#[utoipa::path(
    put,
    path = "/v1/companies/{company}/profiles/{id}",
    operation_id = "put_profile",
    tag = "profiles",
    params(
        ("company" = String, Path, description = "The company"),
        ("id" = String, Path, description = "The profile id"),
    ),
    request_body(content = Object, content_type = "application/json",
        description = "The profile's properties (a JSON object)"),
    responses(
        (status = 204, description = "Stored"),
        (status = 400, description = "Malformed JSON or id", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a JSON object", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn put(
    State(state): State<Shared>,
    PathParams((company, id)): PathParams<(String, String)>,
    params: Params,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    params.only(&[])?;
    let company = parse_id("company", &company, CompanyId::parse)?;
    let id = parse_id("id", &id, ProfileId::parse)?;
    let properties: serde_json::Value = parse_json(&body)?;
    if !properties.is_object() {
        return Err(ApiError::invalid(
            "the body must be a JSON object of the profile's properties",
        ));
    }
    state.profiles.put(&company, vec![(id, properties)]).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// One profile's properties.
#[utoipa::path(
    get,
    path = "/v1/companies/{company}/profiles/{id}",
    operation_id = "get_profile",
    tag = "profiles",
    params(
        ("company" = String, Path, description = "The company"),
        ("id" = String, Path, description = "The profile id"),
    ),
    responses(
        (status = 200, description = "The profile's properties", body = Object),
        (status = 404, description = "No such profile for this company", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get(
    State(state): State<Shared>,
    PathParams((company, id)): PathParams<(String, String)>,
    params: Params,
) -> Result<Response, ApiError> {
    params.only(&[])?;
    let company = parse_id("company", &company, CompanyId::parse)?;
    let id = parse_id("id", &id, ProfileId::parse)?;
    let mut found = state
        .profiles
        .fetch(&company, std::slice::from_ref(&id), &ProfileProjection::All)
        .await?;
    match found.remove(&id) {
        Some(properties) => Ok(json(StatusCode::OK, &*properties)),
        None => Err(ApiError::not_found(format!(
            "profile {:?} not found for company {:?}",
            id.as_str(),
            company.as_str()
        ))),
    }
}

/// Imports profiles from NDJSON, one `{"profile_id": …, "properties": {…}}`
/// per line (blank lines are skipped). A bad line is reported by its
/// number and nothing is stored.
#[utoipa::path(
    post,
    path = "/v1/companies/{company}/profiles:import",
    operation_id = "import_profiles",
    tag = "profiles",
    params(("company" = String, Path, description = "The company")),
    request_body(content = String, content_type = "application/x-ndjson",
        description = "One JSON object per line: {\"profile_id\": \"p1\", \"properties\": {…}}"),
    responses(
        (status = 200, description = "Every line was stored", body = Imported),
        (status = 400, description = "A line is not well-formed JSON; `line` names it", body = Problem,
            content_type = "application/problem+json"),
        (status = 413, description = "Too many lines or bytes", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A line is invalid; `line` and `field` name it. Nothing was stored",
            body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store failed mid-way; earlier chunks may be stored, and \
                                      retrying the whole import is safe", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub(crate) async fn import(
    State(state): State<Shared>,
    PathParams(company): PathParams<String>,
    params: Params,
    NdjsonBody(body): NdjsonBody,
) -> Result<Response, ApiError> {
    params.only(&[])?;
    let company = parse_id("company", &company, CompanyId::parse)?;
    let max_lines = state.limits.max_import_lines;
    let profiles = tokio::task::spawn_blocking(move || parse_import(&body, max_lines))
        .await
        .map_err(|error| ApiError::internal("import parsing failed", error))??;

    let total = profiles.len();
    let mut stored = 0;
    let mut profiles = profiles.into_iter();
    loop {
        let chunk: Vec<_> = profiles.by_ref().take(IMPORT_CHUNK).collect();
        if chunk.is_empty() {
            break;
        }
        let len = chunk.len();
        if let Err(error) = state.profiles.put(&company, chunk).await {
            let api = ApiError::from(error);
            if api.kind() != ProblemKind::Unavailable {
                return Err(api);
            }
            return Err(ApiError::new(
                ProblemKind::Unavailable,
                format!(
                    "the profile store failed after {stored} of {total} profiles were stored; \
                     retrying the whole import is safe"
                ),
            )
            .caused_by(api));
        }
        stored += len;
    }
    Ok(json(StatusCode::OK, &Imported { imported: stored }))
}

/// Validates every line; the first bad one is the error, by line number.
fn parse_import(
    body: &[u8],
    max_lines: usize,
) -> Result<Vec<(ProfileId, serde_json::Value)>, ApiError> {
    let mut profiles = Vec::new();
    for (index, line) in body.split(|&b| b == b'\n').enumerate() {
        let number = index + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if profiles.len() == max_lines {
            return Err(ApiError::too_large(format!(
                "the import has more than {max_lines} profiles; split it into several imports"
            ))
            .at(Some(number), None));
        }
        let parsed: ImportLine = parse_json(line).map_err(|error| error.on_line(number))?;
        profiles.push((
            parsed.profile_id,
            serde_json::Value::Object(parsed.properties),
        ));
    }
    if profiles.is_empty() {
        return Err(ApiError::invalid(
            "the import is empty; send one {\"profile_id\": …, \"properties\": {…}} object per line",
        ));
    }
    Ok(profiles)
}
