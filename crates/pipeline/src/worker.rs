//! The worker: leases a batch, binds its request to the compiled template,
//! fetches the batch's profiles in one call, renders every recipient, hands
//! the artifacts to the sink, then records the batch and, when the request
//! is finished, publishes its response event.
//!
//! A recipient whose render fails gets an error artifact; only a failure of
//! the batch as a whole (a store down, a template missing) is retried.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use artifact_render::finish::tracking::TrackingConfig;
use artifact_render::request::{CompanyId, ProfileId, TemplateId, TemplateRef};
use artifact_render::template::{Channel, ProfileProjection, TemplateParts};
use artifact_render::{
    Artifact, CompiledTemplate, PrepareError, PreparedRequest, RenderLimits, RenderRequest,
    TemplateCache, TemplateKey,
};
use futures_util::FutureExt;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, warn};

use crate::Error;
use crate::audit::TrafficAudit;
use crate::canary::Mirror;
use crate::flags::{FlagSubject, Flags};
use crate::metrics::Metrics;
use crate::ports::{
    ArtifactSink, Completion, Counts, Lane, Lease, ProfileStore, RequestQueue, ResponseEvent,
    ResponseSink, Retry, TemplateStore,
};

/// Why a request cannot be bound to its template.
#[derive(Debug, thiserror::Error)]
pub enum PrepareFailure {
    /// The stored template (or that version of it) does not exist for the
    /// request's company.
    #[error("template {id:?}{} not found", version.map(|v| format!(" version {v}")).unwrap_or_default())]
    TemplateNotFound {
        id: TemplateId,
        version: Option<u32>,
    },
    /// The template does not compile, or the request does not fit it.
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    #[error(transparent)]
    Port(#[from] Error),
}

impl PrepareFailure {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, PrepareFailure::Port(Error::Backend { .. }))
    }
}

/// Binds requests to compiled templates: the template store behind a
/// compile cache, and the renderer's tracking configuration. Shared by the
/// workers and the preview endpoint.
pub struct Renderer {
    templates: Arc<dyn TemplateStore>,
    cache: Arc<TemplateCache>,
    tracking: Option<Arc<TrackingConfig>>,
    /// Versions rendered instead of the ones requests name: a canary
    /// trying out a template version before it goes live.
    template_versions: HashMap<TemplateId, u32>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer")
            .field("cached_templates", &self.cache.len())
            .field("tracking", &self.tracking.is_some())
            .finish()
    }
}

impl Renderer {
    /// `cache_capacity` compiled templates are kept; every key includes the
    /// company, so tenants never share an entry.
    pub fn new(
        templates: Arc<dyn TemplateStore>,
        tracking: Option<Arc<TrackingConfig>>,
        cache_capacity: usize,
        limits: RenderLimits,
    ) -> Self {
        Self {
            templates,
            cache: Arc::new(TemplateCache::new(cache_capacity, limits)),
            tracking,
            template_versions: HashMap::new(),
        }
    }

    /// Renders these stored template versions whatever version a request
    /// names (`spring_sale` → 4): for a canary lane.
    pub fn with_template_versions(mut self, versions: HashMap<TemplateId, u32>) -> Self {
        self.template_versions = versions;
        self
    }

    pub fn tracking(&self) -> Option<&Arc<TrackingConfig>> {
        self.tracking.as_ref()
    }

    pub fn limits(&self) -> &RenderLimits {
        self.cache.limits()
    }

    /// A stored template version (the latest when `version` is `None`),
    /// compiled. A version already compiled is not read from the store.
    pub async fn stored(
        &self,
        company: &CompanyId,
        id: &TemplateId,
        version: Option<u32>,
    ) -> Result<Arc<CompiledTemplate>, PrepareFailure> {
        if let Some(version) = version {
            let key = TemplateKey::stored(company.clone(), id.clone(), version);
            if let Some(compiled) = self.cache.get(&key) {
                return Ok(compiled);
            }
        }
        let stored = self
            .templates
            .get(company, id, version)
            .await?
            .ok_or_else(|| PrepareFailure::TemplateNotFound {
                id: id.clone(),
                version,
            })?;
        let key = TemplateKey::stored(stored.company_id, stored.template_id, stored.version);
        self.compile(key, stored.channel, stored.parts).await
    }

