//! The [`RequestQueue`] port on JetStream and PostgreSQL.
//!
//! A submit records the request and its batch messages in the ledger, then
//! publishes the first batch with `Nats-Msg-Id` = company/request/first
//! recipient, then marks the request published: only then does it read as
//! accepted. A submit that fails half way answers an error and reads as
//! absent; submitting it again publishes the first batch once more, and
//! the server drops it if it has it.
//!
//! A request keeps one batch waiting on the broker: leasing it publishes
//! the next, as the ledger keeps it. So the requests in a shard take turns
//! batch by batch, each lease putting its request's next batch behind the
//! others', and a bulk request never holds more than one place in the
//! line. A lease whose next batch could not be published is given back; a
//! worker that died before publishing it leaves its batch to be delivered
//! again, and that lease publishes it.
//!
//! A lease is a fetched message whose attempt the ledger has counted.
//! Answers go to the ledger first and are acknowledged to the server after,
//! so a crash in between delivers the batch again, and the ledger, which
//! already has its answer, makes that delivery a no-op.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use artifact_render::RenderRequest;
use artifact_render::request::{CompanyId, Priority, RequestId};
use artifact_render::template::Channel;
use async_nats::jetstream::{self, AckKind};
use async_nats::{HeaderMap, Subject};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use jiff::Timestamp;
use tokio::sync::Notify;
use tracing::warn;

use super::{
    NatsOptions, PRIORITIES, SHARDS, connect, header_id, header_id_decoded, setup, shard_of,
};
use crate::adapters::postgres::{Answered, BatchRef, Leased, PostgresStore, request_error};
use crate::adapters::{backoff, batch_ranges};
use crate::{
    Completion, Counts, DeadLetter, Error, LaneDepths, Lease, PortResult, RequestQueue,
    RequestStatus, Retry, Submitted,
};

const COMPANY: &str = "Artifact-Company";
const REQUEST: &str = "Artifact-Request";
/// The batch's recipients in the submitted request, `first-end`.
const BATCH: &str = "Artifact-Batch";

/// Room left in a message for its headers: the names and framing, and the
/// ids (twice each, up to 3 bytes per escaped byte).
fn header_room(request: &RenderRequest) -> usize {
    let ids = request.company_id().as_str().len() + request.request_id().as_str().len();
    256 + 2 * 3 * ids
}

/// How often an idle worker looks for batches nobody rang for: retries
/// coming due, leases expiring.
const POLL: Duration = Duration::from_millis(200);

/// How long a pull waits for the server's answer before it counts as a
/// failed call (and the worker backs off and tries again).
const PULL_ANSWER: Duration = Duration::from_secs(5);

/// The request queue of the scaled-out mode.
pub struct NatsQueue {
    options: NatsOptions,
    client: async_nats::Client,
    jetstream: jetstream::Context,
    /// By priority (highest first), then shard.
    pub(super) consumers: Vec<Vec<jetstream::consumer::PullConsumer>>,
    /// Per priority, the shard this process looks at first next time: the
    /// one after the shard it last leased from.
    next_shard: [AtomicUsize; 3],
    empty: Arc<EmptyShards>,
    ledger: Arc<PostgresStore>,
    held: Mutex<HashMap<u64, Held>>,
    next_lease: AtomicU64,
    ready: Arc<Notify>,
    doorbell: tokio::task::JoinHandle<()>,
}

/// Shards a pull found empty, skipped until [`POLL`] has passed or a
/// publish rang the doorbell for them: with few companies busy, a lease
/// then costs a pull or two, not one per shard. A retry coming due in a
/// skipped shard waits at most [`POLL`] more.
struct EmptyShards {
    epoch: Instant,
    /// Per priority and shard, milliseconds after `epoch` until which it
    /// is skipped.
    until: [[AtomicU64; SHARDS]; 3],
}

