//! The scaled-out mode's settings: the queue on NATS JetStream and the
//! stores on PostgreSQL, shared by `serve`, `worker`, `db migrate` and
//! `nats setup`.
//!
//! Each setting comes from a flag, else an environment variable, else the
//! config file:
//!
//! ```toml
//! [service]
//! queue = "nats://127.0.0.1:4222"          # --queue, ARTIFACT_QUEUE
//! store = "postgres://app@db/artifact"     # --store, ARTIFACT_STORE
//! batch_size = 100                         # --batch-size, ARTIFACT_BATCH_SIZE
//!
//! [nats]
//! name = "artifact"          # ARTIFACT_NATS_NAME: stream, subjects, consumers
//! sms_batch_size = 1000      # ARTIFACT_NATS_SMS_BATCH_SIZE
//! max_attempts = 5           # ARTIFACT_NATS_MAX_ATTEMPTS
//! retry_backoff = "1s"       # ARTIFACT_NATS_RETRY_BACKOFF, doubles per attempt
//! lease_timeout = "30s"      # ARTIFACT_NATS_LEASE_TIMEOUT: the consumers' ack_wait
//! replicas = 1               # ARTIFACT_NATS_REPLICAS: 3 in a cluster
//! duplicate_window = "10m"   # ARTIFACT_NATS_DUPLICATE_WINDOW
//!
//! [postgres]
//! schema = "public"          # ARTIFACT_POSTGRES_SCHEMA
//! max_connections = 16       # ARTIFACT_POSTGRES_MAX_CONNECTIONS, per process
//! ```

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use artifact_loadgen::rate::parse_duration;
use artifact_pipeline::adapters::nats::{NatsOptions, NatsQueue, NatsResponses};
use artifact_pipeline::adapters::postgres::{PostgresOptions, PostgresStore};
use artifact_pipeline::adapters::redacted_url;

use crate::config::Config;

/// Where the scaled-out mode's queue and store are, and how they are used.
#[derive(Debug, Clone)]
pub struct Scaled {
    pub nats: NatsOptions,
    pub postgres: PostgresOptions,
}

/// The connected ports of the scaled-out mode.
#[derive(Debug, Clone)]
pub struct Connected {
    pub queue: Arc<NatsQueue>,
    pub store: Arc<PostgresStore>,
    pub responses: Arc<NatsResponses>,
}

/// The flags every scaled-out command takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Locations {
    /// The scaled-out mode's queue, `nats://host:4222`; with `--store`.
    #[arg(long, env = "ARTIFACT_QUEUE")]
    pub queue: Option<String>,
    /// The scaled-out mode's store, `postgres://user@host/db`; with
    /// `--queue`.
    #[arg(long, env = "ARTIFACT_STORE")]
    pub store: Option<String>,
}

