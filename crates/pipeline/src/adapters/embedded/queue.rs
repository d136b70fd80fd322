//! The [`RequestQueue`] port. Every change is written to SQLite first, in
//! one transaction, and then applied to the in-memory [`Scheduler`]; both
//! happen under the scheduler's lock, so the two never disagree about a
//! lease. A batch's attempt count is written when it is leased, so a batch
//! that keeps killing the process is dead-lettered after `max_attempts`
//! restarts instead of looping forever.
//!
//! A dead-lettered batch fails its request at once (state and error), but
//! the request's other batches still render and count. `finished_at` is set
//! when the last batch ends, whichever way: so exactly one answer per
//! request carries a status with `finished_at` set, either
//! `Completion::Finished` or the `Retry::DeadLettered` of its last batch.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use artifact_render::RenderRequest;
use artifact_render::request::{CompanyId, Priority, RequestId};
use artifact_render::template::Channel;
use async_trait::async_trait;
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::scheduler::{BatchId, Granted, RequestKey, Scheduler, StoredBatch};
use super::{
    EmbeddedStore, Inner, OrBackend, backoff, batch_ranges, parse_id, parse_timestamp,
    parse_variant, timestamp_text, variant_name,
};
use crate::{
    Completion, Counts, DeadLetter, Error, LaneDepths, Lease, PortResult, RequestQueue,
    RequestState, RequestStatus, Retry, Submitted,
};

#[async_trait]
impl RequestQueue for EmbeddedStore {
    async fn submit(&self, request: Arc<RenderRequest>) -> PortResult<Submitted> {
        let submitted = self.run(move |inner| inner.submit(request)).await?;
        if matches!(submitted, Submitted::Accepted(_)) {
            self.ready.notify_waiters();
        }
        Ok(submitted)
    }

    /// Not cancel-safe at one point: dropped while it is taking a batch
    /// (inside the blocking call), the batch may be leased to nobody; it is
    /// delivered again when the lease expires, as the next attempt.
    async fn lease(&self, wait: Duration) -> PortResult<Option<Lease>> {
        let deadline = Instant::now().checked_add(wait);
        loop {
            // Created before looking, so a submit between the look and the
            // wait still wakes us.
            let notified = self.ready.notified();
            let next_wake = match self.run(Inner::try_lease).await? {
                Leasing::Leased(lease) => return Ok(Some(lease)),
                Leasing::Empty { next_wake } => next_wake,
            };
            let now = Instant::now();
            if deadline.is_some_and(|deadline| now >= deadline) {
                return Ok(None);
            }
            // A retry coming due or a lease expiring wakes nobody, so sleep
            // no longer than the first of them; and no longer than a lease
            // lasts, so a lease granted while we sleep is seen to expire.
            let lease_granted_now = now.checked_add(self.inner.options.lease_timeout);
            let wakes = [next_wake, deadline, lease_granted_now];
            match wakes.into_iter().flatten().min() {
                Some(until) => {
                    let _ = tokio::time::timeout_at(until.into(), notified).await;
                }
                None => notified.await,
            }
        }
    }

    async fn complete(&self, lease: &Lease, counts: Counts) -> PortResult<Completion> {
        let id = lease.id;
        self.run(move |inner| inner.complete(id, counts)).await
    }

    async fn fail(&self, lease: &Lease, reason: &str) -> PortResult<Retry> {
        let (id, reason) = (lease.id, reason.to_owned());
        let retry = self.run(move |inner| inner.fail(id, &reason)).await?;
        if matches!(retry, Retry::At(_)) {
            // Waiting leases sleep until the earliest retry they knew of.
            self.ready.notify_waiters();
        }
        Ok(retry)
    }

    async fn reject(&self, lease: &Lease, reason: &str) -> PortResult<Retry> {
        let (id, reason) = (lease.id, reason.to_owned());
        self.run(move |inner| inner.reject(id, &reason)).await
    }

    async fn release(&self, lease: &Lease) -> PortResult<()> {
        let id = lease.id;
        if self.run(move |inner| inner.release(id)).await? {
            self.ready.notify_waiters();
        }
        Ok(())
    }

    fn lease_timeout(&self) -> Duration {
        self.inner.options.lease_timeout
    }

