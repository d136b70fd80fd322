//! The embedded adapter: every port on one SQLite file, for a single process
//! with no external server, and nothing lost on restart.
//!
//! SQLite is the durable record. The queue's scheduling state (lanes,
//! company turns, leases, retry delays) lives in memory and is rebuilt from
//! the file at [`EmbeddedStore::open`]; see `queue.rs`.
//!
//! rusqlite blocks, so every call runs on tokio's blocking pool. Writes go
//! through one connection behind a mutex (SQLite has one writer at a time);
//! reads use a small pool of reader connections, which WAL lets run beside
//! the writer, so a profile fetch never queues behind an artifact write.
//! Transactions begin `IMMEDIATE`: a canary worker in another process may
//! write to the same file, and a transaction that only asked for the write
//! lock at its first write would fail at once when the other held it,
//! where an immediate one waits its turn.

mod artifacts;
mod events;
mod mirror;
mod profiles;
mod queue;
mod scheduler;
mod schema;
mod templates;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::Notify;

use crate::adapters::{
    OrBackend, backoff, batch_ranges, parse_id, parse_timestamp, parse_variant, timestamp_text,
    variant_name,
};
use crate::{Error, PortResult};
use scheduler::Scheduler;

/// How often the checkpointer copies the write-ahead log into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Past this many frames (64 MiB of 4 KiB pages) the checkpointer finishes
/// a checkpoint while holding the writer, so that the log starts over.
const WAL_RESTART_FRAMES: i64 = 16_384;

/// Copies the write-ahead log into the database while the store lives.
///
/// Passive checkpoints, from their own connection, never make a commit
/// wait. But commits keep appending while one runs, so on its own the log
/// would never be wholly copied, never start over, and grow without end
/// (with its index in memory). So once the log is long, one checkpoint runs
/// holding the writer: nothing is appended meanwhile, it completes (the
/// passive ones already copied most frames, so the pause is short), and the
/// next commit starts the log from the beginning.
fn checkpointer(conn: &Connection, store: &std::sync::Weak<Inner>) {
    let checkpoint = |conn: &Connection| {
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            row.get::<_, i64>(1)
        })
    };
    loop {
        std::thread::sleep(CHECKPOINT_EVERY);
        let Some(inner) = store.upgrade() else {
            return;
        };
        match checkpoint(conn) {
            Ok(frames) if frames > WAL_RESTART_FRAMES => {
                let finished = inner.db.write(|writer| {
                    checkpoint(writer).or_backend("checkpointing under the writer")
                });
                if let Err(error) = finished {
                    tracing::warn!(%error, "checkpoint failed");
                }
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "checkpoint failed"),
        }
    }
}

/// Store calls running on the blocking pool at once: enough for reads to
/// overlap the one writer.
const IN_FLIGHT: usize = 8;

/// Idle reader connections kept open; more are opened under load and closed
/// when they are returned to a full pool.
const IDLE_READERS: usize = 4;

/// How the embedded queue batches, retries and leases.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Recipients per batch of an email request: the unit that is leased,
    /// retried and counted. Small enough that a high-priority request never
    /// waits long for a worker to finish a bulk batch.
    pub batch_size: usize,
    /// Recipients per batch of an SMS request. An SMS renders some thirty
    /// times faster than an email, so its batches are larger for the same
    /// time per batch, and the per-batch queue work stays small.
    pub sms_batch_size: usize,
    /// Deliveries of a batch before it is dead-lettered. A lease that
    /// expires, or that the process dies holding, counts as a delivery.
    pub max_attempts: u32,
    /// Delay before the first retry of a failed batch; it doubles with each
    /// attempt, up to five minutes.
    pub retry_backoff: Duration,
    /// How long a lease is held before its batch is delivered again.
    pub lease_timeout: Duration,
    /// How much request JSON is kept parsed in memory for the requests'
    /// next batches; the rest of the queue stays in the file and is parsed
    /// when its batches come up. Parsed, a request takes several times its
    /// JSON size. A batch's siblings usually follow it in its lane, so
    /// room for a few requests is enough.
    pub parsed_requests_bytes: usize,
    /// Open a store another process serves (a canary lane worker, `canary
    /// verify`): its schema is never migrated (another version is refused,
    /// so a newer candidate build cannot change production's file), and
    /// its queue is not loaded, since this process leases no batch.
    pub attach: bool,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            batch_size: 100,
            sms_batch_size: 1_000,
            max_attempts: 5,
            retry_backoff: Duration::from_secs(1),
            lease_timeout: Duration::from_secs(60),
            parsed_requests_bytes: 32 << 20,
            attach: false,
        }
    }
}

