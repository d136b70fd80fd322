//! Response events in the scaled-out mode: kept in PostgreSQL for clients
//! that poll (`GET …/responses`), and published on the subject
//! `{name}.responses.{company}` (subscribe to it exactly: a company id may
//! hold dots, so `acme.>` also matches `acme.eu`) for those that subscribe. The subjects are
//! captured by the stream `{NAME}_RESPONSES` (kept for
//! [`super::RESPONSE_RETENTION`]), so a subscriber that was away reads what it
//! missed from its own durable consumer.

use std::sync::Arc;

use artifact_render::request::CompanyId;
use async_nats::jetstream;
use async_trait::async_trait;

use super::NatsOptions;
use crate::adapters::OrBackend;
use crate::adapters::postgres::PostgresStore;
use crate::{Error, PortResult, ResponseEvent, ResponseLog, ResponseSink};

/// Response events to PostgreSQL and to NATS.
pub struct NatsResponses {
    jetstream: jetstream::Context,
    name: String,
    log: Arc<PostgresStore>,
}

impl std::fmt::Debug for NatsResponses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsResponses")
            .field("name", &self.name)
            .finish()
    }
}

impl NatsResponses {
    /// Publishes on `client`'s server, into the stream [`super::setup`]
    /// creates.
    pub fn new(client: async_nats::Client, options: &NatsOptions, log: Arc<PostgresStore>) -> Self {
        Self {
            jetstream: jetstream::new(client),
            name: options.name.clone(),
            log,
        }
    }

    /// The subject a company's response events are published on.
    pub fn subject(&self, company: &CompanyId) -> String {
        format!("{}.responses.{}", self.name, company.as_str())
    }
}

#[async_trait]
impl ResponseSink for NatsResponses {
    /// Logged first, then published: a failure of either fails the call,
    /// and the worker publishes the event again later (at least once).
    async fn publish(&self, event: ResponseEvent) -> PortResult<()> {
        let doing = "publishing a response event to NATS";
        let payload = serde_json::to_vec(&event).or_backend(doing)?;
        let subject = self.subject(&event.company_id);
        let mut headers = async_nats::HeaderMap::new();
        // A republished event within the window is dropped by the server.
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            format!(
                "{}/{}",
                super::header_id(event.company_id.as_str()),
                super::header_id(event.request_id.as_str())
            )
            .as_str(),
        );
        self.log.publish(event).await?;
        self.jetstream
            .publish_with_headers(subject, headers, payload.into())
            .await
            .map_err(|e| Error::backend(doing, e))?
            .await
            .map_err(|e| Error::backend(doing, e))?;
        Ok(())
    }
}

#[async_trait]
impl ResponseLog for NatsResponses {
    async fn list(
        &self,
        company: &CompanyId,
        after: u64,
        limit: usize,
    ) -> PortResult<Vec<(u64, ResponseEvent)>> {
        self.log.list(company, after, limit).await
    }
}
