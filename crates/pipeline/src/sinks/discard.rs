use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use artifact_render::{Artifact, PreparedRequest};
use async_trait::async_trait;

use crate::ports::{ArtifactSink, Lane, PortResult};

/// Drops every artifact, counting them: for load tests that measure the
/// pipeline without the cost of storing its output.
#[derive(Debug, Default)]
pub struct DiscardSink {
    written: AtomicU64,
}

impl DiscardSink {
    /// Artifacts received so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl ArtifactSink for DiscardSink {
    async fn write(
        &self,
        _lane: Lane,
        _prepared: Arc<PreparedRequest>,
        artifacts: Arc<[Artifact]>,
    ) -> PortResult<()> {
        self.written
            .fetch_add(artifacts.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}
