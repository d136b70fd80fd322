//! The ports: the small traits the worker and the server depend on. Each
//! adapter (embedded; NATS JetStream and PostgreSQL) implements them, and
//! [`crate::contract`] holds the tests every implementation must pass.
//!
//! Every read and write names its company: no port can be asked for another
//! tenant's data without naming that tenant, and a foreign id answers the
//! same "not found" as a missing one.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use artifact_render::request::{
    CompanyId, Priority, ProfileId, RecipientId, RequestId, TemplateId,
};
use artifact_render::template::{Channel, ProfileProjection, TemplateParts};
use artifact_render::{Artifact, PreparedRequest, RenderRequest};
use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::Error;

pub type PortResult<T> = Result<T, Error>;

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestState {
    /// Accepted; no batch has been leased yet.
    Queued,
    /// At least one batch has been leased, and not every batch is done.
    Rendering,
    /// Every batch is done. Recipients that failed to render have error
    /// artifacts; the request itself succeeded.
    Done,
    /// At least one batch was dead-lettered; `error` says why.
    Failed,
}

/// Per-recipient outcome counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub rendered: u64,
    pub skipped: u64,
    pub failed: u64,
}

impl Counts {
    pub fn of(artifacts: &[Artifact]) -> Self {
        let mut counts = Counts::default();
        for artifact in artifacts {
            match artifact.outcome {
                artifact_render::Outcome::Email(_) | artifact_render::Outcome::Sms(_) => {
                    counts.rendered += 1
                }
                artifact_render::Outcome::Skipped(_) => counts.skipped += 1,
                artifact_render::Outcome::Error(_) => counts.failed += 1,
            }
        }
        counts
    }

    pub fn add(&mut self, other: Counts) {
        self.rendered += other.rendered;
        self.skipped += other.skipped;
        self.failed += other.failed;
    }
}

/// What the API reports for a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestStatus {
    pub company_id: CompanyId,
    pub request_id: RequestId,
    pub priority: Priority,
    pub state: RequestState,
    pub recipients: u64,
    pub counts: Counts,
    pub response_metadata: serde_json::Value,
    pub accepted_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// Why the request failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The answer to a submission.
#[derive(Debug, Clone, PartialEq)]
pub enum Submitted {
    /// Newly accepted and durable.
    Accepted(RequestStatus),
    /// A request with this company and id was accepted before; nothing new
    /// was queued.
    Existing(RequestStatus),
}

impl Submitted {
    pub fn status(&self) -> &RequestStatus {
        match self {
            Submitted::Accepted(status) | Submitted::Existing(status) => status,
        }
    }
}

/// A leased batch: a slice of one request's recipients. The holder renders
/// it and then calls [`RequestQueue::complete`] or [`RequestQueue::fail`]
/// with it.
#[derive(Debug, Clone)]
pub struct Lease {
    /// Names this lease; a late answer to an expired lease is refused.
    pub id: u64,
    /// The request; it may hold only this batch's recipients (see
    /// `offset`).
    pub request: Arc<RenderRequest>,
    /// The batch's positions among the recipients of the request as it was
    /// submitted.
    pub recipients: Range<usize>,
    /// The submitted position of `request.render_recipients()[0]`: 0 when
    /// the lease carries the whole request, `recipients.start` when it
    /// carries the batch alone.
    pub offset: usize,
    /// 1 for the first delivery.
    pub attempt: u32,
}

impl Lease {
    /// The batch's positions in `request.render_recipients()`.
    pub fn local_range(&self) -> Range<usize> {
        self.recipients.start - self.offset..self.recipients.end - self.offset
    }

    /// The batch's recipients.
    pub fn batch(&self) -> &[artifact_render::request::RenderRecipient] {
        &self.request.render_recipients()[self.local_range()]
    }
}

/// What [`RequestQueue::complete`] did.
// Returned once per batch, so boxing the status would save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    /// The request has batches left.
    Pending,
    /// This was the request's last batch.
    Finished(RequestStatus),
    /// The lease had expired or was already answered; nothing changed.
    Stale,
}

