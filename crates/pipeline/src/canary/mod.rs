//! The canary: production mirrors a deterministic sample of its recipients
//! to the canary lane (and to a control lane, a second production copy that
//! tells noise from regressions); a canary worker, maybe another build in
//! another process, renders them again with its own configuration, and both
//! lanes' artifacts are kept under the same key for `canary verify`.
//!
//! Production never waits for the canary: mirroring runs beside the batch,
//! at most a few writes at once, into a bounded queue; whatever does not
//! fit is skipped and counted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use artifact_render::request::TemplateId;
use artifact_render::template::ProfileProjection;
use artifact_render::{Artifact, PreparedRequest, RenderRequest};
use serde::Deserialize;
use tokio::sync::{Semaphore, watch};
use tracing::{debug, warn};

use crate::metrics::{LaneOutcomeLabel, Metrics, MirrorLabel};
use crate::worker::Renderer;
use crate::{ArtifactSink, Lane, MirrorJob, MirrorLease, MirrorQueue, ProfileStore};

pub mod verify;

/// Where a key falls in [0, 1): FNV-1a over the parts, each ended by a 0
/// byte so that ("ab", "c") and ("a", "bc") differ. Fixed across builds and
/// platforms, so a candidate build agrees with production on the sample.
pub fn position(parts: &[&str]) -> f64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    // FNV alone leaves similar short keys (`r1`, `r2`, …) unevenly spread;
    // a 64-bit finalizer (MurmurHash3's) mixes every bit into the top 53
    // that make the fraction.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^= hash >> 33;
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

/// The share of recipients mirrored: per company, else per client, else
/// for everyone.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanarySample {
    #[serde(default)]
    pub fraction: f64,
    #[serde(default)]
    pub companies: HashMap<String, f64>,
    #[serde(default)]
    pub clients: HashMap<String, f64>,
}

impl CanarySample {
    /// Every fraction between 0 and 1, named when one is not.
    pub fn check(&self) -> Result<(), String> {
        let named = std::iter::once(("fraction".to_owned(), self.fraction))
            .chain(
                self.companies
                    .iter()
                    .map(|(k, v)| (format!("companies.{k}"), *v)),
            )
            .chain(
                self.clients
                    .iter()
                    .map(|(k, v)| (format!("clients.{k}"), *v)),
            );
        for (name, fraction) in named {
            if !(0.0..=1.0).contains(&fraction) {
                return Err(format!(
                    "canary sample {name} = {fraction}: must be between 0 and 1"
                ));
            }
        }
        Ok(())
    }

    pub fn fraction_for(&self, request: &RenderRequest) -> f64 {
        self.companies
            .get(request.company_id().as_str())
            .or_else(|| self.clients.get(request.client_id().as_str()))
            .copied()
            .unwrap_or(self.fraction)
    }

    /// Whether recipient `recipient_id` of `request` is in the sample: the
    /// same answer on every run and in every build.
    pub fn picks(&self, request: &RenderRequest, recipient_id: &str) -> bool {
        drawn(self.fraction_for(request), request, recipient_id)
    }
}

/// Whether `recipient_id` of `request` falls in a sample of `fraction`.
fn drawn(fraction: f64, request: &RenderRequest, recipient_id: &str) -> bool {
    fraction > 0.0 && position(&[request.request_id().as_str(), recipient_id]) < fraction
}

/// Mirror writes in flight at once; past it, a batch's sample is skipped.
const MIRRORS_IN_FLIGHT: usize = 4;

