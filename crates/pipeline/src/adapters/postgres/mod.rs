//! The PostgreSQL adapter, for the scaled-out mode: profiles as JSONB,
//! fetched in one `= ANY($2)` query per batch and projected in the
//! database to the keys a template reads; template versions; artifacts.
//!
//! Every query names its company. The statements a batch runs are prepared
//! once per connection (`prepare_cached`): otherwise each call is parsed,
//! planned and described again, a round trip of its own. The schema is migrated (under an
//! advisory lock, so many processes may start at once) when the store
//! connects, or by `artifact db migrate`.

mod artifacts;
mod events;
mod mirror;
mod profiles;
mod requests;
mod templates;
#[cfg(test)]
pub(crate) mod tests;

use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use crate::adapters::OrBackend;
use crate::{Error, PortResult};

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// `postgres://user@host:port/database`.
    pub url: String,
    /// The schema the tables live in, created if missing (`public` when
    /// `None`): several deployments, or tests, may share one database.
    pub schema: Option<String>,
    /// Connections kept open.
    pub max_connections: usize,
}

pub(crate) use requests::request_error;
pub use requests::{Answered, BatchRef, Leased};

/// Profiles, templates, artifacts and the request ledger on one PostgreSQL
/// database.
pub struct PostgresStore {
    pool: Pool,
    /// The schema version before and after `connect` migrated it.
    migrated: (usize, usize),
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("connections", &self.pool.status().size)
            .finish()
    }
}

/// The schema, one step per entry: a database at version `n` has run the
/// first `n`. Steps are appended, never edited.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE IF NOT EXISTS profiles (
    company_id TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    properties JSONB NOT NULL,
    PRIMARY KEY (company_id, profile_id)
);
-- Text columns compare bytewise (COLLATE "C"), as ids do in Rust.
CREATE TABLE IF NOT EXISTS artifacts (
    company_id TEXT COLLATE "C" NOT NULL,
    request_id TEXT COLLATE "C" NOT NULL,
    lane TEXT COLLATE "C" NOT NULL,
    recipient_id TEXT COLLATE "C" NOT NULL,
    channel TEXT COLLATE "C" NOT NULL,
    artifact TEXT NOT NULL,
    PRIMARY KEY (company_id, request_id, lane, recipient_id, channel)
);
CREATE TABLE IF NOT EXISTS templates (
    company_id TEXT NOT NULL,
    template_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    channel TEXT NOT NULL,
    parts JSONB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (company_id, template_id, version)
);
"#,
    r#"
CREATE TABLE requests (
    company_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    priority TEXT NOT NULL,
    state TEXT NOT NULL,
    recipients BIGINT NOT NULL,
    batches INTEGER NOT NULL,
    batches_done INTEGER NOT NULL DEFAULT 0,
    batches_dead INTEGER NOT NULL DEFAULT 0,
    rendered BIGINT NOT NULL DEFAULT 0,
    skipped BIGINT NOT NULL DEFAULT 0,
    failed BIGINT NOT NULL DEFAULT 0,
    -- Text, not JSONB: handed back to the client untouched, key order too.
    response_metadata TEXT NOT NULL,
    accepted_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    error TEXT,
    published BOOLEAN NOT NULL DEFAULT FALSE,
    announced BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (company_id, request_id)
);
CREATE INDEX requests_unfinished ON requests (priority) WHERE finished_at IS NULL;
CREATE INDEX requests_unannounced ON requests (finished_at)
    WHERE finished_at IS NOT NULL AND NOT announced;
-- A row per batch once leased; `first` is its first recipient.
CREATE TABLE batches (
    company_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    first INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    outcome TEXT,
    PRIMARY KEY (company_id, request_id, first)
);
CREATE TABLE dead_letters (
    id BIGSERIAL PRIMARY KEY,
    company_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    first INTEGER NOT NULL,
    last INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
);
-- Event text, not JSONB: served back as it was written.
CREATE TABLE response_events (
    seq BIGSERIAL PRIMARY KEY,
    company_id TEXT NOT NULL,
    event TEXT NOT NULL
);
CREATE INDEX response_events_by_company ON response_events (company_id, seq);
CREATE TABLE engagement_events (
    seq BIGSERIAL PRIMARY KEY,
    company_id TEXT NOT NULL,
    event TEXT NOT NULL
);
CREATE INDEX engagement_events_by_company ON engagement_events (company_id, seq);
"#,
    // An artifact is ~50 KB of HTML and text; PostgreSQL's default pglz
    // compresses it at a fraction of the speed of lz4 and was the scaled-out
    // mode's bound (scripts/measure_scaled.py). Servers without lz4 (built
    // without it, or older than 14, which cannot parse the statement: hence
    // EXECUTE) keep pglz.
    r#"
DO $$
BEGIN
    EXECUTE 'ALTER TABLE artifacts ALTER COLUMN artifact SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value OR syntax_error THEN
    RAISE NOTICE 'lz4 is not available: artifacts stay compressed with pglz';