    async fn in_progress(&self, lease: &Lease) -> PortResult<bool> {
        let now = Instant::now();
        let mut scheduler = self.inner.scheduler();
        scheduler.sweep(now);
        Ok(scheduler.extend(lease.id, now.checked_add(self.inner.options.lease_timeout)))
    }

    async fn status(
        &self,
        company: &CompanyId,
        request_id: &RequestId,
    ) -> PortResult<Option<RequestStatus>> {
        let key = (company.clone(), request_id.clone());
        self.run(move |inner| inner.db.read(|conn| read_status(conn, &key)))
            .await
    }

    async fn depths(&self) -> PortResult<LaneDepths> {
        self.run(|inner| Ok(inner.scheduler().depths())).await
    }

    async fn dead_letters(&self, limit: usize) -> PortResult<Vec<DeadLetter>> {
        self.run(move |inner| inner.db.read(|conn| read_dead_letters(conn, limit)))
            .await
    }

    async fn unannounced(
        &self,
        finished_before: Timestamp,
        limit: usize,
    ) -> PortResult<Vec<RequestStatus>> {
        self.run(move |inner| {
            inner.db.read(|conn| {
                let doing = "reading unannounced requests";
                let mut select = conn
                    .prepare_cached(
                        "SELECT company_id, request_id FROM requests
                         WHERE finished_at IS NOT NULL AND announced = 0 AND finished_at <= ?1
                         ORDER BY finished_at LIMIT ?2",
                    )
                    .or_backend(doing)?;
                let keys = select
                    .query_map(
                        params![timestamp_text(finished_before), super::to_sql_int(limit)],
                        |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
                    )
                    .or_backend(doing)?
                    .collect::<Result<Vec<_>, _>>()
                    .or_backend(doing)?;
                let mut statuses = Vec::with_capacity(keys.len());
                for (company, request) in keys {
                    let key = (
                        parse_id(&company, CompanyId::parse)?,
                        parse_id(&request, RequestId::parse)?,
                    );
                    statuses.extend(read_status(conn, &key)?);
                }
                Ok(statuses)
            })
        })
        .await
    }

    async fn announced(&self, company: &CompanyId, request_id: &RequestId) -> PortResult<()> {
        let key = (company.as_str().to_owned(), request_id.as_str().to_owned());
        self.run(move |inner| {
            inner.db.write(|conn| {
                conn.prepare_cached(
                    "UPDATE requests SET announced = 1 WHERE company_id = ?1 AND request_id = ?2",
                )
                .and_then(|mut update| update.execute(params![key.0, key.1]))
                .or_backend("marking a request announced")?;
                Ok(())
            })
        })
        .await
    }
}

/// The most requests kept parsed, whatever their size: small enough that a
/// linear search on every lease costs nothing next to the lease's write.
const RECENT_REQUESTS: usize = 64;

/// The requests leased or submitted most recently, newest first, with the
/// size of their JSON, up to `EmbeddedOptions::parsed_requests_bytes` and
/// [`RECENT_REQUESTS`]; at least one is kept whatever its size.
#[derive(Debug)]
pub(super) struct RecentRequests {
    requests: std::collections::VecDeque<(Arc<RenderRequest>, usize)>,
    bytes: usize,
    budget: usize,
}

impl RecentRequests {
    pub(super) fn new(budget: usize) -> Self {
        Self {
            requests: Default::default(),
            bytes: 0,
            budget,
        }
    }

    fn get(&mut self, key: &RequestKey) -> Option<Arc<RenderRequest>> {
        let at = self
            .requests
            .iter()
            .position(|(r, _)| r.company_id() == &key.0 && r.request_id() == &key.1)?;
        let entry = self.requests.remove(at)?;
        let request = entry.0.clone();
        self.requests.push_front(entry);
        Some(request)
    }

    /// Keeps `request`, counted as the JSON it was parsed from and any JSON
    /// it still holds for storing.
    fn remember(&mut self, request: Arc<RenderRequest>, json_bytes: usize) {
        // Two workers that missed at once both parsed it: keep one copy.
        self.forget(&(request.company_id().clone(), request.request_id().clone()));
        let bytes = json_bytes + request.source_len();
        self.requests.push_front((request, bytes));
        self.bytes += bytes;
        while (self.bytes > self.budget || self.requests.len() > RECENT_REQUESTS)
            && self.requests.len() > 1
        {
            if let Some((_, dropped)) = self.requests.pop_back() {
                self.bytes -= dropped;
            }
        }
    }

