//! `artifact nats setup`: creates the scaled-out mode's streams and
//! consumers, or brings them to the configured settings. Every process
//! also does it when it connects; the command lets a deploy do it first and
//! shows what the settings are.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use artifact_pipeline::adapters::nats::{self, ARTIFACT_RETENTION, RESPONSE_RETENTION};

use crate::config::Config;
use crate::scaled::nats_options;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Create or update the streams and consumers.
    Setup {
        /// The configuration file (`[service] queue`, `[nats]`).
        #[arg(long, env = "ARTIFACT_CONFIG")]
        config: Option<PathBuf>,
        /// `nats://host:4222`.
        #[arg(long, env = "ARTIFACT_QUEUE")]
        queue: Option<String>,
    },
}

pub fn run(args: &Args) -> Result<()> {
    let Command::Setup { config, queue } = &args.command;
    let env = |name: &str| std::env::var(name).ok();
    let config = Config::load(config.as_deref(), env)?;
    let Some(url) = queue.clone().or(config.service.queue.clone()) else {
        bail!("give the broker: --queue nats://host:4222 (or ARTIFACT_QUEUE)");
    };
    let options = nats_options(url, None, &config, &env)?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(async {
            let client = nats::connect(&options.url).await?;
            let consumers = nats::setup(&client, &options).await?;
            println!(
                "stream {} (work queue, file storage, {} replica(s), duplicate window {:?})",
                options.stream_name(),
                options.replicas,
                options.duplicate_window
            );
            for consumer in consumers.iter().flatten() {
                let info = consumer.cached_info();
                println!(
                    "  consumer {} on {} (ack_wait {:?}, explicit acks)",
                    info.name, info.config.filter_subject, info.config.ack_wait
                );
            }
            println!(
                "stream {} (response events, kept {} days)",
                options.responses_stream_name(),
                RESPONSE_RETENTION.as_secs() / 86_400
            );
            println!(
                "stream {} (artifacts for senders, `--sink nats`, kept {} hours)",
                options.artifacts_stream_name(),
                ARTIFACT_RETENTION.as_secs() / 3_600
            );
            println!(
                "durability: the server writes to disk every `sync_interval` (2 min by \
                 default); set `jetstream {{ sync_interval: always }}` on a single server, or \
                 run 3 replicas, so an acknowledged request survives a power loss"
            );
            Ok(())
        })
}
