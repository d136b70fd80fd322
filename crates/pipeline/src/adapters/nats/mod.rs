//! The NATS JetStream adapter, for the scaled-out mode: the request queue
//! as a work-queue stream, with PostgreSQL keeping what a broker does not
//! (request status, which batches are answered, dead letters).
//!
//! One stream, `{NAME}_REQUESTS`, holds subjects
//! `{name}.requests.{high|normal|low}.{shard}`: a company's batches go to
//! one of [`SHARDS`] shards by a hash of its id. Each (priority, shard) has
//! a durable pull consumer shared by every worker process; `high` is
//! fetched first, and within a priority a process takes the shards in turn.
//! A message is one batch: the request with only that batch's recipients,
//! so a message stays under the server's max payload whatever the
//! request's size. A request has one batch waiting at a time (see
//! `queue.rs`), so within a shard requests take turns batch by batch, and
//! one company's bulk request does not hold up the others'. A message is
//! acknowledged only after its artifacts are written and its answer is in
//! PostgreSQL; until then the server delivers it again when its `ack_wait`
//! runs out (a worker reports progress on long batches to keep it).
//!
//! Stream and consumers are created, or brought to these settings, when
//! the queue connects (`artifact nats setup` does only that).

mod artifacts;
mod queue;
mod responses;
#[cfg(test)]
mod tests;

use std::time::Duration;

use artifact_render::request::{CompanyId, Priority};
use async_nats::jetstream::{self, consumer::pull, stream};
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

pub use artifacts::{ARTIFACT_RETENTION, NatsSink};
pub use queue::NatsQueue;
pub use responses::NatsResponses;

use crate::{Error, PortResult};

/// How the queue uses the broker.
#[derive(Debug, Clone)]
pub struct NatsOptions {
    /// `nats://host:port`; several, comma-separated, for a cluster.
    pub url: String,
    /// Names the stream (`{NAME}_REQUESTS`), its subjects (`{name}.…`) and
    /// consumers: deployments (or tests) sharing a server use their own.
    pub name: String,
    /// Recipients per email batch message.
    pub batch_size: usize,
    /// Recipients per SMS batch message.
    pub sms_batch_size: usize,
    /// Deliveries of a batch before it is dead-lettered.
    pub max_attempts: u32,
    /// Delay before a failed batch's first retry; it doubles per attempt.
    pub retry_backoff: Duration,
    /// The consumers' `ack_wait`: how long a lease lasts without progress
    /// reports before the batch is delivered to another worker.
    pub lease_timeout: Duration,
    /// Copies of the stream in a cluster (1, 3 or 5).
    pub replicas: usize,
    /// How long the server remembers a message id to drop a republished
    /// batch (a client retrying a submit that failed half way).
    pub duplicate_window: Duration,
}

impl Default for NatsOptions {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            name: "artifact".into(),
            batch_size: 100,
            sms_batch_size: 1_000,
            max_attempts: 5,
            retry_backoff: Duration::from_secs(1),
            lease_timeout: Duration::from_secs(30),
            replicas: 1,
            duplicate_window: Duration::from_secs(10 * 60),
        }
    }
}

impl NatsOptions {
    pub fn check(&self) -> PortResult<()> {
        let name_ok = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !name_ok {
            return Err(Error::Invalid(format!(
                "NATS name {:?}: use lower-case letters, digits, `_` and `-`",
                self.name
            )));
        }
        if self.batch_size == 0 || self.sms_batch_size == 0 || self.max_attempts == 0 {
            return Err(Error::Invalid(
                "batch_size, sms_batch_size and max_attempts must be at least 1".into(),
            ));
        }
        if self.lease_timeout < Duration::from_secs(1) {
            return Err(Error::Invalid(
                "lease_timeout must be at least 1s: the broker's ack_wait".into(),
            ));
        }
        Ok(())
    }

    pub fn stream_name(&self) -> String {
        format!("{}_REQUESTS", self.name.to_ascii_uppercase())
    }

    pub fn responses_stream_name(&self) -> String {
        format!("{}_RESPONSES", self.name.to_ascii_uppercase())
    }

    pub fn artifacts_stream_name(&self) -> String {
        format!("{}_ARTIFACTS", self.name.to_ascii_uppercase())
    }

    fn shard_subject(&self, priority: Priority, shard: usize) -> String {
        format!("{}.requests.{}.{shard}", self.name, priority_name(priority))
    }

