//! The embedded SQLite backend of Scimitar's [`Store`].
//!
//! One file in WAL mode. Writes go through a single writer connection
//! (SQLite allows one writer at a time; serialising them in-process avoids
//! busy retries), reads through a pool of reader connections. All calls run
//! on tokio's blocking pool. Migrations are embedded in the binary.

mod console;
mod lease;
mod sql;

use std::path::Path;

use async_trait::async_trait;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use scimitar_protocol::ScimError;
use scimitar_protocol::output::Reference;
use scimitar_protocol::patch::{MemberAccess, MemberOp};
use scimitar_protocol::resource::MemberRef;
use scimitar_store::now_utc;
use scimitar_store::{
    ActivityEvent, ActivityQuery, AuditEvent, CursorPos, ExtensionRecord, Kind, ListQuery, ModifyFn, Page, ReadCount,
    Record, Store, StoreError, StoreResult, Tenant, TenantId, TokenInfo,
};
use serde_json::{Map, Value};

const MIGRATIONS: &[(&str, &str)] = &[
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
];

pub struct SqliteStore {
    /// Write jobs for the writer thread (see `writer_loop`).
    jobs: std::sync::mpsc::Sender<Job>,
    readers: r2d2::Pool<SqliteConnectionManager>,
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

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let c = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
            | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )?;
    setup_connection(&c)?;
    Ok(c)
}

/// Called with the commit's outcome (an error message if it failed) after
/// the batch that ran a job is committed; sends the job's result.
type Finish = Box<dyn FnOnce(Option<String>) + Send>;
/// Runs a write inside the writer's transaction; says whether it succeeded
/// (otherwise its savepoint is rolled back) and how to answer.
type Job = Box<dyn FnOnce(&Connection) -> (bool, Finish) + Send>;

/// Most write jobs committed together in one transaction.
const MAX_BATCH: usize = 256;

/// The single writer: takes every write waiting, runs each in its own
/// savepoint (so one failing write does not undo the others), commits the
/// batch once and only then answers them all. Concurrent writers thus share
/// one fsync (group commit) while each stays atomic and durable.
fn writer_loop(conn: Connection, jobs: std::sync::mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let mut finishers = Vec::with_capacity(batch.len());
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            // Dropping the jobs answers their callers with an error.
            eprintln!("scimitar: could not begin a write transaction: {e}");
            continue;
        }
        for job in batch {
            if conn.execute_batch("SAVEPOINT job").is_err() {
                drop(job);
                continue;
            }
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&conn)));
            let ok = matches!(ran, Ok((true, _)));
            let undo = if ok {
                "RELEASE job"
            } else {
                "ROLLBACK TO job; RELEASE job"
            };
            let _ = conn.execute_batch(undo);
            if let Ok((_, finish)) = ran {
                finishers.push(finish);
            }
        }
        let commit = conn.execute_batch("COMMIT").map_err(|e| e.to_string()).err();
        if commit.is_some() {
            let _ = conn.execute_batch("ROLLBACK");
        }
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
fn serialise_changes(mut e: ActivityEvent) -> StoreResult<(ActivityEvent, String)> {
    let changes = serde_json::to_string(&std::mem::take(&mut e.changes)).map_err(internal)?;
    Ok((e, changes))
}

/// One activity log entry; `changes` is `e.changes` already serialised.
fn insert_activity(c: &Connection, e: &ActivityEvent, changes: &str) -> rusqlite::Result<usize> {
    exec(
        c,
        "INSERT INTO activity (tenant_id, time, token_id, token_label, action, resource_type, resource_id, \
         name, changes, outcome, status, error, method, path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            e.path
        ],
    )
}

fn internal(e: impl std::fmt::Display) -> StoreError {
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
    for (name, sql) in MIGRATIONS {
        let done: Option<String> = tx
            .query_row("SELECT name FROM schema_migrations WHERE name = ?", [name], |r| {
                r.get(0)
            })
            .optional()?;
        if done.is_none() {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (name, applied) VALUES (?, datetime('now'))",
                [name],
            )?;
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
            .with_init(|c| setup_connection(c));
        let readers = r2d2::Pool::builder()
            .max_size(16)
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
            path: path.to_path_buf(),
            id: NEXT_STORE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            alive: std::sync::Arc::new(()),
        })
    }

    /// Runs `f` in the writer's transaction (batched with concurrent writes)
    /// and answers once it is committed.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (tx, rx) = tokio::sync::oneshot::channel::<StoreResult<T>>();
        let job: Job = Box::new(move |conn: &Connection| {
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
    fn read_now<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        LOCAL_READERS.with(|cell| {
            let Ok(mut local) = cell.try_borrow_mut() else {
                // Re-entered (never expected): use the pool.
                let conn = self.readers.get().map_err(internal)?;
                return f(&conn);
            };
            // Forget connections of stores that were dropped.
            local.retain(|(_, alive, _)| alive.strong_count() > 0);
            let i = match local.iter().position(|(id, _, _)| *id == self.id) {
                Some(i) => i,
                None => {
                    let conn = open_reader(&self.path).map_err(internal)?;
                    local.push((self.id, std::sync::Arc::downgrade(&self.alive), conn));
                    local.len() - 1
                }
            };
            f(&local[i].2)
        })
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.get().map_err(internal)?;
            f(&conn)
        })
        .await
        .map_err(internal)?
    }
}

