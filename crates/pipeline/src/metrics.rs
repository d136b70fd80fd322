//! Prometheus metrics of the pipeline, registered by whoever serves them.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::ports::{Counts, RequestState, RequestStatus};

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct MirrorLabel {
    pub lane: &'static str,
    /// `mirrored`, or why not: `full` (the lane's queue), `busy` (mirror
    /// writes in flight), `error`.
    pub outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct LaneOutcomeLabel {
    pub lane: &'static str,
    pub outcome: &'static str,
}

/// Counters and histograms the workers and the API update.
#[derive(Debug)]
pub struct Metrics {
    /// Recipients rendered, by outcome: rendered, skipped, failed.
    pub recipients: Family<OutcomeLabel, Counter>,
    /// Batches that failed as a whole (retried or dead-lettered).
    pub failed_batches: Counter,
    /// Time to render and write one batch, per recipient.
    pub render_seconds: Histogram,
    /// From acceptance to the last batch, per request, by final state.
    pub request_seconds: Family<OutcomeLabel, Histogram>,
    /// Requests accepted by the API.
    pub accepted: Counter,
    /// Clicks, opens and unsubscribes recorded by the tracking endpoints.
    pub engagement: Family<KindLabel, Counter>,
    /// Sampled recipients offered to the canary and control lanes, by
    /// what became of them.
    pub mirrored: Family<MirrorLabel, Counter>,
    /// Recipients a canary or control worker rendered, by outcome.
    pub lane_recipients: Family<LaneOutcomeLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            recipients: Family::default(),
            failed_batches: Counter::default(),
            // 1 µs .. ~16 ms per recipient.
            render_seconds: Histogram::new(exponential_buckets(1e-6, 2.0, 15)),
            request_seconds: Family::new_with_constructor(|| {
                // 1 ms .. ~65 s.
                Histogram::new(exponential_buckets(1e-3, 2.0, 17))
            }),
            accepted: Counter::default(),
            engagement: Family::default(),
            mirrored: Family::default(),
            lane_recipients: Family::default(),
        }
    }
}

impl Metrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "artifact_canary_mirrored_recipients",
            "Recipients sampled for a canary or control lane, by lane and outcome \
             (mirrored, or skipped: full, busy, error)",
            self.mirrored.clone(),
        );
        registry.register(
            "artifact_lane_recipients",
            "Recipients rendered by a canary or control worker, by lane and outcome",
            self.lane_recipients.clone(),
        );
        registry.register(
            "artifact_recipients",
            "Recipients rendered, by outcome",
            self.recipients.clone(),
        );
        registry.register(
            "artifact_failed_batches",
            "Batches that failed as a whole and were retried or dead-lettered",
            self.failed_batches.clone(),
        );
        registry.register(
            "artifact_render_seconds",
            "Time to render and write a batch, divided by its recipients",
            self.render_seconds.clone(),
        );
        registry.register(
            "artifact_request_seconds",
            "Time from acceptance to the request's last batch, by final state",
            self.request_seconds.clone(),
        );
        registry.register(
            "artifact_accepted_requests",
            "Render requests accepted",
            self.accepted.clone(),
        );
        registry.register(
            "artifact_engagement_events",
            "Clicks, opens and unsubscribes recorded",
            self.engagement.clone(),
        );
    }

    pub fn batch_rendered(&self, counts: Counts, took: Duration) {
        for (outcome, n) in [
            ("rendered", counts.rendered),
            ("skipped", counts.skipped),
            ("failed", counts.failed),
        ] {
            if n > 0 {
                self.recipients
                    .get_or_create(&OutcomeLabel { outcome })
                    .inc_by(n);
            }
        }
        let total = counts.rendered + counts.skipped + counts.failed;
        if total > 0 {
            self.render_seconds
                .observe(took.as_secs_f64() / total as f64);
        }
    }

    pub fn batch_failed(&self) {
        self.failed_batches.inc();
    }

    pub fn request_finished(&self, status: &RequestStatus) {
        let Some(finished) = status.finished_at else {
            return;
        };
        let outcome = match status.state {
            RequestState::Failed => "failed",
            _ => "done",
        };
        let seconds = finished
            .duration_since(status.accepted_at)
            .as_secs_f64()
            .max(0.0);
        self.request_seconds
            .get_or_create(&OutcomeLabel { outcome })
            .observe(seconds);
    }
}

/// This process's memory, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessMemory {
    /// Resident now (`VmRSS`).
    pub resident: u64,
    /// The most ever resident (`VmHWM`).
    pub peak: u64,
}

/// Reads `/proc/self/status`; `None` where there is no such file.
pub fn process_memory() -> Option<ProcessMemory> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let bytes = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    Some(ProcessMemory {
        resident: bytes("VmRSS:")?,
        peak: bytes("VmHWM:")?,
    })
}
