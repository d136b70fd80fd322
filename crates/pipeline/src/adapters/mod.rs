//! Adapters: implementations of the ports in [`crate::ports`]. Each lives in
//! its own folder and keeps its types behind the port; all of them pass the
//! tests in [`crate::contract`].

pub mod embedded;
pub mod nats;
pub mod postgres;

use std::ops::Range;
use std::time::Duration;

use jiff::Timestamp;

use crate::{Error, Lane, PortResult};

/// Maps a failed store call to [`Error::Backend`], naming what was being done.
pub(crate) trait OrBackend<T> {
    fn or_backend(self, doing: &str) -> PortResult<T>;
}

impl<T, E> OrBackend<T> for Result<T, E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn or_backend(self, doing: &str) -> PortResult<T> {
        self.map_err(|e| Error::backend(doing, e))
    }
}

/// `url` with its password (`user:password@`, `?password=`) shown as `***`:
/// for logs and error messages.
pub fn redacted_url(url: &str) -> String {
    let (before_query, query) = url
        .split_once('?')
        .map_or((url, None), |(a, q)| (a, Some(q)));
    let shown = match before_query.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
            let authority = match authority.rsplit_once('@') {
                Some((userinfo, host)) => match userinfo.split_once(':') {
                    Some((user, _)) => format!("{user}:***@{host}"),
                    None => authority.to_owned(),
                },
                None => authority.to_owned(),
            };
            let slash = if rest.contains('/') { "/" } else { "" };
            format!("{scheme}://{authority}{slash}{path}")
        }
        None => before_query.to_owned(),
    };
    match query {
        None => shown,
        Some(query) => {
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                        format!("{name}=***")
                    }
                    _ => param.to_owned(),
                })
                .collect();
            format!("{shown}?{}", params.join("&"))
        }
    }
}

/// The stored name of a lane jobs are mirrored to; production is not one.
pub(crate) fn mirrored_lane_name(lane: Lane) -> PortResult<&'static str> {
    match lane {
        Lane::Canary | Lane::Control => Ok(lane.as_str()),
        Lane::Production => Err(Error::Invalid(
            "production is not mirrored to: give the canary or control lane".into(),
        )),
    }
}

/// The longest a failed batch waits for its retry.
const MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);

/// The wait before delivering a batch again after its `attempts`-th failed
/// delivery: `base`, doubling each time, at most [`MAX_BACKOFF`].
pub(crate) fn backoff(base: Duration, attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(31);
    base.saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

/// Consecutive ranges of at most `size` covering `0..count`.
pub(crate) fn batch_ranges(count: usize, size: usize) -> Vec<Range<usize>> {
    (0..count)
        .step_by(size)
        .map(|start| start..count.min(start + size))
        .collect()
}

/// A timestamp as stored: RFC 3339 in UTC with exactly nine fractional
/// digits, so that SQL compares and orders the text as it would the times.
pub(crate) fn timestamp_text(at: Timestamp) -> String {
    format!("{at:.9}")
}

/// The serde name of a unit variant (`"high"`, `"done"`): the one spelling
/// the API, the request JSON and this store share.
pub(crate) fn variant_name<T: serde::Serialize>(value: &T) -> PortResult<String> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => Ok(name),
        Ok(other) => Err(Error::backend(
            "naming a variant",
            format!("not a name: {other}"),
        )),
        Err(e) => Err(Error::backend("naming a variant", e)),
    }
}

/// The variant a stored name (see [`variant_name`]) stands for.
pub(crate) fn parse_variant<T: serde::de::DeserializeOwned>(
    text: &str,
    column: &str,
) -> PortResult<T> {
    let name = serde::de::value::StrDeserializer::<serde::de::value::Error>::new(text);
    T::deserialize(name).map_err(|e| Error::backend(format!("reading column {column} {text:?}"), e))
}

/// Reads an id column.
pub(crate) fn parse_id<T>(value: &str, parse: fn(&str) -> Result<T, String>) -> PortResult<T> {
    parse(value).map_err(|e| Error::backend(format!("reading stored id {value:?}"), e))
}

/// Reads a timestamp column written by [`timestamp_text`].
pub(crate) fn parse_timestamp(text: &str, column: &str) -> PortResult<Timestamp> {
    text.parse()
        .map_err(|e| Error::backend(format!("reading column {column} {text:?}"), e))
}

/// Each profile's properties as JSON text, in order, once every one of them
/// is an object: a bad profile is named and nothing is written.
pub(crate) fn check_properties(
    profiles: &[(artifact_render::request::ProfileId, serde_json::Value)],
) -> PortResult<Vec<String>> {
    profiles
        .iter()
        .map(|(id, properties)| {
            if !properties.is_object() {
                return Err(Error::Invalid(format!(
                    "profile {:?}: properties must be a JSON object, not {}",
                    id.as_str(),
                    json_kind(properties)
                )));
            }
            serde_json::to_string(properties).or_backend("serializing a profile")
        })
        .collect()
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Each artifact as JSON, in order, once every one of them belongs to
/// `request`: a store keys rows by the artifact's own ids, and refusing
/// one that names another request keeps a worker bug from writing across
/// tenants.
pub(crate) fn check_artifacts(
    request: &artifact_render::RenderRequest,
    artifacts: &[artifact_render::Artifact],
) -> PortResult<Vec<String>> {
    artifacts
        .iter()
        .map(|artifact| {
            if artifact.company_id != *request.company_id()
                || artifact.request_id != *request.request_id()
            {
                return Err(Error::Invalid(format!(
                    "artifact for recipient {:?} belongs to request {}/{}, not {}/{}",
                    artifact.recipient_id.as_str(),
                    artifact.company_id,
                    artifact.request_id,
                    request.company_id(),
                    request.request_id()
                )));
            }
            serde_json::to_string(artifact).or_backend("serializing an artifact")
        })
        .collect()
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn ranges_are_consecutive_and_bounded() {
        assert_eq!(batch_ranges(5, 2), vec![0..2, 2..4, 4..5]);
        assert_eq!(batch_ranges(4, 2), vec![0..2, 2..4]);
        assert!(batch_ranges(0, 2).is_empty());
    }

    #[test]
    fn only_the_canary_and_control_lanes_are_mirrored_to() {
        assert_eq!(mirrored_lane_name(Lane::Canary).unwrap(), "canary");
        assert_eq!(mirrored_lane_name(Lane::Control).unwrap(), "control");
        let error = mirrored_lane_name(Lane::Production).unwrap_err();
        assert_eq!(
            error.to_string(),
            "production is not mirrored to: give the canary or control lane"
        );
    }

    #[test]
    fn passwords_in_urls_are_hidden() {
        assert_eq!(
            redacted_url("postgres://app:s3cret@db:5432/artifact"),
            "postgres://app:***@db:5432/artifact"
        );
        assert_eq!(redacted_url("nats://u:p@h:4222"), "nats://u:***@h:4222");
        assert_eq!(
            redacted_url("postgres://app@db/x?sslmode=disable&password=s3cret"),
            "postgres://app@db/x?sslmode=disable&password=***"
        );
        assert_eq!(
            redacted_url("postgres://postgres@127.0.0.1:5432/test"),
            "postgres://postgres@127.0.0.1:5432/test"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let base = Duration::from_secs(1);
        assert_eq!(backoff(base, 1), base);
        assert_eq!(backoff(base, 3), base * 4);
        assert_eq!(backoff(base, 30), MAX_BACKOFF);
        assert_eq!(backoff(base, u32::MAX), MAX_BACKOFF);
    }
}
