//! `artifact serve`: the HTTP API and workers. On the embedded default the
//! whole service runs in one process (durable queue, stores and workers);
//! with `--queue nats://… --store postgres://…` it is one of many API
//! processes of the scaled-out mode, with or without workers of its own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use artifact_pipeline::Lane;
use artifact_pipeline::adapters::embedded::{EmbeddedOptions, EmbeddedStore};
use artifact_pipeline::adapters::nats::{NatsQueue, NatsSink};
use artifact_pipeline::adapters::redacted_url;
use artifact_pipeline::audit::TrafficAudit;
use artifact_pipeline::canary::{CanarySample, Mirror};
use artifact_pipeline::flags::Flags;
use artifact_pipeline::metrics::Metrics;
use artifact_pipeline::sinks::{DiscardSink, NdjsonSink, OutboxSink};
use artifact_pipeline::worker::{Renderer, WorkerPool, WorkerPorts, WorkerSettings};
use artifact_pipeline::{
    ArtifactSink, ArtifactStore, EngagementLog, MirrorQueue, ProfileStore, RequestQueue,
    ResponseLog, TemplateStore,
};
use artifact_render::RenderLimits;
use artifact_server::{ApiLimits, AppState};
use tracing::info;

use crate::config::{Config, ServiceSettings};
use crate::demo;
use crate::scaled::{Locations, Scaled};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The configuration file: `[tracking]` and `[service]` sections.
    #[arg(long, env = "ARTIFACT_CONFIG")]
    config: Option<PathBuf>,
    /// Where the embedded database (and the default outbox) live
    /// [default: artifact-data].
    #[arg(long, env = "ARTIFACT_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The address the HTTP API listens on [default: 127.0.0.1:8080].
    #[arg(long, env = "ARTIFACT_LISTEN")]
    listen: Option<SocketAddr>,
    /// Render workers [default: two per core]; 0 runs the API alone, in the
    /// scaled-out mode.
    #[arg(long, env = "ARTIFACT_WORKERS")]
    workers: Option<usize>,
    /// Where artifacts go: `store` (the embedded database, or PostgreSQL,
    /// readable through the API), `outbox:DIR` (.json and .eml files),
    /// `ndjson:FILE`, `nats` (the scaled-out mode's artifacts stream) or
    /// `discard` [default: store].
    #[arg(long, env = "ARTIFACT_SINK")]
    sink: Option<String>,
    /// Recipients per batch: the unit of leasing, retry and fairness
    /// [default: 100].
    #[arg(long, env = "ARTIFACT_BATCH_SIZE")]
    batch_size: Option<usize>,
    /// Fetch only the top-level profile keys the batch's template reads
    /// (`true` or `false`) [default: true].
    #[arg(long, env = "ARTIFACT_PROFILE_PROJECTION")]
    profile_projection: Option<bool>,
    /// Audit this fraction of recipients (0 < FRACTION <= 1): their renders
    /// note every read, served at GET /v1/companies/{company}/audit
    /// [default: off].
    #[arg(long, env = "ARTIFACT_AUDIT_SAMPLE")]
    audit_sample: Option<f64>,
    /// Mirror this fraction of every company's recipients to the canary
    /// lanes (`[canary]` in the config file sets per-company shares and the
    /// lanes) [default: 0, off].
    #[arg(long, env = "ARTIFACT_CANARY_SAMPLE")]
    canary_sample: Option<f64>,
    /// Seed a demo company (newsletter and SMS templates, 10,000 profiles)
    /// and print a request to paste.
    #[arg(long)]
    demo: bool,
    #[command(flatten)]
    locations: Locations,
}

/// The settings after flags, environment and file are merged.
#[derive(Debug)]
struct Settings {
    /// `None` on the embedded default.
    scaled: Option<Scaled>,
    data_dir: PathBuf,
    listen: SocketAddr,
    workers: WorkerSettings,
    sink: SinkSpec,
    batch_size: usize,
    canary_sample: Option<f64>,
}

/// Where artifacts go, as `--sink` names it.
#[derive(Debug, PartialEq)]
pub(crate) enum SinkSpec {
    Store,
    Outbox(PathBuf),
    Ndjson(PathBuf),
    Discard,
    /// The scaled-out mode's artifacts stream, for downstream senders.
    Nats,
}

