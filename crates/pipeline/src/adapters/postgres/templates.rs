//! The [`TemplateStore`] port on PostgreSQL: immutable versions, numbered
//! from 1 per (company, template).

use artifact_render::request::{CompanyId, TemplateId};
use artifact_render::template::{Channel, TemplateParts};
use async_trait::async_trait;
use jiff::Timestamp;

use super::PostgresStore;
use crate::adapters::{OrBackend, parse_timestamp, parse_variant, timestamp_text, variant_name};
use crate::{PortResult, StoredTemplate, TemplateStore};

#[async_trait]
impl TemplateStore for PostgresStore {
    async fn put(
        &self,
        company: &CompanyId,
        id: &TemplateId,
        channel: Channel,
        parts: TemplateParts,
    ) -> PortResult<StoredTemplate> {
        let doing = format!("storing template {:?}", id.as_str());
        let json = serde_json::to_string(&parts).or_backend(&doing)?;
        let created_at = Timestamp::now();
        let mut client = self.client().await?;
        let tx = client.transaction().await.or_backend(&doing)?;
        // Versions of one template are numbered one writer at a time.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1 || '/' || $2))",
            &[&company.as_str(), &id.as_str()],
        )
        .await
        .or_backend(&doing)?;
        let row = tx
            .query_one(
                "INSERT INTO templates (company_id, template_id, version, channel, parts, created_at)
                 SELECT $1, $2, COALESCE(MAX(version), 0) + 1, $3, $4::text::jsonb, $5
                 FROM templates WHERE company_id = $1 AND template_id = $2
                 RETURNING version",
                &[
                    &company.as_str(),
                    &id.as_str(),
                    &variant_name(&channel)?,
                    &json,
                    &timestamp_text(created_at),
                ],
            )
            .await
            .or_backend(&doing)?;
        tx.commit().await.or_backend(&doing)?;
        let version: i32 = row.get(0);
        Ok(StoredTemplate {
            company_id: company.clone(),
            template_id: id.clone(),
            version: u32::try_from(version).or_backend(&doing)?,
            channel,
            parts,
            created_at,
        })
    }

    async fn get(
        &self,
        company: &CompanyId,
        id: &TemplateId,
        version: Option<u32>,
    ) -> PortResult<Option<StoredTemplate>> {
        let doing = format!("reading template {:?}", id.as_str());
        let version = version.map(|v| i32::try_from(v).unwrap_or(i32::MAX));
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT version, channel, parts::text, created_at FROM templates
                 WHERE company_id = $1 AND template_id = $2 AND ($3::int IS NULL OR version = $3)
                 ORDER BY version DESC LIMIT 1",
                &[&company.as_str(), &id.as_str(), &version],
            )
            .await
            .or_backend(&doing)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let stored_version: i32 = row.get(0);
        Ok(Some(StoredTemplate {
            company_id: company.clone(),
            template_id: id.clone(),
            version: u32::try_from(stored_version).or_backend(&doing)?,
            channel: parse_variant(row.get(1), "templates.channel")?,
            parts: serde_json::from_str(row.get(2)).or_backend(&doing)?,
            created_at: parse_timestamp(row.get(3), "templates.created_at")?,
        }))
    }

    async fn versions(&self, company: &CompanyId, id: &TemplateId) -> PortResult<Vec<u32>> {
        let doing = "listing template versions";
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT version FROM templates
                 WHERE company_id = $1 AND template_id = $2 ORDER BY version",
                &[&company.as_str(), &id.as_str()],
            )
            .await
            .or_backend(doing)?;
        rows.iter()
            .map(|row| u32::try_from(row.get::<_, i32>(0)).or_backend(doing))
            .collect()
    }
}
