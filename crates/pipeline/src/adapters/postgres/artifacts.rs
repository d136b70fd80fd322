//! The [`ArtifactSink`] and [`ArtifactStore`] ports on PostgreSQL: one row
//! per (company, request, lane, recipient, channel), upserted, so a batch
//! delivered again overwrites what it wrote.

use std::sync::Arc;

use artifact_render::request::{CompanyId, RecipientId, RequestId};
use artifact_render::{Artifact, PreparedRequest};
use async_trait::async_trait;

use super::PostgresStore;
use crate::adapters::{OrBackend, check_artifacts};
use crate::{ArtifactKey, ArtifactSink, ArtifactStore, Lane, PortResult};

#[async_trait]
impl ArtifactSink for PostgresStore {
    async fn write(
        &self,
        lane: Lane,
        prepared: Arc<PreparedRequest>,
        artifacts: Arc<[Artifact]>,
    ) -> PortResult<()> {
        let request = prepared.request();
        let json = check_artifacts(request, &artifacts)?;
        let doing = format!(
            "writing artifacts of request {}/{}",
            request.company_id(),
            request.request_id()
        );
        let recipients: Vec<&str> = artifacts.iter().map(|a| a.recipient_id.as_str()).collect();
        let channels: Vec<&str> = artifacts.iter().map(|a| a.channel.as_str()).collect();
        let client = self.client().await?;
        let upsert = client
            .prepare_cached(
                "INSERT INTO artifacts (company_id, request_id, lane, recipient_id, channel, artifact)
                 SELECT $1, $2, $3, recipient, channel, artifact
                 FROM unnest($4::text[], $5::text[], $6::text[]) AS batch (recipient, channel, artifact)
                 ON CONFLICT (company_id, request_id, lane, recipient_id, channel)
                 DO UPDATE SET artifact = excluded.artifact",
            )
            .await
            .or_backend(&doing)?;
        client
            .execute(
                &upsert,
                &[
                    &request.company_id().as_str(),
                    &request.request_id().as_str(),
                    &lane.as_str(),
                    &recipients,
                    &channels,
                    &json,
                ],
            )
            .await
            .or_backend(&doing)?;
        Ok(())
    }
}

fn parse(text: &str) -> PortResult<Artifact> {
    serde_json::from_str(text).or_backend("reading an artifact")
}

#[async_trait]
impl ArtifactStore for PostgresStore {
    async fn get(&self, key: &ArtifactKey) -> PortResult<Option<Artifact>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT artifact FROM artifacts
                 WHERE company_id = $1 AND request_id = $2 AND lane = $3
                   AND recipient_id = $4 AND channel = $5",
                &[
                    &key.company_id.as_str(),
                    &key.request_id.as_str(),
                    &key.lane.as_str(),
                    &key.recipient_id.as_str(),
                    &key.channel.as_str(),
                ],
            )
            .await
            .or_backend("reading an artifact")?;
        row.map(|row| parse(row.get(0))).transpose()
    }

    async fn list(
        &self,
        company: &CompanyId,
        request_id: &RequestId,
        lane: Lane,
        after: Option<&RecipientId>,
        limit: usize,
    ) -> PortResult<Vec<Artifact>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT artifact FROM artifacts
                 WHERE company_id = $1 AND request_id = $2 AND lane = $3 AND recipient_id > $4
                 ORDER BY recipient_id, channel LIMIT $5",
                &[
                    &company.as_str(),
                    &request_id.as_str(),
                    &lane.as_str(),
                    // Ids are never empty: "" is before every one.
                    &after.map_or("", RecipientId::as_str),
                    &i64::try_from(limit).unwrap_or(i64::MAX),
                ],
            )
            .await
            .or_backend("listing artifacts")?;
        rows.iter().map(|row| parse(row.get(0))).collect()
    }

    async fn list_lane(
        &self,
        lane: Lane,
        after: Option<&ArtifactKey>,
        limit: usize,
    ) -> PortResult<Vec<(ArtifactKey, Artifact)>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT artifact FROM artifacts
                 WHERE lane = $1 AND (company_id, request_id, recipient_id, channel) > ($2, $3, $4, $5)
                 ORDER BY company_id, request_id, recipient_id, channel LIMIT $6",
                &[
                    &lane.as_str(),
                    &after.map_or("", |k| k.company_id.as_str()),
                    &after.map_or("", |k| k.request_id.as_str()),
                    &after.map_or("", |k| k.recipient_id.as_str()),
                    &after.map_or("", |k| k.channel.as_str()),
                    &i64::try_from(limit).unwrap_or(i64::MAX),
                ],
            )
            .await
            .or_backend("listing a lane's artifacts")?;
        rows.iter()
            .map(|row| {
                let artifact = parse(row.get(0))?;
                Ok((ArtifactKey::of(&artifact, lane), artifact))
            })
            .collect()
    }
}
