//! Extractors that answer their own failures as problems: axum's built-in
//! rejections are plain text, and every error of this API is
//! `application/problem+json`.
//!
//! Bodies are taken as bytes and parsed by the handlers, which know the
//! JSON paths to report; these extractors check the content type and the
//! size limit only.

use std::str::FromStr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ProblemKind};
use crate::state::AppState;

/// The router's state as handlers receive it.
pub(crate) type Shared = Arc<AppState>;

/// A JSON body (`application/json` or any `+json` type), as bytes, within
/// [`ApiLimits::max_body_bytes`](crate::ApiLimits::max_body_bytes).
#[derive(Debug)]
pub(crate) struct JsonBody(pub Bytes);

impl FromRequest<Shared> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &Shared) -> Result<Self, ApiError> {
        require_content_type(request.headers(), "application/json", |essence| {
            essence == "application/json" || essence.ends_with("+json")
        })?;
        read_body(request, state, state.limits.max_body_bytes)
            .await
            .map(Self)
    }
}

/// A newline-delimited JSON body, as bytes, within
/// [`ApiLimits::max_import_bytes`](crate::ApiLimits::max_import_bytes).
#[derive(Debug)]
pub(crate) struct NdjsonBody(pub Bytes);

/// Media types NDJSON travels under in the wild.
const NDJSON_TYPES: &[&str] = &[
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/json-lines",
    "application/json",
];

impl FromRequest<Shared> for NdjsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &Shared) -> Result<Self, ApiError> {
        require_content_type(request.headers(), "application/x-ndjson", |essence| {
            NDJSON_TYPES.contains(&essence)
        })?;
        read_body(request, state, state.limits.max_import_bytes)
            .await
            .map(Self)
    }
}

/// A small body of any type (the one-click unsubscribe form), as bytes,
/// of at most `LIMIT` bytes: the route that takes it sets
/// `DefaultBodyLimit::max(LIMIT)`.
#[derive(Debug)]
pub(crate) struct RawBody<const LIMIT: usize>(pub Bytes);

impl<const LIMIT: usize> FromRequest<Shared> for RawBody<LIMIT> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &Shared) -> Result<Self, ApiError> {
        read_body(request, state, LIMIT).await.map(Self)
    }
}

/// Refuses a body whose `Content-Type` is missing or not `accepts`ed.
fn require_content_type(
    headers: &HeaderMap,
    expected: &str,
    accepts: impl Fn(&str) -> bool,
) -> Result<(), ApiError> {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    match essence {
        Some(essence) if accepts(&essence) => Ok(()),
        Some(essence) => Err(ApiError::new(
            ProblemKind::UnsupportedMediaType,
            format!("content type {essence:?} is not accepted; send the body as {expected}"),
        )
        .with_field("content-type")),
        None => Err(ApiError::new(
            ProblemKind::UnsupportedMediaType,
            format!("the content-type header is missing; send the body as {expected}"),
        )
        .with_field("content-type")),
    }
}

/// Reads the whole body. The size limit itself is enforced by the
/// `DefaultBodyLimit` layer the router sets per route; here its rejection
/// becomes a problem that names the limit.
async fn read_body(request: Request, state: &Shared, limit: usize) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large(format!(
                    "the request body is larger than the limit of {limit} bytes; \
                     split it into smaller requests"
                ))
            } else {
                ApiError::new(
                    ProblemKind::BadParameter,
                    format!("cannot read the request body: {}", rejection.body_text()),
                )
            }
        })
}

/// Path parameters, with a malformed path answered as a 400 problem that
/// names the path, and the parameter when axum tells which one it is.
#[derive(Debug)]
pub(crate) struct PathParams<T>(pub T);

impl<T, S> FromRequestParts<S> for PathParams<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let rejection = match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => return Ok(Self(value)),
            Err(rejection) => rejection,
        };
        let name = match &rejection {
            PathRejection::FailedToDeserializePathParams(error) => match error.kind() {
                ErrorKind::ParseErrorAtKey { key, .. }
                | ErrorKind::InvalidUtf8InPathParam { key }
                | ErrorKind::DeserializeError { key, .. } => key.as_str(),
                _ => "",
            },
            _ => "",
        };
        Err(ApiError::new(
            ProblemKind::BadParameter,
            format!(
                "malformed path {:?}: {}",
                parts.uri.path(),
                rejection.body_text()
            ),
        )
        .with_field(name))
    }
}

/// The query string as name/value pairs. Handlers name the parameters they
/// read with [`Params::only`], so a misspelt one is reported instead of
/// silently ignored.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<Vec<(String, String)>>::from_request_parts(parts, state).await {
            Ok(Query(pairs)) => Ok(Self(pairs)),
            Err(rejection) => Err(ApiError::new(
                ProblemKind::BadParameter,
                format!("malformed query string: {}", rejection.body_text()),
            )),
        }
    }
}

impl Params {
    /// Refuses any parameter not in `allowed`, and any given twice.
    pub fn only(self, allowed: &[&str]) -> Result<Self, ApiError> {
        for (index, (name, _)) in self.0.iter().enumerate() {
            if !allowed.contains(&name.as_str()) {
                let known = if allowed.is_empty() {
                    "this endpoint takes no query parameters".to_owned()
                } else {
                    format!("known parameters: {}", allowed.join(", "))
                };
                return Err(ApiError::bad_parameter(
                    name,
                    format!("unknown query parameter {name:?}; {known}"),
                ));
            }
            if self.0[..index].iter().any(|(other, _)| other == name) {
                return Err(ApiError::bad_parameter(
                    name,
                    format!("query parameter {name:?} is given more than once"),
                ));
            }
        }
        Ok(self)
    }

    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The value of `name`, which the client must give.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name).ok_or_else(|| {
            ApiError::bad_parameter(name, format!("query parameter {name:?} is required"))
        })
    }

    /// `name` parsed as a `T`, if given.
    pub fn parse<T>(&self, name: &str) -> Result<Option<T>, ApiError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        self.get(name)
            .map(|value| {
                value.parse().map_err(|error| {
                    ApiError::bad_parameter(
                        name,
                        format!("query parameter {name:?} ({value:?}) is invalid: {error}"),
                    )
                })
            })
            .transpose()
    }
}

/// Parses an id from a path or query parameter, naming it when it is bad.
pub(crate) fn parse_id<T>(
    name: &str,
    value: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, ApiError> {
    parse(value).map_err(|error| ApiError::bad_parameter(name, format!("{name} {error}")))
}

/// Parses a JSON document into `T`, naming the JSON path of a bad value and
/// the line and column of a syntax error.
pub(crate) fn parse_json<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|error| {
        let path = error.path().to_string();
        let path = (path != ".").then_some(path);
        ApiError::from_json(error.inner(), path)
    })?;
    de.end()
        .map_err(|error| ApiError::from_json(&error, None))?;
    Ok(value)
}