impl SinkSpec {
    pub(crate) fn parse(value: &str) -> Result<Self> {
        let spec = match value.split_once(':') {
            None if value == "store" => SinkSpec::Store,
            None if value == "discard" => SinkSpec::Discard,
            None if value == "nats" => SinkSpec::Nats,
            Some(("outbox", dir)) if !dir.is_empty() => SinkSpec::Outbox(dir.into()),
            Some(("ndjson", file)) if !file.is_empty() => SinkSpec::Ndjson(file.into()),
            _ => {
                bail!(
                    "sink {value:?}: expected `store`, `outbox:DIR`, `ndjson:FILE`, `nats` or \
                     `discard`"
                )
            }
        };
        Ok(spec)
    }
}

impl SinkSpec {
    /// Opens the sink; `store` is `store`, `queue` the scaled-out mode's
    /// broker connection, if any.
    pub(crate) async fn open(
        &self,
        store: Arc<dyn ArtifactSink>,
        queue: Option<&NatsQueue>,
    ) -> Result<Arc<dyn ArtifactSink>> {
        Ok(match self {
            SinkSpec::Store => store,
            SinkSpec::Nats => {
                let Some(queue) = queue else {
                    bail!("--sink nats: the artifacts stream is on the scaled-out mode's --queue");
                };
                Arc::new(NatsSink::new(queue.client().clone(), queue.options()))
            }
            SinkSpec::Outbox(dir) => Arc::new(OutboxSink::open(dir)?),
            SinkSpec::Ndjson(file) => Arc::new(NdjsonSink::open(file)?),
            SinkSpec::Discard => Arc::new(DiscardSink::default()),
        })
    }
}

impl Settings {
    fn merge(args: &Args, file: &ServiceSettings, scaled: Option<Scaled>) -> Result<Self> {
        let workers = args
            .workers
            .or(file.workers)
            .unwrap_or_else(artifact_pipeline::worker::default_workers);
        if workers == 0 && scaled.is_none() {
            bail!(
                "workers: must be at least 1 on the embedded store (0, an API without \
                 workers, is for the scaled-out mode)"
            );
        }
        let batch_size = args
            .batch_size
            .or(file.batch_size)
            .unwrap_or(EmbeddedOptions::default().batch_size);
        if batch_size == 0 {
            bail!("batch_size: must be at least 1");
        }
        Ok(Self {
            scaled,
            data_dir: args
                .data_dir
                .clone()
                .or_else(|| file.data_dir.clone())
                .unwrap_or_else(|| "artifact-data".into()),
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            workers: WorkerSettings {
                workers,
                profile_projection: args
                    .profile_projection
                    .or(file.profile_projection)
                    .unwrap_or(true),
                audit: args
                    .audit_sample
                    .or(file.audit_sample)
                    .map(TrafficAudit::new)
                    .transpose()
                    .map_err(anyhow::Error::msg)?
                    .map(Arc::new),
                mirror: None,
                flags: Arc::default(),
            },
            sink: SinkSpec::parse(
                args.sink
                    .as_deref()
                    .or(file.sink.as_deref())
                    .unwrap_or("store"),
            )?,
            batch_size,
            canary_sample: args.canary_sample,
        })
    }
}

pub fn run(args: &Args) -> Result<()> {
    let env = |name: &str| std::env::var(name).ok();
    let config = Config::load(args.config.as_deref(), env)?;
    let scaled = Scaled::resolve(&args.locations, args.batch_size, &config, env)?;
    let settings = Settings::merge(args, &config.service, scaled)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(serve(settings, config, args.demo))
}