    /// Drops a finished request: none of its batches will be leased again.
    fn forget(&mut self, key: &RequestKey) {
        let found = self
            .requests
            .iter()
            .position(|(r, _)| r.company_id() == &key.0 && r.request_id() == &key.1);
        if let Some((_, bytes)) = found.and_then(|at| self.requests.remove(at)) {
            self.bytes -= bytes;
        }
    }
}

/// Why a leased batch's request could not be loaded.
enum Unloadable {
    /// The file could not be read: release the lease and report it.
    Backend(Error),
    /// The stored request no longer parses (its format changed).
    Unparsable(String),
}

/// What one look at the ready batches found.
enum Leasing {
    Leased(Lease),
    /// Nothing ready; something will be by itself at `next_wake`.
    Empty {
        next_wake: Option<Instant>,
    },
}

impl Inner {
    fn submit(&self, request: Arc<RenderRequest>) -> PortResult<Submitted> {
        let key = (request.company_id().clone(), request.request_id().clone());
        let batch_size = match request.channel_settings().channel() {
            Channel::Email => self.options.batch_size,
            Channel::Sms => self.options.sms_batch_size,
        };
        let ranges = batch_ranges(request.render_recipients().len(), batch_size);
        let json = request
            .stored_json()
            .or_backend("serializing the request")?;
        let json_len = json.len();
        let pinned_version = request.pinned_template_version();
        let metadata = serde_json::to_string(request.response_metadata())
            .or_backend("serializing response_metadata")?;
        let now = Timestamp::now();
        // A request without recipients (only possible when it skipped
        // validation) has nothing to wait for.
        let (state, finished_at) = if ranges.is_empty() {
            (RequestState::Done, Some(now))
        } else {
            (RequestState::Queued, None)
        };
        let (priority_text, state_text) =
            (variant_name(&request.priority())?, variant_name(&state)?);
        let doing = format!("submitting request {}/{}", key.0, key.1);
        let inserted = self.db.write(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .or_backend(&doing)?;
            if let Some(existing) = read_status(&tx, &key)? {
                return Ok(Err(existing));
            }
            tx.prepare_cached(
                "INSERT INTO requests (company_id, request_id, priority, state,
                     recipients, response_metadata, accepted_at, finished_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut insert| {
                insert.execute(params![
                    key.0.as_str(),
                    key.1.as_str(),
                    priority_text,
                    state_text,
                    request.render_recipients().len(),
                    metadata,
                    timestamp_text(now),
                    finished_at.map(timestamp_text),
                ])
            })
            .or_backend(&doing)?;
            tx.prepare_cached(
                "INSERT INTO request_bodies (company_id, request_id, request, template_version)
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut insert| {
                insert.execute(params![
                    key.0.as_str(),
                    key.1.as_str(),
                    json.as_ref(),
                    pinned_version
                ])
            })
            .or_backend(&doing)?;
            let mut batches = Vec::with_capacity(ranges.len());
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO batches (company_id, request_id, range_start, range_end)
                         VALUES (?1, ?2, ?3, ?4)",
                    )
                    .or_backend(&doing)?;
                for range in &ranges {
                    let id = insert
                        .insert(params![
                            key.0.as_str(),
                            key.1.as_str(),
                            range.start,
                            range.end
                        ])
                        .or_backend(&doing)?;
                    batches.push((id, range.clone(), 0));
                }
            }
            tx.commit().or_backend(&doing)?;
            Ok(Ok(batches))
        })?;
        let batches = match inserted {
            Ok(batches) => batches,
            Err(existing) => return Ok(Submitted::Existing(existing)),
        };
        // Nothing can lease these before they are added, so adding them
        // after the commit (and outside the write lock) is safe.
        self.scheduler().add(&key, request.priority(), batches);
        self.requests().remember(request.clone(), json_len);
        Ok(Submitted::Accepted(RequestStatus {
            company_id: key.0,
            request_id: key.1,
            priority: request.priority(),
            state,
            recipients: request.render_recipients().len() as u64,
            counts: Counts::default(),
            response_metadata: request.response_metadata().clone(),
            accepted_at: now,
            started_at: None,
            finished_at,
            error: None,
        }))
    }

    fn try_lease(&self) -> PortResult<Leasing> {
        loop {
            let granted = match self.grant_next()? {
                Ok(granted) => granted,
                Err(next_wake) => return Ok(Leasing::Empty { next_wake }),
            };
            // Loaded outside the scheduler's lock: parsing a large request
            // must not stall other workers' leases and completions.
            match self.request(&granted.key) {
                Ok(request) => {
                    return Ok(Leasing::Leased(Lease {
                        id: granted.lease,
                        request,
                        recipients: granted.range,
                        offset: 0,
                        attempt: granted.attempt,
                    }));
                }
                Err(Unloadable::Backend(error)) => {
                    self.release(granted.lease)?;
                    return Err(error);
                }
                // Permanent: dead-letter this batch (its siblings follow
                // as they come up) and look for other work.
                Err(Unloadable::Unparsable(why)) => {
                    self.reject(
                        granted.lease,
                        &format!("the stored request no longer parses: {why}"),
                    )?;
                }
            }
        }
    }

    /// Leases the next ready batch, or says when to look again.
    fn grant_next(&self) -> PortResult<Result<Granted, Option<Instant>>> {
        let mut scheduler = self.scheduler();
        let now = Instant::now();
        scheduler.sweep(now);
        while let Some(id) = scheduler.pop() {
            let Some(batch) = scheduler.batch(id) else {
                continue;
            };
            let key = batch.key.clone();
            let (range, attempts) = (batch.range.clone(), batch.attempts);
            if attempts >= self.options.max_attempts {
                // Its earlier leases all died (expired, or the process
                // stopped): rendering it is what kills them.
                let why = if batch.expired {
                    "its last lease expired while rendering it"
                } else {
                    "the process stopped while rendering it"
                };
                let reason = format!("gave up after {attempts} attempts ({why})");
                let error = format!("batch {}..{}: {reason}", range.start, range.end);
                if let Err(error) = self.dead_letter(&mut scheduler, None, id, &reason, error) {
                    scheduler.unpop(id);
                    return Err(error);
                }
                continue;
            }
            let leased = self.db.write(|conn| {
                let doing = "recording a lease";
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .or_backend(doing)?;
                tx.prepare_cached("UPDATE batches SET attempts = ?2 WHERE id = ?1")
                    .and_then(|mut update| update.execute(params![id, attempts + 1]))
                    .or_backend(doing)?;
                tx.prepare_cached(
                    "UPDATE requests SET state = 'rendering', started_at = ?3
                     WHERE company_id = ?1 AND request_id = ?2 AND state = 'queued'",
                )
                .and_then(|mut update| {
                    update.execute(params![
                        key.0.as_str(),
                        key.1.as_str(),
                        timestamp_text(Timestamp::now())
                    ])
                })
                .or_backend(doing)?;
                tx.commit().or_backend(doing)
            });
            if let Err(error) = leased {
                scheduler.unpop(id);
                return Err(error);
            }
            let deadline = now.checked_add(self.options.lease_timeout);
            if let Some(granted) = scheduler.grant(id, deadline) {
                return Ok(Ok(granted));
            }
        }
        Ok(Err(scheduler.next_wake()))
    }

    /// The request `key` names: from the recent ones, else read from the
    /// file and parsed.
    fn request(&self, key: &RequestKey) -> Result<Arc<RenderRequest>, Unloadable> {
        if let Some(request) = self.requests().get(key) {
            return Ok(request);
        }
        let (json, pinned_version): (String, Option<u32>) = self
            .db
            .read(|conn| {
                conn.prepare_cached(
                    "SELECT request, template_version FROM request_bodies
                     WHERE company_id = ?1 AND request_id = ?2",
                )
                .and_then(|mut select| {
                    select.query_row(params![key.0.as_str(), key.1.as_str()], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })
                })
                .or_backend("reading a queued request")
            })
            .map_err(Unloadable::Backend)?;
        let request = RenderRequest::from_stored(&json, key.1.clone(), pinned_version)
            .map(Arc::new)
            .map_err(Unloadable::Unparsable)?;
        self.requests().remember(request.clone(), json.len());
        Ok(request)
    }

    /// Dead-letters the batch a live lease holds, now: it can never render.
    fn reject(&self, lease: u64, reason: &str) -> PortResult<Retry> {
        let mut scheduler = self.scheduler();
        scheduler.sweep(Instant::now());
        let Some((id, batch)) = scheduler
            .leased(lease)
            .and_then(|id| Some((id, scheduler.batch(id)?)))
        else {
            return Ok(Retry::Stale);
        };
        let error = format!("batch {}..{}: {reason}", batch.range.start, batch.range.end);
        let status = self.dead_letter(&mut scheduler, Some(lease), id, reason, error)?;
        Ok(Retry::DeadLettered(status))
    }

    /// In one transaction, dead-letters batch `id` (popped, or held by
    /// `lease`) and fails its request with `error`; then forgets the batch.
    fn dead_letter(
        &self,
        scheduler: &mut Scheduler,
        lease: Option<u64>,
        id: BatchId,
        reason: &str,
        error: String,
    ) -> PortResult<RequestStatus> {
        let batch = scheduler
            .batch(id)
            .ok_or_else(|| Error::backend("dead-lettering a batch", "the batch is unknown"))?;
        let dead = DeadBatch {
            error,
            reason: reason.to_owned(),
            last: scheduler.is_last(id),
            key: &batch.key,
            id,
            range: batch.range.clone(),
            attempts: batch.attempts,
        };
        let status = self.db.write(|conn| dead.write(conn))?;
        if dead.last {
            self.requests().forget(&batch.key);
        }
        tracing::warn!(
            company = %batch.key.0, request = %batch.key.1, batch = ?batch.range,
            attempts = batch.attempts, %reason, "batch dead-lettered"
        );
        scheduler.finish(lease, id);
        Ok(status)
    }

    fn complete(&self, lease: u64, counts: Counts) -> PortResult<Completion> {
        let mut scheduler = self.scheduler();
        scheduler.sweep(Instant::now());
        let Some((id, batch)) = scheduler
            .leased(lease)
            .and_then(|id| Some((id, scheduler.batch(id)?)))
        else {
            return Ok(Completion::Stale);
        };
        let (key, range) = (batch.key.clone(), batch.range.clone());
        let total = counts
            .rendered
            .saturating_add(counts.skipped)
            .saturating_add(counts.failed);
        if total > range.len() as u64 {
            return Err(Error::Invalid(format!(
                "counts for batch {}..{} of request {}/{} add up to {total}, \
                 more than its {} recipients",
                range.start,
                range.end,
                key.0,
                key.1,
                range.len()
            )));
        }
        let last = scheduler.is_last(id);
        let doing = format!(
            "completing batch {}..{} of request {}/{}",
            range.start, range.end, key.0, key.1
        );
        let finished = self.db.write(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .or_backend(&doing)?;
            tx.prepare_cached("UPDATE batches SET state = 'done' WHERE id = ?1")
                .and_then(|mut update| update.execute([id]))
                .or_backend(&doing)?;
            tx.prepare_cached(
                "UPDATE requests
                 SET rendered = rendered + ?3, skipped = skipped + ?4, failed = failed + ?5
                 WHERE company_id = ?1 AND request_id = ?2",
            )
            .and_then(|mut update| {
                update.execute(params![
                    key.0.as_str(),
                    key.1.as_str(),
                    counts.rendered,
                    counts.skipped,
                    counts.failed
                ])
            })
            .or_backend(&doing)?;
            let mut status = None;
            if last {
                tx.prepare_cached(
                    "UPDATE requests
                     SET state = CASE state WHEN 'failed' THEN 'failed' ELSE 'done' END,
                         finished_at = ?3
                     WHERE company_id = ?1 AND request_id = ?2",
                )
                .and_then(|mut update| {
                    update.execute(params![
                        key.0.as_str(),
                        key.1.as_str(),
                        timestamp_text(Timestamp::now())
                    ])
                })
                .or_backend(&doing)?;
                status = read_status(&tx, &key)?;
            }
            tx.commit().or_backend(&doing)?;
            Ok(status)
        })?;
        scheduler.finish(Some(lease), id);
        Ok(match finished {
            Some(status) => {
                self.requests().forget(&key);
                Completion::Finished(status)
            }
            None => Completion::Pending,
        })
    }

    fn fail(&self, lease: u64, reason: &str) -> PortResult<Retry> {
        let mut scheduler = self.scheduler();
        let now = Instant::now();
        scheduler.sweep(now);
        let Some((id, batch)) = scheduler
            .leased(lease)
            .and_then(|id| Some((id, scheduler.batch(id)?)))
        else {
            return Ok(Retry::Stale);
        };
        let attempts = batch.attempts;
        if attempts < self.options.max_attempts {
            let delay = backoff(self.options.retry_backoff, attempts);
            scheduler.retry_at(lease, id, now.checked_add(delay).unwrap_or(now));
            let at = Timestamp::now()
                .checked_add(delay)
                .unwrap_or(Timestamp::MAX);
            return Ok(Retry::At(at));
        }
        let error = format!(
            "batch {}..{} failed after {attempts} attempts: {reason}",
            batch.range.start, batch.range.end
        );
        let status = self.dead_letter(&mut scheduler, Some(lease), id, reason, error)?;
        Ok(Retry::DeadLettered(status))
    }

    /// Returns whether a batch became ready.
    fn release(&self, lease: u64) -> PortResult<bool> {
        let mut scheduler = self.scheduler();
        scheduler.sweep(Instant::now());
        let Some(id) = scheduler.leased(lease) else {
            return Ok(false);
        };
        self.db.write(|conn| {
            conn.prepare_cached(
                "UPDATE batches SET attempts = attempts - 1 WHERE id = ?1 AND attempts > 0",
            )
            .and_then(|mut update| update.execute([id]))
            .or_backend("releasing a lease")
        })?;
        scheduler.release(lease, id);
        Ok(true)
    }
}

