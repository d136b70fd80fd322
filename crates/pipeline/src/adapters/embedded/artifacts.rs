//! The [`ArtifactSink`] and [`ArtifactStore`] ports: one row per (company,
//! request, lane, recipient, channel), the artifact as JSON. The `.eml` is
//! not stored: it is regenerated from the artifact when asked for.

use std::sync::Arc;

use artifact_render::request::{CompanyId, RecipientId, RequestId};
use artifact_render::{Artifact, PreparedRequest};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{EmbeddedStore, OrBackend, to_sql_int};
use crate::{ArtifactKey, ArtifactSink, ArtifactStore, Lane, PortResult};

#[async_trait]
impl ArtifactSink for EmbeddedStore {
    async fn write(
        &self,
        lane: Lane,
        prepared: Arc<PreparedRequest>,
        artifacts: Arc<[Artifact]>,
    ) -> PortResult<()> {
        self.run(move |inner| {
            let request = prepared.request();
            let json = crate::adapters::check_artifacts(request, &artifacts)?;
            let rows: Vec<_> = artifacts
                .iter()
                .zip(json)
                .map(|(artifact, json)| (artifact.recipient_id.as_str(), artifact.channel, json))
                .collect();
            let (company, request_id) = (request.company_id(), request.request_id());
            let doing = format!("writing artifacts of request {company}/{request_id}");
            inner.db.write(|conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .or_backend(&doing)?;
                {
                    let mut upsert = tx
                        .prepare_cached(
                            "INSERT INTO artifacts
                                 (company_id, request_id, lane, recipient_id, channel, artifact)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                             ON CONFLICT (company_id, request_id, lane, recipient_id, channel)
                             DO UPDATE SET artifact = excluded.artifact",
                        )
                        .or_backend(&doing)?;
                    for (recipient, channel, json) in &rows {
                        upsert
                            .execute(params![
                                company.as_str(),
                                request_id.as_str(),
                                lane.as_str(),
                                recipient,
                                channel.as_str(),
                                json
                            ])
                            .or_backend(&doing)?;
                    }
                }
                tx.commit().or_backend(&doing)
            })
        })
        .await
    }
}

#[async_trait]
impl ArtifactStore for EmbeddedStore {
    async fn get(&self, key: &ArtifactKey) -> PortResult<Option<Artifact>> {
        let key = key.clone();
        self.run(move |inner| {
            let doing = "reading an artifact";
            let json: Option<String> = inner.db.read(|conn| {
                conn.prepare_cached(
                    "SELECT artifact FROM artifacts
                     WHERE company_id = ?1 AND request_id = ?2 AND lane = ?3
                       AND recipient_id = ?4 AND channel = ?5",
                )
                .and_then(|mut select| {
                    select
                        .query_row(
                            params![
                                key.company_id.as_str(),
                                key.request_id.as_str(),
                                key.lane.as_str(),
                                key.recipient_id.as_str(),
                                key.channel.as_str()
                            ],
                            |row| row.get(0),
                        )
                        .optional()
                })
                .or_backend(doing)
            })?;
            json.map(|json| serde_json::from_str(&json).or_backend(doing))
                .transpose()
        })
        .await
    }

    async fn list(
        &self,
        company: &CompanyId,
        request_id: &RequestId,
        lane: Lane,
        after: Option<&RecipientId>,
        limit: usize,
    ) -> PortResult<Vec<Artifact>> {
        let (company, request_id) = (company.clone(), request_id.clone());
        let after = after.cloned();
        self.run(move |inner| {
            let doing = "listing artifacts";
            inner.db.read(|conn| {
                // Text compares bytewise in SQLite, as `str` does in Rust.
                let mut select = conn
                    .prepare_cached(
                        "SELECT artifact FROM artifacts
                         WHERE company_id = ?1 AND request_id = ?2 AND lane = ?3
                           AND (?4 IS NULL OR recipient_id > ?4)
                         ORDER BY recipient_id, channel LIMIT ?5",
                    )
                    .or_backend(doing)?;
                let rows = select
                    .query_map(
                        params![
                            company.as_str(),
                            request_id.as_str(),
                            lane.as_str(),
                            after.as_ref().map(RecipientId::as_str),
                            to_sql_int(limit)
                        ],
                        |row| row.get::<_, String>(0),
                    )
                    .or_backend(doing)?;
                rows.map(|json| serde_json::from_str(&json.or_backend(doing)?).or_backend(doing))
                    .collect()
            })
        })
        .await
    }

    async fn list_lane(
        &self,
        lane: Lane,
        after: Option<&ArtifactKey>,
        limit: usize,
    ) -> PortResult<Vec<(ArtifactKey, Artifact)>> {
        let after = after.cloned();
        self.run(move |inner| {
            let doing = "listing a lane's artifacts";
            inner.db.read(|conn| {
                // In the primary key's order, and after `after` by the whole
                // key (its lane is this one), so each page seeks in the key
                // instead of scanning from the start.
                let mut select = conn
                    .prepare_cached(
                        "SELECT artifact FROM artifacts
                         WHERE lane = ?1
                           AND (company_id, request_id, lane, recipient_id, channel)
                               > (?2, ?3, ?1, ?4, ?5)
                         ORDER BY company_id, request_id, lane, recipient_id, channel LIMIT ?6",
                    )
                    .or_backend(doing)?;

                let rows = select
                    .query_map(
                        params![
                            lane.as_str(),
                            // Ids are never empty: "" is before every key.
                            after.as_ref().map_or("", |k| k.company_id.as_str()),
                            after.as_ref().map_or("", |k| k.request_id.as_str()),
                            after.as_ref().map_or("", |k| k.recipient_id.as_str()),
                            after.as_ref().map_or("", |k| k.channel.as_str()),
                            to_sql_int(limit)
                        ],
                        |row| row.get::<_, String>(0),
                    )
                    .or_backend(doing)?;
                rows.map(|json| {
                    let artifact: Artifact =
                        serde_json::from_str(&json.or_backend(doing)?).or_backend(doing)?;
                    Ok((ArtifactKey::of(&artifact, lane), artifact))
                })
                .collect()
            })
        })
        .await
    }
}