/// What [`RequestQueue::fail`] did with a failed batch.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Retry {
    /// Delivered again at or after this time.
    At(Timestamp),
    /// Out of attempts: dead-lettered, and the request failed. Its other
    /// batches still render; the status has `finished_at` only when this
    /// was the request's last batch.
    DeadLettered(RequestStatus),
    /// The lease had expired or was already answered; nothing changed.
    Stale,
}

/// Waiting batches per priority lane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneDepths {
    pub high: u64,
    pub normal: u64,
    pub low: u64,
}

/// A batch that ran out of attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub company_id: CompanyId,
    pub request_id: RequestId,
    pub recipients: Range<usize>,
    pub attempts: u32,
    pub reason: String,
    pub at: Timestamp,
}

/// The durable, prioritized request queue, split into batches.
///
/// Delivery is at least once: a batch whose holder dies is delivered again.
/// Batches of one request may run at the same time on different workers.
/// `high` is always leased before `normal`, and `normal` before `low`; within
/// a lane, companies take turns batch by batch, so one company's bulk
/// request delays another's by at most a batch.
#[async_trait]
pub trait RequestQueue: Send + Sync + 'static {
    /// Makes `request` durable and queues its batches, or reports the
    /// existing status when the company already submitted this request id.
    async fn submit(&self, request: Arc<RenderRequest>) -> PortResult<Submitted>;

    /// The next batch, waiting up to `wait` for one to become ready.
    async fn lease(&self, wait: Duration) -> PortResult<Option<Lease>>;

    /// Records a rendered batch and its counts, exactly once per batch.
    async fn complete(&self, lease: &Lease, counts: Counts) -> PortResult<Completion>;

    /// A batch could not be rendered (a store was down, the template is
    /// missing): retries it with backoff, or dead-letters it.
    async fn fail(&self, lease: &Lease, reason: &str) -> PortResult<Retry>;

    /// A batch that can never render (its template is gone or does not
    /// compile): dead-letters it now, without retries, and fails the
    /// request. Answers like [`fail`](RequestQueue::fail) does when out of
    /// attempts.
    async fn reject(&self, lease: &Lease, reason: &str) -> PortResult<Retry>;

    /// Gives a lease back untouched, for shutdown; it does not count as an
    /// attempt.
    async fn release(&self, lease: &Lease) -> PortResult<()>;

    /// How long a lease lasts unless its holder reports progress.
    fn lease_timeout(&self) -> Duration;

    /// The holder is still rendering: the lease lasts another
    /// [`lease_timeout`](RequestQueue::lease_timeout) from now. Answers
    /// `false` for a lease that expired or was answered.
    async fn in_progress(&self, lease: &Lease) -> PortResult<bool>;

    async fn status(
        &self,
        company: &CompanyId,
        request_id: &RequestId,
    ) -> PortResult<Option<RequestStatus>>;

    async fn depths(&self) -> PortResult<LaneDepths>;

    /// The most recent dead letters, newest first.
    async fn dead_letters(&self, limit: usize) -> PortResult<Vec<DeadLetter>>;

    /// Finished requests (done or failed) whose response event has not been
    /// marked [announced](RequestQueue::announced), finished at or before
    /// `finished_before`, oldest first. With `announced`, this makes
    /// response events at least once: a crash between finishing a request
    /// and publishing its event leaves it here for the next sweep.
    async fn unannounced(
        &self,
        finished_before: Timestamp,
        limit: usize,
    ) -> PortResult<Vec<RequestStatus>>;

    /// Records that the request's response event was published.
    async fn announced(&self, company: &CompanyId, request_id: &RequestId) -> PortResult<()>;
}

/// Recipient profiles, always read and written within one company.
#[async_trait]
pub trait ProfileStore: Send + Sync + 'static {
    /// The profiles among `ids` that exist, in one round trip. Missing ids
    /// are absent from the map. Each holds only the top-level keys
    /// `projection` names (all of them for [`ProfileProjection::All`]).
    async fn fetch(
        &self,
        company: &CompanyId,
        ids: &[ProfileId],
        projection: &ProfileProjection,
    ) -> PortResult<HashMap<ProfileId, Arc<serde_json::Value>>>;

    /// Creates or replaces profiles. `properties` are JSON objects.
    async fn put(
        &self,
        company: &CompanyId,
        profiles: Vec<(ProfileId, serde_json::Value)>,
    ) -> PortResult<()>;
}

