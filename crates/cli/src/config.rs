//! The renderer's configuration: a TOML file, overridden by environment
//! variables. `artifact render --config` reads the same file the service
//! does, so a render on the command line tracks links exactly as the
//! service would.
//!
//! ```toml
//! [tracking]
//! domain = "t.shop.example"
//! unsubscribe_mailto = "unsubscribe@shop.example"
//!
//! [[tracking.keys]]          # the first key signs; all of them verify
//! id = "k2"
//! secret = "…at least 32 bytes…"
//! ```
//!
//! Environment variables win over the file: `ARTIFACT_TRACKING_DOMAIN`,
//! `ARTIFACT_TRACKING_KEYS` (`k2=secret,k1=older-secret`, the first signs)
//! and `ARTIFACT_UNSUBSCRIBE_MAILTO`, so secrets need not sit in a file.
//!
//! `artifact serve` also reads a `[service]` section; its settings are
//! flags of `serve` too, with their own environment variables (see
//! `cmd/serve.rs`), and a flag or variable wins over the file.
//!
//! ```toml
//! [service]
//! listen = "127.0.0.1:8080"
//! data_dir = "artifact-data"
//! workers = 2
//! sink = "store"             # or "outbox:DIR", "ndjson:FILE", "discard"
//! batch_size = 100
//! profile_projection = true  # fetch only the profile keys a template reads
//! audit_sample = 0.01        # audit 1% of recipients (default: off)
//!
//! [canary]                   # mirror a sample of production to a canary
//! fraction = 0.01            # of every company's recipients
//! lanes = ["canary"]         # add "control" for a second production copy
//! queue_capacity = 10000     # jobs waiting per lane; more are skipped
//! [canary.companies]
//! acme = 0.05
//!
//! [flags.profile_projection] # a rollout flag, changeable at /v1/flags
//! percent = 5
//! key = "company"            # or "message", "recipient"
//! ```
//!
//! The scaled-out mode (see `scaled.rs`) reads `queue` and `store` from
//! `[service]`, and the `[nats]` and `[postgres]` sections.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use artifact_render::finish::tracking::{SigningKey, TrackingConfig};
use artifact_render::request::EmailAddress;
use serde::Deserialize;

pub const DOMAIN_VAR: &str = "ARTIFACT_TRACKING_DOMAIN";
pub const KEYS_VAR: &str = "ARTIFACT_TRACKING_KEYS";
pub const MAILTO_VAR: &str = "ARTIFACT_UNSUBSCRIBE_MAILTO";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    tracking: TrackingFile,
    #[serde(default)]
    service: ServiceSettings,
    #[serde(default)]
    canary: CanarySettings,
    #[serde(default)]
    flags: std::collections::BTreeMap<String, artifact_pipeline::flags::Flag>,
    #[serde(default)]
    nats: NatsSection,
    #[serde(default)]
    postgres: PostgresSection,
}

/// The `[nats]` section: how the scaled-out mode's queue uses the broker.
/// Durations are written `30s`, `10m`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSection {
    pub name: Option<String>,
    pub sms_batch_size: Option<usize>,
    pub max_attempts: Option<u32>,
    pub retry_backoff: Option<String>,
    pub lease_timeout: Option<String>,
    pub replicas: Option<usize>,
    pub duplicate_window: Option<String>,
}

/// The `[postgres]` section: the scaled-out mode's database.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSection {
    pub schema: Option<String>,
    pub max_connections: Option<usize>,
}

/// The `[canary]` section: which share of production `serve` mirrors, to
/// which lanes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanarySettings {
    /// The share of every company's recipients mirrored.
    #[serde(default)]
    pub fraction: f64,
    /// Shares for single companies, by id; they win over `fraction`.
    #[serde(default)]
    pub companies: std::collections::HashMap<String, f64>,
    /// Shares for single clients, by id; a company's share wins over them.
    #[serde(default)]
    pub clients: std::collections::HashMap<String, f64>,
    /// `canary`, and `control` when a second production copy runs to tell
    /// noise from regressions.
    #[serde(default = "default_lanes")]
    pub lanes: Vec<String>,
    /// Jobs that may wait per lane; past it, mirroring is skipped and counted.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
}

