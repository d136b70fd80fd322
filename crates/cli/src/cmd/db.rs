//! `artifact db migrate`: brings the scaled-out mode's PostgreSQL schema to
//! this build's version. Every process also does it when it connects (one
//! at a time, under a lock); the command lets a deploy do it first.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use artifact_pipeline::adapters::postgres::PostgresStore;
use artifact_pipeline::adapters::redacted_url;

use crate::config::Config;
use crate::scaled::postgres_options;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Run the migrations the database lacks.
    Migrate {
        /// The configuration file (`[service] store`, `[postgres]`).
        #[arg(long, env = "ARTIFACT_CONFIG")]
        config: Option<PathBuf>,
        /// `postgres://user@host/database`.
        #[arg(long, env = "ARTIFACT_STORE")]
        store: Option<String>,
    },
}

pub fn run(args: &Args) -> Result<()> {
    let Command::Migrate { config, store } = &args.command;
    let env = |name: &str| std::env::var(name).ok();
    let config = Config::load(config.as_deref(), env)?;
    let Some(url) = store.clone().or(config.service.store.clone()) else {
        bail!("give the database: --store postgres://user@host/database (or ARTIFACT_STORE)");
    };
    let options = postgres_options(url, &config, &env)?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(async {
            let store = PostgresStore::connect(&options)
                .await
                .with_context(|| format!("cannot migrate {}", redacted_url(&options.url)))?;
            let schema = options.schema.as_deref().unwrap_or("public");
            match store.migrated() {
                (before, after) if before == after => {
                    println!("schema {schema} is at version {after}: nothing to do")
                }
                (before, after) => {
                    println!("schema {schema} migrated from version {before} to {after}")
                }
            }
            Ok(())
        })
}