/// Rebuilds the scheduler from the file: every batch that is neither done
/// nor dead is ready again, in submit order, with its attempts so far.
/// Requests are not parsed here but when a batch of theirs is leased, so
/// opening a store with much queued work is quick and takes little memory.
pub(super) fn restore(conn: &mut Connection) -> PortResult<Scheduler> {
    let doing = "reading the queued batches";
    let mut select = conn
        .prepare(
            "SELECT b.id, b.company_id, b.request_id, b.range_start, b.range_end, b.attempts,
                    r.priority
             FROM batches b JOIN requests r USING (company_id, request_id)
             WHERE b.state = 'ready' ORDER BY b.id",
        )
        .or_backend(doing)?;
    let mut rows = select.query([]).or_backend(doing)?;
    let mut scheduler = Scheduler::default();
    let mut current: Option<(RequestKey, Priority)> = None;
    while let Some(row) = rows.next().or_backend(doing)? {
        let company: String = row.get(1).or_backend(doing)?;
        let request: String = row.get(2).or_backend(doing)?;
        let batch: StoredBatch = (
            row.get(0).or_backend(doing)?,
            row.get(3).or_backend(doing)?..row.get(4).or_backend(doing)?,
            row.get(5).or_backend(doing)?,
        );
        let same = current
            .as_ref()
            .is_some_and(|((c, r), _)| c.as_str() == company && r.as_str() == request);
        if !same {
            let priority: String = row.get(6).or_backend(doing)?;
            current = Some((
                (
                    parse_id(&company, CompanyId::parse)?,
                    parse_id(&request, RequestId::parse)?,
                ),
                parse_variant(&priority, "requests.priority")?,
            ));
        }
        if let Some((key, priority)) = &current {
            scheduler.add(key, *priority, vec![batch]);
        }
    }
    Ok(scheduler)
}

