//! What traffic is sent to: the embedded pipeline inside this process, or a
//! running `artifact serve` over HTTP. Either way a request is done when
//! its response event says so, and that event's `finished_at` ends its
//! latency.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use artifact_pipeline::adapters::embedded::{EmbeddedOptions, EmbeddedStore};
use artifact_pipeline::metrics::Metrics;
use artifact_pipeline::sinks::DiscardSink;
use artifact_pipeline::worker::{Renderer, WorkerPool, WorkerPorts, WorkerSettings};
use artifact_pipeline::{
    ArtifactSink, PortResult, ProfileStore, RequestQueue, RequestState, ResponseEvent,
    ResponseSink, TemplateStore,
};
use artifact_render::finish::tracking::TrackingConfig;
use artifact_render::request::{CompanyId, ProfileId, RequestId, TemplateId};
use artifact_render::template::ProfileProjection;
use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jiff::Timestamp;
use tokio::sync::mpsc;

use crate::data::{self, DataSpec, Shape};

/// A request the target finished.
#[derive(Debug, Clone)]
pub struct Finished {
    pub company: String,
    pub request_id: String,
    pub finished_at: Timestamp,
    pub failed: bool,
}

/// Where traffic goes.
#[async_trait]
pub trait Target: Send + Sync {
    /// Stores the templates, and the profiles unless they are there
    /// already, for each of `companies`.
    async fn load(&self, spec: &DataSpec, companies: &[String]) -> Result<(), String>;

    /// Sends one request: `shape` under `id`. The error is its kind, for
    /// the report (`rejected 422`, `connect`, …).
    async fn submit(&self, shape: &Shape, id: &str) -> Result<(), String>;

    /// The service's peak resident memory so far, when it can be known.
    async fn peak_rss_bytes(&self) -> Option<u64>;

    /// Stops what the target started.
    async fn shutdown(&self);
}

fn company(name: &str) -> Result<CompanyId, String> {
    CompanyId::parse(name).map_err(|e| format!("company {name:?}: {e}"))
}

/// The embedded pipeline in this process: its store in `data_dir`, its
/// workers, a discard sink.
#[derive(Debug)]
pub struct InProcess {
    store: Arc<EmbeddedStore>,
    pool: Mutex<Option<WorkerPool>>,
}

impl From<&ResponseEvent> for Finished {
    fn from(event: &ResponseEvent) -> Self {
        Finished {
            company: event.company_id.to_string(),
            request_id: event.request_id.to_string(),
            finished_at: event.finished_at,
            failed: event.state == RequestState::Failed,
        }
    }
}

/// One page of `/response-events`.
#[derive(serde::Deserialize)]
struct EventPage {
    events: Vec<SequencedEvent>,
}

#[derive(serde::Deserialize)]
struct SequencedEvent {
    seq: u64,
    #[serde(flatten)]
    event: ResponseEvent,
}

/// Publishes response events to the store and tells the runner.
struct Announce {
    store: Arc<EmbeddedStore>,
    finished: mpsc::UnboundedSender<Finished>,
}

#[async_trait]
impl ResponseSink for Announce {
    async fn publish(&self, event: ResponseEvent) -> PortResult<()> {
        let finished = Finished::from(&event);
        self.store.publish(event).await?;
        // The runner may have stopped listening; the event is stored.
        let _ = self.finished.send(finished);
        Ok(())
    }
}

impl InProcess {
    /// Opens the store in `data_dir` and starts the workers.
    pub fn start(
        data_dir: &Path,
        workers: WorkerSettings,
        batch_size: usize,
        tracking: Option<Arc<TrackingConfig>>,
    ) -> Result<(InProcess, mpsc::UnboundedReceiver<Finished>), String> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
        let store = EmbeddedStore::open(
            &data_dir.join("artifact.db"),
            EmbeddedOptions {
                batch_size,
                ..EmbeddedOptions::default()
            },
        )
        .map_err(|e| e.to_string())?;
        let (tx, rx) = mpsc::unbounded_channel();
        let renderer = Arc::new(Renderer::new(
            store.clone(),
            tracking,
            64,
            Default::default(),
        ));
        let sink: Arc<dyn ArtifactSink> = Arc::new(DiscardSink::default());
        let pool = WorkerPool::start(
            workers,
            WorkerPorts {
                queue: store.clone(),
                profiles: store.clone(),
                sink,
                responses: Arc::new(Announce {
                    store: store.clone(),
                    finished: tx,
                }),
            },
            renderer,
            Arc::new(Metrics::default()),
        );
        Ok((
            InProcess {
                store,
                pool: Mutex::new(Some(pool)),
            },
            rx,
        ))
    }
}

