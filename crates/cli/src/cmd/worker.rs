//! `artifact worker --lane canary|control`: renders the recipients
//! production mirrors, with this process's configuration and template
//! versions, into the same store, beside production's artifacts. It may be
//! another build; it never sends anything.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use artifact_pipeline::Lane;
use artifact_pipeline::adapters::embedded::{EmbeddedOptions, EmbeddedStore};
use artifact_pipeline::canary::{LanePorts, LaneWorker, parse_template_version};
use artifact_pipeline::metrics::Metrics;
use artifact_pipeline::worker::Renderer;
use artifact_render::RenderLimits;
use tokio::sync::watch;
use tracing::info;

use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The lane this worker renders: `canary` (the candidate) or `control`
    /// (a second production copy, to tell noise from regressions).
    #[arg(long)]
    lane: String,
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
    /// Lane workers in this process.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Serve `/metrics` (the lane's recipients by outcome) and `/healthz`
    /// here, e.g. 127.0.0.1:9101.
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

pub fn run(args: &Args) -> Result<()> {
    let lane = match Lane::parse(&args.lane) {
        Some(lane @ (Lane::Canary | Lane::Control)) => lane,
        Some(Lane::Production) => bail!(
            "--lane production: production workers run inside `artifact serve`; \
             `artifact worker` runs the canary and control lanes"
        ),
        None => bail!("--lane {:?}: give canary or control", args.lane),
    };
    if args.workers == 0 {
        bail!("--workers: must be at least 1");
    }
    let versions: HashMap<_, _> = args
        .template_versions
        .iter()
        .map(|spec| parse_template_version(spec))
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    let config = Config::load(args.config.as_deref(), |name| std::env::var(name).ok())?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(async move {
            let store = open_attached(&args.data_dir)?;
            let renderer = Arc::new(
                Renderer::new(store.clone(), config.tracking, 64, RenderLimits::default())
                    .with_template_versions(versions.clone()),
            );
            let metrics = Arc::new(Metrics::default());
            let (stop, stopped) = watch::channel(false);
            let mut workers = tokio::task::JoinSet::new();
            for _ in 0..args.workers {
                workers.spawn(
                    LaneWorker {
                        lane,
                        ports: LanePorts {
                            queue: store.clone(),
                            profiles: store.clone(),
                            store: store.clone(),
                        },
                        renderer: renderer.clone(),
                        metrics: metrics.clone(),
                    }
                    .run(stopped.clone()),
                );
            }
            info!(
                lane = lane.as_str(),
                workers = args.workers,
                ?versions,
                "lane worker running"
            );
            match args.metrics_listen {
                Some(address) => {
                    let listener = tokio::net::TcpListener::bind(address)
                        .await
                        .with_context(|| format!("cannot listen on {address}"))?;
                    info!(address = %listener.local_addr()?, "serving /metrics");
                    artifact_server::serve(
                        listener,
                        artifact_server::lane_router(metrics.clone()),
                        super::serve::shutdown_signal(),
                    )
                    .await?;
                }
                None => super::serve::shutdown_signal().await,
            }
            let _ = stop.send(true);
            while workers.join_next().await.is_some() {}
            info!("stopped");
            Ok(())
        })
}