async fn serve(settings: Settings, config: Config, demo: bool) -> Result<()> {
    if demo && config.tracking.is_none() {
        bail!(
            "the demo newsletter tracks its links, so --demo needs a tracking domain and keys: \
             add --config examples/artifact.toml"
        );
    }
    let backend = match &settings.scaled {
        None => Backend::embedded(&settings)?,
        Some(scaled) => Backend::scaled(scaled).await?,
    };
    let (sink, artifacts): (Arc<dyn ArtifactSink>, Option<Arc<dyn ArtifactStore>>) =
        match &settings.sink {
            SinkSpec::Store => (backend.artifacts.clone(), Some(backend.artifacts.clone())),
            other => (
                other
                    .open(backend.artifacts.clone(), backend.nats.as_deref())
                    .await?,
                None,
            ),
        };

    let renderer = Arc::new(Renderer::new(
        backend.templates.clone(),
        config.tracking.clone(),
        1024,
        RenderLimits::default(),
    ));
    let metrics = Arc::new(Metrics::default());
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let address = listener.local_addr()?;

    if demo {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("cannot create data dir {}", settings.data_dir.display()))?;
        let seeded =
            demo::seed(&*backend.templates, &*backend.profiles, &settings.data_dir).await?;
        print_demo(address, &seeded);
    }

    let mut workers = settings.workers.clone();
    workers.flags = Arc::new(Flags::new(config.flags.clone()).map_err(anyhow::Error::msg)?);
    // With the `store` sink, production's artifacts are there already.
    let copies = (settings.sink != SinkSpec::Store)
        .then(|| backend.artifacts.clone() as Arc<dyn ArtifactSink>);
    workers.mirror = canary_mirror(
        &config,
        settings.canary_sample,
        backend.mirror.clone(),
        copies,
        metrics.clone(),
    )?;
    let workers_flags = workers.flags.clone();
    let pool = (workers.workers > 0).then(|| {
        WorkerPool::start(
            workers,
            WorkerPorts {
                queue: backend.queue.clone(),
                profiles: backend.profiles.clone(),
                sink,
                responses: backend.responses.clone(),
            },
            renderer.clone(),
            metrics.clone(),
        )
    });
    let state = AppState {
        queue: backend.queue.clone(),
        profiles: backend.profiles.clone(),
        templates: backend.templates.clone(),
        artifacts,
        responses: backend.responses.clone(),
        engagement: backend.engagement.clone(),
        renderer,
        metrics,
        audit: settings.workers.audit.clone(),
        flags: workers_flags,
        limits: ApiLimits::default(),
    };
    info!(
        %address,
        workers = settings.workers.workers,
        profile_projection = settings.workers.profile_projection,
        sink = ?settings.sink,
        backend = backend.name,
        "serving"
    );
    eprintln!("artifact serve: listening on http://{address}");
    artifact_server::serve(listener, artifact_server::router(state), shutdown_signal()).await?;
    info!("HTTP stopped; finishing in-flight batches");
    if let Some(pool) = pool {
        pool.shutdown().await;
    }
    info!("stopped");
    Ok(())
}