/// A batch out of attempts, and what its dead letter and request say.
struct DeadBatch<'a> {
    key: &'a RequestKey,
    id: BatchId,
    range: Range<usize>,
    attempts: u32,
    /// Why, for the dead letter.
    reason: String,
    /// Why, for the request (the first error is kept).
    error: String,
    /// The request's last outstanding batch: the request ends with it.
    last: bool,
}

impl DeadBatch<'_> {
    /// In one transaction: dead-letters the batch and fails its request.
    /// Returns the request's status.
    fn write(&self, conn: &mut Connection) -> PortResult<RequestStatus> {
        let doing = "dead-lettering a batch";
        let (company, request) = (self.key.0.as_str(), self.key.1.as_str());
        let now = timestamp_text(Timestamp::now());
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .or_backend(doing)?;
        tx.prepare_cached("UPDATE batches SET state = 'dead' WHERE id = ?1")
            .and_then(|mut update| update.execute([self.id]))
            .or_backend(doing)?;
        tx.prepare_cached(
            "INSERT INTO dead_letters
                 (company_id, request_id, range_start, range_end, attempts, reason, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut insert| {
            insert.execute(params![
                company,
                request,
                self.range.start,
                self.range.end,
                self.attempts,
                self.reason,
                now
            ])
        })
        .or_backend(doing)?;
        tx.prepare_cached(
            "UPDATE requests
             SET state = 'failed', error = COALESCE(error, ?3),
                 finished_at = CASE WHEN ?5 THEN ?4 ELSE finished_at END
             WHERE company_id = ?1 AND request_id = ?2",
        )
        .and_then(|mut update| {
            update.execute(params![company, request, self.error, now, self.last])
        })
        .or_backend(doing)?;
        let status = read_status(&tx, self.key)?.ok_or_else(|| {
            Error::backend(doing, format!("request {company}/{request} has no row"))
        })?;
        tx.commit().or_backend(doing)?;
        Ok(status)
    }
}

