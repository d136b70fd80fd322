//! What every handler shares: the ports, the renderer, the metrics and the
//! limits the API enforces at its edge.

use std::sync::Arc;

use artifact_pipeline::audit::TrafficAudit;
use artifact_pipeline::flags::Flags;
use artifact_pipeline::metrics::Metrics;
use artifact_pipeline::worker::Renderer;
use artifact_pipeline::{
    ArtifactStore, EngagementLog, ProfileStore, RequestQueue, ResponseLog, TemplateStore,
};

/// The ports, renderer and limits behind the router. Cloning is cheap:
/// everything is shared.
#[derive(Clone)]
pub struct AppState {
    /// Where accepted requests go, and where their status is read.
    pub queue: Arc<dyn RequestQueue>,
    /// Profiles for previews and the profile endpoints.
    pub profiles: Arc<dyn ProfileStore>,
    /// Where the template endpoints store versions; the renderer reads
    /// the same store.
    pub templates: Arc<dyn TemplateStore>,
    /// `None` when artifacts go to a sink that cannot be read back (an
    /// outbox folder, NDJSON): the artifact endpoints then answer 404.
    pub artifacts: Option<Arc<dyn ArtifactStore>>,
    /// Response events, for clients that poll.
    pub responses: Arc<dyn ResponseLog>,
    /// Where the tracking endpoints record clicks, opens and unsubscribes.
    pub engagement: Arc<dyn EngagementLog>,
    /// Binds requests to compiled templates; the same one the workers use,
    /// so a request the API accepts is one the workers can render.
    pub renderer: Arc<Renderer>,
    /// Shared with the workers; served at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The audit the workers add sampled renders to, when it is on.
    pub audit: Option<Arc<TrafficAudit>>,
    /// Rollout flags, shared with the workers; changed at `/v1/flags`.
    pub flags: Arc<Flags>,
    /// What the API accepts at its edge.
    pub limits: ApiLimits,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("artifacts_stored", &self.artifacts.is_some())
            .field("renderer", &self.renderer)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// What the API accepts at its edge. Each limit, when exceeded, is answered
/// with a problem that names it and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiLimits {
    /// Largest request body, in bytes, for every endpoint but the profile
    /// import and the one-click unsubscribe (4 KiB, fixed). Default 32 MiB.
    pub max_body_bytes: usize,
    /// Most recipients one render request may carry. Default 1,000,000:
    /// the queue splits a request into batches, so the API's bound is the
    /// body size more than this.
    pub max_recipients: usize,
    /// Largest template, in bytes, summed over its parts (stored or
    /// inline). Default 1 MiB.
    pub max_template_bytes: usize,
    /// Most profiles (NDJSON lines) one import may carry. Default 100,000.
    pub max_import_lines: usize,
    /// Largest import body, in bytes. Default 64 MiB.
    pub max_import_bytes: usize,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 32 * 1024 * 1024,
            max_recipients: 1_000_000,
            max_template_bytes: 1024 * 1024,
            max_import_lines: 100_000,
            max_import_bytes: 64 * 1024 * 1024,
        }
    }
}
