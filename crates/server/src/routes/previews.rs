//! `POST /v1/previews`: renders one recipient of a request synchronously and
//! answers with the artifact, its `.eml` and what the author should know.
//! Nothing is queued or stored.

use std::sync::Arc;

use artifact_render::request::RecipientId;
use artifact_render::template::ProfileProjection;
use artifact_render::{Artifact, Outcome, RenderRequest};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::json;
use super::requests::{check_inline_size, request_limits};
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, Shared, parse_json};

/// The preview body. `request` is kept raw so that it is parsed by the
/// render core's own parser, whose errors name the field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewBody<'a> {
    #[serde(borrow)]
    request: &'a RawValue,
    #[serde(default)]
    recipient_id: Option<RecipientId>,
    #[serde(default)]
    profile: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The body of a preview.
// The handler parses `PreviewBody`, which keeps `request` raw; this
// describes the same body for the OpenAPI document, which is all it is for.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct PreviewRequest {
    /// A render request; usually one recipient. Its template may be stored
    /// (for its company) or inline.
    #[schema(value_type = Object)]
    request: serde_json::Value,
    /// Which recipient to render; the first when absent.
    recipient_id: Option<String>,
    /// The recipient's profile properties. When absent, the profile is read
    /// from the company's profile store; a missing one renders as a
    /// `profile_not_found` error artifact.
    #[schema(value_type = Option<Object>)]
    profile: Option<serde_json::Value>,
}

/// A rendered preview.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewResponse {
    /// The recipient's artifact: email, sms, skipped or error.
    #[schema(value_type = Object)]
    pub artifact: Artifact,
    /// The email as an RFC 5322 message; null for other outcomes.
    pub eml: Option<String>,
    /// Template compile warnings (links left untracked, …) and the
    /// artifact's own warnings, each once.
    pub warnings: Vec<String>,
}

/// What the body parses into.
struct Parsed {
    request: RenderRequest,
    recipient_id: Option<RecipientId>,
    profile: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Renders one recipient of a request, synchronously.
#[utoipa::path(
    post,
    path = "/v1/previews",
    operation_id = "preview",
    tag = "previews",
    request_body(content = PreviewRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The rendered artifact", body = PreviewResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body or inline template over its limit", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid (`field` is its JSON path, e.g. \
                                      `request.render_recipients[0].profile_id`), or the template \
                                      is missing or does not compile", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub(crate) async fn preview(
    State(state): State<Shared>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let limits = request_limits(&state);
    let parsed = tokio::task::spawn_blocking(move || -> Result<Parsed, ApiError> {
        let outer: PreviewBody<'_> = parse_json(&body)?;
        let raw = outer.request.get().as_bytes();
        // `raw` borrows from `body`, so its offset there places the render
        // core's line and column in the client's document.
        let offset = (raw.as_ptr() as usize).saturating_sub(body.as_ptr() as usize);
        let request = RenderRequest::from_json(raw, &limits).map_err(|error| {
            ApiError::from_request_error(&error, raw)
                .shifted(&body, offset)
                .nested_in("request")
        })?;
        Ok(Parsed {
            request,
            recipient_id: outer.recipient_id,
            profile: outer.profile,
        })
    })
    .await
    .map_err(|error| ApiError::internal("preview parsing failed", error))??;
    check_inline_size(&parsed.request, &state, "request.")?;

    let request = Arc::new(parsed.request);
    let index = match &parsed.recipient_id {
        None => 0,
        Some(id) => request
            .render_recipients()
            .iter()
            .position(|recipient| &recipient.recipient_id == id)
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "recipient {:?} is not among request.render_recipients",
                    id.as_str()
                ))
                .with_field("recipient_id")
            })?,
    };
    let profile = match parsed.profile {
        Some(properties) => Some(Arc::new(serde_json::Value::Object(properties))),
        None => {
            let profile_id = &request.render_recipients()[index].profile_id;
            let mut found = state
                .profiles
                .fetch(
                    request.company_id(),
                    std::slice::from_ref(profile_id),
                    &ProfileProjection::All,
                )
                .await?;
            found.remove(profile_id)
        }
    };
    let prepared = state
        .renderer
        .prepare(request.clone())
        .await
        .map_err(|failure| ApiError::from_prepare(failure, &request, "request"))?;

    let response = tokio::task::spawn_blocking(move || {
        let recipient = &prepared.request().render_recipients()[index];
        let artifact = prepared.render(recipient, profile.as_ref());
        let eml = prepared.eml(&artifact);
        let mut warnings: Vec<String> = prepared
            .template()
            .warnings()
            .iter()
            .map(ToString::to_string)
            .collect();
        if let Outcome::Email(email) = &artifact.outcome {
            for warning in &email.warnings {
                if !warnings.contains(warning) {
                    warnings.push(warning.clone());
                }
            }
        }
        PreviewResponse {
            artifact,
            eml,
            warnings,
        }
    })
    .await
    .map_err(|error| ApiError::internal("the preview render failed", error))?;
    Ok(json(StatusCode::OK, &response))
}