fn default_lanes() -> Vec<String> {
    vec!["canary".into()]
}

fn default_queue_capacity() -> usize {
    10_000
}

impl Default for CanarySettings {
    fn default() -> Self {
        Self {
            fraction: 0.0,
            companies: Default::default(),
            clients: Default::default(),
            lanes: default_lanes(),
            queue_capacity: default_queue_capacity(),
        }
    }
}

/// The `[service]` section: settings of `artifact serve`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    pub listen: Option<std::net::SocketAddr>,
    pub data_dir: Option<std::path::PathBuf>,
    pub workers: Option<usize>,
    pub sink: Option<String>,
    pub batch_size: Option<usize>,
    pub profile_projection: Option<bool>,
    pub audit_sample: Option<f64>,
    /// `nats://…`: the scaled-out mode's queue.
    pub queue: Option<String>,
    /// `postgres://…`: the scaled-out mode's store.
    pub store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrackingFile {
    domain: Option<String>,
    unsubscribe_mailto: Option<String>,
    #[serde(default)]
    keys: Vec<KeyFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    id: String,
    secret: String,
}

/// Everything the renderer is configured with.
#[derive(Debug, Default)]
pub struct Config {
    /// `None` when neither a domain nor keys are configured: emails are then
    /// rendered without tracking or unsubscribe links.
    pub tracking: Option<Arc<TrackingConfig>>,
    /// The `[service]` section, as written in the file.
    pub service: ServiceSettings,
    /// The `[canary]` section, as written in the file.
    pub canary: CanarySettings,
    /// The `[flags.NAME]` sections: rollout flags at start.
    pub flags: std::collections::BTreeMap<String, artifact_pipeline::flags::Flag>,
    /// The `[nats]` section, as written in the file.
    pub nats: NatsSection,
    /// The `[postgres]` section, as written in the file.
    pub postgres: PostgresSection,
}

impl Config {
    /// Reads `path` (if given) and applies the environment through `env`.
    pub fn load(path: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let file = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config {}", path.display()))?;
                toml::from_str::<File>(&text)
                    .map_err(|error| anyhow!("config {}: {error}", path.display()))?
            }
            None => File::default(),
        };
        let mut tracking = file.tracking;
        if let Some(domain) = env(DOMAIN_VAR) {
            tracking.domain = Some(domain);
        }
        if let Some(mailto) = env(MAILTO_VAR) {
            tracking.unsubscribe_mailto = Some(mailto);
        }
        if let Some(keys) = env(KEYS_VAR) {
            tracking.keys = parse_keys(&keys)?;
        }
        Ok(Self {
            tracking: tracking_config(tracking)?,
            service: file.service,
            canary: file.canary,
            flags: file.flags,
            nats: file.nats,
            postgres: file.postgres,
        })
    }
}

fn parse_keys(list: &str) -> Result<Vec<KeyFile>> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .enumerate()
        .map(|(index, entry)| {
            let (id, secret) = entry
                .split_once('=')
                .ok_or_else(|| anyhow!("{KEYS_VAR}: entry {} is not `id=secret`", index + 1))?;
            Ok(KeyFile {
                id: id.trim().to_owned(),
                secret: secret.to_owned(),
            })
        })
        .collect()
}