/// The canary mirror production workers feed, when `[canary]` or `sample`
/// (`--canary-sample`) asks for one: jobs go to `queue`, and the sampled
/// recipients' production artifacts to `copies` unless production's sink
/// keeps them where the lanes read.
pub(crate) fn canary_mirror(
    config: &Config,
    sample: Option<f64>,
    queue: Arc<dyn MirrorQueue>,
    copies: Option<Arc<dyn ArtifactSink>>,
    metrics: Arc<Metrics>,
) -> Result<Option<Arc<Mirror>>> {
    let canary = CanarySample {
        fraction: sample.unwrap_or(config.canary.fraction),
        companies: config.canary.companies.clone(),
        clients: config.canary.clients.clone(),
    };
    if canary == CanarySample::default() {
        return Ok(None);
    }
    let lanes = config
        .canary
        .lanes
        .iter()
        .map(|name| {
            Lane::parse(name).ok_or_else(|| {
                anyhow::anyhow!("[canary] lanes: {name:?} is not a lane; give canary or control")
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mirror = Mirror::new(
        canary,
        lanes,
        config.canary.queue_capacity,
        queue,
        copies,
        metrics,
    )
    .map_err(anyhow::Error::msg)?;
    info!(?mirror, "mirroring a sample to the canary lanes");
    Ok(Some(Arc::new(mirror)))
}

/// The ports `serve` runs on: the embedded store, or NATS and PostgreSQL.
struct Backend {
    name: String,
    queue: Arc<dyn RequestQueue>,
    profiles: Arc<dyn ProfileStore>,
    templates: Arc<dyn TemplateStore>,
    artifacts: Arc<dyn ArtifactStore>,
    responses: Arc<dyn ResponseLog>,
    engagement: Arc<dyn EngagementLog>,
    mirror: Arc<dyn MirrorQueue>,
    nats: Option<Arc<NatsQueue>>,
}

impl Backend {
    fn embedded(settings: &Settings) -> Result<Self> {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("cannot create data dir {}", settings.data_dir.display()))?;
        let db = settings.data_dir.join("artifact.db");
        let store = EmbeddedStore::open(
            &db,
            EmbeddedOptions {
                batch_size: settings.batch_size,
                ..EmbeddedOptions::default()
            },
        )
        .with_context(|| format!("cannot open {}", db.display()))?;
        Ok(Self {
            name: format!("embedded {}", db.display()),
            queue: store.clone(),
            profiles: store.clone(),
            templates: store.clone(),
            artifacts: store.clone(),
            responses: store.clone(),
            engagement: store.clone(),
            mirror: store,
            nats: None,
        })
    }

    async fn scaled(scaled: &Scaled) -> Result<Self> {
        let connected = scaled.connect().await?;
        let store = connected.store;
        Ok(Self {
            name: format!(
                "{} + {}",
                redacted_url(&scaled.nats.url),
                redacted_url(&scaled.postgres.url)
            ),
            queue: connected.queue.clone(),
            profiles: store.clone(),
            templates: store.clone(),
            artifacts: store.clone(),
            responses: connected.responses,
            engagement: store.clone(),
            mirror: store,
            nats: Some(connected.queue),
        })
    }
}

pub(crate) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

fn print_demo(address: SocketAddr, seeded: &demo::Seeded) {
    let curl = |file: &Path| {
        format!(
            "curl -s -X POST http://{address}/v1/render-requests \\\n  -H 'content-type: application/json' --data-binary @{}",
            file.display()
        )
    };
    eprintln!(
        "demo: company {:?} with templates {:?} and {} profiles",
        demo::COMPANY,
        seeded.templates,
        seeded.profiles
    );
    eprintln!(
        "\nSchedule the newsletter for 1,000 recipients:\n\n{}\n",
        curl(&seeded.newsletter_request)
    );
    eprintln!(
        "Then follow it:\n\ncurl -s 'http://{address}/v1/render-requests/{}?company_id={}'\n",
        demo::NEWSLETTER_REQUEST_ID,
        demo::COMPANY
    );
    eprintln!("The SMS request:\n\n{}\n", curl(&seeded.sms_request));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinks_are_named_with_their_target() {
        assert_eq!(SinkSpec::parse("store").unwrap(), SinkSpec::Store);
        assert_eq!(SinkSpec::parse("discard").unwrap(), SinkSpec::Discard);
        assert_eq!(
            SinkSpec::parse("outbox:out/mail").unwrap(),
            SinkSpec::Outbox("out/mail".into())
        );
        assert_eq!(
            SinkSpec::parse("ndjson:a.ndjson").unwrap(),
            SinkSpec::Ndjson("a.ndjson".into())
        );
        for bad in ["", "outbox:", "kafka:topic", "Store"] {
            let error = SinkSpec::parse(bad).unwrap_err().to_string();
            assert!(error.contains("expected `store`"), "{bad}: {error}");
        }
    }

    #[test]
    fn flags_win_over_the_file_and_zero_workers_is_refused() {
        let file = ServiceSettings {
            listen: Some("127.0.0.1:9000".parse().unwrap()),
            workers: Some(3),
            sink: Some("discard".into()),
            ..Default::default()
        };
        let args = Args {
            config: None,
            data_dir: None,
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            workers: None,
            sink: None,
            batch_size: None,
            profile_projection: None,
            audit_sample: None,
            canary_sample: None,
            demo: false,
            locations: Locations::default(),
        };
        let settings = Settings::merge(&args, &file, None).unwrap();
        assert_eq!(settings.listen.port(), 9100);
        assert_eq!(settings.workers.workers, 3);
        assert!(settings.workers.profile_projection && settings.workers.audit.is_none());
        assert_eq!(settings.sink, SinkSpec::Discard);
        assert_eq!(settings.batch_size, 100);
        assert_eq!(settings.data_dir, PathBuf::from("artifact-data"));

        let off_in_file = ServiceSettings {
            profile_projection: Some(false),
            ..file.clone()
        };
        let settings = Settings::merge(&args, &off_in_file, None).unwrap();
        assert!(!settings.workers.profile_projection);
        let on_by_flag = Args {
            profile_projection: Some(true),
            ..args.clone()
        };
        let settings = Settings::merge(&on_by_flag, &off_in_file, None).unwrap();
        assert!(settings.workers.profile_projection);

        let zero = Args {
            workers: Some(0),
            ..args.clone()
        };
        let error = Settings::merge(&zero, &file, None).unwrap_err().to_string();
        assert!(error.contains("workers"), "{error}");

        let audited = Args {
            audit_sample: Some(0.01),
            ..args.clone()
        };
        let settings = Settings::merge(&audited, &file, None).unwrap();
        assert!(settings.workers.audit.is_some());
        let too_much = Args {
            audit_sample: Some(2.0),
            ..args
        };
        let error = Settings::merge(&too_much, &file, None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("audit sample 2"), "{error}");
    }
}