    /// Binds `request` to its template, stored or inline.
    pub async fn prepare(
        &self,
        request: Arc<RenderRequest>,
    ) -> Result<PreparedRequest, PrepareFailure> {
        let template = match request.channel_settings().template() {
            TemplateRef::Stored { id, version } => {
                let version = self.template_versions.get(id).copied().or(*version);
                self.stored(request.company_id(), id, version).await?
            }
            TemplateRef::Inline(parts) => {
                let key = TemplateKey::new(request.company_id().clone(), None, None, parts);
                match self.cache.get(&key) {
                    Some(compiled) => compiled,
                    None => {
                        let channel = request.channel_settings().channel();
                        self.compile(key, channel, parts.clone()).await?
                    }
                }
            }
        };
        Ok(PreparedRequest::new(
            request,
            template,
            self.tracking.clone(),
        )?)
    }

    /// Compiles on a blocking thread: MJML, CSS inlining and the link scan
    /// of a large template take long enough to stall the async runtime.
    async fn compile(
        &self,
        key: TemplateKey,
        channel: Channel,
        parts: TemplateParts,
    ) -> Result<Arc<CompiledTemplate>, PrepareFailure> {
        let cache = self.cache.clone();
        tokio::task::spawn_blocking(move || cache.get_or_compile(&key, channel, &parts))
            .await
            .map_err(|e| PrepareFailure::Port(Error::backend("compiling a template", e)))?
            .map_err(|e| PrepareFailure::Prepare(e.into()))
    }
}

/// The ports a worker uses.
#[derive(Clone)]
pub struct WorkerPorts {
    pub queue: Arc<dyn RequestQueue>,
    pub profiles: Arc<dyn ProfileStore>,
    pub sink: Arc<dyn ArtifactSink>,
    pub responses: Arc<dyn ResponseSink>,
}

impl std::fmt::Debug for WorkerPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkerPorts")
    }
}

/// Publishes a finished request's response event and records that it did.
/// A crash in between leaves the request unannounced, and
/// [`announce_missed`] publishes it again: events are at least once.
/// Returns whether the event was published and recorded as such.
async fn publish(ports: &WorkerPorts, event: ResponseEvent) -> bool {
    let (company, request) = (event.company_id.clone(), event.request_id.clone());
    if let Err(error) = ports.responses.publish(event).await {
        warn!(%error, %request, "cannot publish the response event; it is retried later");
        return false;
    }
    debug!(%request, %company, "request finished");
    if let Err(error) = ports.queue.announced(&company, &request).await {
        // Published but still listed: the next sweep publishes it again.
        warn!(%error, %request, "cannot record the response event as published");
        return false;
    }
    true
}

/// How long after finishing a request counts as not announced: its worker
/// had that long to publish.
const ANNOUNCE_GRACE: Duration = Duration::from_secs(60);

