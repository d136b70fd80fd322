//! The pipeline: the ports a render request travels through (queue,
//! profile and template stores, artifact sinks, response events), the
//! worker that drives requests through the render core, and the adapters
//! that implement the ports.
//!
//! The pipeline holds no rendering logic: it fetches, batches, hands
//! recipients to `artifact_render` and records what came out.

pub mod adapters;
pub mod audit;
pub mod canary;
pub mod contract;
pub mod flags;
pub mod metrics;
pub mod ports;
pub mod sinks;
pub mod worker;

pub use ports::*;

/// Why a port call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input was refused; the message names what is wrong.
    #[error("{0}")]
    Invalid(String),
    /// The backing store or broker failed; retrying may help.
    #[error("{context}: {source}")]
    Backend {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    pub fn backend(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Backend {
            context: context.into(),
            source: source.into(),
        }
    }
}
