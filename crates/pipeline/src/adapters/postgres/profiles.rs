//! The [`ProfileStore`] port on PostgreSQL: JSONB rows, projected in the
//! database so only the read keys cross the wire.

use std::collections::HashMap;
use std::sync::Arc;

use artifact_render::request::{CompanyId, ProfileId};
use artifact_render::template::ProfileProjection;
use async_trait::async_trait;

use super::PostgresStore;
use crate::adapters::{OrBackend, check_properties};
use crate::{PortResult, ProfileStore};

#[async_trait]
impl ProfileStore for PostgresStore {
    async fn fetch(
        &self,
        company: &CompanyId,
        ids: &[ProfileId],
        projection: &ProfileProjection,
    ) -> PortResult<HashMap<ProfileId, Arc<serde_json::Value>>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let doing = "fetching profiles";
        let client = self.client().await?;
        let names: Vec<&str> = ids.iter().map(ProfileId::as_str).collect();
        let rows = match projection.keys() {
            None => {
                let select = client
                    .prepare_cached(
                        "SELECT profile_id, properties::text FROM profiles
                         WHERE company_id = $1 AND profile_id = ANY($2)",
                    )
                    .await
                    .or_backend(doing)?;
                client.query(&select, &[&company.as_str(), &names]).await
            }
            Some(keys) => {
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                let select = client
                    .prepare_cached(
                        "SELECT profile_id,
                                (SELECT COALESCE(jsonb_object_agg(key, value), '{}'::jsonb)
                                 FROM jsonb_each(properties) WHERE key = ANY($3))::text
                         FROM profiles WHERE company_id = $1 AND profile_id = ANY($2)",
                    )
                    .await
                    .or_backend(doing)?;
                client
                    .query(&select, &[&company.as_str(), &names, &keys])
                    .await
            }
        }
        .or_backend(doing)?;
        let by_name: HashMap<&str, &ProfileId> = ids.iter().map(|id| (id.as_str(), id)).collect();
        let mut found = HashMap::with_capacity(rows.len());
        for row in rows {
            let name: &str = row.get(0);
            let Some(&id) = by_name.get(name) else {
                continue;
            };
            let text: &str = row.get(1);
            let properties: serde_json::Value =
                serde_json::from_str(text).or_backend(&format!("reading profile {name:?}"))?;
            found.insert(id.clone(), Arc::new(properties));
        }
        Ok(found)
    }

    async fn put(
        &self,
        company: &CompanyId,
        profiles: Vec<(ProfileId, serde_json::Value)>,
    ) -> PortResult<()> {
        // Check everything first: a bad profile writes nothing.
        let rows = check_properties(&profiles)?;
        let doing = "writing profiles";
        let ids: Vec<&str> = profiles.iter().map(|(id, _)| id.as_str()).collect();
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO profiles (company_id, profile_id, properties)
                 SELECT $1, id, properties::jsonb FROM unnest($2::text[], $3::text[])
                     AS batch (id, properties)
                 ON CONFLICT (company_id, profile_id)
                 DO UPDATE SET properties = excluded.properties",
                &[&company.as_str(), &ids, &rows],
            )
            .await
            .or_backend(doing)?;
        Ok(())
    }
}