#[async_trait]
impl Target for InProcess {
    async fn load(&self, spec: &DataSpec, companies: &[String]) -> Result<(), String> {
        for name in companies {
            let company = company(name)?;
            for id in data::TEMPLATES {
                let template = TemplateId::parse(id).map_err(|e| e.to_string())?;
                let present = self
                    .store
                    .versions(&company, &template)
                    .await
                    .map_err(|e| e.to_string())?;
                if present.is_empty() {
                    let (channel, parts) = data::template(id).ok_or("unknown template")?;
                    TemplateStore::put(&*self.store, &company, &template, channel, parts)
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
            if spec.profiles == 0 {
                continue;
            }
            let last = ProfileId::parse(&data::profile_id(spec.profiles - 1))
                .map_err(|e| e.to_string())?;
            let present = self
                .store
                .fetch(
                    &company,
                    std::slice::from_ref(&last),
                    // Whether it exists is all this asks.
                    &ProfileProjection::Keys(Default::default()),
                )
                .await
                .map_err(|e| e.to_string())?;
            if present.is_empty() {
                for chunk in data::profile_chunks(spec, 5_000) {
                    ProfileStore::put(&*self.store, &company, chunk)
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(())
    }

    async fn submit(&self, shape: &Shape, id: &str) -> Result<(), String> {
        let id = RequestId::parse(id).map_err(|e| format!("request id: {e}"))?;
        self.store
            .submit(shape.request(&id))
            .await
            .map(|_| ())
            .map_err(|error| match error {
                // The cause alone, so that failures group by kind.
                artifact_pipeline::Error::Backend { source, .. } => format!("submit: {source}"),
                other => format!("submit: {other}"),
            })
    }

    async fn peak_rss_bytes(&self) -> Option<u64> {
        artifact_pipeline::metrics::process_memory().map(|memory| memory.peak)
    }

    async fn shutdown(&self) {
        let pool = self.pool.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(pool) = pool {
            pool.shutdown().await;
        }
    }
}

/// A running `artifact serve`, reached over HTTP/1.1.
pub struct Http {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    pollers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http").field("base", &self.base).finish()
    }
}

impl Http {
    /// `base` is `http://host:port`; only plain HTTP. Completions are read
    /// by polling each company's response events.
    pub fn new(
        base: &str,
        companies: &[String],
    ) -> Result<(Http, mpsc::UnboundedReceiver<Finished>), String> {
        let base = base.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") {
            return Err(format!(
                "target {base:?}: only http:// targets are supported"
            ));
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(64)
            .build(connector);
        let http = Http {
            base,
            client,
            pollers: Mutex::default(),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let mut pollers = Vec::new();
        for company in companies {
            pollers.push(tokio::spawn(poll_events(
                http.base.clone(),
                http.client.clone(),
                company.clone(),
                tx.clone(),
            )));
        }
        *http.pollers.lock().unwrap_or_else(|e| e.into_inner()) = pollers;
        Ok((http, rx))
    }

    async fn call(
        &self,
        method: hyper::Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Bytes), String> {
        call(&self.client, &self.base, method, path, content_type, body).await
    }
}

async fn call(
    client: &Client<HttpConnector, Full<Bytes>>,
    base: &str,
    method: hyper::Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Result<(u16, Bytes), String> {
    let request = hyper::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("request: {e}"))?;
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("read: {e}"))?
        .to_bytes();
    Ok((status, body))
}

/// Reads a company's response events as they appear.
async fn poll_events(
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    company: String,
    finished: mpsc::UnboundedSender<Finished>,
) {
    let mut after = 0u64;
    loop {
        let path = format!("/v1/companies/{company}/response-events?after={after}&limit=1000");
        let page = call(
            &client,
            &base,
            hyper::Method::GET,
            &path,
            "application/json",
            Vec::new(),
        )
        .await
        .ok()
        .filter(|(status, _)| *status == 200)
        .and_then(|(_, body)| serde_json::from_slice::<EventPage>(&body).ok());
        let mut full = false;
        if let Some(page) = page {
            full = page.events.len() == 1000;
            for SequencedEvent { seq, event } in page.events {
                after = after.max(seq);
                if finished.send(Finished::from(&event)).is_err() {
                    return;
                }
            }
        }
        if !full {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// An error kind for a refused request: the status and the problem's title,
/// so the report says why without one kind per request.
fn rejection(status: u16, reply: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Problem {
        title: String,
        detail: Option<String>,
    }
    match serde_json::from_slice::<Problem>(reply) {
        Ok(Problem {
            title,
            detail: Some(detail),
        }) => format!("rejected {status}: {title}: {detail}"),
        Ok(Problem {
            title,
            detail: None,
        }) => format!("rejected {status}: {title}"),
        Err(_) => format!("rejected {status}"),
    }
}

#[async_trait]
impl Target for Http {
    async fn load(&self, spec: &DataSpec, companies: &[String]) -> Result<(), String> {
        for company in companies {
            for id in data::TEMPLATES {
                let path = format!("/v1/companies/{company}/templates/{id}");
                let (status, _) = self
                    .call(hyper::Method::GET, &path, "application/json", Vec::new())
                    .await?;
                if status == 200 {
                    continue;
                }
                let (channel, parts) = data::template(id).ok_or("unknown template")?;
                let body =
                    serde_json::to_vec(&serde_json::json!({"channel": channel, "parts": parts}))
                        .map_err(|e| e.to_string())?;
                let (status, reply) = self
                    .call(hyper::Method::PUT, &path, "application/json", body)
                    .await?;
                if status != 201 {
                    return Err(format!(
                        "PUT {path}: {status} {}",
                        String::from_utf8_lossy(&reply)
                    ));
                }
            }
            if spec.profiles == 0 {
                continue;
            }
            let last = format!(
                "/v1/companies/{company}/profiles/{}",
                data::profile_id(spec.profiles - 1)
            );
            let (status, _) = self
                .call(hyper::Method::GET, &last, "application/json", Vec::new())
                .await?;
            if status == 200 {
                continue;
            }
            let path = format!("/v1/companies/{company}/profiles:import");
            for chunk in data::profile_chunks(spec, 5_000) {
                let mut body = Vec::new();
                for (id, properties) in chunk {
                    serde_json::to_writer(
                        &mut body,
                        &serde_json::json!({"profile_id": id, "properties": properties}),
                    )
                    .map_err(|e| e.to_string())?;
                    body.push(b'\n');
                }
                let (status, reply) = self
                    .call(hyper::Method::POST, &path, "application/x-ndjson", body)
                    .await?;
                if status != 200 {
                    return Err(format!(
                        "POST {path}: {status} {}",
                        String::from_utf8_lossy(&reply)
                    ));
                }
            }
        }
        Ok(())
    }

    async fn submit(&self, shape: &Shape, id: &str) -> Result<(), String> {
        let (status, reply) = self
            .call(
                hyper::Method::POST,
                "/v1/render-requests",
                "application/json",
                shape.body(id),
            )
            .await?;
        match status {
            202 => Ok(()),
            other => Err(rejection(other, &reply)),
        }
    }

    async fn peak_rss_bytes(&self) -> Option<u64> {
        let (status, body) = self
            .call(hyper::Method::GET, "/metrics", "text/plain", Vec::new())
            .await
            .ok()?;
        if status != 200 {
            return None;
        }
        String::from_utf8_lossy(&body).lines().find_map(|line| {
            line.strip_prefix("artifact_process_peak_resident_memory_bytes ")
                .and_then(|n| n.trim().parse().ok())
        })
    }

    async fn shutdown(&self) {
        for poller in self
            .pollers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            poller.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_plain_http_targets_are_accepted() {
        let error = super::Http::new("https://render.example", &[]).unwrap_err();
        assert!(
            error.contains("only http:// targets are supported"),
            "{error}"
        );
    }

    #[test]
    fn a_refusal_is_reported_with_the_services_reason() {
        let reply = br#"{"type":"t","title":"A field of the body is invalid","status":422,"detail":"needs a tracking domain"}"#;
        assert_eq!(
            super::rejection(422, reply),
            "rejected 422: A field of the body is invalid: needs a tracking domain"
        );
        assert_eq!(super::rejection(502, b"<html>bad gateway"), "rejected 502");
    }
}