impl EmptyShards {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            until: Default::default(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn skipped(&self, priority: usize, shard: usize) -> bool {
        self.now() < self.until[priority][shard].load(Ordering::Relaxed)
    }

    fn found_empty(&self, priority: usize, shard: usize) {
        let until = self.now().saturating_add(POLL.as_millis() as u64);
        self.until[priority][shard].store(until, Ordering::Relaxed);
    }

    fn published(&self, priority: usize, shard: usize) {
        self.until[priority][shard].store(0, Ordering::Relaxed);
    }
}

fn priority_index(priority: Priority) -> usize {
    PRIORITIES
        .iter()
        .position(|&p| p == priority)
        .unwrap_or_default()
}

/// What the doorbell says: a batch was published to `priority` (an index
/// into [`PRIORITIES`]) and `shard`.
fn ring(priority: usize, shard: usize) -> Bytes {
    Bytes::from(format!("{priority}.{shard}"))
}

fn rung(payload: &[u8]) -> Option<(usize, usize)> {
    let (priority, shard) = std::str::from_utf8(payload).ok()?.split_once('.')?;
    let (priority, shard) = (priority.parse().ok()?, shard.parse().ok()?);
    (priority < PRIORITIES.len() && shard < SHARDS).then_some((priority, shard))
}

/// A lease this process holds: where to answer it, and until when.
struct Held {
    reply: Subject,
    deadline: Option<Instant>,
}

impl std::fmt::Debug for NatsQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsQueue")
            .field("stream", &self.options.stream_name())
            .finish()
    }
}

impl Drop for NatsQueue {
    fn drop(&mut self) {
        self.doorbell.abort();
    }
}

impl NatsQueue {
    /// Connects, sets up the stream and consumers, and listens for the
    /// doorbell. Must run on a tokio runtime.
    pub async fn connect(options: NatsOptions, ledger: Arc<PostgresStore>) -> PortResult<Self> {
        options.check()?;
        let client = connect(&options.url).await?;
        let jetstream = jetstream::new(client.clone());
        let consumers = setup(&client, &options).await?;
        let mut rings = client
            .subscribe(options.doorbell())
            .await
            .map_err(|e| Error::backend("subscribing to the NATS doorbell", e))?;
        let ready = Arc::new(Notify::new());
        let empty = Arc::new(EmptyShards::new());
        let doorbell = tokio::spawn({
            let (ready, empty) = (ready.clone(), empty.clone());
            async move {
                while let Some(message) = rings.next().await {
                    if let Some((priority, shard)) = rung(&message.payload) {
                        empty.published(priority, shard);
                        ready.notify_waiters();
                    }
                }
            }
        });
        Ok(Self {
            options,
            client,
            jetstream,
            consumers,
            next_shard: Default::default(),
            empty,
            ledger,
            held: Mutex::default(),
            next_lease: AtomicU64::new(1),
            ready,
            doorbell,
        })
    }

    /// The connection, shared with whatever else publishes to the server.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The stream and consumer settings this queue runs with.
    pub fn options(&self) -> &NatsOptions {
        &self.options
    }

