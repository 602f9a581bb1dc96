//! The embedded SQLite backend of Scimitar's [`Store`].
//!
//! One file in WAL mode. Writes go through a single writer connection
//! (SQLite allows one writer at a time; serialising them in-process avoids
//! busy retries), reads through a pool of reader connections. All calls run
//! on tokio's blocking pool. Migrations are embedded in the binary.

mod console;
mod engine;
mod events;
mod lease;
mod logs;
mod resources;
mod schemas;
mod sql;
mod tenants;
mod threads;
mod tokens;
mod webhooks;

use std::path::Path;

use async_trait::async_trait;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OptionalExtension, params};
use scimitar_store::migrations::{CORE, ENGINE, EVENTS, MigrationSet, Step, WEBHOOKS, total_steps};
use scimitar_store::{ActivityEvent, SecretStore, Store, StoreError, StoreResult};

const CORE_STEPS: &[Step] = &[
    ("0001_initial", include_str!("../migrations/0001_initial.sql")),
    (
        "0002_extensions_activity",
        include_str!("../migrations/0002_extensions_activity.sql"),
    ),
    ("0003_console", include_str!("../migrations/0003_console.sql")),
    ("0004_leases", include_str!("../migrations/0004_leases.sql")),
    (
        "0005_schema_version",
        include_str!("../migrations/0005_schema_version.sql"),
    ),
    ("0006_audit", include_str!("../migrations/0006_audit.sql")),
    ("0007_token_expiry", include_str!("../migrations/0007_token_expiry.sql")),
    (
        "0008_resource_counts",
        include_str!("../migrations/0008_resource_counts.sql"),
    ),
    (
        "0009_unique_values",
        include_str!("../migrations/0009_unique_values.sql"),
    ),
    (
        "0010_console_invites",
        include_str!("../migrations/0010_console_invites.sql"),
    ),
];

const ENGINE_STEPS: &[Step] = &[
    ("0001_state", include_str!("../migrations/engine/0001_state.sql")),
    ("0002_escrow", include_str!("../migrations/engine/0002_escrow.sql")),
    ("0003_progress", include_str!("../migrations/engine/0003_progress.sql")),
];

const EVENTS_STEPS: &[Step] = &[
    ("0001_events", include_str!("../migrations/events/0001_events.sql")),
    (
        "0002_change_links",
        include_str!("../migrations/events/0002_change_links.sql"),
    ),
    (
        "0003_no_time_index",
        include_str!("../migrations/events/0003_no_time_index.sql"),
    ),
];

/// The migration sets of this backend, applied in this order.
const MIGRATION_SETS: &[MigrationSet] = &[
    MigrationSet {
        name: CORE,
        steps: CORE_STEPS,
    },
    MigrationSet {
        name: ENGINE,
        steps: ENGINE_STEPS,
    },
    MigrationSet {
        name: EVENTS,
        steps: EVENTS_STEPS,
    },
    MigrationSet {
        name: WEBHOOKS,
        steps: WEBHOOK_STEPS,
    },
];

const WEBHOOK_STEPS: &[Step] = &[(
    "0001_webhooks",
    include_str!("../migrations/webhooks/0001_webhooks.sql"),
)];

pub struct SqliteStore {
    /// Write jobs for the writer thread (see `writer_loop`).
    jobs: std::sync::mpsc::Sender<Job>,
    readers: r2d2::Pool<SqliteConnectionManager>,
    /// The threads of `scan` (at a lower CPU priority).
    scan_threads: threads::ScanThreads,
    /// How long a read on the pool may run (and wait for a connection), in
    /// milliseconds (see `Store::limit_query_time`).
    query_time_ms: std::sync::atomic::AtomicU64,
    /// For per-thread reader connections (see `read_now`).
    path: std::path::PathBuf,
    id: u64,
    alive: std::sync::Arc<()>,
}

static NEXT_STORE_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

thread_local! {
    /// Read-only connections of this thread, one per open store: point reads
    /// on the async workers use them without touching the pool's mutex.
    static LOCAL_READERS: std::cell::RefCell<Vec<(u64, std::sync::Weak<()>, Connection)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

pub(crate) fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let c = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
            | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )?;
    setup_connection(&c)?;
    Ok(c)
}

