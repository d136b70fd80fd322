//! The server's one error type, [`ApiError`], and its wire form: an RFC 9457
//! `application/problem+json` body that tells the client what to fix.
//!
//! Besides the standard members (`type`, `title`, `status`, `detail`) a
//! problem carries `field` (the JSON path or parameter at fault),
//! `line`/`column` (where malformed JSON broke, or the template line) and
//! `part` (the template part at fault), so a client can point its user at
//! the exact spot.

use std::error::Error as StdError;

use artifact_pipeline::worker::PrepareFailure;
use artifact_render::request::TemplateRef;
use artifact_render::{PrepareError, RenderRequest, RequestError, TemplateError};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tracing::warn;
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// What went wrong, as far as the client is concerned: each kind has its
/// own status, `type` URI and title.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The body is not well-formed JSON (or NDJSON).
    MalformedJson,
    /// A path or query parameter is missing or malformed.
    BadParameter,
    /// The body's media type is not one this endpoint reads.
    UnsupportedMediaType,
    /// The body is well-formed but a field's value is refused.
    InvalidRequest,
    /// A template does not compile, or a request does not fit its template.
    InvalidTemplate,
    /// A request names a stored template its company does not have.
    TemplateNotFound,
    /// The resource does not exist (or belongs to another company, which
    /// looks the same).
    NotFound,
    /// The path exists, but not with this method.
    MethodNotAllowed,
    /// The request contradicts what is stored (a template version on
    /// another channel than the template's).
    Conflict,
    /// The body, or a part of it, is larger than a configured limit.
    PayloadTooLarge,
    /// A backing store or the queue failed; retrying later may succeed.
    Unavailable,
    /// A bug in this server.
    Internal,
}

impl ProblemKind {
    /// The HTTP status this kind is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::MalformedJson | Self::BadParameter => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::InvalidRequest | Self::InvalidTemplate | Self::TemplateNotFound => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The last segment of the problem `type` URI.
    pub fn slug(self) -> &'static str {
        match self {
            Self::MalformedJson => "malformed-json",
            Self::BadParameter => "bad-parameter",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::InvalidRequest => "invalid-request",
            Self::InvalidTemplate => "invalid-template",
            Self::TemplateNotFound => "template-not-found",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload-too-large",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// A short summary that is the same for every occurrence.
    pub fn title(self) -> &'static str {
        match self {
            Self::MalformedJson => "The body is not well-formed JSON",
            Self::BadParameter => "A path or query parameter is invalid",
            Self::UnsupportedMediaType => "The body's content type is not accepted here",
            Self::InvalidRequest => "A field of the body is invalid",
            Self::InvalidTemplate => "The template cannot be used",
            Self::TemplateNotFound => "The named template does not exist for this company",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::Conflict => "The request conflicts with what is stored",
            Self::PayloadTooLarge => "The body is larger than the limit",
            Self::Unavailable => "A backing service is unavailable; retry later",
            Self::Internal => "Internal server error",
        }
    }

    /// The problem `type`: a `tag:` URI, which identifies the kind without
    /// pretending to be a page one can fetch.
    pub fn type_uri(self) -> String {
        format!("tag:artifact-pipeline,2026:problem/{}", self.slug())
    }
}