fn tracking_config(file: TrackingFile) -> Result<Option<Arc<TrackingConfig>>> {
    let domain = match (file.domain, file.keys.is_empty()) {
        (None, true) => {
            if file.unsubscribe_mailto.is_some() {
                bail!("tracking.unsubscribe_mailto needs tracking.domain and tracking.keys");
            }
            return Ok(None);
        }
        (None, false) => bail!("tracking.keys are set but tracking.domain is not"),
        (Some(_), true) => bail!("tracking.domain is set but there are no tracking.keys"),
        (Some(domain), false) => domain,
    };
    let mailto = file
        .unsubscribe_mailto
        .map(|address| {
            EmailAddress::parse(&address)
                .map_err(|error| anyhow!("tracking.unsubscribe_mailto: {error}"))
        })
        .transpose()?;
    let keys = file
        .keys
        .into_iter()
        .map(|key| SigningKey {
            id: key.id,
            secret: key.secret.into_bytes(),
        })
        .collect();
    let config =
        TrackingConfig::new(&domain, keys, mailto).map_err(|error| anyhow!("tracking: {error}"))?;
    Ok(Some(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::Write;

    use super::*;

    const SECRET: &str = "a-development-secret-of-32-bytes!";

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Config> {
        let mut file = tempfile();
        file.1.write_all(toml.as_bytes()).unwrap();
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::load(Some(&file.0), |name| env.get(name).cloned())
    }

    fn tempfile() -> (std::path::PathBuf, std::fs::File) {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("artifact-config-{}-{n}.toml", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        (path, file)
    }

    #[test]
    fn reads_the_file() {
        let config = load(
            &format!(
                "[tracking]\ndomain = \"t.shop.example\"\nunsubscribe_mailto = \"u@shop.example\"\n\
                 [[tracking.keys]]\nid = \"k2\"\nsecret = \"{SECRET}\"\n"
            ),
            &[],
        )
        .unwrap();
        let tracking = config.tracking.unwrap();
        assert_eq!(tracking.domain(), "t.shop.example");
        assert_eq!(tracking.signer().signing_key_id(), "k2");
        assert_eq!(
            tracking.unsubscribe_mailto().unwrap().as_str(),
            "u@shop.example"
        );
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let config = load(
            &format!("[tracking]\ndomain = \"t.old.example\"\n[[tracking.keys]]\nid = \"k1\"\nsecret = \"{SECRET}\"\n"),
            &[
                (DOMAIN_VAR, "t.new.example"),
                (KEYS_VAR, &format!("k3={SECRET}, k1={SECRET}")),
            ],
        )
        .unwrap();
        let tracking = config.tracking.unwrap();
        assert_eq!(tracking.domain(), "t.new.example");
        assert_eq!(tracking.signer().signing_key_id(), "k3");
    }

    #[test]
    fn nothing_configured_means_no_tracking() {
        assert!(load("", &[]).unwrap().tracking.is_none());
        assert!(Config::load(None, |_| None).unwrap().tracking.is_none());
    }

    #[test]
    fn mistakes_name_the_setting() {
        let cases = [
            ("[tracking]\ndomian = \"x\"\n", "unknown field `domian`"),
            (
                "[tracking]\ndomain = \"t.example\"\n",
                "tracking.domain is set but there are no tracking.keys",
            ),
            (
                "[tracking]\ndomain = \"https://t.example\"\n[[tracking.keys]]\nid = \"k\"\nsecret = \"a-development-secret-of-32-bytes!\"\n",
                "is not a host name",
            ),
            (
                "[tracking]\ndomain = \"t.example\"\n[[tracking.keys]]\nid = \"k\"\nsecret = \"short\"\n",
                "tracking: ",
            ),
            (
                "[tracking]\ndomain = \"t.example\"\nunsubscribe_mailto = \"nope\"\n[[tracking.keys]]\nid = \"k\"\nsecret = \"a-development-secret-of-32-bytes!\"\n",
                "tracking.unsubscribe_mailto: ",
            ),
        ];
        for (toml, expected) in cases {
            let error = format!("{:#}", load(toml, &[]).unwrap_err());
            assert!(error.contains(expected), "{toml:?}: {error}");
        }
        let error = load("", &[(DOMAIN_VAR, "t.example"), (KEYS_VAR, "nosecret")]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "ARTIFACT_TRACKING_KEYS: entry 1 is not `id=secret`"
        );
    }
}