/// Production's side: picks a batch's sampled recipients, keeps their
/// production artifacts, and queues them for the other lanes.
pub struct Mirror {
    sample: CanarySample,
    lanes: Vec<Lane>,
    capacity: usize,
    queue: Arc<dyn MirrorQueue>,
    /// Where production's artifacts of the sampled recipients are kept;
    /// `None` when production's own sink already keeps them there.
    store: Option<Arc<dyn ArtifactSink>>,
    in_flight: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("sample", &self.sample)
            .field("lanes", &self.lanes)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Mirror {
    /// Mirrors `sample` of production to `lanes` (canary, control), at
    /// most `capacity` jobs waiting per lane; production's artifacts of
    /// the sampled recipients are written to `store`, unless it is `None`
    /// because production's sink is that store already.
    pub fn new(
        sample: CanarySample,
        lanes: Vec<Lane>,
        capacity: usize,
        queue: Arc<dyn MirrorQueue>,
        store: Option<Arc<dyn ArtifactSink>>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, String> {
        sample.check()?;
        if let Some(lane) = lanes.iter().find(|lane| **lane == Lane::Production) {
            return Err(format!(
                "lane {}: production is not mirrored to",
                lane.as_str()
            ));
        }
        Ok(Self {
            sample,
            lanes,
            capacity,
            queue,
            store,
            in_flight: Arc::new(Semaphore::new(MIRRORS_IN_FLIGHT)),
            metrics,
        })
    }

    /// Offers a batch production just wrote: `artifacts` are recipients
    /// `first..` of the request. Returns at once; the mirroring runs on
    /// its own task and a failure there is logged and counted, never
    /// passed to production.
    pub fn offer(&self, prepared: &Arc<PreparedRequest>, artifacts: &[Artifact], first: usize) {
        let request = prepared.request();
        // Once per batch, not per recipient: the fraction is the request's.
        let fraction = self.sample.fraction_for(request);
        if fraction <= 0.0 {
            return;
        }
        let (indexes, sampled): (Vec<usize>, Vec<Artifact>) = artifacts
            .iter()
            .enumerate()
            .filter(|(_, artifact)| drawn(fraction, request, artifact.recipient_id.as_str()))
            .map(|(offset, artifact)| (first + offset, artifact.clone()))
            .unzip();
        if indexes.is_empty() {
            return;
        }
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            self.count_all(indexes.len() as u64, "busy");
            return;
        };
        let job = MirrorJob {
            company_id: request.company_id().clone(),
            request_id: request.request_id().clone(),
            recipients: indexes,
        };
        let (queue, store, metrics) =
            (self.queue.clone(), self.store.clone(), self.metrics.clone());
        let (lanes, capacity, prepared) = (self.lanes.clone(), self.capacity, prepared.clone());
        tokio::spawn(async move {
            let _permit = permit;
            if let Some(store) = store
                && let Err(error) = store
                    .write(Lane::Production, prepared.clone(), sampled.into())
                    .await
            {
                warn!(%error, "cannot keep the sampled production artifacts; not mirrored");
                for lane in &lanes {
                    count(&metrics, *lane, count_of(&job), "error");
                }
                return;
            }
            for lane in lanes {
                let outcome = match queue.mirror(lane, &job, prepared.request(), capacity).await {
                    Ok(true) => "mirrored",
                    Ok(false) => "full",
                    Err(error) => {
                        warn!(%error, lane = lane.as_str(), "cannot queue a mirrored job");
                        "error"
                    }
                };
                count(&metrics, lane, count_of(&job), outcome);
            }
        });
    }

    fn count_all(&self, recipients: u64, outcome: &'static str) {
        for lane in &self.lanes {
            count(&self.metrics, *lane, recipients, outcome);
        }
    }
}

fn count_of(job: &MirrorJob) -> u64 {
    job.recipients.len() as u64
}

fn count(metrics: &Metrics, lane: Lane, recipients: u64, outcome: &'static str) {
    metrics
        .mirrored
        .get_or_create(&MirrorLabel {
            lane: lane.as_str(),
            outcome,
        })
        .inc_by(recipients);
}

/// How many times a lane takes a job before giving up on it: a candidate
/// that crashes on a request must not crash on it forever.
pub const MAX_LANE_ATTEMPTS: u32 = 3;

/// How long a lane worker holds a job before another may take it.
const LANE_LEASE: Duration = Duration::from_secs(60);

/// How long an idle lane worker waits before looking for work again.
const LANE_IDLE: Duration = Duration::from_millis(200);

/// The ports a canary or control worker uses.
#[derive(Clone)]
pub struct LanePorts {
    pub queue: Arc<dyn MirrorQueue>,
    pub profiles: Arc<dyn ProfileStore>,
    /// Where the lane's artifacts go: the store production's are kept in.
    pub store: Arc<dyn ArtifactSink>,
}

impl std::fmt::Debug for LanePorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LanePorts")
    }
}

/// A worker of the canary or control lane: renders mirrored jobs with its
/// own renderer (configuration, template versions) and keeps the
/// artifacts under its lane. It never sends anything.
pub struct LaneWorker {
    pub lane: Lane,
    pub ports: LanePorts,
    pub renderer: Arc<Renderer>,
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for LaneWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaneWorker")
            .field("lane", &self.lane)
            .finish_non_exhaustive()
    }
}