/// An error answered as `application/problem+json`.
///
/// Build one with a constructor named after its kind and add what is known:
///
/// ```
/// use artifact_server::error::{ApiError, ProblemKind};
/// let error = ApiError::invalid("must be a JSON object").with_field("properties");
/// assert_eq!(error.kind(), ProblemKind::InvalidRequest);
/// assert_eq!(error.field(), Some("properties"));
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
pub struct ApiError {
    kind: ProblemKind,
    detail: String,
    field: Option<String>,
    line: Option<usize>,
    column: Option<usize>,
    part: Option<&'static str>,
    /// The underlying failure, logged for 5xx and never sent to the client.
    #[source]
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl ApiError {
    /// An error of `kind`; `detail` says what to fix, in lower case.
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            field: None,
            line: None,
            column: None,
            part: None,
            source: None,
        }
    }

    /// A 422 about a field's value.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::InvalidRequest, detail)
    }

    /// A 400 about the named path or query parameter.
    pub fn bad_parameter(name: &str, detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::BadParameter, detail).with_field(name)
    }

    /// A 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::NotFound, detail)
    }

    /// A 413 naming the limit that was exceeded.
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::PayloadTooLarge, detail)
    }

    /// A 500; `source` is logged, not sent.
    pub fn internal(
        detail: impl Into<String>,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Self::new(ProblemKind::Internal, detail).caused_by(source)
    }

    /// Names the JSON path or parameter at fault. An empty name (the body as
    /// a whole) is left out.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        let field = field.into();
        self.field = (!field.is_empty()).then_some(field);
        self
    }

    /// Where in the body (or template part) the problem is.
    pub fn at(mut self, line: Option<usize>, column: Option<usize>) -> Self {
        self.line = line;
        self.column = column;
        self
    }

    /// Keeps the underlying failure for the log.
    pub fn caused_by(mut self, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// What went wrong, as far as the client is concerned.
    pub fn kind(&self) -> ProblemKind {
        self.kind
    }

    /// The HTTP status the error is answered with.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// What is wrong and how to fix it.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The JSON path or parameter at fault, if one is.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// Prefixes the field with `parent` (`request` + `render_recipients[0]`
    /// is `request.render_recipients[0]`), for bodies that nest another.
    pub(crate) fn nested_in(mut self, parent: &str) -> Self {
        self.field = Some(match self.field.take() {
            Some(field) if field.starts_with('[') => format!("{parent}{field}"),
            Some(field) => format!("{parent}.{field}"),
            None => parent.to_owned(),
        });
        self
    }

    /// Places an error found in one line of an NDJSON body on that line:
    /// the column stays, the line becomes `number`.
    pub(crate) fn on_line(mut self, number: usize) -> Self {
        self.detail = format!("line {number}: {}", self.detail);
        self.line = Some(number);
        self
    }

    /// Moves a position found in a document embedded at byte `offset` of
    /// `body` to where it is in `body`.
    pub(crate) fn shifted(mut self, body: &[u8], offset: usize) -> Self {
        let Some(line) = self.line else {
            return self;
        };
        let before = &body[..offset.min(body.len())];
        let base_line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let base_column = 1 + before.len()
            - before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |at| at + 1);
        if line == 1 {
            self.column = self.column.map(|column| column + base_column - 1);
        }
        self.line = Some(line + base_line - 1);
        self
    }

    /// The body this error is answered with.
    pub fn problem(&self) -> Problem {
        Problem {
            problem_type: self.kind.type_uri(),
            title: self.kind.title().to_owned(),
            status: self.kind.status().as_u16(),
            detail: self.detail.clone(),
            field: self.field.clone(),
            line: self.line,
            column: self.column,
            part: self.part.map(str::to_owned),
        }
    }

    /// A request the render core refused while parsing: the field's JSON
    /// path, and the line and column for malformed JSON. `body` is what was
    /// parsed, so that a syntax error can be told from a bad value.
    pub(crate) fn from_request_error(error: &RequestError, body: &[u8]) -> Self {
        // The render core does not say whether the JSON was malformed or a
        // value was refused; a second parse, only on this error path, tells:
        // a syntax error where the render core stopped is the former.
        if let Err(syntax) = serde_json::from_slice::<serde::de::IgnoredAny>(body)
            && !syntax.is_data()
            && (error.path().is_empty()
                || error.position() == Some((syntax.line(), syntax.column())))
        {
            let path = (!error.path().is_empty()).then(|| error.path().to_owned());
            return Self::from_json(&syntax, path);
        }
        let (line, column) = error.position().unzip();
        Self::invalid(error.message().to_owned())
            .with_field(field_path(error.path(), error.message()))
            .at(line, column)
    }

    /// A serde_json failure at `path`: 400 for syntax, 422 for a value.
    pub(crate) fn from_json(error: &serde_json::Error, path: Option<String>) -> Self {
        let kind = if error.is_data() {
            ProblemKind::InvalidRequest
        } else {
            ProblemKind::MalformedJson
        };
        let mut message = error.to_string();
        let position = (error.line() > 0).then(|| (error.line(), error.column()));
        if let Some((line, column)) = position {
            // serde_json appends the position; it travels in its own members.
            let suffix = format!(" at line {line} column {column}");
            if message.ends_with(&suffix) {
                message.truncate(message.len() - suffix.len());
            }
        }
        let (line, column) = position.unzip();
        let field = field_path(path.as_deref().unwrap_or_default(), &message);
        Self::new(kind, message).with_field(field).at(line, column)
    }

    /// A template that does not compile: its message names the template,
    /// part and line, which also travel in `part` and `line`; `source` says
    /// where the client sent or named it.
    pub(crate) fn from_template_error(error: &TemplateError, source: TemplateSource<'_>) -> Self {
        let part = error.part.map(|part| part.as_str());
        let field = match (source, part) {
            (TemplateSource::Parts(parts), Some(part)) => format!("{parts}.{part}"),
            (TemplateSource::Parts(field) | TemplateSource::Stored(field), _) => field.to_owned(),
        };
        let mut problem = Self::new(ProblemKind::InvalidTemplate, error.to_string())
            .with_field(field)
            .at(error.line, error.column);
        problem.part = part;
        problem
    }

    /// Why `request` cannot be bound to its template. `prefix` is the JSON
    /// path of the request within the body (empty for the request itself).
    pub(crate) fn from_prepare(
        failure: PrepareFailure,
        request: &RenderRequest,
        prefix: &str,
    ) -> Self {
        let path = |field: &str| {
            if prefix.is_empty() {
                field.to_owned()
            } else {
                format!("{prefix}.{field}")
            }
        };
        match failure {
            PrepareFailure::TemplateNotFound { id, version } => {
                let (field, what) = match version {
                    Some(version) => (
                        "channel_settings.template.version",
                        format!("template {:?} version {version}", id.as_str()),
                    ),
                    None => (
                        "channel_settings.template.id",
                        format!("template {:?}", id.as_str()),
                    ),
                };
                Self::new(
                    ProblemKind::TemplateNotFound,
                    format!("{what} not found; store it with PUT /v1/companies/{{company}}/templates/{{id}} first"),
                )
                .with_field(path(field))
            }
            PrepareFailure::Prepare(PrepareError::Template(error)) => {
                match request.channel_settings().template() {
                    TemplateRef::Inline(_) => Self::from_template_error(
                        &error,
                        TemplateSource::Parts(&path("channel_settings.template.inline")),
                    ),
                    TemplateRef::Stored { .. } => Self::from_template_error(
                        &error,
                        TemplateSource::Stored(&path("channel_settings.template")),
                    ),
                }
            }
            PrepareFailure::Prepare(PrepareError::Request(error)) => {
                Self::invalid(error.message().to_owned()).with_field(path(error.path()))
            }
            PrepareFailure::Port(error) => error.into(),
        }
    }
}