/// A pooled reader's settings: the common ones and a small page cache of
/// its own. The pool's 16 readers serve scans and pages; with SQLite's
/// default of 2 MB each they were most of the server's memory after deep
/// pages of a 1M-user tenant (the OS caches the file anyway). The
/// per-thread readers of indexed lookups (`read_now`), a few, keep the
/// default: with 512 KiB lookups lost 12 %.
fn setup_pooled_reader(c: &Connection) -> rusqlite::Result<()> {
    setup_connection(c)?;
    c.pragma_update(None, "cache_size", READER_CACHE_KIB)
}

/// Called with the commit's outcome (an error message if it failed) after
/// the batch that ran a job is committed; sends the job's result.
type Finish = Box<dyn FnOnce(Option<String>) + Send>;
/// Runs a write inside the writer's transaction; says whether it succeeded
/// (otherwise its savepoint is rolled back) and how to answer.
type Job = Box<dyn FnOnce(&Writer) -> (bool, Finish) + Send>;

/// Most write jobs committed together in one transaction.
const MAX_BATCH: usize = 256;

/// The writer's connection, and what it keeps between writes: the event
/// numbers it gave (see `events::Numbers`). Derefs to the connection, so a
/// write job uses it as one.
pub(crate) struct Writer {
    conn: Connection,
    pub(crate) numbers: std::cell::RefCell<events::Numbers>,
}

impl std::ops::Deref for Writer {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl Writer {
    /// A statement without rows through the statement cache: the batch's
    /// BEGIN, SAVEPOINT, RELEASE and COMMIT run thousands of times a second,
    /// and `execute_batch` would parse each one every time.
    fn run(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.prepare_cached(sql)?.execute([]).map(drop)
    }
}

/// The single writer: takes every write waiting, runs each in its own
/// savepoint (so one failing write does not undo the others), commits the
/// batch once and only then answers them all. Concurrent writers thus share
/// one fsync (group commit) while each stays atomic and durable.
fn writer_loop(conn: Connection, jobs: std::sync::mpsc::Receiver<Job>) {
    let w = Writer {
        conn,
        numbers: std::cell::RefCell::new(events::Numbers::default()),
    };
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let mut finishers = Vec::with_capacity(batch.len());
        let begun = w
            .run("BEGIN IMMEDIATE")
            .and_then(|()| w.numbers.borrow_mut().begin_batch(&w));
        if let Err(e) = begun {
            // Dropping the jobs answers their callers with an error.
            eprintln!("scimitar: could not begin a write transaction: {e}");
            let _ = w.conn.execute_batch("ROLLBACK");
            continue;
        }
        for job in batch {
            if w.run("SAVEPOINT job").is_err() {
                drop(job);
                continue;
            }
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&w)));
            let ok = matches!(ran, Ok((true, _)));
            let _ = if ok {
                w.run("RELEASE job")
            } else {
                w.run("ROLLBACK TO job").and_then(|()| w.run("RELEASE job"))
            };
            if let Ok(mut numbers) = w.numbers.try_borrow_mut() {
                numbers.end_job(ok);
            }
            if let Ok((_, finish)) = ran {
                finishers.push(finish);
            }
        }
        let commit = w
            .numbers
            .borrow()
            .store(&w)
            .and_then(|()| w.run("COMMIT"))
            .map_err(|e| e.to_string())
            .err();
        if commit.is_some() {
            let _ = w.conn.execute_batch("ROLLBACK");
        }
        w.numbers.borrow_mut().end_batch(commit.is_none());
        for f in finishers {
            f(commit.clone());
        }
    }
}

/// `execute` through the connection's statement cache: hot statements are
/// parsed and planned once per connection, not once per call.
pub(crate) fn exec(c: &Connection, sql: &str, p: impl rusqlite::Params) -> rusqlite::Result<usize> {
    c.prepare_cached(sql)?.execute(p)
}

/// `query_row` through the connection's statement cache.
pub(crate) fn row<T>(
    c: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    c.prepare_cached(sql)?.query_row(p, f)
}

