//! The request ledger on PostgreSQL: what a broker does not keep. The
//! broker (see [`crate::adapters::nats`]) carries the batches; this ledger
//! holds each request's batch messages until they are published, its
//! status and counts, each batch's attempts and
//! whether it is answered (so a redelivered batch is counted once), dead
//! letters, and which finished requests have had their response event
//! published.
//!
//! Every change a batch answer makes is one statement or one transaction,
//! so a crash leaves either all of it or none.

use std::ops::Range;

use artifact_render::RenderRequest;
use artifact_render::request::{CompanyId, Priority, RequestId};
use bytes::Bytes;
use jiff::Timestamp;
use tokio_postgres::Row;

use super::PostgresStore;
use crate::adapters::{
    OrBackend, parse_id, parse_timestamp, parse_variant, timestamp_text, variant_name,
};
use crate::{Counts, DeadLetter, LaneDepths, PortResult, RequestStatus, Submitted};

/// A batch as the ledger names it: by its request and its first recipient.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BatchRef {
    pub company_id: CompanyId,
    pub request_id: RequestId,
    pub recipients: Range<usize>,
}

/// What leasing a batch found.
#[derive(Debug, Clone, PartialEq)]
pub struct Leased {
    /// Attempts so far, this one included.
    pub attempt: u32,
    /// Done or dead-lettered before: not to render again.
    pub answered: bool,
    /// The request's next batch and its message, neither leased nor known
    /// to be published: to publish.
    pub next: Option<(BatchRef, Bytes)>,
}

/// What answering a batch did to its request.
#[derive(Debug, Clone, PartialEq)]
pub enum Answered {
    /// The batch had been answered before: nothing changed.
    Already,
    /// Recorded; the request has batches left.
    Pending(RequestStatus),
    /// Recorded, and it was the request's last batch.
    Finished(RequestStatus),
}

const STATUS_COLUMNS: &str = "company_id, request_id, priority, state, recipients, rendered,
    skipped, failed, response_metadata, accepted_at, started_at, finished_at, error";

/// The status of a request accepted only once its first batch is
/// published: until then it reads as absent.
const PUBLISHED: &str = "published";

fn index(value: usize, doing: &str) -> PortResult<i32> {
    i32::try_from(value).or_backend(doing)
}

fn status_of(row: &Row) -> PortResult<RequestStatus> {
    let doing = "reading a request status";
    let count = |column: &str| -> PortResult<u64> {
        u64::try_from(row.get::<_, i64>(column)).or_backend(doing)
    };
    let optional_time = |column: &str| -> PortResult<Option<Timestamp>> {
        row.get::<_, Option<&str>>(column)
            .map(|text| parse_timestamp(text, column))
            .transpose()
    };
    Ok(RequestStatus {
        company_id: parse_id(row.get("company_id"), CompanyId::parse)?,
        request_id: parse_id(row.get("request_id"), RequestId::parse)?,
        priority: parse_variant(row.get("priority"), "priority")?,
        state: parse_variant(row.get("state"), "state")?,
        recipients: count("recipients")?,
        counts: Counts {
            rendered: count("rendered")?,
            skipped: count("skipped")?,
            failed: count("failed")?,
        },
        response_metadata: serde_json::from_str(row.get("response_metadata")).or_backend(doing)?,
        accepted_at: parse_timestamp(row.get("accepted_at"), "accepted_at")?,
        started_at: optional_time("started_at")?,
        finished_at: optional_time("finished_at")?,
        error: row.get("error"),
    })
}

