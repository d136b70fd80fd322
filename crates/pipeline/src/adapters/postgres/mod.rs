//! The PostgreSQL adapter, for the scaled-out mode: profiles as JSONB,
//! fetched in one `= ANY($2)` query per batch and projected in the
//! database to the keys a template reads; template versions; artifacts.
//!
//! Every query names its company. The schema is created (idempotently,
//! under an advisory lock, so many processes may start at once) when the
//! store connects.

mod artifacts;
mod profiles;
mod templates;
#[cfg(test)]
mod tests;

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

/// Profiles and templates on one PostgreSQL database.
pub struct PostgresStore {
    pool: Pool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("connections", &self.pool.status().size)
            .finish()
    }
}

const SCHEMA: &str = r#"
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
"#;

impl PostgresStore {
    /// Connects and creates the tables that are missing.
    pub async fn connect(options: &PostgresOptions) -> PortResult<Arc<Self>> {
        let mut config: tokio_postgres::Config = options
            .url
            .parse()
            .map_err(|e| Error::Invalid(format!("database URL {:?}: {e}", options.url)))?;
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
        let store = Arc::new(Self { pool });
        store.migrate(options.schema.as_deref()).await?;
        Ok(store)
    }

    async fn client(&self) -> PortResult<Object> {
        self.pool
            .get()
            .await
            .map_err(|e| Error::backend("connecting to PostgreSQL", e))
    }

    async fn migrate(&self, schema: Option<&str>) -> PortResult<()> {
        let doing = "creating the PostgreSQL schema";
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
        tx.batch_execute(SCHEMA).await.or_backend(doing)?;
        tx.commit().await.or_backend(doing)
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
