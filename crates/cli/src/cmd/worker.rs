//! `artifact worker`, two kinds:
//!
//! - `--queue nats://… --store postgres://…`: production workers of the
//!   scaled-out mode, stateless: start as many processes, on as many
//!   machines, as the load needs.
//! - `--lane canary|control`: renders the recipients production mirrors,
//!   with this process's configuration and template versions, into the same
//!   store (the embedded one of `--data-dir`, or the scaled-out mode's
//!   PostgreSQL), beside production's artifacts. It may be another build;
//!   it never sends anything.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use artifact_pipeline::adapters::embedded::{EmbeddedOptions, EmbeddedStore};
use artifact_pipeline::adapters::redacted_url;
use artifact_pipeline::canary::{LanePorts, LaneWorker, parse_template_version};
use artifact_pipeline::flags::Flags;
use artifact_pipeline::metrics::Metrics;
use artifact_pipeline::worker::{Renderer, WorkerPool, WorkerPorts, WorkerSettings};
use artifact_pipeline::{ArtifactStore, Lane, MirrorQueue, ProfileStore, TemplateStore};
use artifact_render::RenderLimits;
use tokio::sync::watch;
use tracing::info;

use crate::cmd::serve::{SinkSpec, canary_mirror};
use crate::config::Config;
use crate::scaled::{Locations, Scaled};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The lane this worker renders: `canary` (the candidate) or `control`
    /// (a second production copy, to tell noise from regressions), from the
    /// embedded store; `production` (the default) from `--queue`.
    #[arg(long, default_value = "production")]
    lane: String,
    #[command(flatten)]
    locations: Locations,
    /// Where production artifacts go: `store` (PostgreSQL), `nats` (the
    /// artifacts stream), `outbox:DIR`, `ndjson:FILE` or `discard`
    /// [default: store].
    #[arg(long, env = "ARTIFACT_SINK")]
    sink: Option<String>,
    /// Fetch only the top-level profile keys a batch's template reads
    /// [default: true].
    #[arg(long, env = "ARTIFACT_PROFILE_PROJECTION")]
    profile_projection: Option<bool>,
    /// Production workers: mirror this fraction of every company's
    /// recipients to the canary lanes (`[canary]` in the config file sets
    /// the rest) [default: 0, off].
    #[arg(long, env = "ARTIFACT_CANARY_SAMPLE")]
    canary_sample: Option<f64>,
    /// The data dir of the `artifact serve` whose traffic is mirrored.
    #[arg(long, env = "ARTIFACT_DATA_DIR", default_value = "artifact-data")]
    data_dir: PathBuf,
    /// The candidate's configuration file (its `[tracking]`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Render this stored version of a template instead of the one the
    /// request names: `spring_sale=4`. May be given more than once.
    #[arg(long = "template-version", value_name = "TEMPLATE_ID=VERSION")]
    template_versions: Vec<String>,
    /// Workers in this process [default: two per core for production, 1
    /// for a lane].
    #[arg(long, env = "ARTIFACT_WORKERS")]
    workers: Option<usize>,
    /// Serve `/metrics` (recipients by outcome) and `/healthz` here, e.g.
    /// 127.0.0.1:9101.
    #[arg(long)]
    metrics_listen: Option<std::net::SocketAddr>,
}

/// The store of the `artifact serve` running on `data_dir`, attached: its
/// schema is never migrated and its queue not loaded.
pub(crate) fn open_attached(data_dir: &Path) -> Result<Arc<EmbeddedStore>> {
    let db = data_dir.join("artifact.db");
    if !db.exists() {
        bail!(
            "no store at {}: give the data dir of the `artifact serve` whose traffic is mirrored",
            db.display()
        );
    }
    EmbeddedStore::open(
        &db,
        EmbeddedOptions {
            attach: true,
            ..EmbeddedOptions::default()
        },
    )
    .with_context(|| format!("cannot open {}", db.display()))
}

/// What lane workers and `canary verify` read and write: the embedded
/// store of the `artifact serve` running on a data dir, or the scaled-out
/// mode's PostgreSQL.
pub(crate) struct LaneStore {
    pub mirror: Arc<dyn MirrorQueue>,
    pub profiles: Arc<dyn ProfileStore>,
    pub templates: Arc<dyn TemplateStore>,
    pub artifacts: Arc<dyn ArtifactStore>,
}

impl LaneStore {
    pub(crate) async fn open(data_dir: &Path, scaled: Option<&Scaled>) -> Result<Self> {
        Ok(match scaled {
            Some(scaled) => Self::on(scaled.store().await?),
            None => Self::on(open_attached(data_dir)?),
        })
    }

    fn on<S>(store: Arc<S>) -> Self
    where
        S: MirrorQueue + ProfileStore + TemplateStore + ArtifactStore,
    {
        Self {
            mirror: store.clone(),
            profiles: store.clone(),
            templates: store.clone(),
            artifacts: store,
        }
    }
}

