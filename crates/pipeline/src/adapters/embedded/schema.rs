//! Connections and the schema: pragmas, tables, and the `user_version`
//! that future migrations step from.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::OrBackend;
use crate::{Error, PortResult};

/// The schema this build writes. Bump it and add a step to [`migrate`] when
/// a table changes.
const SCHEMA_VERSION: i64 = 3;

/// How long a connection waits for another one's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Statements each connection keeps prepared.
const STATEMENT_CACHE: usize = 64;

pub(super) const SCHEMA_V1: &str = "
CREATE TABLE requests (
    company_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    priority TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'rendering', 'done', 'failed')),
    recipients INTEGER NOT NULL,
    rendered INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    response_metadata TEXT NOT NULL,
    accepted_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    error TEXT,
    -- set once the response event of a finished request is published
    announced INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (company_id, request_id)
);
CREATE INDEX requests_unannounced ON requests (finished_at)
    WHERE finished_at IS NOT NULL AND announced = 0;

-- The RenderRequest as JSON, parsed when its batches are leased. Apart from
-- `requests` because SQLite rewrites a whole row on every update, and the
-- status row is updated with every batch while the body is megabytes.
CREATE TABLE request_bodies (
    company_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    request TEXT NOT NULL,
    PRIMARY KEY (company_id, request_id),
    FOREIGN KEY (company_id, request_id) REFERENCES requests (company_id, request_id)
);

-- Consecutive recipient ranges of a request. `attempts` is written when a
-- batch is leased, so a batch that keeps killing the process runs out.
CREATE TABLE batches (
    id INTEGER PRIMARY KEY,
    company_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    range_start INTEGER NOT NULL,
    range_end INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'done', 'dead')),
    FOREIGN KEY (company_id, request_id) REFERENCES requests (company_id, request_id)
);
-- what open() reads back: the batches still to render, in submit order
CREATE INDEX batches_ready ON batches (id) WHERE state = 'ready';

CREATE TABLE dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    company_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    range_start INTEGER NOT NULL,
    range_end INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
);

CREATE TABLE profiles (
    company_id TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    properties TEXT NOT NULL,
    PRIMARY KEY (company_id, profile_id)
);

CREATE TABLE templates (
    company_id TEXT NOT NULL,
    template_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    channel TEXT NOT NULL,
    parts TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (company_id, template_id, version)
);

-- Keyed so that one request's lane lists by recipient with a range scan.
CREATE TABLE artifacts (
    company_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    lane TEXT NOT NULL,
    recipient_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    artifact TEXT NOT NULL,
    PRIMARY KEY (company_id, request_id, lane, recipient_id, channel)
);

CREATE TABLE response_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    company_id TEXT NOT NULL,
    event TEXT NOT NULL
);
CREATE INDEX response_events_by_company ON response_events (company_id, seq);

CREATE TABLE engagement_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    company_id TEXT NOT NULL,
    event TEXT NOT NULL
);
CREATE INDEX engagement_events_by_company ON engagement_events (company_id, seq);
";

/// Version 2 stores a request's JSON as it arrived, with the template version
/// pinned since beside it (see `RenderRequest::stored_json`). Version 1 bodies
/// were serialized after pinning, so their column stays empty.
const SCHEMA_V2: &str = "
ALTER TABLE request_bodies ADD COLUMN template_version INTEGER;
";

/// Version 3: the production lane is named `production`, and recipients
/// sampled for the canary wait in `mirror_jobs`, one row per lane that
/// renders them again (the canary, and the control copy if there is one).
/// A row names its request (whose body stays in `request_bodies`) and the
/// recipients by index; it is deleted once rendered, or kept as
/// `abandoned` when its lane gave up on it, so `canary verify` can say
/// which recipients the lane is missing.
const SCHEMA_V3: &str = "
UPDATE artifacts SET lane = 'production' WHERE lane = 'primary';
CREATE TABLE mirror_jobs (
    id INTEGER PRIMARY KEY,
    lane TEXT NOT NULL CHECK (lane IN ('canary', 'control')),
    company_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    recipients TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    leased_until INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'abandoned')),
    reason TEXT,
    FOREIGN KEY (company_id, request_id) REFERENCES requests (company_id, request_id)
);
CREATE INDEX mirror_jobs_waiting ON mirror_jobs (lane, id) WHERE state = 'waiting';
";

/// The steps from each version to the next: `MIGRATIONS[v]` takes version
/// `v` to `v + 1`.
const MIGRATIONS: [(&str, &str); 3] = [
    (SCHEMA_V1, "creating the schema"),
    (SCHEMA_V2, "migrating the schema to version 2"),
    (SCHEMA_V3, "migrating the schema to version 3"),
];

/// Opens the writer connection: WAL, foreign keys, and the schema migrated
/// to [`SCHEMA_VERSION`].
pub(super) fn open_writer(path: &Path, attach: bool) -> PortResult<Connection> {
    let mut conn = open(path, OpenFlags::default())?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .or_backend("switching the store to WAL")?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Invalid(format!(
            "store {}: journal_mode is {mode:?}, WAL is required",
            path.display()
        )));
    }
    // NORMAL in WAL mode syncs at checkpoints, not at every commit: a
    // committed transaction survives the process crashing or being killed
    // (-9), but a power loss or OS crash may lose the last commits.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .or_backend("setting synchronous = NORMAL")?;
    // Commits never checkpoint: the checkpointer thread does, so a request
    // or batch commit does not pay for copying the log into the database
    // (and its fsync).
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .or_backend("turning automatic checkpoints off")?;
    // When the log starts over, a file grown by a burst is cut back.
    conn.pragma_update(None, "journal_size_limit", 64 << 20)
        .or_backend("limiting the log file's size")?;
    conn.pragma_update(None, "foreign_keys", true)
        .or_backend("enabling foreign keys")?;
    if attach {
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .or_backend("reading the schema version")?;
        if version != SCHEMA_VERSION {
            return Err(Error::Invalid(format!(
                "store {} has schema version {version} and this build {SCHEMA_VERSION}: a process \
                 attached to another's store never migrates it; run a build of the same schema",
                path.display()
            )));
        }
    } else {
        migrate(&mut conn, path)?;
    }
    Ok(conn)
}

/// Opens a reader connection. `query_only` makes a write through it an
/// error instead of a second writer contending for the lock.
pub(super) fn open_reader(path: &Path) -> PortResult<Connection> {
    let conn = open(path, OpenFlags::default())?;
    conn.pragma_update(None, "query_only", true)
        .or_backend("making a reader connection query-only")?;
    Ok(conn)
}

pub(super) fn open(path: &Path, flags: OpenFlags) -> PortResult<Connection> {
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| Error::backend(format!("opening store {}", path.display()), e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .or_backend("setting the busy timeout")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

fn migrate(conn: &mut Connection, path: &Path) -> PortResult<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .or_backend("migrating the schema")?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .or_backend("reading the schema version")?;
    match version {
        0..SCHEMA_VERSION => {
            for (step, doing) in &MIGRATIONS[usize::try_from(version).unwrap_or(0)..] {
                tx.execute_batch(step).or_backend(doing)?;
            }
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .or_backend("writing the schema version")?;
        }
        SCHEMA_VERSION => {}
        newer => {
            return Err(Error::Invalid(format!(
                "store {} has schema version {newer}, newer than this build's {SCHEMA_VERSION}",
                path.display()
            )));
        }
    }
    tx.commit().or_backend("migrating the schema")
}