/// Splits an entry's `changes` off as JSON text, serialised (and the tree
/// dropped) on the caller's thread rather than the writer's.
pub(crate) fn serialise_changes(mut e: ActivityEvent) -> StoreResult<(ActivityEvent, String)> {
    let changes = serde_json::to_string(&std::mem::take(&mut e.changes)).map_err(internal)?;
    Ok((e, changes))
}

/// One activity log entry; `changes` is `e.changes` already serialised.
pub(crate) fn insert_activity(c: &Connection, e: &ActivityEvent, changes: &str) -> rusqlite::Result<usize> {
    exec(
        c,
        "INSERT INTO activity (tenant_id, time, token_id, token_label, action, resource_type, resource_id, \
         name, changes, outcome, status, error, method, path, change_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            e.tenant_id,
            e.time,
            e.token_id,
            e.token_label,
            e.action,
            e.resource_type,
            e.resource_id,
            e.name,
            changes,
            e.outcome,
            e.status,
            e.error,
            e.method,
            e.path,
            e.change
        ],
    )
}

pub(crate) fn internal(e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(e.to_string())
}

fn setup_connection(c: &Connection) -> rusqlite::Result<()> {
    c.busy_timeout(std::time::Duration::from_secs(10))?;
    // Every hot statement stays prepared (the default keeps 16).
    c.set_prepared_statement_cache_capacity(64);
    c.pragma_update(None, "foreign_keys", "ON")?;
    // FULL: a commit is on disk before the client hears 2xx.
    c.pragma_update(None, "synchronous", "FULL")?;
    use rusqlite::functions::FunctionFlags;
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC | FunctionFlags::SQLITE_INNOCUOUS;
    c.create_scalar_function("scim_lower", 1, flags, |ctx| {
        Ok(match ctx.get_raw(0) {
            rusqlite::types::ValueRef::Text(t) => Some(String::from_utf8_lossy(t).to_lowercase()),
            rusqlite::types::ValueRef::Null => None,
            other => Some(match other {
                rusqlite::types::ValueRef::Integer(i) => i.to_string(),
                rusqlite::types::ValueRef::Real(f) => f.to_string(),
                _ => String::new(),
            }),
        })
    })?;
    // A dateTime as text that orders as instants (UTC, fixed width), NULL
    // for what is not one: filters and sorting on dateTime attributes.
    c.create_scalar_function("scim_instant", 1, flags, |ctx| {
        Ok(match ctx.get_raw(0) {
            rusqlite::types::ValueRef::Text(t) => std::str::from_utf8(t)
                .ok()
                .and_then(scimitar_protocol::datetime::instant_key),
            _ => None,
        })
    })?;
    c.create_scalar_function("scim_ends_with", 2, flags, |ctx| {
        let a: Option<String> = ctx.get(0).ok();
        let b: Option<String> = ctx.get(1).ok();
        Ok(match (a, b) {
            (Some(a), Some(b)) => a.ends_with(&b),
            _ => false,
        })
    })?;
    Ok(())
}

/// Switches the file to WAL. SQLite answers "locked" without consulting
/// the busy handler when another process is switching or recovering the
/// same fresh file at that moment, so this retries for a while itself.
fn enable_wal(c: &Connection) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mode = c.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0));
        match mode {
            Ok(_) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
}