/// Where a template that does not compile came from, as the client sees
/// it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TemplateSource<'a> {
    /// Sent in the body, its parts at this JSON path (`parts`,
    /// `channel_settings.template.inline`): the field names the part.
    Parts(&'a str),
    /// Stored, and named by the reference at this JSON path: the part is
    /// not in the body, so it is only in `part`.
    Stored(&'a str),
}

/// The path of the field a message is about. serde reports a missing or
/// unknown field at the object that lacks or holds it; the client wants the
/// field itself (`render_recipients[0].profile_id`).
fn field_path(path: &str, message: &str) -> String {
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name);
    match named {
        Some(name) if path.is_empty() => name.to_owned(),
        Some(name) if path != name && !path.ends_with(&format!(".{name}")) => {
            format!("{path}.{name}")
        }
        _ => path.to_owned(),
    }
}

impl From<artifact_pipeline::Error> for ApiError {
    fn from(error: artifact_pipeline::Error) -> Self {
        match error {
            artifact_pipeline::Error::Invalid(message) => Self::invalid(message),
            other => Self::new(
                ProblemKind::Unavailable,
                "a backing store is unavailable; retry later",
            )
            .caused_by(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            let cause = self
                .source
                .as_deref()
                .map(|source| format!("{source:#}"))
                .unwrap_or_default();
            warn!(status = status.as_u16(), detail = %self.detail, %cause, "request failed");
        }
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

/// An RFC 9457 problem details object, with this API's extension members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct Problem {
    /// Identifies the kind of problem; stable, so clients can branch on it.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// The kind's summary, the same for every occurrence.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What is wrong with this request and how to fix it.
    pub detail: String,
    /// The JSON path (`render_recipients[0].profile_id`) or parameter name
    /// (`company_id`) at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// 1-based line in the body, the NDJSON line, or the template part line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// 1-based column in the body, for malformed JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// The template part at fault (`subject`, `html`, …), for a template
    /// that does not compile; with `line`, where in that part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<String>,
}
