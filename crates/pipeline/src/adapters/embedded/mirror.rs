//! The [`MirrorQueue`] port: `mirror_jobs` rows, one per (job, lane). Canary
//! workers may run in another process on the same file: leases are written
//! to the row, so whoever takes a job next sees it is held.

use std::time::Duration;

use artifact_render::RenderRequest;
use artifact_render::request::{CompanyId, RequestId};
use async_trait::async_trait;
use jiff::Timestamp;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{EmbeddedStore, OrBackend, to_sql_int};
use crate::adapters::mirrored_lane_name;
use crate::{Error, Lane, MirrorJob, MirrorLease, MirrorQueue, PortResult, Unmirrored};

fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

#[async_trait]
impl MirrorQueue for EmbeddedStore {
    /// The store holds the request: `request` is not needed.
    async fn mirror(
        &self,
        lane: Lane,
        job: &MirrorJob,
        _request: &RenderRequest,
        capacity: usize,
    ) -> PortResult<bool> {
        let lane = mirrored_lane_name(lane)?;
        let job = job.clone();
        self.run(move |inner| {
            let doing = "queueing a mirrored job";
            let recipients = serde_json::to_string(&job.recipients).or_backend(doing)?;
            inner.db.write(|conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .or_backend(doing)?;
                let waiting: i64 = tx
                    .prepare_cached(
                        "SELECT COUNT(*) FROM mirror_jobs WHERE lane = ?1 AND state = 'waiting'",
                    )
                    .and_then(|mut count| count.query_row([lane], |row| row.get(0)))
                    .or_backend(doing)?;
                if waiting >= to_sql_int(capacity) {
                    return Ok(false);
                }
                tx.prepare_cached(
                    "INSERT INTO mirror_jobs (lane, company_id, request_id, recipients)
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut insert| {
                    insert.execute(params![
                        lane,
                        job.company_id.as_str(),
                        job.request_id.as_str(),
                        recipients
                    ])
                })
                .or_backend(doing)?;
                tx.commit().or_backend(doing)?;
                Ok(true)
            })
        })
        .await
    }

    async fn take_mirrored(&self, lane: Lane, lease: Duration) -> PortResult<Option<MirrorLease>> {
        let lane = mirrored_lane_name(lane)?;
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        self.run(move |inner| {
            let doing = "taking a mirrored job";
            loop {
                let now = now_ms();
                let taken: Option<(u64, String, String, String, u32)> = inner.db.write(|conn| {
                    let tx = conn
                        .transaction_with_behavior(TransactionBehavior::Immediate)
                        .or_backend(doing)?;
                    let row = tx
                        .prepare_cached(
                            "SELECT id, company_id, request_id, recipients, attempts
                                 FROM mirror_jobs
                                 WHERE lane = ?1 AND state = 'waiting' AND leased_until <= ?2
                                 ORDER BY id LIMIT 1",
                        )
                        .and_then(|mut select| {
                            select
                                .query_row(params![lane, now], |row| {
                                    Ok((
                                        row.get(0)?,
                                        row.get(1)?,
                                        row.get(2)?,
                                        row.get(3)?,
                                        row.get(4)?,
                                    ))
                                })
                                .optional()
                        })
                        .or_backend(doing)?;
                    if let Some((id, ..)) = &row {
                        tx.prepare_cached(
                            "UPDATE mirror_jobs
                                 SET attempts = attempts + 1, leased_until = ?2 WHERE id = ?1",
                        )
                        .and_then(|mut update| {
                            update.execute(params![id, now.saturating_add(lease_ms)])
                        })
                        .or_backend(doing)?;
                    }
                    tx.commit().or_backend(doing)?;
                    Ok(row)
                })?;
                let Some((id, company, request, recipients, attempts)) = taken else {
                    return Ok(None);
                };
                match load(inner, &company, &request, &recipients)? {
                    Ok((request, recipients)) => {
                        return Ok(Some(MirrorLease {
                            id,
                            request,
                            recipients,
                            attempts: attempts + 1,
                        }));
                    }
                    // A job that cannot be read can never render: keep it
                    // as abandoned, with why, and look at the next one.
                    Err(reason) => abandon(inner, id, &reason)?,
                }
            }
        })
        .await
    }

    async fn mirrored(&self, id: u64) -> PortResult<()> {
        self.run(move |inner| {
            inner.db.write(|conn| {
                conn.prepare_cached("DELETE FROM mirror_jobs WHERE id = ?1")
                    .and_then(|mut delete| delete.execute([id]))
                    .map(drop)
                    .or_backend("forgetting a mirrored job")
            })
        })
        .await
    }

    async fn abandon_mirrored(&self, id: u64, reason: &str) -> PortResult<()> {
        let reason = reason.to_owned();
        self.run(move |inner| abandon(inner, id, &reason)).await
    }

    async fn unmirrored(&self, lane: Lane) -> PortResult<Vec<Unmirrored>> {
        let lane = mirrored_lane_name(lane)?;
        self.run(move |inner| {
            let doing = "listing mirrored jobs";
            inner.db.read(|conn| {
                let mut select = conn
                    .prepare_cached(
                        "SELECT company_id, request_id, recipients, state, reason
                         FROM mirror_jobs WHERE lane = ?1 ORDER BY id",
                    )
                    .or_backend(doing)?;
                let rows = select
                    .query_map([lane], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, Option<String>>(4)?,
                        ))
                    })
                    .or_backend(doing)?;
                let mut jobs = Vec::new();
                for row in rows {
                    let (company, request, recipients, state, reason) = row.or_backend(doing)?;
                    jobs.push(Unmirrored {
                        job: MirrorJob {
                            company_id: CompanyId::parse(&company)
                                .map_err(|e| Error::backend(doing, e))?,
                            request_id: RequestId::parse(&request)
                                .map_err(|e| Error::backend(doing, e))?,
                            recipients: serde_json::from_str(&recipients).or_backend(doing)?,
                        },
                        abandoned: (state == "abandoned").then(|| reason.unwrap_or_default()),
                    });
                }
                Ok(jobs)
            })
        })
        .await
    }
}