fn migrate(c: &mut Connection) -> rusqlite::Result<()> {
    c.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")?;
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for set in MIGRATION_SETS {
        for (key, sql) in set.keys() {
            let done: Option<String> = tx
                .query_row("SELECT name FROM schema_migrations WHERE name = ?", [&key], |r| {
                    r.get(0)
                })
                .optional()?;
            if done.is_none() {
                tx.execute_batch(sql)?;
                tx.execute(
                    "INSERT INTO schema_migrations (name, applied) VALUES (?, datetime('now'))",
                    [&key],
                )?;
            }
        }
    }
    tx.commit()
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and migrates it.
    pub fn open(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Internal(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut writer = Connection::open(path).map_err(internal)?;
        // The busy timeout comes first: switching a fresh file to WAL takes an
        // exclusive lock, and processes starting together (nodes, CLI
        // commands) must wait for each other instead of failing.
        let step = |what: &'static str| move |e: rusqlite::Error| StoreError::Internal(format!("{what}: {e}"));
        setup_connection(&writer).map_err(step("configuring the connection"))?;
        enable_wal(&writer).map_err(step("switching to WAL"))?;
        migrate(&mut writer).map_err(step("migrating"))?;
        let manager = SqliteConnectionManager::file(path)
            .with_flags(
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | rusqlite::OpenFlags::SQLITE_OPEN_URI,
            )
            .with_init(|c| setup_pooled_reader(c));
        let readers = r2d2::Pool::builder()
            .max_size(READERS)
            .min_idle(Some(1))
            .build(manager)
            .map_err(internal)?;
        // After a burst the WAL file shrinks back to 64 MiB when it rewinds,
        // instead of keeping its largest size on disk.
        writer
            .pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
            .map_err(step("limiting the WAL"))?;
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("scimitar-sqlite-writer".into())
            .spawn(move || writer_loop(writer, rx))
            .map_err(internal)?;
        Ok(SqliteStore {
            jobs,
            readers,
            scan_threads: threads::ScanThreads::new(READERS as usize),
            query_time_ms: std::sync::atomic::AtomicU64::new(DEFAULT_QUERY_TIME_MS),
            path: path.to_path_buf(),
            id: NEXT_STORE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            alive: std::sync::Arc::new(()),
        })
    }

    /// Runs `f` in the writer's transaction (batched with concurrent writes)
    /// and answers once it is committed.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Writer) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (tx, rx) = tokio::sync::oneshot::channel::<StoreResult<T>>();
        let job: Job = Box::new(move |conn: &Writer| {
            let result = f(conn);
            let ok = result.is_ok();
            let finish: Finish = Box::new(move |commit_error: Option<String>| {
                let out = match (result, commit_error) {
                    (Ok(_), Some(e)) => Err(StoreError::Internal(format!("commit failed: {e}"))),
                    (r, _) => r,
                };
                let _ = tx.send(out);
            });
            (ok, finish)
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Internal("the database writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Internal("the write was not completed".into()))?
    }

    /// A short indexed read done on the calling thread: cheaper than a hop
    /// to the blocking pool for what takes microseconds in SQLite's cache.
    pub(crate) fn read_now<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        LOCAL_READERS.with(|cell| {
            let Ok(mut local) = cell.try_borrow_mut() else {
                // Re-entered (never expected): use the pool.
                let conn = self.readers.get().map_err(internal)?;
                return f(&conn);
            };
            // Forget connections of stores that were dropped.
            local.retain(|(_, alive, _)| alive.strong_count() > 0);
            if !local.iter().any(|(id, _, _)| *id == self.id) {
                let conn = open_reader(&self.path).map_err(internal)?;
                local.push((self.id, std::sync::Arc::downgrade(&self.alive), conn));
            }
            match local.iter().find(|(id, _, _)| *id == self.id) {
                Some((_, _, conn)) => f(conn),
                None => Err(StoreError::Internal("no reader connection".into())),
            }
        })
    }

    /// Runs `f` on a connection of the pool, on tokio's blocking pool (see
    /// `pooled`).
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (read, abandoned) = self.pooled(f);
        let out = tokio::task::spawn_blocking(read).await.map_err(internal)?;
        drop(abandoned);
        out
    }

    /// Like `read`, for reads that may scan a tenant's resources (filtered
    /// or sorted lists, a group's whole member list): on the scan threads,
    /// at a lower CPU priority (see `threads`).
    pub(crate) async fn scan<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (read, abandoned) = self.pooled(f);
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.scan_threads.run(move || {
            let _ = tx.send(read());
        })?;
        let out = rx
            .await
            .map_err(|_| StoreError::Internal("the read was not completed".into()))?;
        drop(abandoned);
        out
    }

    /// `f` on a connection of the pool, to run on another thread; it stops
    /// at its next progress check when the returned guard is dropped (the
    /// caller stopped waiting: the request timed out or its client went
    /// away) or when it has run for the query time limit. Waiting for a
    /// connection is bounded by the same limit. Both are `Timeout`.
    fn pooled<T>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> (impl FnOnce() -> StoreResult<T> + Send + 'static, Abandoned) {
        use std::sync::atomic::Ordering::Relaxed;
        let pool = self.readers.clone();
        let limit = std::time::Duration::from_millis(self.query_time_ms.load(Relaxed));
        let abandoned = Abandoned::default();
        let stop = abandoned.0.clone();
        let read = move || {
            let started = std::time::Instant::now();
            let conn = pool.get_timeout(limit).map_err(|_| StoreError::Timeout)?;
            if stop.load(Relaxed) {
                return Err(StoreError::Timeout);
            }
            let deadline = started + limit;
            let fired = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let fired2 = fired.clone();
            conn.progress_handler(
                PROGRESS_STEPS,
                Some(move || {
                    let stop = stop.load(Relaxed) || std::time::Instant::now() >= deadline;
                    if stop {
                        fired2.store(true, Relaxed);
                    }
                    stop
                }),
            )
            .map_err(internal)?;
            let out = f(&conn);
            // The connection goes back to the pool without the handler.
            conn.progress_handler(0, None::<fn() -> bool>).map_err(internal)?;
            match out {
                Err(_) if fired.load(Relaxed) => Err(StoreError::Timeout),
                other => other,
            }
        };
        (read, abandoned)
    }
}