impl LaneWorker {
    /// Works until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            let job = match self.ports.queue.take_mirrored(self.lane, LANE_LEASE).await {
                Ok(Some(job)) => job,
                Ok(None) => {
                    tokio::select! {
                        _ = tokio::time::sleep(LANE_IDLE) => {}
                        _ = stop.changed() => {}
                    }
                    continue;
                }
                Err(error) => {
                    warn!(%error, "cannot take a mirrored job");
                    tokio::time::sleep(LANE_IDLE).await;
                    continue;
                }
            };
            let id = job.id;
            if job.attempts > MAX_LANE_ATTEMPTS {
                let reason = format!("gave up after {MAX_LANE_ATTEMPTS} attempts");
                if let Err(error) = self.ports.queue.abandon_mirrored(id, &reason).await {
                    warn!(%error, "cannot give up on a mirrored job");
                }
                continue;
            }
            let answer = match self.render(job).await {
                Ok(()) => self.ports.queue.mirrored(id).await,
                Err(reason) if reason.permanent => {
                    self.ports.queue.abandon_mirrored(id, &reason.reason).await
                }
                // Taken again when the lease runs out.
                Err(reason) => {
                    warn!(reason = %reason.reason, "a mirrored job failed; it is retried");
                    Ok(())
                }
            };
            if let Err(error) = answer {
                warn!(%error, "cannot record a mirrored job");
            }
        }
    }

    async fn render(&self, job: MirrorLease) -> Result<(), LaneFailure> {
        let prepared = self
            .renderer
            .prepare(job.request.clone())
            .await
            .map_err(|e| LaneFailure {
                permanent: !e.is_transient(),
                reason: e.to_string(),
            })?;
        let recipients: Vec<_> = job
            .recipients
            .iter()
            .map(|&index| job.request.render_recipients()[index].clone())
            .collect();
        let ids: Vec<_> = recipients.iter().map(|r| r.profile_id.clone()).collect();
        let profiles = self
            .ports
            .profiles
            .fetch(job.request.company_id(), &ids, &ProfileProjection::All)
            .await
            .map_err(|e| LaneFailure::transient(format!("cannot fetch profiles: {e}")))?;
        let prepared = Arc::new(prepared);
        let rendering = prepared.clone();
        let artifacts: Vec<Artifact> = tokio::task::spawn_blocking(move || {
            recipients
                .iter()
                .map(|r| rendering.render(r, profiles.get(&r.profile_id)))
                .collect()
        })
        .await
        .map_err(|e| LaneFailure::transient(format!("render task failed: {e}")))?;
        for artifact in &artifacts {
            let outcome = match artifact.outcome {
                artifact_render::Outcome::Email(_) | artifact_render::Outcome::Sms(_) => "rendered",
                artifact_render::Outcome::Skipped(_) => "skipped",
                artifact_render::Outcome::Error(_) => "failed",
            };
            self.metrics
                .lane_recipients
                .get_or_create(&LaneOutcomeLabel {
                    lane: self.lane.as_str(),
                    outcome,
                })
                .inc();
        }
        debug!(
            lane = self.lane.as_str(),
            recipients = artifacts.len(),
            "mirrored job rendered"
        );
        self.ports
            .store
            .write(self.lane, prepared, artifacts.into())
            .await
            .map_err(|e| LaneFailure::transient(format!("cannot write artifacts: {e}")))
    }
}

struct LaneFailure {
    reason: String,
    permanent: bool,
}

impl LaneFailure {
    fn transient(reason: String) -> Self {
        Self {
            reason,
            permanent: false,
        }
    }
}

/// Template versions a candidate renders instead of the ones requests name:
/// `spring_sale=4`.
pub fn parse_template_version(spec: &str) -> Result<(TemplateId, u32), String> {
    let (id, version) = spec
        .split_once('=')
        .ok_or_else(|| format!("template version {spec:?}: expected TEMPLATE_ID=VERSION"))?;
    let id = TemplateId::parse(id).map_err(|e| format!("template version {spec:?}: {e}"))?;
    let version = version
        .parse::<u32>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("template version {spec:?}: the version is a number from 1"))?;
    Ok((id, version))
}

#[cfg(test)]
mod tests;