    /// Deletes the streams and their consumers: for tests.
    #[cfg(test)]
    pub(crate) async fn delete_stream(&self) {
        for stream in [
            self.options.stream_name(),
            self.options.responses_stream_name(),
            self.options.artifacts_stream_name(),
        ] {
            let _ = self.jetstream.delete_stream(stream).await;
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Held>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a live lease out of the held ones: `None` when unknown,
    /// answered, or expired (its batch is, or will be, delivered again).
    fn take_held(&self, lease: &Lease) -> Option<jetstream::message::Acker> {
        let held = self.held().remove(&lease.id)?;
        if held
            .deadline
            .is_some_and(|deadline| deadline <= Instant::now())
        {
            return None;
        }
        Some(self.acker(held.reply))
    }

    fn acker(&self, reply: Subject) -> jetstream::message::Acker {
        jetstream::message::Acker::new(self.jetstream.clone(), Some(reply))
    }

    /// The batch messages of `request`: `batch_size` recipients each, fewer
    /// where that would pass the server's max payload.
    fn batch_messages(&self, request: &RenderRequest) -> PortResult<Vec<(BatchRef, Bytes)>> {
        let size = match request.channel_settings().channel() {
            Channel::Email => self.options.batch_size,
            Channel::Sms => self.options.sms_batch_size,
        };
        let max_payload = self.client.server_info().max_payload;
        let limit = max_payload.saturating_sub(header_room(request));
        let mut todo: Vec<_> = batch_ranges(request.render_recipients().len(), size);
        todo.reverse();
        let mut messages = Vec::with_capacity(todo.len());
        while let Some(range) = todo.pop() {
            let (batch, payload) = batch_message(request, range.clone())?;
            if payload.len() <= limit {
                messages.push((batch, payload));
            } else if range.len() == 1 {
                return Err(Error::Invalid(format!(
                    "render_recipients[{}] alone makes a batch of {} bytes, more than the \
                     broker's maximum message of {max_payload} bytes: shrink the inline \
                     template or the recipient's event data",
                    range.start,
                    payload.len()
                )));
            } else {
                let middle = range.start + range.len() / 2;
                todo.push(middle..range.end);
                todo.push(range.start..middle);
            }
        }
        Ok(messages)
    }

    /// Publishes a batch to `priority` (an index into [`PRIORITIES`]) and
    /// `shard`, and rings the doorbell for it. Returns once the server has
    /// stored it.
    pub(super) async fn publish(
        &self,
        priority: usize,
        shard: usize,
        (batch, payload): (BatchRef, Bytes),
    ) -> PortResult<()> {
        let doing = "publishing a batch to NATS";
        let mut headers = HeaderMap::new();
        let company = header_id(batch.company_id.as_str());
        let id = header_id(batch.request_id.as_str());
        let range = &batch.recipients;
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            format!("{company}/{id}/{}", range.start).as_str(),
        );
        headers.insert(COMPANY, company.as_str());
        headers.insert(REQUEST, id.as_str());
        headers.insert(BATCH, format!("{}-{}", range.start, range.end).as_str());
        let subject = self.options.shard_subject(PRIORITIES[priority], shard);
        self.jetstream
            .publish_with_headers(subject, headers, payload)
            .await
            .map_err(|e| Error::backend(doing, e))?
            .await
            .map_err(|e| Error::backend(doing, e))?;
        // This process's workers look at once; the others when the doorbell
        // reaches them.
        self.empty.published(priority, shard);
        if let Err(error) = self
            .client
            .publish(self.options.doorbell(), ring(priority, shard))
            .await
        {
            warn!(%error, "cannot ring the NATS doorbell; workers find the batch later");
        }
        Ok(())
    }

    /// The next message of `consumer`, if one is ready now.
    pub(super) async fn fetch(
        &self,
        consumer: &jetstream::consumer::PullConsumer,
    ) -> PortResult<Option<jetstream::Message>> {
        let doing = "fetching a batch from NATS";
        let mut batch = consumer
            .fetch()
            .max_messages(1)
            .messages()
            .await
            .map_err(|e| Error::backend(doing, e))?;
        // The server answers a pull that finds nothing at once, but the
        // client waits for that answer without a limit: a worker whose
        // answer never came stopped leasing for good (seen once in the
        // tests). An expiry on the pull would make the server wait instead.
        match tokio::time::timeout(PULL_ANSWER, batch.next()).await {
            Ok(next) => next.transpose().map_err(|e| Error::backend(doing, e)),
            Err(_) => Err(Error::backend(
                doing,
                format!("the server did not answer the pull within {PULL_ANSWER:?}"),
            )),
        }
    }

    /// Turns a fetched message into a lease, or settles it and answers
    /// `None`: a batch answered before (acknowledged again), out of
    /// attempts or unreadable (dead-lettered).
    /// `fetched_at`: when the fetch was sent, where the server's `ack_wait`
    /// starts, so the lease never outlives it here.
    /// `priority` and `shard`: where it came from, where its request's next
    /// batch goes.
    async fn take(
        &self,
        message: jetstream::Message,
        fetched_at: Instant,
        (priority, shard): (usize, usize),
    ) -> PortResult<Option<Lease>> {
        // A message fetched from a consumer always has a reply subject: it
        // is where the answer goes.
        let Some(reply) = message.reply.clone() else {
            return Ok(None);
        };
        let (message, acker) = message.split();
        let batch = match batch_of(&message) {
            Ok(batch) => batch,
            Err(why) => {
                warn!(subject = %message.subject, why, "dropping a message that is not a batch");
                settle(&acker, AckKind::Term).await;
                return Ok(None);
            }
        };
        match self
            .admit(&batch, &message.payload, (priority, shard))
            .await
        {
            Ok(Admitted::Lease(request, attempt)) => {
                let id = self.next_lease.fetch_add(1, Ordering::Relaxed);
                let deadline = fetched_at.checked_add(self.options.lease_timeout);
                self.held().insert(id, Held { reply, deadline });
                Ok(Some(Lease {
                    id,
                    request: Arc::from(request),
                    offset: batch.recipients.start,
                    recipients: batch.recipients,
                    attempt,
                }))
            }
            Ok(Admitted::Settled(kind)) => {
                settle(&acker, kind).await;
                Ok(None)
            }
            Err(error) => {
                // Back to the queue rather than held until the lease ends;
                // not at once, as the ledger is likely still away.
                settle(&acker, AckKind::Nak(Some(self.options.retry_backoff))).await;
                Err(error)
            }
        }
    }

    /// Decides what a delivery of `batch` is.
    async fn admit(
        &self,
        batch: &BatchRef,
        payload: &[u8],
        (priority, shard): (usize, usize),
    ) -> PortResult<Admitted> {
        let Leased {
            attempt,
            answered,
            next,
        } = self.ledger.record_lease(batch).await?;
        if let Some(next) = next {
            // Whatever becomes of this batch, its request goes on.
            if let Err(error) = self.publish(priority, shard, next).await {
                // Not an attempt: the next lease publishes it.
                if let Err(ledger) = self.ledger.record_release(batch).await {
                    warn!(%ledger, "cannot give back an attempt; the batch keeps it");
                }
                return Err(error);
            }
        }
        if answered {
            return Ok(Admitted::Settled(AckKind::Ack));
        }
        if attempt > self.options.max_attempts {
            let tried = attempt - 1;
            let reason = format!(
                "gave up after {tried} attempts (each ended without an answer: its worker \
                 stopped, or its lease expired, while rendering it)"
            );
            let error = request_error(&batch.recipients, &reason);
            self.ledger
                .record_dead(batch, tried, &reason, &error)
                .await?;
            return Ok(Admitted::Settled(AckKind::Term));
        }
        let request = std::str::from_utf8(payload)
            .map_err(|e| e.to_string())
            .and_then(|json| RenderRequest::from_stored(json, batch.request_id.clone(), None));
        match request {
            Ok(request) => Ok(Admitted::Lease(Box::new(request), attempt)),
            Err(why) => {
                let reason = format!("the batch message cannot be read: {why}");
                let error = request_error(&batch.recipients, &reason);
                self.ledger
                    .record_dead(batch, attempt, &reason, &error)
                    .await?;
                Ok(Admitted::Settled(AckKind::Term))
            }
        }
    }

    /// Records that `lease` published its request's next batch, before its
    /// batch goes back to the stream. Not recording it only risks a second
    /// copy if the batch is delivered again after the duplicate window:
    /// logged, not returned.
    async fn next_published(&self, lease: &Lease) {
        if let Err(error) = self.ledger.record_next_published(&batch_ref(lease)).await {
            warn!(%error, "cannot record a batch as published");
        }
    }

    /// Dead-letters a held batch and removes it from the stream.
    async fn dead_letter(
        &self,
        lease: &Lease,
        acker: jetstream::message::Acker,
        reason: &str,
        error: &str,
    ) -> PortResult<Retry> {
        let answer = self
            .ledger
            .record_dead(&batch_ref(lease), lease.attempt, reason, error)
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                settle(&acker, AckKind::Nak(None)).await;
                return Err(error);
            }
        };
        settle(&acker, AckKind::Term).await;
        Ok(match answer {
            Answered::Already => Retry::Stale,
            Answered::Pending(status) | Answered::Finished(status) => Retry::DeadLettered(status),
        })
    }
}

