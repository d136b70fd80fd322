//! `/v1/flags`: the rollout flags, read and changed while the service runs.

use artifact_pipeline::flags::Flag;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::json;
use crate::error::{ApiError, Problem};
use crate::extract::{Params, PathParams, Shared};

/// Every flag: `{"name": {"percent", "key"}}`.
#[utoipa::path(
    get,
    path = "/v1/flags",
    operation_id = "list_flags",
    tag = "operations",
    responses((status = 200, description = "Every rollout flag by name, with `percent` and `key` \
        (`company`, `message` or `recipient`)", body = Object)),
)]
pub(crate) async fn list(
    State(state): State<Shared>,
    params: Params,
) -> Result<Response, ApiError> {
    params.only(&[])?;
    Ok(json(StatusCode::OK, &state.flags.all()))
}

/// Creates or changes a flag: `{"percent": 5, "key": "company"}`. Every
/// later question gets the new answer; nothing restarts.
#[utoipa::path(
    put,
    path = "/v1/flags/{name}",
    operation_id = "put_flag",
    tag = "operations",
    params(("name" = String, Path, description = "The flag")),
    request_body(content = Object, description = "`percent` (0 to 100) and `key` \
        (`company`, `message` or `recipient`)"),
    responses(
        (status = 200, description = "The flag as it now is", body = Object),
        (status = 422, description = "The flag is invalid", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub(crate) async fn put(
    State(state): State<Shared>,
    PathParams(name): PathParams<String>,
    params: Params,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    params.only(&[])?;
    let flag: Flag = serde_json::from_slice(&body).map_err(|e| ApiError::from_json(&e, None))?;
    state.flags.set(&name, flag).map_err(ApiError::invalid)?;
    Ok(json(StatusCode::OK, &flag))
}

/// Removes a flag: it answers off from now on. (The worker reads its
/// `profile_projection` flag only while it exists; once removed, the
/// `profile_projection` setting decides again. To turn projection off for
/// everyone, set the flag to 0 percent.)
#[utoipa::path(
    delete,
    path = "/v1/flags/{name}",
    operation_id = "delete_flag",
    tag = "operations",
    params(("name" = String, Path, description = "The flag")),
    responses(
        (status = 204, description = "The flag is gone"),
        (status = 404, description = "No such flag", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub(crate) async fn delete(
    State(state): State<Shared>,
    PathParams(name): PathParams<String>,
    params: Params,
) -> Result<Response, ApiError> {
    params.only(&[])?;
    if state.flags.remove(&name) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found(format!("no flag {name:?}")))
    }
}