impl PostgresStore {
    /// Records `request` and its batch `messages`, which its leases publish
    /// one after another. A request this company submitted before answers
    /// `Existing`, unless its publishing never finished: then it is
    /// `Accepted` again, for the caller to publish its first batch once
    /// more (the broker drops a duplicate). Also answers that first batch,
    /// as recorded the first time (a retry may have cut it otherwise), or
    /// `None` when it has been leased since.
    pub async fn record_submit(
        &self,
        request: &RenderRequest,
        messages: &[(BatchRef, Bytes)],
    ) -> PortResult<(Submitted, Option<(BatchRef, Bytes)>)> {
        let doing = "recording a request";
        let client = self.client().await?;
        let metadata = serde_json::to_string(request.response_metadata()).or_backend(doing)?;
        let recipients = i64::try_from(request.render_recipients().len()).or_backend(doing)?;
        let mut firsts = Vec::with_capacity(messages.len());
        let mut lasts = Vec::with_capacity(messages.len());
        let mut payloads = Vec::with_capacity(messages.len());
        for (batch, payload) in messages {
            firsts.push(index(batch.recipients.start, doing)?);
            lasts.push(index(batch.recipients.end, doing)?);
            payloads.push(payload.as_ref());
        }
        // The no-op update makes an existing row come back too, in the same
        // statement: no window between looking and inserting.
        let row = client
            .query_one(
                &format!(
                    "WITH request AS (
                         INSERT INTO requests (company_id, request_id, priority, state,
                             recipients, batches, response_metadata, accepted_at)
                         VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7)
                         ON CONFLICT (company_id, request_id)
                             DO UPDATE SET published = requests.published
                         RETURNING {STATUS_COLUMNS}, published, (xmax = 0) AS inserted
                     ), messages AS (
                         INSERT INTO batch_messages (company_id, request_id, first, last, message)
                         SELECT $1, $2, m.first, m.last, m.message
                         FROM unnest($8::integer[], $9::integer[], $10::bytea[])
                             AS m(first, last, message)
                         WHERE (SELECT inserted FROM request)
                     )
                     SELECT * FROM request"
                ),
                &[
                    &request.company_id().as_str(),
                    &request.request_id().as_str(),
                    &variant_name(&request.priority())?,
                    &recipients,
                    &index(messages.len(), doing)?,
                    &metadata,
                    &timestamp_text(Timestamp::now()),
                    &firsts,
                    &lasts,
                    &payloads,
                ],
            )
            .await
            .or_backend(doing)?;
        let status = status_of(&row)?;
        let (published, inserted): (bool, bool) = (row.get(PUBLISHED), row.get("inserted"));
        if !inserted && published {
            return Ok((Submitted::Existing(status), None));
        }
        if inserted {
            return Ok((Submitted::Accepted(status), messages.first().cloned()));
        }
        // A retry. Read in a statement of its own: one that waited above
        // for the first submit to commit still could not see the messages
        // it inserted.
        let head = client
            .query_opt(
                "SELECT last, message FROM batch_messages
                 WHERE company_id = $1 AND request_id = $2 AND first = 0",
                &[
                    &request.company_id().as_str(),
                    &request.request_id().as_str(),
                ],
            )
            .await
            .or_backend(doing)?;
        let head = head
            .map(|row| -> PortResult<(BatchRef, Bytes)> {
                let batch = BatchRef {
                    company_id: request.company_id().clone(),
                    request_id: request.request_id().clone(),
                    recipients: 0..usize::try_from(row.get::<_, i32>(0)).or_backend(doing)?,
                };
                Ok((batch, Bytes::from(row.get::<_, Vec<u8>>(1))))
            })
            .transpose()?;
        Ok((Submitted::Accepted(status), head))
    }

    /// The request's first batch is on the broker: it is accepted.
    pub async fn record_published(
        &self,
        company: &CompanyId,
        request_id: &RequestId,
    ) -> PortResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE requests SET published = TRUE WHERE company_id = $1 AND request_id = $2",
                &[&company.as_str(), &request_id.as_str()],
            )
            .await
            .or_backend("recording a request as published")?;
        Ok(())
    }

    /// The lease of `batch`, which published the request's next batch, is
    /// given back or retried: a later lease of `batch` must not publish the
    /// next one again (outside the broker's duplicate window, it would be
    /// stored twice).
    pub async fn record_next_published(&self, batch: &BatchRef) -> PortResult<()> {
        let doing = "recording a batch as published";
        let client = self.client().await?;
        client
            .execute(
                "UPDATE batch_messages SET published = TRUE
                 WHERE company_id = $1 AND request_id = $2 AND first = $3",
                &[
                    &batch.company_id.as_str(),
                    &batch.request_id.as_str(),
                    &index(batch.recipients.end, doing)?,
                ],
            )
            .await
            .or_backend(doing)?;
        Ok(())
    }

    /// A batch was leased: counts the attempt, and marks its request
    /// rendering. Answers the attempts so far, this one included, whether
    /// the batch was answered (done or dead-lettered) before, and the
    /// request's next batch message while that batch was neither leased nor
    /// known to be published: the caller publishes it (again, if an earlier
    /// lease of this batch did and then died; the broker drops the
    /// duplicate within its window). A batch's message is deleted when it is
    /// first leased: the broker delivers it from then on.
    ///
    /// The count is written before rendering, so a batch that kills every
    /// worker that takes it still runs out of attempts; and only leases
    /// count, not the broker's deliveries, so a delivery that never reached
    /// the ledger (it was down) is not an attempt.
    pub async fn record_lease(&self, batch: &BatchRef) -> PortResult<Leased> {
        let doing = "recording a leased batch";
        let client = self.client().await?;
        let lease = client
            .prepare_cached(
                "WITH started AS (
                     UPDATE requests SET state = 'rendering', started_at = $4
                     WHERE company_id = $1 AND request_id = $2 AND state = 'queued'
                 ), leased AS (
                     INSERT INTO batches (company_id, request_id, first, attempts)
                     VALUES ($1, $2, $3, 1)
                     ON CONFLICT (company_id, request_id, first)
                         DO UPDATE SET attempts = batches.attempts
                             + CASE WHEN batches.outcome IS NULL THEN 1 ELSE 0 END
                     RETURNING attempts, outcome IS NOT NULL AS answered
                 ), taken AS (
                     DELETE FROM batch_messages
                     WHERE company_id = $1 AND request_id = $2 AND first = $3
                 )
                 SELECT leased.attempts, leased.answered, next.last, next.message
                 FROM leased LEFT JOIN batch_messages next
                     ON next.company_id = $1 AND next.request_id = $2 AND next.first = $5
                         AND NOT next.published",
            )
            .await
            .or_backend(doing)?;
        let row = client
            .query_one(
                &lease,
                &[
                    &batch.company_id.as_str(),
                    &batch.request_id.as_str(),
                    &index(batch.recipients.start, doing)?,
                    &timestamp_text(Timestamp::now()),
                    &index(batch.recipients.end, doing)?,
                ],
            )
            .await
            .or_backend(doing)?;
        let next = match (
            row.get::<_, Option<i32>>(2),
            row.get::<_, Option<Vec<u8>>>(3),
        ) {
            (Some(last), Some(message)) => Some((
                BatchRef {
                    company_id: batch.company_id.clone(),
                    request_id: batch.request_id.clone(),
                    recipients: batch.recipients.end..usize::try_from(last).or_backend(doing)?,
                },
                Bytes::from(message),
            )),
            _ => None,
        };
        Ok(Leased {
            attempt: u32::try_from(row.get::<_, i32>(0)).or_backend(doing)?,
            answered: row.get(1),
            next,
        })
    }

    /// The batch was given back untouched: its lease was not an attempt.
    pub async fn record_release(&self, batch: &BatchRef) -> PortResult<()> {
        let doing = "recording a released batch";
        let client = self.client().await?;
        client
            .execute(
                "UPDATE batches SET attempts = attempts - 1
                 WHERE company_id = $1 AND request_id = $2 AND first = $3
                     AND outcome IS NULL AND attempts > 0",
                &[
                    &batch.company_id.as_str(),
                    &batch.request_id.as_str(),
                    &index(batch.recipients.start, doing)?,
                ],
            )
            .await
            .or_backend(doing)?;
        Ok(())
    }

    /// Records a rendered batch and adds its counts, once per batch; and
    /// the request's next batch as published (the lease did it), so a
    /// delivery of this batch after a lost acknowledgement does not.
    pub async fn record_done(&self, batch: &BatchRef, counts: Counts) -> PortResult<Answered> {
        let doing = "recording a rendered batch";
        let now = timestamp_text(Timestamp::now());
        let count = |n: u64| i64::try_from(n).or_backend(doing);
        let client = self.client().await?;
        let done = client
            .prepare_cached(&format!(
                "WITH answered AS (
                         INSERT INTO batches (company_id, request_id, first, outcome)
                         VALUES ($1, $2, $3, 'done')
                         ON CONFLICT (company_id, request_id, first)
                             DO UPDATE SET outcome = 'done' WHERE batches.outcome IS NULL
                         RETURNING 1
                     ), next AS (
                         UPDATE batch_messages SET published = TRUE
                         WHERE company_id = $1 AND request_id = $2 AND first = $8
                     )
                     UPDATE requests SET
                         batches_done = batches_done + 1,
                         rendered = rendered + $4, skipped = skipped + $5, failed = failed + $6,
                         state = CASE WHEN state = 'failed' THEN 'failed'
                                      WHEN batches_done + 1 + batches_dead = batches THEN 'done'
                                      ELSE 'rendering' END,
                         started_at = COALESCE(started_at, $7),
                         finished_at = CASE WHEN batches_done + 1 + batches_dead = batches
                                            THEN $7 ELSE finished_at END
                     WHERE company_id = $1 AND request_id = $2 AND EXISTS (SELECT 1 FROM answered)
                     RETURNING {STATUS_COLUMNS}"
            ))
            .await
            .or_backend(doing)?;
        let row = client
            .query_opt(
                &done,
                &[
                    &batch.company_id.as_str(),
                    &batch.request_id.as_str(),
                    &index(batch.recipients.start, doing)?,
                    &count(counts.rendered)?,
                    &count(counts.skipped)?,
                    &count(counts.failed)?,
                    &now,
                    &index(batch.recipients.end, doing)?,
                ],
            )
            .await
            .or_backend(doing)?;
        row.map_or(Ok(Answered::Already), |row| answered(&row))
    }

    /// Dead-letters a batch with `reason` and fails its request with
    /// `error` (the first error is kept); once per batch.
    pub async fn record_dead(
        &self,
        batch: &BatchRef,
        attempts: u32,
        reason: &str,
        error: &str,
    ) -> PortResult<Answered> {
        let doing = "dead-lettering a batch";
        let now = timestamp_text(Timestamp::now());
        let first = index(batch.recipients.start, doing)?;
        let company = batch.company_id.as_str();
        let request = batch.request_id.as_str();
        let mut client = self.client().await?;
        let tx = client.transaction().await.or_backend(doing)?;
        // The next batch was published by the lease that ends here.
        let fresh = tx
            .execute(
                "WITH next AS (
                     UPDATE batch_messages SET published = TRUE
                     WHERE company_id = $1 AND request_id = $2 AND first = $4
                 )
                 INSERT INTO batches (company_id, request_id, first, outcome)
                 VALUES ($1, $2, $3, 'dead')
                 ON CONFLICT (company_id, request_id, first)
                     DO UPDATE SET outcome = 'dead' WHERE batches.outcome IS NULL",
                &[
                    &company,
                    &request,
                    &first,
                    &index(batch.recipients.end, doing)?,
                ],
            )
            .await
            .or_backend(doing)?;
        if fresh == 0 {
            return Ok(Answered::Already);
        }
        tx.execute(
            "INSERT INTO dead_letters (company_id, request_id, first, last, attempts, reason, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &company,
                &request,
                &first,
                &index(batch.recipients.end, doing)?,
                &i32::try_from(attempts).or_backend(doing)?,
                &reason,
                &now,
            ],
        )
        .await
        .or_backend(doing)?;
        let row = tx
            .query_one(
                &format!(
                    "UPDATE requests SET
                         batches_dead = batches_dead + 1,
                         state = 'failed', error = COALESCE(error, $3),
                         started_at = COALESCE(started_at, $4),
                         finished_at = CASE WHEN batches_done + batches_dead + 1 = batches
                                            THEN $4 ELSE finished_at END
                     WHERE company_id = $1 AND request_id = $2
                     RETURNING {STATUS_COLUMNS}"
                ),
                &[&company, &request, &error, &now],
            )
            .await
            .or_backend(doing)?;
        let answer = answered(&row)?;
        tx.commit().await.or_backend(doing)?;
        Ok(answer)
    }

    /// A request's status, once it is accepted.
    pub async fn request_status(
        &self,
        company: &CompanyId,
        request_id: &RequestId,
    ) -> PortResult<Option<RequestStatus>> {
        let doing = "reading a request status";
        let client = self.client().await?;
        let select = client
            .prepare_cached(&format!(
                "SELECT {STATUS_COLUMNS} FROM requests
                 WHERE company_id = $1 AND request_id = $2 AND published"
            ))
            .await
            .or_backend(doing)?;
        let row = client
            .query_opt(&select, &[&company.as_str(), &request_id.as_str()])
            .await
            .or_backend(doing)?;
        row.as_ref().map(status_of).transpose()
    }

    /// Batches not yet done or dead-lettered, per priority.
    pub async fn unfinished_batches(&self) -> PortResult<LaneDepths> {
        let doing = "counting unfinished batches";
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT priority, SUM(batches - batches_done - batches_dead)::bigint
                 FROM requests WHERE finished_at IS NULL GROUP BY priority",
                &[],
            )
            .await
            .or_backend(doing)?;
        let mut depths = LaneDepths::default();
        for row in rows {
            let count = u64::try_from(row.get::<_, i64>(1)).or_backend(doing)?;
            match parse_variant(row.get(0), "priority")? {
                Priority::High => depths.high = count,
                Priority::Normal => depths.normal = count,
                Priority::Low => depths.low = count,
            }
        }
        Ok(depths)
    }

    /// The most recent dead letters, newest first.
    pub async fn dead_letters(&self, limit: usize) -> PortResult<Vec<DeadLetter>> {
        let doing = "listing dead letters";
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT company_id, request_id, first, last, attempts, reason, at
                 FROM dead_letters ORDER BY id DESC LIMIT $1",
                &[&i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .await
            .or_backend(doing)?;
        rows.iter()
            .map(|row| {
                let position =
                    |column: &str| usize::try_from(row.get::<_, i32>(column)).or_backend(doing);
                Ok(DeadLetter {
                    company_id: parse_id(row.get("company_id"), CompanyId::parse)?,
                    request_id: parse_id(row.get("request_id"), RequestId::parse)?,
                    recipients: position("first")?..position("last")?,
                    attempts: u32::try_from(row.get::<_, i32>("attempts")).or_backend(doing)?,
                    reason: row.get("reason"),
                    at: parse_timestamp(row.get("at"), "at")?,
                })
            })
            .collect()
    }

    /// Finished requests whose response event is not recorded as
    /// published, finished at or before `finished_before`, oldest first.
    pub async fn unannounced(
        &self,
        finished_before: Timestamp,
        limit: usize,
    ) -> PortResult<Vec<RequestStatus>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {STATUS_COLUMNS} FROM requests
                     WHERE finished_at IS NOT NULL AND NOT announced AND finished_at <= $1
                     ORDER BY finished_at LIMIT $2"
                ),
                &[
                    &timestamp_text(finished_before),
                    &i64::try_from(limit).unwrap_or(i64::MAX),
                ],
            )
            .await
            .or_backend("listing unannounced requests")?;
        rows.iter().map(status_of).collect()
    }

    pub async fn announced(&self, company: &CompanyId, request_id: &RequestId) -> PortResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE requests SET announced = TRUE WHERE company_id = $1 AND request_id = $2",
                &[&company.as_str(), &request_id.as_str()],
            )
            .await
            .or_backend("recording a response event as published")?;
        Ok(())
    }
}

fn answered(row: &Row) -> PortResult<Answered> {
    let status = status_of(row)?;
    Ok(if status.finished_at.is_some() {
        Answered::Finished(status)
    } else {
        Answered::Pending(status)
    })
}

/// The error a dead letter gives its request.
pub(crate) fn request_error(recipients: &Range<usize>, reason: &str) -> String {
    format!("batch {}..{}: {reason}", recipients.start, recipients.end)
}
