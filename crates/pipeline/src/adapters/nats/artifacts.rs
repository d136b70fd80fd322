//! The artifact sink for downstream senders: each artifact, as one JSON
//! message (the NDJSON sink's line: its lane and the artifact), on the
//! subject `{name}.artifacts.{lane}.{company}`, kept by the stream
//! `{NAME}_ARTIFACTS` for [`ARTIFACT_RETENTION`] for senders to consume
//! at their own pace with their own durable consumers.
//!
//! A batch returns once the server has stored every one of its messages.
//! Each message id is the artifact's key, so a batch rendered again within
//! the duplicate window is not delivered twice; after it, a sender sees the
//! key again and keeps the last.

use std::sync::Arc;
use std::time::Duration;

use artifact_render::{Artifact, PreparedRequest};
use async_nats::jetstream::{self, stream};
use async_trait::async_trait;
use bytes::Bytes;

use super::NatsOptions;
use crate::adapters::OrBackend;
use crate::sinks::ArtifactLine;
use crate::{ArtifactSink, Error, Lane, PortResult};

/// How long the artifacts stream keeps a message.
pub const ARTIFACT_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// Artifacts published to a JetStream stream.
pub struct NatsSink {
    jetstream: jetstream::Context,
    name: String,
}

impl std::fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSink")
            .field("name", &self.name)
            .finish()
    }
}

impl NatsSink {
    /// Publishes on `client`'s server, into the stream [`super::setup`]
    /// creates.
    pub fn new(client: async_nats::Client, options: &NatsOptions) -> Self {
        Self {
            jetstream: jetstream::new(client),
            name: options.name.clone(),
        }
    }

    /// The subject `lane`'s artifacts of `company` are published on.
    pub fn subject(&self, lane: Lane, company: &str) -> String {
        format!("{}.artifacts.{}.{company}", self.name, lane.as_str())
    }
}

/// Creates the artifacts stream, or brings it to `options`.
pub(super) async fn setup_stream(
    context: &jetstream::Context,
    options: &NatsOptions,
) -> PortResult<()> {
    let stream_name = options.artifacts_stream_name();
    context
        .create_or_update_stream(stream::Config {
            name: stream_name.clone(),
            subjects: vec![format!("{}.artifacts.>", options.name)],
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::Old,
            storage: stream::StorageType::File,
            num_replicas: options.replicas,
            max_age: ARTIFACT_RETENTION,
            duplicate_window: options.duplicate_window,
            ..Default::default()
        })
        .await
        .map_err(|e| Error::backend(format!("setting up the NATS stream {stream_name}"), e))?;
    Ok(())
}

#[async_trait]
impl ArtifactSink for NatsSink {
    async fn write(
        &self,
        lane: Lane,
        _prepared: Arc<PreparedRequest>,
        artifacts: Arc<[Artifact]>,
    ) -> PortResult<()> {
        let doing = "publishing artifacts to NATS";
        let serializing = artifacts.clone();
        let payloads: Vec<Bytes> = tokio::task::spawn_blocking(move || {
            serializing
                .iter()
                .map(|artifact| {
                    serde_json::to_vec(&ArtifactLine { lane, artifact }).map(Bytes::from)
                })
                .collect::<Result<_, _>>()
        })
        .await
        .or_backend(doing)?
        .or_backend(doing)?;
        let mut acks = Vec::with_capacity(payloads.len());
        for (artifact, payload) in artifacts.iter().zip(payloads) {
            let mut headers = async_nats::HeaderMap::new();
            let key = format!(
                "{}/{}/{}/{}/{}",
                super::header_id(artifact.company_id.as_str()),
                super::header_id(artifact.request_id.as_str()),
                super::header_id(artifact.recipient_id.as_str()),
                artifact.channel.as_str(),
                lane.as_str()
            );
            headers.insert(async_nats::header::NATS_MESSAGE_ID, key.as_str());
            let subject = self.subject(lane, artifact.company_id.as_str());
            acks.push(
                self.jetstream
                    .publish_with_headers(subject, headers, payload)
                    .await
                    .map_err(|e| Error::backend(doing, e))?,
            );
        }
        for ack in acks {
            ack.await.map_err(|e| Error::backend(doing, e))?;
        }
        Ok(())
    }
}
