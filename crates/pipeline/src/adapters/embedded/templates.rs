//! The [`TemplateStore`] port: immutable versions, numbered from 1 per
//! (company, template).

use artifact_render::request::{CompanyId, TemplateId};
use artifact_render::template::{Channel, TemplateParts};
use async_trait::async_trait;
use jiff::Timestamp;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{EmbeddedStore, OrBackend, parse_timestamp};
use crate::{PortResult, StoredTemplate, TemplateStore};

#[async_trait]
impl TemplateStore for EmbeddedStore {
    async fn put(
        &self,
        company: &CompanyId,
        id: &TemplateId,
        channel: Channel,
        parts: TemplateParts,
    ) -> PortResult<StoredTemplate> {
        let json = serde_json::to_string(&parts).or_backend("serializing template parts")?;
        let (company, id) = (company.clone(), id.clone());
        self.run(move |inner| {
            let doing = format!("storing template {:?}", id.as_str());
            let created_at = Timestamp::now();
            let version = inner.db.write(|conn| {
                // An immediate transaction holds the file's write lock from
                // its start, so reading the latest version and inserting
                // the next cannot race another writer, in this process or
                // another.
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .or_backend(&doing)?;
                let version: u32 = tx
                    .query_row(
                        "SELECT COALESCE(MAX(version), 0) + 1 FROM templates
                         WHERE company_id = ?1 AND template_id = ?2",
                        params![company.as_str(), id.as_str()],
                        |row| row.get(0),
                    )
                    .or_backend(&doing)?;
                tx.execute(
                    "INSERT INTO templates
                         (company_id, template_id, version, channel, parts, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        company.as_str(),
                        id.as_str(),
                        version,
                        channel.as_str(),
                        json,
                        super::timestamp_text(created_at)
                    ],
                )
                .or_backend(&doing)?;
                tx.commit().or_backend(&doing)?;
                Ok(version)
            })?;
            Ok(StoredTemplate {
                company_id: company,
                template_id: id,
                version,
                channel,
                parts,
                created_at,
            })
        })
        .await
    }

    async fn get(
        &self,
        company: &CompanyId,
        id: &TemplateId,
        version: Option<u32>,
    ) -> PortResult<Option<StoredTemplate>> {
        let (company, id) = (company.clone(), id.clone());
        self.run(move |inner| {
            let doing = format!("reading template {:?}", id.as_str());
            let row = inner.db.read(|conn| {
                conn.prepare_cached(
                    "SELECT version, channel, parts, created_at FROM templates
                     WHERE company_id = ?1 AND template_id = ?2 AND (?3 IS NULL OR version = ?3)
                     ORDER BY version DESC LIMIT 1",
                )
                .and_then(|mut select| {
                    select
                        .query_row(params![company.as_str(), id.as_str(), version], |row| {
                            Ok((
                                row.get::<_, u32>(0)?,
                                row.get::<_, String>(1)?,
                                row.get::<_, String>(2)?,
                                row.get::<_, String>(3)?,
                            ))
                        })
                        .optional()
                })
                .or_backend(&doing)
            })?;
            let Some((version, channel, parts, created_at)) = row else {
                return Ok(None);
            };
            Ok(Some(StoredTemplate {
                parts: serde_json::from_str(&parts).or_backend(&doing)?,
                channel: super::parse_variant(&channel, "templates.channel")?,
                created_at: parse_timestamp(&created_at, "templates.created_at")?,
                company_id: company,
                template_id: id,
                version,
            }))
        })
        .await
    }

    async fn versions(&self, company: &CompanyId, id: &TemplateId) -> PortResult<Vec<u32>> {
        let (company, id) = (company.clone(), id.clone());
        self.run(move |inner| {
            let doing = "listing template versions";
            inner.db.read(|conn| {
                let mut select = conn
                    .prepare_cached(
                        "SELECT version FROM templates
                         WHERE company_id = ?1 AND template_id = ?2 ORDER BY version",
                    )
                    .or_backend(doing)?;
                let versions = select
                    .query_map(params![company.as_str(), id.as_str()], |row| row.get(0))
                    .or_backend(doing)?;
                versions.collect::<Result<_, _>>().or_backend(doing)
            })
        })
        .await
    }
}