enum Admitted {
    Lease(Box<RenderRequest>, u32),
    /// Not for rendering: answer the server this way.
    Settled(AckKind),
}

/// Answers the server about a message. An answer that does not arrive
/// leaves the message to be delivered again, which the ledger makes
/// harmless: logged, not returned.
async fn settle(acker: &jetstream::message::Acker, kind: AckKind) {
    let result = match kind {
        AckKind::Ack => acker.double_ack().await,
        other => acker.ack_with(other).await,
    };
    if let Err(error) = result {
        warn!(%error, "cannot answer the NATS server about a batch; it is delivered again");
    }
}

/// The message of `request`'s batch `range`: the request cut to it.
pub(super) fn batch_message(
    request: &RenderRequest,
    range: Range<usize>,
) -> PortResult<(BatchRef, Bytes)> {
    let json = request
        .batch(range.clone())
        .stored_json()
        .map_err(|e| Error::backend("serializing a batch", e))?
        .into_owned();
    let batch = BatchRef {
        company_id: request.company_id().clone(),
        request_id: request.request_id().clone(),
        recipients: range,
    };
    Ok((batch, Bytes::from(json)))
}

fn batch_ref(lease: &Lease) -> BatchRef {
    BatchRef {
        company_id: lease.request.company_id().clone(),
        request_id: lease.request.request_id().clone(),
        recipients: lease.recipients.clone(),
    }
}