/// Publishes the response events that were missed: those of requests
/// finished before this pool started (a crash between finishing and
/// publishing), then, periodically, any finished a while ago and still
/// unannounced (a publish that failed, a batch dead-lettered at lease time).
async fn announce_missed(ports: WorkerPorts, mut stop: watch::Receiver<bool>) {
    let mut finished_before = jiff::Timestamp::now();
    loop {
        loop {
            let missed = match ports.queue.unannounced(finished_before, 100).await {
                Ok(missed) => missed,
                Err(error) => {
                    warn!(%error, "cannot list unannounced requests");
                    break;
                }
            };
            let full_page = missed.len() == 100;
            let mut all_published = true;
            for status in missed {
                all_published &= publish(&ports, ResponseEvent::of(&status)).await;
            }
            // A failed publish stays unannounced: try it on the next round
            // rather than spin on it now.
            if !(full_page && all_published) {
                break;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(ANNOUNCE_GRACE / 4) => {}
            _ = stop.changed() => return,
        }
        finished_before = jiff::Timestamp::now() - ANNOUNCE_GRACE;
    }
}

/// Workers to start when not told: two per core. A worker spends part of
/// each batch waiting on the queue and the stores; a second one per core
/// renders meanwhile (measured with `artifact loadgen`: see ARCHITECTURE.md).
pub fn default_workers() -> usize {
    2 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// How a pool's workers work.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Workers to start (at least one is).
    pub workers: usize,
    /// Fetch only the top-level profile keys the batch's template reads:
    /// a 200-property profile then costs what its read fields cost.
    pub profile_projection: bool,
    /// Where a sample of recipients is audited, if anywhere.
    pub audit: Option<Arc<TrafficAudit>>,
    /// Where a sample of recipients is mirrored for the canary, if anywhere.
    pub mirror: Option<Arc<Mirror>>,
    /// Rollout flags. The worker reads [`PROJECTION_FLAG`]: while it
    /// exists, it decides per batch (by its company, message or first
    /// recipient) whether profiles are projected; once removed, the
    /// setting decides again (roll back with 0 percent, not by removing).
    pub flags: Arc<Flags>,
}

/// The rollout flag that, when defined, turns profile projection on for
/// its share of batches instead of `profile_projection`.
pub const PROJECTION_FLAG: &str = "profile_projection";

impl WorkerSettings {
    /// `workers` workers, fetching projected profiles, auditing nothing.
    pub fn new(workers: usize) -> Self {
        Self {
            workers,
            profile_projection: true,
            audit: None,
            mirror: None,
            flags: Arc::default(),
        }
    }
}

/// How long a worker waits for work before checking for shutdown again.
const LEASE_WAIT: Duration = Duration::from_millis(250);

/// A pool of workers sharing one queue. Dropping the shutdown sender, or
/// sending `true`, stops them after their current batch.
#[derive(Debug)]
pub struct WorkerPool {
    tasks: JoinSet<()>,
    shutdown: watch::Sender<bool>,
}

impl WorkerPool {
    /// Starts the workers on the current tokio runtime.
    pub fn start(
        settings: WorkerSettings,
        ports: WorkerPorts,
        renderer: Arc<Renderer>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (shutdown, stop) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tasks.spawn(announce_missed(ports.clone(), stop.clone()));
        for index in 0..settings.workers.max(1) {
            let worker = Worker {
                index,
                profile_projection: settings.profile_projection,
                audit: settings.audit.clone(),
                mirror: settings.mirror.clone(),
                flags: settings.flags.clone(),
                ports: ports.clone(),
                renderer: renderer.clone(),
                metrics: metrics.clone(),
            };
            tasks.spawn(worker.run(stop.clone()));
        }
        Self { tasks, shutdown }
    }

    /// Stops leasing, lets every in-flight batch finish and be recorded,
    /// then returns.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Why a batch failed as a whole: the reason recorded with the retry or
/// the dead letter, and whether retrying can help.
struct BatchFailure {
    reason: String,
    permanent: bool,
}

/// The failure of a batch whose rendering panicked.
fn panicked(panic: &(dyn std::any::Any + Send)) -> BatchFailure {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message");
    BatchFailure::transient(format!("rendering panicked: {message}"))
}

impl BatchFailure {
    fn transient(reason: String) -> Self {
        Self {
            reason,
            permanent: false,
        }
    }
}

struct Worker {
    index: usize,
    profile_projection: bool,
    audit: Option<Arc<TrafficAudit>>,
    mirror: Option<Arc<Mirror>>,
    flags: Arc<Flags>,
    ports: WorkerPorts,
    renderer: Arc<Renderer>,
    metrics: Arc<Metrics>,
}

impl Worker {
    async fn run(self, stop: watch::Receiver<bool>) {
        // `lease` is not raced against the stop signal: a lease dropped half
        // way would strand its batch until the lease expires. It returns
        // within LEASE_WAIT anyway.
        while !*stop.borrow() {
            match self.ports.queue.lease(LEASE_WAIT).await {
                Ok(Some(lease)) => self.handle(lease).await,
                Ok(None) => {}
                Err(error) => {
                    warn!(%error, worker = self.index, "cannot lease from the queue");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn handle(&self, lease: Lease) {
        let started = Instant::now();
        let request = &lease.request;
        match self.render_holding(&lease).await {
            Ok(counts) => {
                let took = started.elapsed();
                match self.ports.queue.complete(&lease, counts).await {
                    Ok(Completion::Finished(status)) => {
                        self.metrics.batch_rendered(counts, took);
                        self.metrics.request_finished(&status);
                        self.publish(ResponseEvent::of(&status)).await;
                    }
                    Ok(Completion::Pending) => self.metrics.batch_rendered(counts, took),
                    Ok(Completion::Stale) => warn!(
                        request = %request.request_id(),
                        company = %request.company_id(),
                        "batch finished after its lease expired; its redelivery records it"
                    ),
                    Err(error) => warn!(
                        %error,
                        request = %request.request_id(),
                        "cannot record a rendered batch; it will be delivered again"
                    ),
                }
            }
            Err(failure) => {
                self.metrics.batch_failed();
                warn!(
                    reason = %failure.reason,
                    request = %request.request_id(),
                    company = %request.company_id(),
                    attempt = lease.attempt,
                    retried = !failure.permanent,
                    "batch failed"
                );
                let answer = if failure.permanent {
                    self.ports.queue.reject(&lease, &failure.reason).await
                } else {
                    self.ports.queue.fail(&lease, &failure.reason).await
                };
                match answer {
                    // Announced once, when the request's last batch ends.
                    Ok(Retry::DeadLettered(status)) if status.finished_at.is_some() => {
                        self.metrics.request_finished(&status);
                        self.publish(ResponseEvent::of(&status)).await;
                    }
                    Ok(Retry::DeadLettered(_) | Retry::At(_) | Retry::Stale) => {}
                    Err(error) => warn!(%error, "cannot record a failed batch"),
                }
            }
        }
    }

    async fn publish(&self, event: ResponseEvent) {
        publish(&self.ports, event).await;
    }

    /// Renders the batch, telling the queue every third of a lease that it
    /// is still at it, so a long batch keeps its lease while a dead
    /// worker's expires. A panic fails the batch like any other failure:
    /// retried, then dead-lettered with the panic's message.
    async fn render_holding(&self, lease: &Lease) -> Result<Counts, BatchFailure> {
        let work = AssertUnwindSafe(self.render_batch(lease)).catch_unwind();
        tokio::pin!(work);
        let every = (self.ports.queue.lease_timeout() / 3).max(Duration::from_millis(10));
        let Some(first) = tokio::time::Instant::now().checked_add(every) else {
            // Leases that never expire need no progress reports.
            return work.await.unwrap_or_else(|panic| Err(panicked(&*panic)));
        };
        let mut progress = tokio::time::interval_at(first, every);
        loop {
            tokio::select! {
                result = &mut work => {
                    return result.unwrap_or_else(|panic| Err(panicked(&*panic)));
                }
                _ = progress.tick() => match self.ports.queue.in_progress(lease).await {
                    Ok(true) => {}
                    Ok(false) => warn!(
                        request = %lease.request.request_id(),
                        "the batch's lease expired while rendering; it is delivered again"
                    ),
                    Err(error) => warn!(%error, "cannot report a batch in progress"),
                },
            }
        }
    }

    /// Whether this batch fetches projected profiles: the rollout flag's
    /// answer while it exists, the setting otherwise.
    fn projects(&self, lease: &Lease) -> bool {
        if self.flags.get(PROJECTION_FLAG).is_none() {
            return self.profile_projection;
        }
        let request = &lease.request;
        let first = lease.batch()[0].recipient_id.as_str();
        self.flags.enabled(
            PROJECTION_FLAG,
            &FlagSubject {
                company: request.company_id().as_str(),
                message: request.message_id().as_str(),
                recipient: first,
            },
        )
    }

    /// `profiles` with the recipients the audit samples fetched again
    /// whole, so the audit sees the fields nobody reads; one more fetch, and
    /// only for batches with a sampled recipient.
    async fn whole_profiles_for_audit(
        &self,
        lease: &Lease,
        mut profiles: HashMap<ProfileId, Arc<serde_json::Value>>,
        projection: &ProfileProjection,
    ) -> Result<HashMap<ProfileId, Arc<serde_json::Value>>, BatchFailure> {
        let Some(audit) = &self.audit else {
            return Ok(profiles);
        };
        if *projection == ProfileProjection::All {
            return Ok(profiles);
        }
        let sampled: Vec<ProfileId> = lease
            .batch()
            .iter()
            .filter(|r| audit.picks(&lease.request, &r.recipient_id))
            .map(|r| r.profile_id.clone())
            .collect();
        if sampled.is_empty() {
            return Ok(profiles);
        }
        let whole = self
            .ports
            .profiles
            .fetch(
                lease.request.company_id(),
                &sampled,
                &ProfileProjection::All,
            )
            .await
            .map_err(|e| BatchFailure::transient(format!("cannot fetch profiles: {e}")))?;
        profiles.extend(whole);
        Ok(profiles)
    }

    /// Renders one batch and writes its artifacts.
    async fn render_batch(&self, lease: &Lease) -> Result<Counts, BatchFailure> {
        let prepared = self
            .renderer
            .prepare(lease.request.clone())
            .await
            .map_err(|e| BatchFailure {
                permanent: !e.is_transient(),
                reason: e.to_string(),
            })?;
        let recipients = lease.batch();
        let ids: Vec<ProfileId> = recipients.iter().map(|r| r.profile_id.clone()).collect();
        let projection = if self.projects(lease) {
            prepared.template().profile_projection()
        } else {
            &ProfileProjection::All
        };
        let profiles = self
            .ports
            .profiles
            .fetch(lease.request.company_id(), &ids, projection)
            .await
            .map_err(|e| BatchFailure::transient(format!("cannot fetch profiles: {e}")))?;
        let profiles = self
            .whole_profiles_for_audit(lease, profiles, projection)
            .await?;

        let prepared = Arc::new(prepared);
        let range = lease.local_range();
        let rendering = prepared.clone();
        let audit = self.audit.clone();
        let artifacts: Vec<Artifact> = tokio::task::spawn_blocking(move || {
            rendering.request().render_recipients()[range]
                .iter()
                .map(|recipient| {
                    let profile = profiles.get(&recipient.profile_id);
                    crate::audit::render(audit.as_ref(), &rendering, recipient, profile)
                })
                .collect()
        })
        .await
        .map_err(|e| BatchFailure::transient(format!("render task failed: {e}")))?;

        let counts = Counts::of(&artifacts);
        let artifacts: Arc<[Artifact]> = artifacts.into();
        self.ports
            .sink
            .write(Lane::Production, prepared.clone(), artifacts.clone())
            .await
            .map_err(|e| BatchFailure::transient(format!("cannot write artifacts: {e}")))?;
        if let Some(mirror) = &self.mirror {
            mirror.offer(&prepared, &artifacts, lease.local_range().start);
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests;