/// One stored template version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTemplate {
    pub company_id: CompanyId,
    pub template_id: TemplateId,
    pub version: u32,
    pub channel: Channel,
    pub parts: TemplateParts,
    pub created_at: Timestamp,
}

/// Versioned template bundles. A version, once written, never changes.
#[async_trait]
pub trait TemplateStore: Send + Sync + 'static {
    /// Stores `parts` as the next version (1 for a new template) and
    /// returns it. The caller has compiled it.
    async fn put(
        &self,
        company: &CompanyId,
        id: &TemplateId,
        channel: Channel,
        parts: TemplateParts,
    ) -> PortResult<StoredTemplate>;

    /// `version`, or the latest when `None`.
    async fn get(
        &self,
        company: &CompanyId,
        id: &TemplateId,
        version: Option<u32>,
    ) -> PortResult<Option<StoredTemplate>>;

    /// Every version number, oldest first; empty when there is none.
    async fn versions(&self, company: &CompanyId, id: &TemplateId) -> PortResult<Vec<u32>>;
}

/// Which render produced an artifact: production, the canary candidate, or
/// a second production copy (`control`) that tells noise from regressions.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    #[default]
    Production,
    Canary,
    Control,
}

impl Lane {
    pub const ALL: [Lane; 3] = [Lane::Production, Lane::Canary, Lane::Control];

    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Production => "production",
            Lane::Canary => "canary",
            Lane::Control => "control",
        }
    }

    /// `production`, `canary` or `control`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|lane| lane.as_str() == name)
    }
}

/// Where finished artifacts go. Writes are keyed by (company, request,
/// recipient, channel, lane), so a redelivered batch overwrites what it
/// wrote before instead of duplicating it.
#[async_trait]
pub trait ArtifactSink: Send + Sync + 'static {
    /// Writes one batch's artifacts, rendered by `prepared`. Returns once
    /// they are as durable as the sink makes them. Shared, not borrowed, so
    /// that a sink serializes them on a blocking thread rather than on the
    /// async runtime.
    async fn write(
        &self,
        lane: Lane,
        prepared: Arc<PreparedRequest>,
        artifacts: Arc<[Artifact]>,
    ) -> PortResult<()>;
}

/// The key of one stored artifact.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArtifactKey {
    pub company_id: CompanyId,
    pub request_id: RequestId,
    pub recipient_id: RecipientId,
    pub channel: Channel,
    pub lane: Lane,
}

impl ArtifactKey {
    /// The key `artifact` is stored under in `lane`.
    pub fn of(artifact: &Artifact, lane: Lane) -> Self {
        Self {
            company_id: artifact.company_id.clone(),
            request_id: artifact.request_id.clone(),
            recipient_id: artifact.recipient_id.clone(),
            channel: artifact.channel,
            lane,
        }
    }
}

/// Artifacts kept for lookup (the API) and for the canary comparison.
#[async_trait]
pub trait ArtifactStore: ArtifactSink {
    async fn get(&self, key: &ArtifactKey) -> PortResult<Option<Artifact>>;

    /// A request's artifacts in `lane`, by recipient id, starting after
    /// `after`, at most `limit`.
    async fn list(
        &self,
        company: &CompanyId,
        request_id: &RequestId,
        lane: Lane,
        after: Option<&RecipientId>,
        limit: usize,
    ) -> PortResult<Vec<Artifact>>;

    /// Every company's artifacts in `lane`, in key order, starting after
    /// `after`, at most `limit`: for operators (`canary verify`).
    async fn list_lane(
        &self,
        lane: Lane,
        after: Option<&ArtifactKey>,
        limit: usize,
    ) -> PortResult<Vec<(ArtifactKey, Artifact)>>;
}

/// Recipients a production batch sampled for the canary: a request, and
/// the indexes of the sampled recipients in its `render_recipients`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorJob {
    pub company_id: CompanyId,
    pub request_id: RequestId,
    pub recipients: Vec<usize>,
}