pub fn run(args: &Args) -> Result<()> {
    let env = |name: &str| std::env::var(name).ok();
    let config = Config::load(args.config.as_deref(), env)?;
    let scaled = Scaled::resolve(&args.locations, None, &config, env)?;
    let lane = match Lane::parse(&args.lane) {
        Some(Lane::Production) => {
            let Some(scaled) = scaled else {
                bail!(
                    "production workers need the scaled-out mode's --queue and --store; on \
                     the embedded store they run inside `artifact serve` (or give --lane \
                     canary|control)"
                );
            };
            return run_production(args, config, scaled);
        }
        Some(lane) => lane,
        None => bail!("--lane {:?}: give production, canary or control", args.lane),
    };
    let lane_workers = args.workers.unwrap_or(1);
    if lane_workers == 0 {
        bail!("--workers: must be at least 1");
    }
    let versions: HashMap<_, _> = args
        .template_versions
        .iter()
        .map(|spec| parse_template_version(spec))
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(async move {
            let store = LaneStore::open(&args.data_dir, scaled.as_ref()).await?;
            let renderer = Arc::new(
                Renderer::new(
                    store.templates.clone(),
                    config.tracking,
                    64,
                    RenderLimits::default(),
                )
                .with_template_versions(versions.clone()),
            );
            let metrics = Arc::new(Metrics::default());
            let (stop, stopped) = watch::channel(false);
            let mut workers = tokio::task::JoinSet::new();
            for _ in 0..lane_workers {
                workers.spawn(
                    LaneWorker {
                        lane,
                        ports: LanePorts {
                            queue: store.mirror.clone(),
                            profiles: store.profiles.clone(),
                            store: store.artifacts.clone(),
                        },
                        renderer: renderer.clone(),
                        metrics: metrics.clone(),
                    }
                    .run(stopped.clone()),
                );
            }
            info!(
                lane = lane.as_str(),
                workers = lane_workers,
                ?versions,
                "lane worker running"
            );
            serve_metrics(args.metrics_listen, metrics).await?;
            let _ = stop.send(true);
            while workers.join_next().await.is_some() {}
            info!("stopped");
            Ok(())
        })
}

/// Production workers of the scaled-out mode, until SIGINT or SIGTERM; the
/// batches in flight then finish and are recorded.
fn run_production(args: &Args, config: Config, scaled: Scaled) -> Result<()> {
    if !args.template_versions.is_empty() {
        bail!("--template-version: production renders the versions requests name");
    }
    let workers = args
        .workers
        .unwrap_or_else(artifact_pipeline::worker::default_workers);
    if workers == 0 {
        bail!("--workers: must be at least 1");
    }
    let sink = SinkSpec::parse(
        args.sink
            .as_deref()
            .or(config.service.sink.as_deref())
            .unwrap_or("store"),
    )?;
    let flags = Arc::new(Flags::new(config.flags.clone()).map_err(anyhow::Error::msg)?);
    let mut settings = WorkerSettings {
        workers,
        profile_projection: args
            .profile_projection
            .or(config.service.profile_projection)
            .unwrap_or(true),
        audit: None,
        mirror: None,
        flags,
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(async move {
            let connected = scaled.connect().await?;
            let copies = (sink != SinkSpec::Store)
                .then(|| connected.store.clone() as Arc<dyn artifact_pipeline::ArtifactSink>);
            let sink = sink
                .open(connected.store.clone(), Some(&connected.queue))
                .await?;
            let metrics = Arc::new(Metrics::default());
            settings.mirror = canary_mirror(
                &config,
                args.canary_sample,
                connected.store.clone(),
                copies,
                metrics.clone(),
            )?;
            let renderer = Arc::new(Renderer::new(
                connected.store.clone(),
                config.tracking,
                1024,
                RenderLimits::default(),
            ));
            let pool = WorkerPool::start(
                settings,
                WorkerPorts {
                    queue: connected.queue,
                    profiles: connected.store.clone(),
                    sink,
                    responses: connected.responses,
                },
                renderer,
                metrics.clone(),
            );
            info!(
                workers,
                queue = %redacted_url(&scaled.nats.url),
                store = %redacted_url(&scaled.postgres.url),
                "production workers running"
            );
            serve_metrics(args.metrics_listen, metrics).await?;
            info!("stopping; finishing in-flight batches");
            pool.shutdown().await;
            info!("stopped");
            Ok(())
        })
}

/// Serves `/metrics` at `address`, if given, until SIGINT or SIGTERM.
async fn serve_metrics(address: Option<std::net::SocketAddr>, metrics: Arc<Metrics>) -> Result<()> {
    match address {
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address}"))?;
            info!(address = %listener.local_addr()?, "serving /metrics");
            artifact_server::serve(
                listener,
                artifact_server::lane_router(metrics),
                super::serve::shutdown_signal(),
            )
            .await?;
        }
        None => super::serve::shutdown_signal().await,
    }
    Ok(())
}