/// The batch a message's headers name.
pub(super) fn batch_of(message: &async_nats::Message) -> Result<BatchRef, &'static str> {
    let headers = message.headers.as_ref().ok_or("no headers")?;
    let header = |name: &str| headers.get(name).map(|value| value.as_str());
    let company = header(COMPANY)
        .and_then(header_id_decoded)
        .ok_or("no company header")?;
    let request = header(REQUEST)
        .and_then(header_id_decoded)
        .ok_or("no request header")?;
    let (first, end) = header(BATCH)
        .and_then(|range| range.split_once('-'))
        .ok_or("no batch header")?;
    let (first, end): (usize, usize) = (
        first.parse().map_err(|_| "bad batch header")?,
        end.parse().map_err(|_| "bad batch header")?,
    );
    if first >= end {
        return Err("empty batch");
    }
    Ok(BatchRef {
        company_id: CompanyId::parse(&company).map_err(|_| "bad company header")?,
        request_id: RequestId::parse(&request).map_err(|_| "bad request header")?,
        recipients: first..end,
    })
}

#[async_trait]
impl RequestQueue for NatsQueue {
    async fn submit(&self, request: Arc<RenderRequest>) -> PortResult<Submitted> {
        let messages = self.batch_messages(&request)?;
        let (submitted, first) = self.ledger.record_submit(&request, &messages).await?;
        let Submitted::Accepted(status) = &submitted else {
            return Ok(submitted);
        };
        // A retry of a submit that failed half way must be that request.
        let recorded = (status.recipients, status.priority);
        let retried = (request.render_recipients().len() as u64, request.priority());
        if recorded != retried {
            return Err(Error::Invalid(format!(
                "request {:?} was first submitted with {} recipients at priority {}: submit \
                 this one under a new request id",
                request.request_id().as_str(),
                status.recipients,
                super::priority_name(status.priority)
            )));
        }
        if let Some(first) = first {
            let priority = priority_index(request.priority());
            self.publish(priority, shard_of(request.company_id()), first)
                .await?;
        }
        self.ledger
            .record_published(request.company_id(), request.request_id())
            .await?;
        Ok(submitted)
    }

    async fn lease(&self, wait: Duration) -> PortResult<Option<Lease>> {
        let deadline = Instant::now().checked_add(wait);
        loop {
            // Before looking, so a ring between the look and the wait wakes us.
            let rung = self.ready.notified();
            for (priority, (shards, next)) in
                self.consumers.iter().zip(&self.next_shard).enumerate()
            {
                let first = next.load(Ordering::Relaxed);
                for turn in 0..SHARDS {
                    let shard = (first + turn) % SHARDS;
                    if self.empty.skipped(priority, shard) {
                        continue;
                    }
                    loop {
                        let fetched_at = Instant::now();
                        let Some(message) = self.fetch(&shards[shard]).await? else {
                            self.empty.found_empty(priority, shard);
                            break;
                        };
                        if let Some(lease) =
                            self.take(message, fetched_at, (priority, shard)).await?
                        {
                            next.store((shard + 1) % SHARDS, Ordering::Relaxed);
                            return Ok(Some(lease));
                        }
                    }
                }
            }
            let now = Instant::now();
            if deadline.is_some_and(|deadline| now >= deadline) {
                return Ok(None);
            }
            let until = [deadline, now.checked_add(POLL)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now);
            let _ = tokio::time::timeout_at(until.into(), rung).await;
        }
    }