    fn consumer_name(&self, priority: Priority, shard: usize) -> String {
        format!("{}_workers_{}_{shard}", self.name, priority_name(priority))
    }

    /// Rung after a batch is published, naming its priority and shard, so
    /// idle workers look there at once.
    fn doorbell(&self) -> String {
        format!("{}.ready", self.name)
    }
}

/// What an id becomes in a header: the server trims a header value's
/// surrounding spaces, and message ids join ids with `/`, which ids may
/// hold; so spaces, `/` and `%` (and anything not ASCII) are escaped.
const HEADER_ESCAPED: &AsciiSet = &CONTROLS.add(b' ').add(b'/').add(b'%');

pub(crate) fn header_id(id: &str) -> String {
    utf8_percent_encode(id, HEADER_ESCAPED).to_string()
}

pub(crate) fn header_id_decoded(value: &str) -> Option<String> {
    percent_decode_str(value)
        .decode_utf8()
        .ok()
        .map(|id| id.into_owned())
}

/// How long the responses stream keeps an event.
pub const RESPONSE_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

fn priority_name(priority: Priority) -> &'static str {
    match priority {
        Priority::High => "high",
        Priority::Normal => "normal",
        Priority::Low => "low",
    }
}

const PRIORITIES: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Low];

/// Subjects per priority. A company's batches all go to one, chosen by a
/// stable hash of its id, and workers take turns between them. They are
/// the unit to spread over several streams when one stream's leader is the
/// limit (see ARCHITECTURE.md). Fixed, so every process agrees.
pub const SHARDS: usize = 8;

fn shard_of(company: &CompanyId) -> usize {
    let position = crate::canary::position(&[company.as_str()]);
    ((position * SHARDS as f64) as usize).min(SHARDS - 1)
}

/// Connects to the server. The client reconnects by itself for as long as
/// the process runs; calls made while it is away fail, and callers retry.
pub async fn connect(url: &str) -> PortResult<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .name("artifact-pipeline")
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|e| {
            let url = crate::adapters::redacted_url(url);
            Error::backend(format!("connecting to NATS at {url}"), e)
        })
}

/// Creates the streams (requests, responses, artifacts) and the request
/// consumers, or
/// brings existing ones to `options`. Idempotent: every process runs it
/// when it starts.
/// Returns the consumers by priority (highest first), then shard.
pub async fn setup(
    client: &async_nats::Client,
    options: &NatsOptions,
) -> PortResult<Vec<Vec<jetstream::consumer::PullConsumer>>> {
    options.check()?;
    let context = &jetstream::new(client.clone());
    let stream_name = options.stream_name();
    let doing = format!("setting up the NATS stream {stream_name}");
    let config = stream::Config {
        name: stream_name.clone(),
        subjects: vec![format!("{}.requests.*.*", options.name)],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        num_replicas: options.replicas,
        duplicate_window: options.duplicate_window,
        ..Default::default()
    };
    context
        .create_or_update_stream(config)
        .await
        .map_err(|e| Error::backend(&doing, e))?;
    let stream = context
        .get_stream(&stream_name)
        .await
        .map_err(|e| Error::backend(&doing, e))?;
    let responses = options.responses_stream_name();
    context
        .create_or_update_stream(stream::Config {
            name: responses.clone(),
            // `>`: company ids may hold dots.
            subjects: vec![format!("{}.responses.>", options.name)],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            num_replicas: options.replicas,
            max_age: RESPONSE_RETENTION,
            duplicate_window: options.duplicate_window,
            ..Default::default()
        })
        .await
        .map_err(|e| Error::backend(format!("setting up the NATS stream {responses}"), e))?;
    artifacts::setup_stream(context, options).await?;
    let mut consumers = Vec::with_capacity(PRIORITIES.len());
    for priority in PRIORITIES {
        let mut shards = Vec::with_capacity(SHARDS);
        for shard in 0..SHARDS {
            let name = options.consumer_name(priority, shard);
            let consumer = stream
                .create_consumer(pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: options.shard_subject(priority, shard),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: options.lease_timeout,
                    // The queue counts attempts itself (releases are not
                    // attempts) and dead-letters the last one with its
                    // reason; the server's own limit would drop it with only
                    // an advisory.
                    max_deliver: -1,
                    max_ack_pending: 100_000,
                    ..Default::default()
                })
                .await
                .map_err(|e| Error::backend(format!("setting up the consumer {name}"), e))?;
            shards.push(consumer);
        }
        consumers.push(shards);
    }
    Ok(consumers)
}
