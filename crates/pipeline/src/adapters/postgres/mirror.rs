//! The [`MirrorQueue`] port on PostgreSQL, for the scaled-out mode: a row
//! per (job, lane) holding the request cut to the job's recipients, so a
//! lane worker on any machine renders it without the queue's messages.
//! Jobs are taken with `FOR UPDATE SKIP LOCKED`: lane workers never wait
//! for each other, and a job whose worker died is taken again once its
//! lease runs out.

use std::sync::Arc;
use std::time::Duration;

use artifact_render::RenderRequest;
use artifact_render::request::{CompanyId, RequestId};
use async_trait::async_trait;
use jiff::Timestamp;

use super::PostgresStore;
use crate::adapters::{OrBackend, mirrored_lane_name, parse_id, timestamp_text};
use crate::{Error, Lane, MirrorJob, MirrorLease, MirrorQueue, PortResult, Unmirrored};

fn positions(recipients: &[usize], doing: &str) -> PortResult<Vec<i32>> {
    recipients
        .iter()
        .map(|&i| i32::try_from(i).or_backend(doing))
        .collect()
}

#[async_trait]
impl MirrorQueue for PostgresStore {
    async fn mirror(
        &self,
        lane: Lane,
        job: &MirrorJob,
        request: &RenderRequest,
        capacity: usize,
    ) -> PortResult<bool> {
        let lane = mirrored_lane_name(lane)?;
        let doing = "queueing a mirrored job";
        if job
            .recipients
            .iter()
            .any(|&i| i >= request.render_recipients().len())
        {
            return Err(Error::Invalid(format!(
                "mirrored job {:?}: a recipient index is past the request's recipients",
                job.recipients
            )));
        }
        let kept = request
            .picked(&job.recipients)
            .stored_json()
            .or_backend(doing)?
            .into_owned();
        let mut client = self.client().await?;
        let tx = client.transaction().await.or_backend(doing)?;
        // Counting and inserting under one lock per lane keeps the capacity.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('mirror/' || $1))",
            &[&lane],
        )
        .await
        .or_backend(doing)?;
        let waiting: i64 = tx
            .query_one(
                "SELECT COUNT(*) FROM mirror_jobs WHERE lane = $1 AND abandoned IS NULL",
                &[&lane],
            )
            .await
            .or_backend(doing)?
            .get(0);
        if waiting >= i64::try_from(capacity).unwrap_or(i64::MAX) {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO mirror_jobs (lane, company_id, request_id, recipients, request)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &lane,
                &job.company_id.as_str(),
                &job.request_id.as_str(),
                &positions(&job.recipients, doing)?,
                &kept,
            ],
        )
        .await
        .or_backend(doing)?;
        tx.commit().await.or_backend(doing)?;
        Ok(true)
    }

    async fn take_mirrored(&self, lane: Lane, lease: Duration) -> PortResult<Option<MirrorLease>> {
        let lane = mirrored_lane_name(lane)?;
        let doing = "taking a mirrored job";
        loop {
            let now = Timestamp::now();
            let until = jiff::SignedDuration::try_from(lease)
                .ok()
                .and_then(|lease| now.checked_add(lease).ok())
                .unwrap_or(Timestamp::MAX);
            let client = self.client().await?;
            let row = client
                .query_opt(
                    "UPDATE mirror_jobs SET attempts = attempts + 1, leased_until = $3
                     WHERE id = (
                         SELECT id FROM mirror_jobs
                         WHERE lane = $1 AND abandoned IS NULL AND leased_until <= $2
                         ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
                     )
                     RETURNING id, request_id, request, attempts",
                    &[&lane, &timestamp_text(now), &timestamp_text(until)],
                )
                .await
                .or_backend(doing)?;
            let Some(row) = row else {
                return Ok(None);
            };
            let id: i64 = row.get("id");
            let id = u64::try_from(id).or_backend(doing)?;
            let request_id = parse_id(row.get("request_id"), RequestId::parse)?;
            match RenderRequest::from_stored(row.get("request"), request_id, None) {
                Ok(request) => {
                    let recipients = (0..request.render_recipients().len()).collect();
                    return Ok(Some(MirrorLease {
                        id,
                        request: Arc::new(request),
                        recipients,
                        attempts: u32::try_from(row.get::<_, i32>("attempts")).or_backend(doing)?,
                    }));
                }
                // A job that cannot be read can never render: keep it as
                // abandoned, with why, and look at the next one.
                Err(why) => {
                    self.abandon_mirrored(id, &format!("the job cannot be read: {why}"))
                        .await?
                }
            }
        }
    }

    async fn mirrored(&self, id: u64) -> PortResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM mirror_jobs WHERE id = $1",
                &[&i64::try_from(id).unwrap_or(i64::MAX)],
            )
            .await
            .or_backend("forgetting a mirrored job")?;
        Ok(())
    }

    async fn abandon_mirrored(&self, id: u64, reason: &str) -> PortResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE mirror_jobs SET abandoned = $2 WHERE id = $1",
                &[&i64::try_from(id).unwrap_or(i64::MAX), &reason],
            )
            .await
            .or_backend("giving up on a mirrored job")?;
        Ok(())
    }

    async fn unmirrored(&self, lane: Lane) -> PortResult<Vec<Unmirrored>> {
        let lane = mirrored_lane_name(lane)?;
        let doing = "listing mirrored jobs";
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT company_id, request_id, recipients, abandoned
                 FROM mirror_jobs WHERE lane = $1 ORDER BY id",
                &[&lane],
            )
            .await
            .or_backend(doing)?;
        rows.iter()
            .map(|row| {
                let recipients = row
                    .get::<_, Vec<i32>>("recipients")
                    .into_iter()
                    .map(|i| usize::try_from(i).or_backend(doing))
                    .collect::<PortResult<_>>()?;
                Ok(Unmirrored {
                    job: MirrorJob {
                        company_id: parse_id(row.get("company_id"), CompanyId::parse)?,
                        request_id: parse_id(row.get("request_id"), RequestId::parse)?,
                        recipients,
                    },
                    abandoned: row.get("abandoned"),
                })
            })
            .collect()
    }
}