fn abandon(inner: &super::Inner, id: u64, reason: &str) -> PortResult<()> {
    inner.db.write(|conn| {
        conn.prepare_cached("UPDATE mirror_jobs SET state = 'abandoned', reason = ?2 WHERE id = ?1")
            .and_then(|mut update| update.execute(params![id, reason]))
            .map(drop)
            .or_backend("giving up on a mirrored job")
    })
}

/// A job's request and recipient indexes, or why it can never be read.
type Loaded = Result<(std::sync::Arc<RenderRequest>, Vec<usize>), String>;

/// The job's request, read from its stored body, and its recipient
/// indexes. A failing read of the file is the outer error: the job is
/// taken again later, not given up.
fn load(
    inner: &super::Inner,
    company: &str,
    request: &str,
    recipients: &str,
) -> PortResult<Loaded> {
    let body: Option<(String, Option<u32>)> = inner.db.read(|conn| {
        conn.prepare_cached(
            "SELECT request, template_version FROM request_bodies
             WHERE company_id = ?1 AND request_id = ?2",
        )
        .and_then(|mut select| {
            select
                .query_row(params![company, request], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()
        })
        .or_backend("reading a mirrored request")
    })?;
    Ok(parse_job(company, request, recipients, body))
}

fn parse_job(
    company: &str,
    request: &str,
    recipients: &str,
    body: Option<(String, Option<u32>)>,
) -> Loaded {
    let recipients: Vec<usize> = serde_json::from_str(recipients)
        .map_err(|e| format!("recipients of the job do not read: {e}"))?;
    let id = RequestId::parse(request).map_err(|e| format!("request id: {e}"))?;
    let (json, pinned) =
        body.ok_or_else(|| format!("request {company}/{request} is not stored"))?;
    let request = RenderRequest::from_stored(&json, id, pinned)?;
    if let Some(bad) = recipients
        .iter()
        .find(|&&index| index >= request.render_recipients().len())
    {
        return Err(format!(
            "recipient index {bad} is past the request's recipients"
        ));
    }
    Ok((std::sync::Arc::new(request), recipients))
}