/// Reader connections of the pool, and most scan threads.
const READERS: u32 = 16;
/// Page cache of each reader connection, in KiB (negative: SQLite's unit).
const READER_CACHE_KIB: i64 = -512;

/// How long a read may run until told otherwise (milliseconds): the
/// server's default request timeout.
const DEFAULT_QUERY_TIME_MS: u64 = 30_000;

/// SQLite virtual machine steps between two checks of whether a read
/// should stop (about a millisecond of work or less).
const PROGRESS_STEPS: std::ffi::c_int = 1000;

/// Set when the future waiting for a read is dropped, which stops the
/// read's query (see `SqliteStore::read`).
#[derive(Default)]
struct Abandoned(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for Abandoned {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
#[async_trait]
impl Store for SqliteStore {
    fn limit_query_time(&self, limit: std::time::Duration) {
        let ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX).max(1);
        self.query_time_ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    async fn ready(&self) -> StoreResult<()> {
        self.read(|c| {
            let applied: i64 = row(c, "SELECT count(*) FROM schema_migrations", [], |r| r.get(0)).map_err(internal)?;
            let expected = total_steps(MIGRATION_SETS);
            if usize::try_from(applied).unwrap_or(0) < expected {
                return Err(StoreError::Internal(format!(
                    "{applied} of {expected} migrations applied"
                )));
            }
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl SecretStore for SqliteStore {
    async fn secret(&self, name: &str, candidate: &[u8; 32]) -> StoreResult<[u8; 32]> {
        let (name, candidate) = (name.to_string(), candidate.to_vec());
        self.write(move |tx| {
            exec(
                tx,
                "INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)",
                params![name, candidate],
            )
            .map_err(internal)?;
            let v: Vec<u8> =
                row(tx, "SELECT value FROM secrets WHERE name = ?", [&name], |r| r.get(0)).map_err(internal)?;
            v.try_into()
                .map_err(|_| StoreError::Internal(format!("secret {name} is not 32 bytes")))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pooled readers keep a small page cache of their own (memory under
    /// deep pages of large tenants: docs/benchmarks.md); the per-thread
    /// readers of lookups keep SQLite's default.
    #[tokio::test]
    async fn pooled_readers_have_a_small_page_cache() -> StoreResult<()> {
        let dir = std::env::temp_dir().join(format!("scimitar-cache-{}", std::process::id()));
        let store = SqliteStore::open(&dir.join("t.db"))?;
        let now = store.read_now(|c| {
            c.pragma_query_value(None, "cache_size", |r| r.get::<_, i64>(0))
                .map_err(internal)
        })?;
        let later = store
            .read(|c| {
                c.pragma_query_value(None, "cache_size", |r| r.get::<_, i64>(0))
                    .map_err(internal)
            })
            .await?;
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!((now, later), (-2000, READER_CACHE_KIB));
        Ok(())
    }
}