fn token_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenInfo> {
    Ok(TokenInfo {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        tenant: r.get(2)?,
        label: r.get(3)?,
        hint: r.get(4)?,
        created: r.get(5)?,
        last_used: r.get(6)?,
        revoked: r.get(7)?,
        scope: r.get(8)?,
        schema_version: r.get(9)?,
        expires: r.get(10)?,
    })
}

const TOKEN_COLS: &str = "t.id, t.tenant_id, n.name, t.label, t.hint, t.created, t.last_used, t.revoked, t.scope, n.schema_version, t.expires";
const RECORD_COLS: &str = "r.id, r.kind, r.doc, r.created, r.modified, r.version, r.seq";

fn record_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    let kind: String = r.get(1)?;
    let doc: String = r.get(2)?;
    let doc: Map<String, Value> = serde_json::from_str(&doc)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e)))?;
    let version: i64 = r.get(5)?;
    Ok(Record {
        seq: r.get(6)?,
        id: r.get(0)?,
        kind: if kind == "Group" { Kind::Group } else { Kind::User },
        doc,
        created: r.get(3)?,
        last_modified: r.get(4)?,
        version: u64::try_from(version).unwrap_or(0),
    })
}

/// The indexed columns extracted from a document: userName and Group
/// displayName lower-cased, and externalId.
type Columns = (Option<String>, Option<String>, Option<String>);

fn columns(kind: Kind, doc: &Map<String, Value>) -> Columns {
    let s = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_string);
    let user_name = if kind == Kind::User {
        s("userName").map(|v| v.to_lowercase())
    } else {
        None
    };
    let display = if kind == Kind::Group {
        s("displayName").map(|v| v.to_lowercase())
    } else {
        None
    };
    (user_name, display, s("externalId"))
}

/// The indexed columns of `new`, or `None` if they are those of `old`.
fn changed_columns(kind: Kind, old: &Map<String, Value>, new: &Map<String, Value>) -> Option<Columns> {
    let cols = columns(kind, new);
    (cols != columns(kind, old)).then_some(cols)
}

/// Stores a resource's next version if its version is still `read`; says
/// how many rows changed (0: it moved). Unchanged indexed columns (`None`)
/// are left out, so that SQLite does not rewrite their index entries.
#[allow(clippy::too_many_arguments)] // the parts of one row
fn update_resource(
    tx: &Connection,
    tenant: TenantId,
    kind: Kind,
    id: &str,
    cols: Option<Columns>,
    read: u64,
    now: &str,
    text: &str,
) -> StoreResult<usize> {
    let v = |x: u64| i64::try_from(x).unwrap_or(i64::MAX);
    match cols {
        None => exec(
            tx,
            "UPDATE resources SET version = ?, modified = ?, doc = ? WHERE tenant_id = ? AND id = ? AND version = ?",
            params![v(read + 1), now, text, tenant, id, v(read)],
        )
        .map_err(internal),
        Some((un, dn, ext)) => exec(
            tx,
            "UPDATE resources SET user_name_ci = ?, display_name_ci = ?, external_id = ?, version = ?, modified = ?, doc = ? \
             WHERE tenant_id = ? AND id = ? AND version = ?",
            params![un, dn, ext, v(read + 1), now, text, tenant, id, v(read)],
        )
        .map_err(|e| map_unique(e, kind)),
    }
}

fn map_unique(e: rusqlite::Error, kind: Kind) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, msg) = &e
        && f.code == rusqlite::ErrorCode::ConstraintViolation
    {
        let m = msg.clone().unwrap_or_default();
        if m.contains("user_name_ci") {
            return StoreError::Conflict("userName".into());
        }
        if m.contains("display_name_ci") {
            return StoreError::Conflict("displayName".into());
        }
        if m.contains("resources.id") || m.contains("resources.tenant_id, resources.id") {
            return StoreError::Conflict("id".into());
        }
        return StoreError::Conflict(if kind == Kind::User {
            "userName".into()
        } else {
            "displayName".into()
        });
    }
    internal(e)
}

fn get_record(c: &Connection, tenant: TenantId, kind: Kind, id: &str) -> StoreResult<Option<Record>> {
    row(
        c,
        &format!(
            "SELECT {RECORD_COLS} FROM resources r WHERE r.tenant_id = ? AND r.kind = '{}' AND r.id = ?",
            kind.as_str()
        ),
        params![tenant, id],
        record_from_row,
    )
    .optional()
    .map_err(internal)
}