impl Scaled {
    /// The scaled-out settings, or `None` for the embedded default (no
    /// queue and no store given anywhere).
    pub fn resolve(
        locations: &Locations,
        batch_size: Option<usize>,
        config: &Config,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>> {
        let queue = locations.queue.clone().or(config.service.queue.clone());
        let store = locations.store.clone().or(config.service.store.clone());
        let (queue, store) = match (queue, store) {
            (None, None) => return Ok(None),
            (Some(queue), Some(store)) => (queue, store),
            (Some(_), None) => {
                bail!("--queue needs --store: the scaled-out mode keeps its data in PostgreSQL")
            }
            (None, Some(_)) => {
                bail!("--store needs --queue: the scaled-out mode queues on NATS")
            }
        };
        Ok(Some(Self {
            nats: nats_options(queue, batch_size, config, &env)?,
            postgres: postgres_options(store, config, &env)?,
        }))
    }

    /// The store alone (migrated).
    pub async fn store(&self) -> Result<Arc<PostgresStore>> {
        PostgresStore::connect(&self.postgres)
            .await
            .with_context(|| {
                format!(
                    "cannot open the store at {}",
                    redacted_url(&self.postgres.url)
                )
            })
    }

    /// The queue and stores, set up: schema migrated, streams and
    /// consumers created or updated.
    pub async fn connect(&self) -> Result<Connected> {
        let store = self.store().await?;
        let queue = NatsQueue::connect(self.nats.clone(), store.clone())
            .await
            .with_context(|| {
                format!("cannot open the queue at {}", redacted_url(&self.nats.url))
            })?;
        let responses = NatsResponses::new(queue.client().clone(), &self.nats, store.clone());
        Ok(Connected {
            queue: Arc::new(queue),
            store,
            responses: Arc::new(responses),
        })
    }
}

pub(crate) fn nats_options(
    url: String,
    batch_size: Option<usize>,
    config: &Config,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<NatsOptions> {
    if !(url.starts_with("nats://") || url.starts_with("tls://")) {
        bail!("queue {:?}: expected nats://host:port", redacted_url(&url));
    }
    let file = &config.nats;
    let defaults = NatsOptions::default();
    let options = NatsOptions {
        url,
        name: setting(env, "ARTIFACT_NATS_NAME", file.name.clone(), Ok)?.unwrap_or(defaults.name),
        batch_size: batch_size
            .or(config.service.batch_size)
            .unwrap_or(defaults.batch_size),
        sms_batch_size: setting(
            env,
            "ARTIFACT_NATS_SMS_BATCH_SIZE",
            file.sms_batch_size,
            parse,
        )?
        .unwrap_or(defaults.sms_batch_size),
        max_attempts: setting(env, "ARTIFACT_NATS_MAX_ATTEMPTS", file.max_attempts, parse)?
            .unwrap_or(defaults.max_attempts),
        retry_backoff: duration(
            env,
            "ARTIFACT_NATS_RETRY_BACKOFF",
            &file.retry_backoff,
            "retry_backoff",
        )?
        .unwrap_or(defaults.retry_backoff),
        lease_timeout: duration(
            env,
            "ARTIFACT_NATS_LEASE_TIMEOUT",
            &file.lease_timeout,
            "lease_timeout",
        )?
        .unwrap_or(defaults.lease_timeout),
        replicas: setting(env, "ARTIFACT_NATS_REPLICAS", file.replicas, parse)?
            .unwrap_or(defaults.replicas),
        duplicate_window: duration(
            env,
            "ARTIFACT_NATS_DUPLICATE_WINDOW",
            &file.duplicate_window,
            "duplicate_window",
        )?
        .unwrap_or(defaults.duplicate_window),
    };
    options.check().map_err(|e| anyhow!("[nats]: {e}"))?;
    Ok(options)
}

pub(crate) fn postgres_options(
    url: String,
    config: &Config,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<PostgresOptions> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        bail!(
            "store {:?}: expected postgres://user@host/database",
            redacted_url(&url)
        );
    }
    let file = &config.postgres;
    let max_connections = setting(
        env,
        "ARTIFACT_POSTGRES_MAX_CONNECTIONS",
        file.max_connections,
        parse,
    )?
    .unwrap_or(16);
    if max_connections == 0 {
        bail!("[postgres] max_connections: must be at least 1");
    }
    Ok(PostgresOptions {
        url,
        schema: setting(env, "ARTIFACT_POSTGRES_SCHEMA", file.schema.clone(), Ok)?,
        max_connections,
    })
}

/// A setting from the environment (parsed), else from the file.
fn setting<T>(
    env: &impl Fn(&str) -> Option<String>,
    var: &str,
    from_file: Option<T>,
    parse: impl Fn(String) -> Result<T>,
) -> Result<Option<T>> {
    match env(var) {
        Some(text) => parse(text).map(Some).with_context(|| var.to_owned()),
        None => Ok(from_file),
    }
}

fn parse<T: FromStr>(text: String) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    text.trim()
        .parse()
        .map_err(|e| anyhow!("{text:?} is not valid: {e}"))
}

