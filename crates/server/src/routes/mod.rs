//! The handlers, one file per area of the API, and what they share:
//! JSON responses, URL building and the template size check.

pub(crate) mod artifacts;
pub(crate) mod audit;
pub(crate) mod events;
pub(crate) mod flags;
pub(crate) mod ops;
pub(crate) mod previews;
pub(crate) mod profiles;
pub(crate) mod requests;
pub(crate) mod templates;
pub(crate) mod tracking;

use artifact_render::template::TemplateParts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;

use crate::error::ApiError;

/// A JSON response. Serializing the API's own types cannot fail; if it
/// ever does, that is a bug answered as a 500.
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut response = (status, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(error) => ApiError::internal("cannot serialize the response", error).into_response(),
    }
}

/// Adds a `Location` header. The value is built from percent-encoded ids,
/// so it is always a valid header value.
pub(crate) fn with_location(mut response: Response, location: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Everything but RFC 3986's unreserved characters is escaped, so an id
/// holding `/`, `?`, `&` or spaces stays one path segment or query value.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `id` as one URL path segment or query value.
pub(crate) fn segment(id: &str) -> String {
    utf8_percent_encode(id, SEGMENT).to_string()
}

/// Total bytes of a template's sources.
pub(crate) fn template_bytes(parts: &TemplateParts) -> usize {
    [
        &parts.subject,
        &parts.preheader,
        &parts.html,
        &parts.text,
        &parts.sms,
        &parts.mjml,
    ]
    .into_iter()
    .flatten()
    .map(String::len)
    .sum()
}

/// Refuses a template larger than `limit`; `field` is where the client
/// sent it.
pub(crate) fn check_template_size(
    parts: &TemplateParts,
    limit: usize,
    field: &str,
) -> Result<(), ApiError> {
    let size = template_bytes(parts);
    if size > limit {
        return Err(ApiError::too_large(format!(
            "the template's parts total {size} bytes, more than the limit of {limit} bytes"
        ))
        .with_field(field));
    }
    Ok(())
}

/// The page size of a listing when `limit` is not given.
pub(crate) const DEFAULT_PAGE: usize = 100;
/// The largest page of events and dead letters, which are small.
pub(crate) const MAX_PAGE: usize = 1000;
/// The largest page of artifacts: one can be megabytes.
pub(crate) const MAX_ARTIFACT_PAGE: usize = 100;

/// The `limit` query parameter: 1 to `max`, [`DEFAULT_PAGE`] when absent.
pub(crate) fn page_limit(params: &crate::extract::Params, max: usize) -> Result<usize, ApiError> {
    match params.parse::<usize>("limit")? {
        None => Ok(DEFAULT_PAGE.min(max)),
        Some(limit) if (1..=max).contains(&limit) => Ok(limit),
        Some(limit) => Err(ApiError::bad_parameter(
            "limit",
            format!("limit {limit} is out of range; give 1 to {max}"),
        )),
    }
}
