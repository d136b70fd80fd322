//! `PUT` and `GET /v1/companies/{company}/templates/{id}`: versioned
//! template bundles. A template is compiled before it is stored, so a
//! stored version always renders; each PUT adds a version, and a version
//! never changes. Every version of a template is on the same channel, so
//! a request that names the template without a version always fits it.

use artifact_pipeline::StoredTemplate;
use artifact_render::CompiledTemplate;
use artifact_render::request::{CompanyId, TemplateId};
use artifact_render::template::{Channel, TemplateParts};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{check_template_size, json, segment, with_location};
use crate::error::{ApiError, Problem, ProblemKind, TemplateSource};
use crate::extract::{JsonBody, Params, PathParams, Shared, parse_id, parse_json};
use crate::state::AppState;

/// A template to store.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    /// `email` or `sms`.
    #[schema(value_type = String)]
    pub channel: Channel,
    /// `subject`, `preheader`, `html` (or `mjml`), `text`, `sms`,
    /// `inline_css` and `missing_data` (`empty`, `skip` or `fail`).
    #[schema(value_type = Object)]
    pub parts: TemplateParts,
}

/// The version a PUT stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateStored {
    /// The version this PUT created: 1 for a new template.
    pub version: u32,
    /// What compiling found that the author should know (links left
    /// untracked, …), as `part <part> line <n>: <message>`.
    pub warnings: Vec<String>,
}

/// A stored version and the versions there are.
#[derive(Debug, Serialize)]
struct TemplateView {
    #[serde(flatten)]
    stored: StoredTemplate,
    versions: Vec<u32>,
}

fn ids(company: &str, id: &str) -> Result<(CompanyId, TemplateId), ApiError> {
    Ok((
        parse_id("company", company, CompanyId::parse)?,
        parse_id("id", id, TemplateId::parse)?,
    ))
}

/// Refuses a new version on another channel than the template's. The
/// check precedes the put rather than being part of it (the port has no
/// conditional put), so two first PUTs of one id racing on different
/// channels could both land.
async fn check_channel(
    state: &AppState,
    company: &CompanyId,
    id: &TemplateId,
    channel: Channel,
) -> Result<(), ApiError> {
    match state.templates.get(company, id, None).await? {
        Some(latest) if latest.channel != channel => Err(ApiError::new(
            ProblemKind::Conflict,
            format!(
                "template {:?} is a {} template (version {}); a new version cannot be {}: \
                 store it under another id",
                id.as_str(),
                latest.channel,
                latest.version,
                channel
            ),
        )
        .with_field("channel")),
        _ => Ok(()),
    }
}

/// Compiles and stores a new version of a template, on the channel of the
/// versions before it.
#[utoipa::path(
    put,
    path = "/v1/companies/{company}/templates/{id}",
    operation_id = "put_template",
    tag = "templates",
    params(
        ("company" = String, Path, description = "The company"),
        ("id" = String, Path, description = "The template id: ASCII letters, digits, `_`, `-`, `.`"),
    ),
    request_body(content = TemplateBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Stored as a new version", body = TemplateStored,
            headers(("location" = String, description = "The stored version's URL"))),
        (status = 400, description = "Malformed JSON or id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The template's versions are on another channel; `field` is \
                                      `channel`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Template over the size limit", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "The template does not compile; `line` and `field` (`parts.<part>`) \
                                      say where", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn put(
    State(state): State<Shared>,
    PathParams((company, id)): PathParams<(String, String)>,
    params: Params,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    params.only(&[])?;
    let (company, id) = ids(&company, &id)?;
    let TemplateBody { channel, parts } = parse_json(&body)?;
    check_template_size(&parts, state.limits.max_template_bytes, "parts")?;
    check_channel(&state, &company, &id, channel).await?;
    // Compiling MJML and inlining CSS take real CPU time.
    let limits = state.renderer.limits().clone();
    let name = id.clone();
    let (parts, compiled) = tokio::task::spawn_blocking(move || {
        let compiled = CompiledTemplate::compile(name.as_str(), channel, &parts, &limits);
        (parts, compiled)
    })
    .await
    .map_err(|error| ApiError::internal("template compile failed", error))?;
    let compiled = compiled
        .map_err(|error| ApiError::from_template_error(&error, TemplateSource::Parts("parts")))?;
    let stored = state.templates.put(&company, &id, channel, parts).await?;
    let location = format!(
        "/v1/companies/{}/templates/{}?version={}",
        segment(company.as_str()),
        segment(id.as_str()),
        stored.version
    );
    let body = TemplateStored {
        version: stored.version,
        warnings: compiled
            .warnings()
            .iter()
            .map(ToString::to_string)
            .collect(),
    };
    Ok(with_location(json(StatusCode::CREATED, &body), &location))
}

/// A stored template version (the latest unless `version` is given), with
/// the list of its versions.
#[utoipa::path(
    get,
    path = "/v1/companies/{company}/templates/{id}",
    operation_id = "get_template",
    tag = "templates",
    params(
        ("company" = String, Path, description = "The company"),
        ("id" = String, Path, description = "The template id"),
        ("version" = Option<u32>, Query, description = "A version; the latest when absent"),
    ),
    responses(
        (status = 200, description = "company_id, template_id, version, channel, parts, created_at, versions",
            body = Object),
        (status = 400, description = "Malformed id or version", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such template (or version) for this company", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get(
    State(state): State<Shared>,
    PathParams((company, id)): PathParams<(String, String)>,
    params: Params,
) -> Result<Response, ApiError> {
    let params = params.only(&["version"])?;
    let (company, id) = ids(&company, &id)?;
    let version = params.parse::<u32>("version")?;
    let Some(stored) = state.templates.get(&company, &id, version).await? else {
        let what = match version {
            Some(version) => format!("template {:?} version {version}", id.as_str()),
            None => format!("template {:?}", id.as_str()),
        };
        return Err(ApiError::not_found(format!(
            "{what} not found for company {:?}",
            company.as_str()
        )));
    };
    let versions = state.templates.versions(&company, &id).await?;
    Ok(json(StatusCode::OK, &TemplateView { stored, versions }))
}
