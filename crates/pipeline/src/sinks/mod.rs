//! Artifact sinks that are not stores: an outbox folder, an NDJSON file and
//! a discard sink for load tests. The embedded store is a sink too (see
//! `adapters::embedded`).

mod discard;
mod ndjson;
mod outbox;

pub use discard::DiscardSink;
pub(crate) use ndjson::ArtifactLine;
pub use ndjson::NdjsonSink;
pub use outbox::OutboxSink;

use crate::Error;

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, Error> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(|e| Error::backend(what, e)),
        Err(join) => Err(Error::backend(what, join)),
    }
}

#[cfg(test)]
mod tests;