    async fn complete(&self, lease: &Lease, counts: Counts) -> PortResult<Completion> {
        let Some(acker) = self.take_held(lease) else {
            return Ok(Completion::Stale);
        };
        let answer = match self.ledger.record_done(&batch_ref(lease), counts).await {
            Ok(answer) => answer,
            Err(error) => {
                settle(&acker, AckKind::Nak(None)).await;
                return Err(error);
            }
        };
        settle(&acker, AckKind::Ack).await;
        Ok(match answer {
            Answered::Already => Completion::Stale,
            Answered::Pending(_) => Completion::Pending,
            Answered::Finished(status) => Completion::Finished(status),
        })
    }

    async fn fail(&self, lease: &Lease, reason: &str) -> PortResult<Retry> {
        let Some(acker) = self.take_held(lease) else {
            return Ok(Retry::Stale);
        };
        if lease.attempt < self.options.max_attempts {
            self.next_published(lease).await;
            let delay = backoff(self.options.retry_backoff, lease.attempt);
            acker
                .ack_with(AckKind::Nak(Some(delay)))
                .await
                .map_err(|e| Error::backend("retrying a batch on NATS", e))?;
            let at = Timestamp::now()
                .checked_add(delay)
                .unwrap_or(Timestamp::MAX);
            return Ok(Retry::At(at));
        }
        let error = format!(
            "batch {}..{} failed after {} attempts: {reason}",
            lease.recipients.start, lease.recipients.end, lease.attempt
        );
        self.dead_letter(lease, acker, reason, &error).await
    }

    async fn reject(&self, lease: &Lease, reason: &str) -> PortResult<Retry> {
        let Some(acker) = self.take_held(lease) else {
            return Ok(Retry::Stale);
        };
        let error = request_error(&lease.recipients, reason);
        self.dead_letter(lease, acker, reason, &error).await
    }

    async fn release(&self, lease: &Lease) -> PortResult<()> {
        let Some(acker) = self.take_held(lease) else {
            return Ok(());
        };
        self.next_published(lease).await;
        let recorded = self.ledger.record_release(&batch_ref(lease)).await;
        settle(&acker, AckKind::Nak(None)).await;
        recorded
    }

    fn lease_timeout(&self) -> Duration {
        self.options.lease_timeout
    }

    async fn in_progress(&self, lease: &Lease) -> PortResult<bool> {
        let reply = {
            let mut held = self.held();
            let Some(entry) = held.get_mut(&lease.id) else {
                return Ok(false);
            };
            let now = Instant::now();
            if entry.deadline.is_some_and(|deadline| deadline <= now) {
                held.remove(&lease.id);
                return Ok(false);
            }
            entry.deadline = now.checked_add(self.options.lease_timeout);
            entry.reply.clone()
        };
        self.acker(reply)
            .ack_with(AckKind::Progress)
            .await
            .map_err(|e| Error::backend("reporting a batch in progress to NATS", e))?;
        Ok(true)
    }

    async fn status(
        &self,
        company: &CompanyId,
        request_id: &RequestId,
    ) -> PortResult<Option<RequestStatus>> {
        self.ledger.request_status(company, request_id).await
    }

    async fn depths(&self) -> PortResult<LaneDepths> {
        self.ledger.unfinished_batches().await
    }

    async fn dead_letters(&self, limit: usize) -> PortResult<Vec<DeadLetter>> {
        self.ledger.dead_letters(limit).await
    }

    async fn unannounced(
        &self,
        finished_before: Timestamp,
        limit: usize,
    ) -> PortResult<Vec<RequestStatus>> {
        self.ledger.unannounced(finished_before, limit).await
    }

    async fn announced(&self, company: &CompanyId, request_id: &RequestId) -> PortResult<()> {
        self.ledger.announced(company, request_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_doorbell_names_a_priority_and_a_shard_and_nothing_else_rings() {
        for (priority, shard) in [(0, 0), (1, 7), (2, 3)] {
            assert_eq!(rung(&ring(priority, shard)), Some((priority, shard)));
        }
        for payload in ["", "1", "3.0", "0.8", "a.b", "1.2.3", "-1.0"] {
            assert_eq!(rung(payload.as_bytes()), None, "{payload:?}");
        }
    }
}