/// A mirrored job held by one canary (or control) worker.
#[derive(Debug, Clone)]
pub struct MirrorLease {
    pub id: u64,
    pub request: Arc<RenderRequest>,
    /// Indexes into `request.render_recipients()`.
    pub recipients: Vec<usize>,
    /// How many times the job has been taken, this time included.
    pub attempts: u32,
}

/// A mirrored job a lane has not rendered: still waiting, or given up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unmirrored {
    pub job: MirrorJob,
    /// Why the lane gave up on it; `None` while it waits.
    pub abandoned: Option<String>,
}

/// The queue between production and the lanes that render a sample again.
/// The lanes' workers may run in other processes, or be another build.
#[async_trait]
pub trait MirrorQueue: Send + Sync + 'static {
    /// Queues `job` for `lane`, unless `capacity` jobs already wait for
    /// it: then nothing is queued and the answer is `false`. `request` is
    /// the one `job.recipients` index into: a queue that does not hold
    /// the requests it mirrors keeps the part of it the job needs.
    async fn mirror(
        &self,
        lane: Lane,
        job: &MirrorJob,
        request: &RenderRequest,
        capacity: usize,
    ) -> PortResult<bool>;

    /// The oldest job of `lane` that no worker holds, held for `lease`; a
    /// job whose worker died is taken again once its lease runs out.
    async fn take_mirrored(&self, lane: Lane, lease: Duration) -> PortResult<Option<MirrorLease>>;

    /// The job was rendered: it is forgotten.
    async fn mirrored(&self, id: u64) -> PortResult<()>;

    /// The lane gave up on the job: it is kept, with `reason`, so
    /// verification can name the recipients the lane lacks.
    async fn abandon_mirrored(&self, id: u64, reason: &str) -> PortResult<()>;

    /// The jobs `lane` has not rendered.
    async fn unmirrored(&self, lane: Lane) -> PortResult<Vec<Unmirrored>>;
}

/// What a finished request tells its client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseEvent {
    pub company_id: CompanyId,
    pub request_id: RequestId,
    pub state: RequestState,
    pub counts: Counts,
    /// The request's `response_metadata`, untouched.
    pub response_metadata: serde_json::Value,
    pub finished_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ResponseEvent {
    pub fn of(status: &RequestStatus) -> Self {
        Self {
            company_id: status.company_id.clone(),
            request_id: status.request_id.clone(),
            state: status.state,
            counts: status.counts,
            response_metadata: status.response_metadata.clone(),
            finished_at: status.finished_at.unwrap_or(status.accepted_at),
            error: status.error.clone(),
        }
    }
}

/// Where response events go when a request finishes or fails.
#[async_trait]
pub trait ResponseSink: Send + Sync + 'static {
    async fn publish(&self, event: ResponseEvent) -> PortResult<()>;
}

/// Response events kept for clients that poll instead of subscribing.
#[async_trait]
pub trait ResponseLog: ResponseSink {
    /// A company's events with a sequence number above `after`, oldest
    /// first, at most `limit`.
    async fn list(
        &self,
        company: &CompanyId,
        after: u64,
        limit: usize,
    ) -> PortResult<Vec<(u64, ResponseEvent)>>;
}

/// What a recipient did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngagementKind {
    Click,
    Open,
    Unsubscribe,
}

impl EngagementKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EngagementKind::Click => "click",
            EngagementKind::Open => "open",
            EngagementKind::Unsubscribe => "unsubscribe",
        }
    }
}

/// One click, open or unsubscribe, as resolved from its token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngagementEvent {
    pub kind: EngagementKind,
    pub company_id: CompanyId,
    pub message_id: artifact_render::request::MessageId,
    pub recipient_id: RecipientId,
    /// The link's index, for clicks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<u32>,
    /// Where the click led.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    pub at: Timestamp,
}

/// Clicks, opens and unsubscribes recorded by the tracking endpoints.
#[async_trait]
pub trait EngagementLog: Send + Sync + 'static {
    async fn record(&self, event: EngagementEvent) -> PortResult<()>;

    /// A company's events with a sequence number above `after`, oldest
    /// first, at most `limit`.
    async fn list(
        &self,
        company: &CompanyId,
        after: u64,
        limit: usize,
    ) -> PortResult<Vec<(u64, EngagementEvent)>>;
}