fn read_status(conn: &Connection, key: &RequestKey) -> PortResult<Option<RequestStatus>> {
    let doing = "reading a request's status";
    let raw = conn
        .prepare_cached(
            "SELECT priority, state, recipients, rendered, skipped, failed, response_metadata,
                    accepted_at, started_at, finished_at, error
             FROM requests WHERE company_id = ?1 AND request_id = ?2",
        )
        .and_then(|mut select| {
            select
                .query_row(params![key.0.as_str(), key.1.as_str()], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, u64>(2)?,
                        Counts {
                            rendered: row.get(3)?,
                            skipped: row.get(4)?,
                            failed: row.get(5)?,
                        },
                        row.get::<_, String>(6)?,
                        row.get::<_, String>(7)?,
                        row.get::<_, Option<String>>(8)?,
                        row.get::<_, Option<String>>(9)?,
                        row.get::<_, Option<String>>(10)?,
                    ))
                })
                .optional()
        })
        .or_backend(doing)?;
    let Some((priority, state, recipients, counts, metadata, accepted, started, finished, error)) =
        raw
    else {
        return Ok(None);
    };
    let optional_timestamp =
        |text: Option<String>, column| text.map(|text| parse_timestamp(&text, column)).transpose();
    Ok(Some(RequestStatus {
        company_id: key.0.clone(),
        request_id: key.1.clone(),
        priority: parse_variant(&priority, "requests.priority")?,
        state: parse_variant(&state, "requests.state")?,
        recipients,
        counts,
        response_metadata: serde_json::from_str(&metadata)
            .or_backend("reading response_metadata")?,
        accepted_at: parse_timestamp(&accepted, "accepted_at")?,
        started_at: optional_timestamp(started, "started_at")?,
        finished_at: optional_timestamp(finished, "finished_at")?,
        error,
    }))
}

fn read_dead_letters(conn: &Connection, limit: usize) -> PortResult<Vec<DeadLetter>> {
    let doing = "reading dead letters";
    let mut select = conn
        .prepare_cached(
            "SELECT company_id, request_id, range_start, range_end, attempts, reason, at
             FROM dead_letters ORDER BY id DESC LIMIT ?1",
        )
        .or_backend(doing)?;
    let rows = select
        .query_map([super::to_sql_int(limit)], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, usize>(2)?..row.get::<_, usize>(3)?,
                row.get::<_, u32>(4)?,
                row.get::<_, String>(5)?,
                row.get::<_, String>(6)?,
            ))
        })
        .or_backend(doing)?;
    let mut letters = Vec::new();
    for row in rows {
        let (company, request, recipients, attempts, reason, at) = row.or_backend(doing)?;
        letters.push(DeadLetter {
            company_id: parse_id(&company, CompanyId::parse)?,
            request_id: parse_id(&request, RequestId::parse)?,
            recipients,
            attempts,
            reason,
            at: parse_timestamp(&at, "dead_letters.at")?,
        });
    }
    Ok(letters)
}