/// Every port (queue, profiles, templates, artifacts, response and
/// engagement events) on one SQLite file.
///
/// ```no_run
/// # fn main() -> Result<(), artifact_pipeline::Error> {
/// use artifact_pipeline::adapters::embedded::{EmbeddedOptions, EmbeddedStore};
/// let store = EmbeddedStore::open("pipeline.db".as_ref(), EmbeddedOptions::default())?;
/// let queue: std::sync::Arc<dyn artifact_pipeline::RequestQueue> = store.clone();
/// # Ok(()) }
/// ```
pub struct EmbeddedStore {
    inner: Arc<Inner>,
    /// Woken when batches become ready, for `lease` calls that wait.
    ready: Notify,
    /// Bounds the calls in the blocking pool; see [`EmbeddedStore::run`].
    in_flight: tokio::sync::Semaphore,
}

/// What the blocking closures share.
struct Inner {
    db: Db,
    queue: Mutex<Scheduler>,
    requests: Mutex<queue::RecentRequests>,
    options: EmbeddedOptions,
}

impl EmbeddedStore {
    /// Opens (or creates) the store at `path`, migrates its schema, and
    /// queues again every batch that is neither done nor dead-lettered:
    /// leases die with the process that held them. Blocks while it reads the
    /// file; call it before serving.
    pub fn open(path: &Path, options: EmbeddedOptions) -> Result<Arc<EmbeddedStore>, Error> {
        if options.batch_size == 0 || options.sms_batch_size == 0 {
            return Err(Error::Invalid(
                "batch_size and sms_batch_size must be at least 1".into(),
            ));
        }
        if options.max_attempts == 0 {
            return Err(Error::Invalid("max_attempts must be at least 1".into()));
        }
        if options.lease_timeout.is_zero() {
            return Err(Error::Invalid(
                "lease_timeout must be longer than zero".into(),
            ));
        }
        let mut writer = schema::open_writer(path, options.attach)?;
        let scheduler = if options.attach {
            Scheduler::default()
        } else {
            queue::restore(&mut writer)?
        };
        let db = Db {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
        };
        let checkpoints = schema::open(path, rusqlite::OpenFlags::default())?;
        let store = Arc::new(EmbeddedStore {
            inner: Arc::new(Inner {
                db,
                queue: Mutex::new(scheduler),
                requests: Mutex::new(queue::RecentRequests::new(options.parsed_requests_bytes)),
                options,
            }),
            ready: Notify::new(),
            in_flight: tokio::sync::Semaphore::new(IN_FLIGHT),
        });
        let inner = Arc::downgrade(&store.inner);
        std::thread::Builder::new()
            .name("artifact-checkpoint".into())
            .spawn(move || checkpointer(&checkpoints, &inner))
            .map_err(|e| Error::backend("starting the checkpointer", e))?;
        Ok(store)
    }

    /// Runs `f` on the blocking pool, at most [`IN_FLIGHT`] calls at once:
    /// the others wait here, holding no thread. Without the bound, a burst
    /// of submissions parks hundreds of blocking threads behind the one
    /// writer, each with its request serialized.
    async fn run<T, F>(&self, f: F) -> PortResult<T>
    where
        F: FnOnce(&Inner) -> PortResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|e| Error::backend("embedded store task", e))?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| Error::backend("embedded store task", e))?
    }
}

impl fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.inner.db.path)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn scheduler(&self) -> MutexGuard<'_, Scheduler> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn requests(&self) -> MutexGuard<'_, queue::RecentRequests> {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The writer connection and the pool of readers.
struct Db {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl Db {
    fn write<T>(&self, f: impl FnOnce(&mut Connection) -> PortResult<T>) -> PortResult<T> {
        let mut conn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut conn)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> PortResult<T>) -> PortResult<T> {
        let idle = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => schema::open_reader(&self.path)?,
        };
        let result = f(&conn);
        let mut readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if readers.len() < IDLE_READERS {
            readers.push(conn);
        }
        result
    }
}

/// An unsigned count or sequence as SQLite's signed integer, saturating:
/// a cursor or limit past `i64::MAX` means "everything".
fn to_sql_int(value: impl TryInto<i64>) -> i64 {
    value.try_into().unwrap_or(i64::MAX)
}