fn duration(
    env: &impl Fn(&str) -> Option<String>,
    var: &str,
    from_file: &Option<String>,
    key: &str,
) -> Result<Option<Duration>> {
    let text = setting(env, var, from_file.clone(), Ok)?;
    text.map(|text| {
        parse_duration(&text).map_err(|e| anyhow!("{key} {text:?}: {e} (write it like 30s or 10m)"))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(toml: &str) -> Config {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), toml).unwrap();
        Config::load(Some(file.path()), |_| None).unwrap()
    }

    fn locations(queue: Option<&str>, store: Option<&str>) -> Locations {
        Locations {
            queue: queue.map(str::to_owned),
            store: store.map(str::to_owned),
        }
    }

    #[test]
    fn the_embedded_default_needs_neither_and_one_alone_is_refused() {
        let empty = Config::default();
        let none = |_: &str| None;
        assert!(
            Scaled::resolve(&locations(None, None), None, &empty, none)
                .unwrap()
                .is_none()
        );
        let error = Scaled::resolve(&locations(Some("nats://h:4222"), None), None, &empty, none)
            .unwrap_err();
        assert!(
            error.to_string().starts_with("--queue needs --store"),
            "{error}"
        );
        let error = Scaled::resolve(
            &locations(None, Some("postgres://h/db")),
            None,
            &empty,
            none,
        )
        .unwrap_err();
        assert!(
            error.to_string().starts_with("--store needs --queue"),
            "{error}"
        );
        let error = Scaled::resolve(
            &locations(Some("http://h"), Some("postgres://h/db")),
            None,
            &empty,
            none,
        )
        .unwrap_err();
        assert!(error.to_string().contains("expected nats://"), "{error}");
        let error = Scaled::resolve(
            &locations(Some("nats://h"), Some("mysql://app:s3cret@h/db")),
            None,
            &empty,
            none,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "store \"mysql://app:***@h/db\": expected postgres://user@host/database",
            "named, with its password hidden"
        );
    }

    #[test]
    fn the_environment_wins_over_the_file_and_flags_over_both() {
        let config = config(
            r#"
            [service]
            queue = "nats://file:4222"
            store = "postgres://file/db"
            batch_size = 50
            [nats]
            name = "fromfile"
            lease_timeout = "45s"
            max_attempts = 7
            [postgres]
            schema = "fromfile"
            max_connections = 4
            "#,
        );
        let vars: HashMap<&str, &str> = HashMap::from([
            ("ARTIFACT_NATS_LEASE_TIMEOUT", "2m"),
            ("ARTIFACT_POSTGRES_MAX_CONNECTIONS", "9"),
        ]);
        let env = |name: &str| vars.get(name).map(|v| v.to_string());
        let scaled = Scaled::resolve(&locations(None, None), None, &config, env)
            .unwrap()
            .unwrap();
        assert_eq!(scaled.nats.url, "nats://file:4222");
        assert_eq!(scaled.nats.name, "fromfile");
        assert_eq!(scaled.nats.batch_size, 50);
        assert_eq!(scaled.nats.max_attempts, 7);
        assert_eq!(scaled.nats.lease_timeout, Duration::from_secs(120));
        assert_eq!(scaled.postgres.schema.as_deref(), Some("fromfile"));
        assert_eq!(scaled.postgres.max_connections, 9);

        let flags = locations(Some("nats://flag:4222"), Some("postgres://flag/db"));
        let scaled = Scaled::resolve(&flags, Some(10), &config, env)
            .unwrap()
            .unwrap();
        assert_eq!(scaled.nats.url, "nats://flag:4222");
        assert_eq!(scaled.postgres.url, "postgres://flag/db");
        assert_eq!(scaled.nats.batch_size, 10);
    }

    #[test]
    fn bad_settings_name_the_setting() {
        let config = config(
            r#"
            [service]
            queue = "nats://h:4222"
            store = "postgres://h/db"
            [nats]
            lease_timeout = "soon"
            "#,
        );
        let error = Scaled::resolve(&locations(None, None), None, &config, |_| None).unwrap_err();
        assert!(
            error.to_string().starts_with("lease_timeout \"soon\""),
            "{error}"
        );

        let env = |name: &str| (name == "ARTIFACT_NATS_MAX_ATTEMPTS").then(|| "many".to_owned());
        let config =
            self::config("[service]\nqueue = \"nats://h:4222\"\nstore = \"postgres://h/db\"\n");
        let error = Scaled::resolve(&locations(None, None), None, &config, env).unwrap_err();
        assert!(
            format!("{error:#}").starts_with("ARTIFACT_NATS_MAX_ATTEMPTS"),
            "{error:#}"
        );

        let env = |name: &str| (name == "ARTIFACT_NATS_NAME").then(|| "Has.Dots".to_owned());
        let error = Scaled::resolve(&locations(None, None), None, &config, env).unwrap_err();
        assert!(
            error.to_string().contains("[nats]: NATS name \"Has.Dots\""),
            "{error}"
        );
    }
}