/// Applies membership changes; returns how many memberships changed (so a
/// PATCH or PUT that leaves the members as they were changes no version).
fn apply_member_ops(tx: &Connection, tenant: TenantId, group: &str, ops: &[MemberOp]) -> StoreResult<usize> {
    if ops.is_empty() {
        return Ok(0);
    }
    let net = scimitar_protocol::patch::net_member_changes(ops);
    let mut changed = 0;
    let mut kind_of = tx
        .prepare_cached("SELECT kind FROM resources WHERE tenant_id = ? AND id = ?")
        .map_err(internal)?;
    let mut resolved = Vec::with_capacity(net.add.len());
    for m in &net.add {
        if m.value == group {
            return Err(ScimError::invalid_value("a group cannot be a member of itself").into());
        }
        let kind: Option<String> = kind_of
            .query_row(params![tenant, m.value], |r| r.get(0))
            .optional()
            .map_err(internal)?;
        let Some(kind) = kind else {
            return Err(ScimError::invalid_value(format!(
                "member '{}' is not a User or Group of this tenant",
                m.value
            ))
            .into());
        };
        if let Some(k) = &m.kind
            && !k.eq_ignore_ascii_case(&kind)
        {
            return Err(ScimError::invalid_value(format!("member '{}' is a {kind}, not a {k}", m.value)).into());
        }
        resolved.push((m, kind));
    }
    let mut delete = tx
        .prepare_cached("DELETE FROM members WHERE tenant_id = ? AND group_id = ? AND member_id = ?")
        .map_err(internal)?;
    if net.replace_all {
        // Replace: remove exactly the current members that are not kept.
        let mut current = tx
            .prepare_cached("SELECT member_id FROM members WHERE tenant_id = ? AND group_id = ?")
            .map_err(internal)?;
        let ids: Vec<String> = current
            .query_map(params![tenant, group], |r| r.get(0))
            .map_err(internal)?
            .collect::<Result<_, _>>()
            .map_err(internal)?;
        for id in ids {
            if !net.add.iter().any(|a| a.value == id) {
                changed += delete.execute(params![tenant, group, id]).map_err(internal)?;
            }
        }
    } else {
        for id in &net.remove {
            changed += delete.execute(params![tenant, group, id]).map_err(internal)?;
        }
    }
    // An add keeps a display name given earlier unless it brings one; a
    // replace sets exactly what it was given.
    let upsert = if net.replace_all {
        "INSERT INTO members (tenant_id, group_id, member_id, member_type, display) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (tenant_id, group_id, member_id) DO UPDATE SET display = excluded.display \
         WHERE excluded.display IS NOT members.display"
    } else {
        "INSERT INTO members (tenant_id, group_id, member_id, member_type, display) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (tenant_id, group_id, member_id) DO UPDATE SET display = excluded.display \
         WHERE excluded.display IS NOT NULL AND excluded.display IS NOT members.display"
    };
    let mut insert = tx.prepare_cached(upsert).map_err(internal)?;
    for (m, kind) in resolved {
        changed += insert
            .execute(params![tenant, group, m.value, kind, m.display])
            .map_err(internal)?;
    }
    Ok(changed)
}

struct TxMembers<'a> {
    tx: &'a Connection,
    tenant: TenantId,
    group: String,
}

impl MemberAccess for TxMembers<'_> {
    fn list(&mut self) -> Result<Vec<Value>, ScimError> {
        let refs = list_members(self.tx, self.tenant, &self.group).map_err(|e| ScimError::internal(e.to_string()))?;
        Ok(refs
            .into_iter()
            .map(|m| serde_json::json!({"value": m.value, "type": m.kind, "display": m.display}))
            .collect())
    }
}

