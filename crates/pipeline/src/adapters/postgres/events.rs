//! The [`ResponseLog`] and [`EngagementLog`] ports on PostgreSQL:
//! append-only tables whose sequence is the cursor clients page with.
//!
//! A response event is logged once per request: publishing it again (the
//! worker retries until the broker has it too) adds nothing.
//!
//! A sequence value is taken when a row is inserted, but rows become
//! visible when they commit: two concurrent appends could commit out of
//! order, and a client that paged past the later one would never see the
//! earlier. Appends for one company therefore take that company's lock
//! for their transaction, so its sequence numbers become visible in order.

use artifact_render::request::CompanyId;
use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::PostgresStore;
use crate::adapters::OrBackend;
use crate::{EngagementEvent, EngagementLog, PortResult, ResponseEvent, ResponseLog, ResponseSink};

/// The two event tables; they have the same shape.
#[derive(Clone, Copy)]
enum Table {
    Responses,
    Engagement,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Responses => "response_events",
            Table::Engagement => "engagement_events",
        }
    }
}

impl PostgresStore {
    /// Appends `event`; with `once_per`, only if the company has no event
    /// under that key yet (a response event is logged once per request).
    async fn append(
        &self,
        table: Table,
        company: &CompanyId,
        once_per: Option<&str>,
        event: &impl Serialize,
    ) -> PortResult<()> {
        let doing = "appending an event";
        let json = serde_json::to_string(event).or_backend(doing)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.or_backend(doing)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1 || '/' || $2))",
            &[&table.name(), &company.as_str()],
        )
        .await
        .or_backend(doing)?;
        match once_per {
            Some(key) => {
                tx.execute(
                    &format!(
                        "INSERT INTO {} (company_id, event, request_id) VALUES ($1, $2, $3)
                         ON CONFLICT (company_id, request_id) DO NOTHING",
                        table.name()
                    ),
                    &[&company.as_str(), &json, &key],
                )
                .await
            }
            None => {
                tx.execute(
                    &format!(
                        "INSERT INTO {} (company_id, event) VALUES ($1, $2)",
                        table.name()
                    ),
                    &[&company.as_str(), &json],
                )
                .await
            }
        }
        .or_backend(doing)?;
        tx.commit().await.or_backend(doing)
    }

    async fn page<T: DeserializeOwned>(
        &self,
        table: Table,
        company: &CompanyId,
        after: u64,
        limit: usize,
    ) -> PortResult<Vec<(u64, T)>> {
        let doing = "listing events";
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT seq, event FROM {} WHERE company_id = $1 AND seq > $2
                     ORDER BY seq LIMIT $3",
                    table.name()
                ),
                &[
                    &company.as_str(),
                    &i64::try_from(after).unwrap_or(i64::MAX),
                    &i64::try_from(limit).unwrap_or(i64::MAX),
                ],
            )
            .await
            .or_backend(doing)?;
        rows.iter()
            .map(|row| {
                let seq = u64::try_from(row.get::<_, i64>(0)).or_backend(doing)?;
                let event = serde_json::from_str(row.get(1)).or_backend(doing)?;
                Ok((seq, event))
            })
            .collect()
    }
}

#[async_trait]
impl ResponseSink for PostgresStore {
    async fn publish(&self, event: ResponseEvent) -> PortResult<()> {
        let request = event.request_id.as_str();
        self.append(Table::Responses, &event.company_id, Some(request), &event)
            .await
    }
}

#[async_trait]
impl ResponseLog for PostgresStore {
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
impl EngagementLog for PostgresStore {
    async fn record(&self, event: EngagementEvent) -> PortResult<()> {
        self.append(Table::Engagement, &event.company_id, None, &event)
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
