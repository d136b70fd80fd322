//! The [`ProfileStore`] port: one row per (company, profile), the
//! properties object as JSON text.

use std::collections::HashMap;
use std::sync::Arc;

use artifact_render::request::{CompanyId, ProfileId};
use artifact_render::template::ProfileProjection;
use async_trait::async_trait;
use rusqlite::{TransactionBehavior, params};

use super::{EmbeddedStore, OrBackend};
use crate::{Error, PortResult, ProfileStore};

#[async_trait]
impl ProfileStore for EmbeddedStore {
    async fn fetch(
        &self,
        company: &CompanyId,
        ids: &[ProfileId],
        projection: &ProfileProjection,
    ) -> PortResult<HashMap<ProfileId, Arc<serde_json::Value>>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let company = company.clone();
        let ids = ids.to_vec();
        let projection = projection.clone();
        self.run(move |inner| {
            let doing = "fetching profiles";
            // One query for the whole batch: the ids travel as one JSON
            // array, so the statement is the same for any batch size.
            let wanted = serde_json::to_string(&ids).or_backend(doing)?;
            let by_name: HashMap<&str, &ProfileId> =
                ids.iter().map(|id| (id.as_str(), id)).collect();
            inner.db.read(|conn| {
                let mut select = conn
                    .prepare_cached(
                        "SELECT profile_id, properties FROM profiles
                         WHERE company_id = ?1
                           AND profile_id IN (SELECT value FROM json_each(?2))",
                    )
                    .or_backend(doing)?;
                let mut rows = select
                    .query(params![company.as_str(), wanted])
                    .or_backend(doing)?;
                let mut found = HashMap::with_capacity(ids.len());
                while let Some(row) = rows.next().or_backend(doing)? {
                    let name: String = row.get(0).or_backend(doing)?;
                    let Some(&id) = by_name.get(name.as_str()) else {
                        continue;
                    };
                    let text: String = row.get(1).or_backend(doing)?;
                    // Parsing is most of a fetch's cost; keys no template
                    // reads are skipped, not built.
                    let properties = projection
                        .parse(&text)
                        .map_err(|e| Error::backend(format!("reading profile {name:?}"), e))?;
                    found.insert(id.clone(), Arc::new(properties));
                }
                Ok(found)
            })
        })
        .await
    }

    async fn put(
        &self,
        company: &CompanyId,
        profiles: Vec<(ProfileId, serde_json::Value)>,
    ) -> PortResult<()> {
        // Check everything first: a bad profile writes nothing.
        let texts = crate::adapters::check_properties(&profiles)?;
        let rows: Vec<(ProfileId, String)> =
            profiles.into_iter().map(|(id, _)| id).zip(texts).collect();
        let company = company.clone();
        self.run(move |inner| {
            let doing = "writing profiles";
            inner.db.write(|conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .or_backend(doing)?;
                {
                    let mut upsert = tx
                        .prepare_cached(
                            "INSERT INTO profiles (company_id, profile_id, properties)
                             VALUES (?1, ?2, ?3)
                             ON CONFLICT (company_id, profile_id)
                             DO UPDATE SET properties = excluded.properties",
                        )
                        .or_backend(doing)?;
                    for (id, text) in &rows {
                        upsert
                            .execute(params![company.as_str(), id.as_str(), text])
                            .or_backend(doing)?;
                    }
                }
                tx.commit().or_backend(doing)
            })
        })
        .await
    }
}