END
$$;
"#,
    // A response event is logged once per request, however many times its
    // publishing is retried.
    r#"
ALTER TABLE response_events ADD COLUMN request_id TEXT;
CREATE UNIQUE INDEX response_events_once ON response_events (company_id, request_id);
"#,
    // Where each batch starts, as first published: a submit retried after
    // it failed half way republishes the same batches, whatever the batch
    // size of the process that takes the retry.
    r#"
ALTER TABLE requests ADD COLUMN batch_starts INTEGER[] NOT NULL DEFAULT '{}';
"#,
    // The canary's queue: a row per (job, lane), with the request cut to
    // the job's recipients. `recipients` are the positions production gave.
    r#"
CREATE TABLE mirror_jobs (
    id BIGSERIAL PRIMARY KEY,
    lane TEXT NOT NULL,
    company_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    recipients INTEGER[] NOT NULL,
    request TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    leased_until TEXT NOT NULL DEFAULT '',
    abandoned TEXT
);
CREATE INDEX mirror_jobs_waiting ON mirror_jobs (lane, id) WHERE abandoned IS NULL;
"#,
    // Each batch message, from its submit until it is first leased: a
    // request keeps one batch waiting on the broker, and the lease of that
    // batch publishes the next from here. `published` once the lease that
    // published it is answered, or gave it back: later leases of that batch
    // do not publish it again. They replace the batch starts.
    r#"
CREATE TABLE batch_messages (
    company_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    first INTEGER NOT NULL,
    last INTEGER NOT NULL,
    message BYTEA NOT NULL,
    published BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (company_id, request_id, first)
);
ALTER TABLE requests DROP COLUMN batch_starts;
DO $$
BEGIN
    EXECUTE 'ALTER TABLE batch_messages ALTER COLUMN message SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value OR syntax_error THEN
    RAISE NOTICE 'lz4 is not available: batch messages stay compressed with pglz';
END
$$;
"#,
];

impl PostgresStore {
    /// Connects and creates the tables that are missing.
    pub async fn connect(options: &PostgresOptions) -> PortResult<Arc<Self>> {
        let mut config: tokio_postgres::Config = options.url.parse().map_err(|e| {
            let url = crate::adapters::redacted_url(&options.url);
            Error::Invalid(format!("database URL {url:?}: {e}"))
        })?;
        if let Some(schema) = &options.schema {
            check_schema_name(schema)?;
            config.options(format!("-c search_path={schema}"));
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .build()
            .map_err(|e| Error::backend("building the connection pool", e))?;
        let mut store = Self {
            pool,
            migrated: (0, 0),
        };
        store.migrated = store.migrate(options.schema.as_deref()).await?;
        Ok(Arc::new(store))
    }

    /// The schema version before and after connecting migrated it.
    pub fn migrated(&self) -> (usize, usize) {
        self.migrated
    }

    pub(crate) async fn client(&self) -> PortResult<Object> {
        self.pool
            .get()
            .await
            .map_err(|e| Error::backend("connecting to PostgreSQL", e))
    }

    /// Runs the migrations the database lacks; returns the versions
    /// before and after.
    pub async fn migrate(&self, schema: Option<&str>) -> PortResult<(usize, usize)> {
        let doing = "migrating the PostgreSQL schema";
        let mut client = self.client().await?;
        let tx = client.transaction().await.or_backend(doing)?;
        // One migrator at a time, whichever process it is.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('artifact-pipeline schema'))",
            &[],
        )
        .await
        .or_backend(doing)?;
        if let Some(schema) = schema {
            tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await
                .or_backend(doing)?;
        }
        tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            .await
            .or_backend(doing)?;
        let found: Option<i32> = tx
            .query_opt("SELECT version FROM schema_version", &[])
            .await
            .or_backend(doing)?
            .map(|row| row.get(0));
        let before = usize::try_from(found.unwrap_or(0)).or_backend(doing)?;
        if before > MIGRATIONS.len() {
            return Err(Error::Invalid(format!(
                "the database schema is at version {before}, newer than this build's {}: \
                 run a newer build",
                MIGRATIONS.len()
            )));
        }
        for step in &MIGRATIONS[before..] {
            tx.batch_execute(step).await.or_backend(doing)?;
        }
        let after = i32::try_from(MIGRATIONS.len()).or_backend(doing)?;
        if found.is_none() {
            tx.execute("INSERT INTO schema_version VALUES ($1)", &[&after])
                .await
                .or_backend(doing)?;
        } else {
            tx.execute("UPDATE schema_version SET version = $1", &[&after])
                .await
                .or_backend(doing)?;
        }
        tx.commit().await.or_backend(doing)?;
        Ok((before, MIGRATIONS.len()))
    }
}

/// A schema name goes into SQL text: plain identifiers only.
fn check_schema_name(schema: &str) -> PortResult<()> {
    let mut chars = schema.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && schema.len() <= 63;
    if valid {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "schema {schema:?}: use lower-case letters, digits and `_`, starting with a letter"
        )))
    }
}
