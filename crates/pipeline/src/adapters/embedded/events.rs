//! The [`ResponseLog`] and [`EngagementLog`] ports: append-only tables whose
//! `AUTOINCREMENT` sequence is the cursor clients page with. AUTOINCREMENT
//! (not a plain rowid) so that a sequence number is never reused.

use artifact_render::request::CompanyId;
use async_trait::async_trait;
use rusqlite::params;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{EmbeddedStore, OrBackend, to_sql_int};
use crate::{EngagementEvent, EngagementLog, PortResult, ResponseEvent, ResponseLog, ResponseSink};

/// The two event tables; they have the same shape.
#[derive(Clone, Copy)]
enum Table {
    Responses,
    Engagement,
}

impl Table {
    fn insert(self) -> &'static str {
        match self {
            Table::Responses => "INSERT INTO response_events (company_id, event) VALUES (?1, ?2)",
            Table::Engagement => {
                "INSERT INTO engagement_events (company_id, event) VALUES (?1, ?2)"
            }
        }
    }

    fn select(self) -> &'static str {
        match self {
            Table::Responses => {
                "SELECT seq, event FROM response_events
                 WHERE company_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
            }
            Table::Engagement => {
                "SELECT seq, event FROM engagement_events
                 WHERE company_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
            }
        }
    }
}

impl EmbeddedStore {
    async fn append(
        &self,
        table: Table,
        company: &CompanyId,
        event: &impl Serialize,
    ) -> PortResult<()> {
        let json = serde_json::to_string(event).or_backend("serializing an event")?;
        let company = company.clone();
        self.run(move |inner| {
            inner.db.write(|conn| {
                conn.prepare_cached(table.insert())
                    .and_then(|mut insert| insert.execute(params![company.as_str(), json]))
                    .or_backend("appending an event")
                    .map(drop)
            })
        })
        .await
    }

    async fn page<T: DeserializeOwned + Send + 'static>(
        &self,
        table: Table,
        company: &CompanyId,
        after: u64,
        limit: usize,
    ) -> PortResult<Vec<(u64, T)>> {
        let company = company.clone();
        self.run(move |inner| {
            let doing = "listing events";
            inner.db.read(|conn| {
                let mut select = conn.prepare_cached(table.select()).or_backend(doing)?;
                let rows = select
                    .query_map(
                        params![company.as_str(), to_sql_int(after), to_sql_int(limit)],
                        |row| Ok((row.get::<_, u64>(0)?, row.get::<_, String>(1)?)),
                    )
                    .or_backend(doing)?;
                rows.map(|row| {
                    let (seq, json) = row.or_backend(doing)?;
                    Ok((seq, serde_json::from_str(&json).or_backend(doing)?))
                })
                .collect()
            })
        })
        .await
    }
}

#[async_trait]
impl ResponseSink for EmbeddedStore {
    async fn publish(&self, event: ResponseEvent) -> PortResult<()> {
        self.append(Table::Responses, &event.company_id, &event)
            .await
    }
}

#[async_trait]
impl ResponseLog for EmbeddedStore {
    async fn list(
        &self,
        company: &CompanyId,
        after: u64,
        limit: usize,
    ) -> PortResult<Vec<(u64, ResponseEvent)>> {
        self.page(Table::Responses, company, after, limit).await
    }
}

#[async_trait]
impl EngagementLog for EmbeddedStore {
    async fn record(&self, event: EngagementEvent) -> PortResult<()> {
        self.append(Table::Engagement, &event.company_id, &event)
            .await
    }

    async fn list(
        &self,
        company: &CompanyId,
        after: u64,
        limit: usize,
    ) -> PortResult<Vec<(u64, EngagementEvent)>> {
        self.page(Table::Engagement, company, after, limit).await
    }
}