fn list_members(c: &Connection, tenant: TenantId, group: &str) -> StoreResult<Vec<Reference>> {
    let mut stmt = c
        .prepare_cached(
            "SELECT m.member_id, m.member_type, COALESCE(m.display, json_extract(r.doc, '$.displayName'), json_extract(r.doc, '$.userName')) \
             FROM members m LEFT JOIN resources r ON r.tenant_id = m.tenant_id AND r.id = m.member_id \
             WHERE m.tenant_id = ? AND m.group_id = ? ORDER BY m.member_id",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![tenant, group], |r| {
            Ok(Reference {
                value: r.get(0)?,
                kind: r.get(1)?,
                display: r.get(2)?,
            })
        })
        .map_err(internal)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(internal)
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_tenant(&self, name: &str) -> StoreResult<Tenant> {
        let name = name.to_string();
        self.write(move |tx| {
            let now = now_utc();
            exec(
                tx,
                "INSERT INTO tenants (name, created) VALUES (?, ?)",
                params![name, now],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    StoreError::Conflict("name".into())
                }
                e => internal(e),
            })?;
            Ok(Tenant {
                id: tx.last_insert_rowid(),
                name,
                created: now,
            })
        })
        .await
    }

    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>> {
        self.read(|c| {
            let mut stmt = c
                .prepare("SELECT id, name, created FROM tenants ORDER BY name")
                .map_err(internal)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(Tenant {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        created: r.get(2)?,
                    })
                })
                .map_err(internal)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(internal)
        })
        .await
    }

    async fn tenant(&self, name: &str) -> StoreResult<Option<Tenant>> {
        let name = name.to_string();
        self.read(move |c| {
            row(c, "SELECT id, name, created FROM tenants WHERE name = ?", [name], |r| {
                Ok(Tenant {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    created: r.get(2)?,
                })
            })
            .optional()
            .map_err(internal)
        })
        .await
    }

    async fn delete_tenant(&self, name: &str) -> StoreResult<bool> {
        let name = name.to_string();
        self.write(move |tx| {
            let id: Option<i64> = row(tx, "SELECT id FROM tenants WHERE name = ?", [&name], |r| r.get(0))
                .optional()
                .map_err(internal)?;
            let Some(id) = id else { return Ok(false) };
            exec(tx, "DELETE FROM members WHERE tenant_id = ?", [id]).map_err(internal)?;
            exec(tx, "DELETE FROM resources WHERE tenant_id = ?", [id]).map_err(internal)?;
            exec(tx, "DELETE FROM tokens WHERE tenant_id = ?", [id]).map_err(internal)?;
            exec(tx, "DELETE FROM tenants WHERE id = ?", [id]).map_err(internal)?;
            Ok(true)
        })
        .await
    }

    async fn create_token(
        &self,
        tenant: TenantId,
        id: &str,
        label: &str,
        hint: &str,
        scope: &str,
        hash: &[u8; 32],
    ) -> StoreResult<TokenInfo> {
        let (id, label, hint, scope, hash) = (
            id.to_string(),
            label.to_string(),
            hint.to_string(),
            scope.to_string(),
            hash.to_vec(),
        );
        self.write(move |tx| {
            let now = now_utc();
            exec(
                tx,
                "INSERT INTO tokens (id, tenant_id, label, hint, hash, created, scope) VALUES (?, ?, ?, ?, ?, ?, ?)",
                params![id, tenant, label, hint, hash, now, scope],
            )
            .map_err(internal)?;
            row(
                tx,
                &format!("SELECT {TOKEN_COLS} FROM tokens t JOIN tenants n ON n.id = t.tenant_id WHERE t.id = ?"),
                [&id],
                token_from_row,
            )
            .map_err(internal)
        })
        .await
    }

    async fn list_tokens(&self, tenant: TenantId) -> StoreResult<Vec<TokenInfo>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare(&format!("SELECT {TOKEN_COLS} FROM tokens t JOIN tenants n ON n.id = t.tenant_id WHERE t.tenant_id = ? ORDER BY t.created, t.id"))
                .map_err(internal)?;
            let rows = stmt.query_map([tenant], token_from_row).map_err(internal)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(internal)
        })
        .await
    }

    async fn revoke_token(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_string();
        self.write(move |tx| {
            let n = tx
                .execute(
                    "UPDATE tokens SET revoked = ? WHERE id = ? AND revoked IS NULL",
                    params![now_utc(), id],
                )
                .map_err(internal)?;
            Ok(n > 0)
        })
        .await
    }

    async fn token_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<TokenInfo>> {
        let hash = hash.to_vec();
        self.read_now(|c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {TOKEN_COLS}, t.hash FROM tokens t JOIN tenants n ON n.id = t.tenant_id WHERE t.hash = ? AND t.revoked IS NULL AND (t.expires IS NULL OR t.expires > ?)"
                ))
                .map_err(internal)?;
            let row = stmt
                .query_row(params![&hash, now_utc()], |r| Ok((token_from_row(r)?, r.get::<_, Vec<u8>>(11)?)))
                .optional()
                .map_err(internal)?;
            Ok(row.and_then(|(info, stored)| {
                let stored: [u8; 32] = stored.try_into().ok()?;
                let given: [u8; 32] = hash.clone().try_into().ok()?;
                scimitar_auth::hashes_equal(&stored, &given).then_some(info)
            }))
        })
    }

    async fn set_token_expiry(&self, id: &str, expires: Option<&str>) -> StoreResult<bool> {
        let (id, expires) = (id.to_string(), expires.map(str::to_string));
        self.write(move |tx| {
            let n = tx
                .execute("UPDATE tokens SET expires = ? WHERE id = ?", params![expires, id])
                .map_err(internal)?;
            Ok(n > 0)
        })
        .await
    }

    async fn touch_token(&self, id: &str, now: &str) -> StoreResult<()> {
        let (id, now) = (id.to_string(), now.to_string());
        self.write(move |tx| {
            exec(tx, "UPDATE tokens SET last_used = ? WHERE id = ?", params![now, id]).map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn create(
        &self,
        tenant: TenantId,
        kind: Kind,
        id: &str,
        doc: Map<String, Value>,
        members: Vec<MemberRef>,
        now: &str,
        activity: Option<ActivityEvent>,
    ) -> StoreResult<Record> {
        let (id, now) = (id.to_string(), now.to_string());
        // Serialised here, not on the writer thread that every write waits for.
        let (un, dn, ext) = columns(kind, &doc);
        let text = serde_json::to_string(&doc).map_err(internal)?;
        let log = activity.map(serialise_changes).transpose()?;
        self.write(move |tx| {
            exec(
                tx,
                "INSERT INTO resources (tenant_id, kind, id, user_name_ci, display_name_ci, external_id, version, created, modified, doc) \
                 VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
                params![tenant, kind.as_str(), id, un, dn, ext, now, now, text],
            )
            .map_err(|e| map_unique(e, kind))?;
            let seq = tx.last_insert_rowid();
            if !members.is_empty() {
                apply_member_ops(tx, tenant, &id, &[MemberOp::Add(members)])?;
            }
            if let Some((e, changes)) = &log {
                insert_activity(tx, e, changes).map_err(internal)?;
            }
            Ok(Record { seq, id, kind, doc, created: now.clone(), last_modified: now, version: 1 })
        })
        .await
    }

    async fn get(&self, tenant: TenantId, kind: Kind, id: &str) -> StoreResult<Option<Record>> {
        let id = id.to_string();
        self.read_now(|c| get_record(c, tenant, kind, &id))
    }

    async fn modify(
        &self,
        tenant: TenantId,
        kind: Kind,
        id: &str,
        if_match: Option<u64>,
        now: &str,
        f: ModifyFn,
    ) -> StoreResult<Record> {
        if kind == Kind::User {
            // Users have no members: compute the change here, on the
            // caller's thread, and let the single writer only check that the
            // version is still the one read (retrying if it moved). The
            // writer thread is the bottleneck of every write, so it should
            // do no parsing, patching or serialising that others can do.
            for _ in 0..3 {
                let current = self
                    .read_now(|c| get_record(c, tenant, kind, id))?
                    .ok_or(StoreError::NotFound)?;
                if if_match.is_some_and(|v| v != current.version) {
                    return Err(StoreError::PreconditionFailed);
                }
                let mut mutation = f(&current, &mut scimitar_protocol::patch::NoMembers)?;
                if mutation.doc == current.doc {
                    return Ok(current); // nothing changed: same version
                }
                let log = mutation.activity.take().map(serialise_changes).transpose()?;
                let cols = changed_columns(kind, &current.doc, &mutation.doc);
                let text = serde_json::to_string(&mutation.doc).map_err(internal)?;
                let (read, version) = (current.version, current.version + 1);
                let (id2, now2) = (id.to_string(), now.to_string());
                let updated = self
                    .write(move |tx| {
                        let n = update_resource(tx, tenant, kind, &id2, cols, read, &now2, &text)?;
                        if n == 1
                            && let Some((e, changes)) = &log
                        {
                            insert_activity(tx, e, changes).map_err(internal)?;
                        }
                        Ok(n == 1)
                    })
                    .await?;
                if updated {
                    return Ok(Record {
                        version,
                        last_modified: now.to_string(),
                        doc: mutation.doc,
                        ..current
                    });
                }
            }
            // Contended: fall back to doing it all inside the writer.
        }
        let (id, now) = (id.to_string(), now.to_string());
        self.write(move |tx| {
            let current = get_record(tx, tenant, kind, &id)?.ok_or(StoreError::NotFound)?;
            if if_match.is_some_and(|v| v != current.version) {
                return Err(StoreError::PreconditionFailed);
            }
            let mutation = {
                let mut access = TxMembers {
                    tx,
                    tenant,
                    group: id.clone(),
                };
                f(&current, &mut access)?
            };
            let changed_members = if kind == Kind::Group {
                apply_member_ops(tx, tenant, &id, &mutation.member_ops)?
            } else {
                0
            };
            if mutation.doc == current.doc && changed_members == 0 {
                return Ok(current); // nothing changed: same version
            }
            let cols = changed_columns(kind, &current.doc, &mutation.doc);
            let text = serde_json::to_string(&mutation.doc).map_err(internal)?;
            let version = current.version + 1;
            update_resource(tx, tenant, kind, &id, cols, current.version, &now, &text)?;
            if let Some(e) = &mutation.activity {
                let changes = serde_json::to_string(&e.changes).map_err(internal)?;
                insert_activity(tx, e, &changes).map_err(internal)?;
            }
            Ok(Record {
                seq: current.seq,
                id,
                kind,
                doc: mutation.doc,
                created: current.created,
                last_modified: now,
                version,
            })
        })
        .await
    }

    async fn delete(&self, tenant: TenantId, kind: Kind, id: &str, if_match: Option<u64>) -> StoreResult<()> {
        let id = id.to_string();
        self.write(move |tx| {
            let version: Option<i64> = row(
                tx,
                &format!(
                    "SELECT version FROM resources WHERE tenant_id = ? AND kind = '{}' AND id = ?",
                    kind.as_str()
                ),
                params![tenant, id],
                |r| r.get(0),
            )
            .optional()
            .map_err(internal)?;
            let Some(version) = version else {
                return Err(StoreError::NotFound);
            };
            if if_match.is_some_and(|v| Some(v) != u64::try_from(version).ok()) {
                return Err(StoreError::PreconditionFailed);
            }
            exec(
                tx,
                "DELETE FROM resources WHERE tenant_id = ? AND id = ?",
                params![tenant, id],
            )
            .map_err(internal)?;
            // A deleted user or group leaves every group; a deleted group's
            // membership list goes with it.
            exec(
                tx,
                "DELETE FROM members WHERE tenant_id = ? AND (member_id = ? OR group_id = ?)",
                params![tenant, id, id],
            )
            .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn list(&self, tenant: TenantId, q: ListQuery) -> StoreResult<Page> {
        // Matching queries on a unique indexed attribute (Entra's and Okta's
        // `userName eq`, `externalId eq`, `displayName eq`) are point reads:
        // run them here; anything that may scan goes to the blocking pool.
        if q.filter
            .as_ref()
            .is_some_and(|f| sql::is_point_lookup(&q.rt, q.kind, f))
            && q.sort.is_none()
            && q.cursor.is_none()
        {
            return self.read_now(|c| list_page(c, tenant, &q));
        }
        self.read(move |c| list_page(c, tenant, &q)).await
    }

    async fn members(&self, tenant: TenantId, group: &str) -> StoreResult<Vec<Reference>> {
        let group = group.to_string();
        self.read(move |c| list_members(c, tenant, &group)).await
    }

    async fn groups_of(&self, tenant: TenantId, user: &str) -> StoreResult<Vec<Reference>> {
        let user = user.to_string();
        self.read_now(|c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT m.group_id, json_extract(g.doc, '$.displayName') FROM members m \
                     JOIN resources g ON g.tenant_id = m.tenant_id AND g.id = m.group_id \
                     WHERE m.tenant_id = ? AND m.member_id = ? ORDER BY g.seq",
                )
                .map_err(internal)?;
            let rows = stmt
                .query_map(params![tenant, user], |r| {
                    Ok(Reference {
                        value: r.get(0)?,
                        kind: "Group".into(),
                        display: r.get(1)?,
                    })
                })
                .map_err(internal)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(internal)
        })
    }

    async fn ready(&self) -> StoreResult<()> {
        self.read(|c| {
            let applied: i64 = row(c, "SELECT count(*) FROM schema_migrations", [], |r| r.get(0)).map_err(internal)?;
            if usize::try_from(applied).unwrap_or(0) < MIGRATIONS.len() {
                return Err(StoreError::Internal(format!(
                    "{applied} of {} migrations applied",
                    MIGRATIONS.len()
                )));
            }
            Ok(())
        })
        .await
    }

    async fn display_name(&self, tenant: TenantId, id: &str) -> StoreResult<Option<String>> {
        let id = id.to_string();
        self.read_now(|c| {
            let v: Option<Option<String>> = row(
                c,
                "SELECT json_extract(doc, '$.displayName') FROM resources WHERE tenant_id = ? AND id = ?",
                params![tenant, id],
                |r| r.get(0),
            )
            .optional()
            .map_err(internal)?;
            Ok(v.flatten())
        })
    }

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

    async fn put_extension(&self, tenant: TenantId, ext: ExtensionRecord) -> StoreResult<()> {
        self.write(move |tx| {
            let text = serde_json::to_string(&ext.schema).map_err(internal)?;
            exec(
                tx,
                "INSERT INTO extensions (tenant_id, urn, resource_type, required, schema) VALUES (?, ?, ?, ?, ?) \
                 ON CONFLICT (tenant_id, urn) DO UPDATE SET resource_type = excluded.resource_type, \
                 required = excluded.required, schema = excluded.schema",
                params![tenant, ext.urn, ext.resource_type, ext.required, text],
            )
            .map_err(internal)?;
            exec(
                tx,
                "UPDATE tenants SET schema_version = schema_version + 1 WHERE id = ?",
                [tenant],
            )
            .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn list_extensions(&self, tenant: TenantId) -> StoreResult<Vec<ExtensionRecord>> {
        self.read_now(|c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT resource_type, urn, schema, required FROM extensions WHERE tenant_id = ? ORDER BY urn",
                )
                .map_err(internal)?;
            let rows = stmt
                .query_map([tenant], |r| {
                    let text: String = r.get(2)?;
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        text,
                        r.get::<_, bool>(3)?,
                    ))
                })
                .map_err(internal)?;
            let mut out = Vec::new();
            for row in rows {
                let (resource_type, urn, text, required) = row.map_err(internal)?;
                let schema = serde_json::from_str(&text).map_err(internal)?;
                out.push(ExtensionRecord {
                    resource_type,
                    urn,
                    schema,
                    required,
                });
            }
            Ok(out)
        })
    }

    async fn delete_extension(&self, tenant: TenantId, urn: &str) -> StoreResult<bool> {
        let urn = urn.to_string();
        self.write(move |tx| {
            let n = tx
                .execute(
                    "DELETE FROM extensions WHERE tenant_id = ? AND urn = ?",
                    params![tenant, urn],
                )
                .map_err(internal)?;
            exec(
                tx,
                "UPDATE tenants SET schema_version = schema_version + 1 WHERE id = ?",
                [tenant],
            )
            .map_err(internal)?;
            Ok(n > 0)
        })
        .await
    }

    async fn record_activity(&self, e: ActivityEvent) -> StoreResult<()> {
        let (e, changes) = serialise_changes(e)?;
        self.write(move |tx| insert_activity(tx, &e, &changes).map(|_| ()).map_err(internal))
            .await
    }

    async fn list_activity(&self, tenant: TenantId, q: ActivityQuery) -> StoreResult<Vec<ActivityEvent>> {
        self.read(move |c| {
            use rusqlite::types::Value as Sql;
            let mut sql = String::from(
                "SELECT id, tenant_id, time, token_id, token_label, action, resource_type, resource_id, name, changes, \
                 outcome, status, error, method, path FROM activity WHERE tenant_id = ?",
            );
            let mut p: Vec<Sql> = vec![Sql::Integer(tenant)];
            if let Some(v) = q.since {
                sql.push_str(" AND time >= ?");
                p.push(Sql::Text(v));
            }
            if let Some(v) = q.until {
                sql.push_str(" AND time < ?");
                p.push(Sql::Text(v));
            }
            if let Some(v) = q.action {
                sql.push_str(" AND action = ?");
                p.push(Sql::Text(v));
            }
            if let Some(v) = q.outcome {
                sql.push_str(" AND outcome = ?");
                p.push(Sql::Text(v));
            }
            if let Some(v) = q.text {
                sql.push_str(
                    " AND (instr(scim_lower(coalesce(name, '')), ?1x) > 0 OR instr(scim_lower(coalesce(resource_id, '')), ?1x) > 0 \
                     OR instr(scim_lower(coalesce(error, '')), ?1x) > 0 OR instr(scim_lower(changes), ?1x) > 0)",
                );
                let v = v.to_lowercase();
                // Positional parameters: bind the needle four times.
                sql = sql.replace("?1x", "?");
                for _ in 0..4 {
                    p.push(Sql::Text(v.clone()));
                }
            }
            if let Some(v) = q.before_id {
                sql.push_str(" AND id < ?");
                p.push(Sql::Integer(v));
            }
            sql.push_str(" ORDER BY id DESC LIMIT ?");
            p.push(Sql::Integer(i64::try_from(q.limit.max(1)).unwrap_or(1000)));
            let mut stmt = c.prepare(&sql).map_err(internal)?;
            let rows = stmt
                .query_map(params_from_iter(p.iter()), |r| {
                    let changes: String = r.get(9)?;
                    Ok(ActivityEvent {
                        id: r.get(0)?,
                        tenant_id: r.get(1)?,
                        time: r.get(2)?,
                        token_id: r.get(3)?,
                        token_label: r.get(4)?,
                        action: r.get(5)?,
                        resource_type: r.get(6)?,
                        resource_id: r.get(7)?,
                        name: r.get(8)?,
                        changes: serde_json::from_str(&changes).unwrap_or(Value::Null),
                        outcome: r.get(10)?,
                        status: r.get(11)?,
                        error: r.get(12)?,
                        method: r.get(13)?,
                        path: r.get(14)?,
                    })
                })
                .map_err(internal)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(internal)
        })
        .await
    }

    async fn count_reads(&self, tenant: TenantId, hour: &str, n: u64) -> StoreResult<()> {
        let hour = hour.to_string();
        self.write(move |tx| {
            exec(
                tx,
                "INSERT INTO read_counts (tenant_id, hour, count) VALUES (?, ?, ?) \
                 ON CONFLICT (tenant_id, hour) DO UPDATE SET count = count + excluded.count",
                params![tenant, hour, i64::try_from(n).unwrap_or(i64::MAX)],
            )
            .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn read_counts(&self, tenant: TenantId, since_hour: &str) -> StoreResult<Vec<ReadCount>> {
        let since = since_hour.to_string();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached("SELECT hour, count FROM read_counts WHERE tenant_id = ? AND hour >= ? ORDER BY hour")
                .map_err(internal)?;
            let rows = stmt
                .query_map(params![tenant, since], |r| {
                    Ok(ReadCount {
                        hour: r.get(0)?,
                        count: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    })
                })
                .map_err(internal)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(internal)
        })
        .await
    }

    async fn record_audit(&self, e: AuditEvent) -> StoreResult<()> {
        self.write(move |tx| {
            exec(tx,
                "INSERT INTO audit (time, tenant_id, actor, action, target, detail, source) VALUES (?, ?, ?, ?, ?, ?, ?)",
                params![e.time, e.tenant_id, e.actor, e.action, e.target, e.detail, e.source],
            )
            .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn list_audit(&self, tenant: Option<TenantId>, limit: usize) -> StoreResult<Vec<AuditEvent>> {
        self.read(move |c| {
            let limit = i64::try_from(limit.clamp(1, 10_000)).unwrap_or(100);
            let map = |r: &rusqlite::Row<'_>| {
                Ok(AuditEvent {
                    id: r.get(0)?,
                    time: r.get(1)?,
                    tenant_id: r.get(2)?,
                    actor: r.get(3)?,
                    action: r.get(4)?,
                    target: r.get(5)?,
                    detail: r.get(6)?,
                    source: r.get(7)?,
                })
            };
            let cols = "SELECT id, time, tenant_id, actor, action, target, detail, source FROM audit";
            let rows = match tenant {
                Some(t) => {
                    let mut stmt = c
                        .prepare(&format!("{cols} WHERE tenant_id = ? ORDER BY id DESC LIMIT ?"))
                        .map_err(internal)?;
                    stmt.query_map(params![t, limit], map)
                        .map_err(internal)?
                        .collect::<Result<Vec<_>, _>>()
                }
                None => {
                    let mut stmt = c
                        .prepare(&format!("{cols} ORDER BY id DESC LIMIT ?"))
                        .map_err(internal)?;
                    stmt.query_map(params![limit], map)
                        .map_err(internal)?
                        .collect::<Result<Vec<_>, _>>()
                }
            };
            rows.map_err(internal)
        })
        .await
    }

    async fn purge_activity(&self, before: &str) -> StoreResult<u64> {
        let before = before.to_string();
        self.write(move |tx| {
            let n = tx
                .execute("DELETE FROM activity WHERE time < ?", [&before])
                .map_err(internal)?;
            let hour: String = before.chars().take(13).collect();
            exec(tx, "DELETE FROM read_counts WHERE hour < ?", [&hour]).map_err(internal)?;
            Ok(n as u64)
        })
        .await
    }
}

/// The SQL of one list query: `filter` is its `FROM … WHERE …` (counted for
/// `totalResults`), `select` the page's statement (none for `count=0`).
struct PageSql {
    filter: sql::Builder,
    select: Option<sql::Builder>,
}

fn page_sql(tenant: TenantId, q: &ListQuery) -> StoreResult<PageSql> {
    use rusqlite::types::Value as Sql;
    let mut w = sql::Builder::default();
    // The kind is one of two constants, written as a literal.
    w.sql.push_str(" FROM resources r WHERE r.tenant_id = ? AND r.kind = '");
    w.sql.push_str(q.kind.as_str());
    w.sql.push('\'');
    w.params.push(Sql::Integer(tenant));
    if let Some(f) = &q.filter {
        w.sql.push_str(" AND ");
        sql::lower_filter(&mut w, &q.rt, q.kind, f)?;
    }
    let limit = i64::try_from(q.count).unwrap_or(i64::MAX);
    let mut sel = sql::Builder {
        sql: format!("SELECT {RECORD_COLS}{}", w.sql),
        params: w.params.clone(),
    };
    // Limits are literals: SQLite re-plans an `ORDER BY … LIMIT ?` statement
    // on every execution (the bound limit feeds the planner), which would
    // cost a full prepare on each matching query.
    if let Some(pos) = q.cursor {
        // Keyset paging on the primary key: the same cost for every page.
        let (cmp, order, key) = match pos {
            CursorPos::After(k) => (" AND r.seq > ?", " ORDER BY r.seq ASC", k),
            CursorPos::Before(k) => (" AND r.seq < ?", " ORDER BY r.seq DESC", k),
        };
        sel.sql.push_str(cmp);
        sel.params.push(Sql::Integer(key));
        sel.sql.push_str(order);
        sel.sql.push_str(&format!(" LIMIT {}", limit.saturating_add(1)));
    } else if q.count == 0 {
        return Ok(PageSql {
            filter: w,
            select: None,
        });
    } else {
        match &q.sort {
            Some(s) => sql::order_by(&mut sel, &q.rt, q.kind, &s.by, s.order)?,
            None => sel.sql.push_str(" ORDER BY r.seq"),
        }
        sel.sql.push_str(&format!(" LIMIT {limit}"));
        if q.start_index > 1 {
            sel.sql.push_str(" OFFSET ?");
            sel.params.push(Sql::Integer(
                i64::try_from(q.start_index.saturating_sub(1)).unwrap_or(i64::MAX),
            ));
        }
    }
    Ok(PageSql {
        filter: w,
        select: Some(sel),
    })
}

/// One page of a list query (and its total).
fn list_page(c: &Connection, tenant: TenantId, q: &ListQuery) -> StoreResult<Page> {
    let PageSql { filter, select } = page_sql(tenant, q)?;
    let count_all = || -> StoreResult<u64> {
        let total: i64 = if q.filter.is_none() {
            // Kept by triggers (migration 0008): no count over the tenant.
            row(
                c,
                "SELECT n FROM resource_counts WHERE tenant_id = ? AND kind = ?",
                params![tenant, q.kind.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(internal)?
            .unwrap_or(0)
        } else {
            row(
                c,
                &format!("SELECT count(*){}", filter.sql),
                params_from_iter(filter.params.iter()),
                |r| r.get(0),
            )
            .map_err(internal)?
        };
        Ok(u64::try_from(total).unwrap_or(0))
    };
    let Some(sel) = select else {
        return Ok(Page {
            total: count_all()?,
            records: Vec::new(),
            has_more: false,
        });
    };
    let mut records = {
        let mut stmt = c.prepare_cached(&sel.sql).map_err(internal)?;
        let rows = stmt
            .query_map(params_from_iter(sel.params.iter()), record_from_row)
            .map_err(internal)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(internal)?
    };
    if let Some(pos) = q.cursor {
        let has_more = records.len() > q.count;
        records.truncate(q.count);
        if matches!(pos, CursorPos::Before(_)) {
            records.reverse();
        }
        return Ok(Page {
            total: count_all()?,
            records,
            has_more,
        });
    }
    // A first page that is not full is the whole result: no count needed
    // (the common case of a matching query).
    let total = if q.start_index <= 1 && records.len() < q.count {
        records.len() as u64
    } else {
        count_all()?
    };
    Ok(Page {
        total,
        records,
        has_more: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entra's and Okta's matching queries keep one prepared plan: SQLite
    /// re-prepares a statement whose bound values feed the planner (a
    /// bound `LIMIT` under `ORDER BY`), which once cost a fifth of a
    /// lookup's CPU.
    #[test]
    fn matching_queries_are_never_re_prepared() {
        let dir = std::env::temp_dir().join(format!("scimitar-reprepare-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("s.db");
        drop(SqliteStore::open(&path).expect("open"));
        let c = open_reader(&path).expect("reader");
        let rts = scimitar_protocol::schema::resource_types_with(&[]);
        for (kind, filter) in [
            (Kind::User, "userName eq \"{}\""),
            (Kind::User, "externalId eq \"{}\""),
            (Kind::Group, "displayName eq \"{}\""),
            (Kind::User, "emails[type eq \"work\"].value eq \"{}\""),
        ] {
            let rt = std::sync::Arc::new(
                rts.iter()
                    .find(|rt| rt.name == kind.as_str())
                    .expect("resource type")
                    .clone(),
            );
            let mut sql = None;
            for i in 0..5 {
                let text = filter.replace("{}", &format!("u{i}@example.com"));
                let q = ListQuery {
                    kind,
                    rt: rt.clone(),
                    filter: Some(scimitar_protocol::filter::parse_filter(&text).expect("filter")),
                    sort: None,
                    start_index: 1,
                    count: 100,
                    cursor: None,
                };
                list_page(&c, 1, &q).expect("list");
                sql = page_sql(1, &q).expect("sql").select.map(|s| s.sql);
            }
            let stmt = c.prepare_cached(&sql.expect("a select")).expect("cached");
            assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0, "{filter}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
