//! The PostgreSQL backend of Scimitar's [`Store`].
//!
//! A deadpool pool of tokio-postgres connections (no TLS yet). Documents
//! are JSONB; filters, sorting and paging run in PostgreSQL (see `sql`).
//! Writes run in READ COMMITTED transactions that lock the rows they
//! change (`SELECT … FOR UPDATE`), so several server processes can share
//! one database without losing updates; serialisation failures and
//! deadlocks (SQLSTATE 40001/40P01) are retried. The SQL avoids
//! extensions, advisory locks and LISTEN/NOTIFY to stay portable to
//! CockroachDB and YugabyteDB.

mod connect;
mod console;
mod engine;
mod events;
mod lease;
mod logs;
mod resources;
mod schemas;
mod sql;
mod tenants;
pub mod test_support;
mod tokens;
mod webhooks;

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use scimitar_protocol::ScimError;
use scimitar_store::migrations::{CORE, ENGINE, EVENTS, MigrationSet, Step, WEBHOOKS, total_steps};
use scimitar_store::{ActivityEvent, SecretStore, Store, StoreError, StoreResult, now_utc};
use tokio_postgres::error::SqlState;
use tokio_postgres::{IsolationLevel, NoTls, Row};

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
        "0008_unique_values",
        include_str!("../migrations/0008_unique_values.sql"),
    ),
    (
        "0009_console_invites",
        include_str!("../migrations/0009_console_invites.sql"),
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
        "0003_cheaper_events",
        include_str!("../migrations/events/0003_cheaper_events.sql"),
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

/// Attempts of a transaction that fails with a retryable error.
pub(crate) const MAX_ATTEMPTS: u32 = 6;

#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// How long a list query may run, in milliseconds (its transaction's
    /// `statement_timeout`; see `Store::limit_query_time`).
    query_time_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// A test's schema, dropped when the last clone of a store made by
    /// [`test_support::fresh_store`] goes (declared after `pool`, so the
    /// pool's connections go first). `None` outside tests.
    schema: Option<std::sync::Arc<test_support::TestSchema>>,
}

/// How long a list query may run until told otherwise (milliseconds): the
/// server's default request timeout.
const DEFAULT_QUERY_TIME_MS: u64 = 30_000;

/// A pooled connection running a query that must not outlive its caller:
/// if this is dropped before [`Abandonable::finish`] (the caller stopped
/// waiting, or the query failed), the connection leaves the pool, its
/// running query is cancelled and it is closed. Left in the pool it could
/// serve another query before the cancel request arrives and be cancelled
/// in that query's place.
pub(crate) struct Abandonable {
    client: Option<deadpool_postgres::Object>,
}

impl Abandonable {
    pub(crate) fn new(client: deadpool_postgres::Object) -> Self {
        Abandonable { client: Some(client) }
    }

    pub(crate) fn client(&self) -> StoreResult<&deadpool_postgres::Object> {
        self.client
            .as_ref()
            .ok_or_else(|| StoreError::Internal("the connection is gone".into()))
    }

    /// The query is over and its transaction ended: the connection may
    /// serve others.
    pub(crate) fn finish(mut self) {
        drop(self.client.take());
    }
}

impl Drop for Abandonable {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else { return };
        let client = deadpool_postgres::Object::take(client);
        let token = client.cancel_token();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    let _ = token.cancel_query(NoTls).await;
                    drop(client);
                });
            }
            // No runtime to cancel from: closing the connection ends the
            // transaction; the query stops at its statement_timeout.
            Err(_) => drop(client),
        }
    }
}

pub(crate) fn internal(e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(e.to_string())
}

/// An error inside a transaction: database errors keep their SQLSTATE so
/// that the retry loop can tell a serialisation failure from a bug.
pub(crate) enum TxError {
    Db(tokio_postgres::Error),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for TxError {
    fn from(e: tokio_postgres::Error) -> Self {
        TxError::Db(e)
    }
}
impl From<StoreError> for TxError {
    fn from(e: StoreError) -> Self {
        TxError::Store(e)
    }
}
impl From<ScimError> for TxError {
    fn from(e: ScimError) -> Self {
        TxError::Store(StoreError::Invalid(e))
    }
}

pub(crate) fn retryable(e: &tokio_postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED)
}

/// Maps a database error to the store's vocabulary: unique violations to
/// `Conflict` on the attribute their index guards.
pub(crate) fn db_error(e: tokio_postgres::Error) -> StoreError {
    let Some(code) = e.code() else { return internal(e) };
    // tokio-postgres says only "db error"; the server's message and code
    // say what went wrong.
    let internal = |e: tokio_postgres::Error| match e.as_db_error() {
        Some(d) => StoreError::Internal(format!("{} (SQLSTATE {})", d.message(), d.code().code())),
        None => internal(e),
    };
    if *code == SqlState::UNIQUE_VIOLATION {
        let constraint = e.as_db_error().and_then(|d| d.constraint()).unwrap_or_default();
        let attr = match constraint {
            "users_user_name" => "userName",
            "groups_display_name" => "displayName",
            "resources_id" => "id",
            "tenants_name_key" => "name",
            _ => "id",
        };
        return StoreError::Conflict(attr.into());
    }
    // NUL characters: PostgreSQL text and JSONB cannot hold them.
    if *code == SqlState::UNTRANSLATABLE_CHARACTER || *code == SqlState::CHARACTER_NOT_IN_REPERTOIRE {
        return StoreError::Invalid(ScimError::invalid_value("values cannot contain NUL characters"));
    }
    // statement_timeout, or the cancel of an abandoned query.
    if *code == SqlState::QUERY_CANCELED {
        return StoreError::Timeout;
    }
    internal(e)
}

impl TxError {
    fn into_store(self) -> StoreError {
        match self {
            TxError::Db(e) => db_error(e),
            TxError::Store(e) => e,
        }
    }
}

pub(crate) fn backoff(attempt: u32) -> Duration {
    // Exponential with a little per-process jitter so retrying writers spread out.
    let jitter = u64::from(std::process::id() % 7) + u64::from(attempt);
    Duration::from_millis((5u64 << attempt.min(6)) + jitter)
}

// Statements of fixed text run prepared, once per connection and then kept:
// sent as plain text, PostgreSQL parses and plans every one again, which
// was most of its CPU per request (a lookup, a PATCH, a create).

pub(crate) async fn pg_execute(
    c: &impl deadpool_postgres::GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<u64, tokio_postgres::Error> {
    let stmt = c.prepare_cached(sql).await?;
    c.execute(&stmt, params).await
}

pub(crate) async fn pg_query(
    c: &impl deadpool_postgres::GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let stmt = c.prepare_cached(sql).await?;
    c.query(&stmt, params).await
}

pub(crate) async fn pg_query_one(
    c: &impl deadpool_postgres::GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Row, tokio_postgres::Error> {
    let stmt = c.prepare_cached(sql).await?;
    c.query_one(&stmt, params).await
}

pub(crate) async fn pg_query_opt(
    c: &impl deadpool_postgres::GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Option<Row>, tokio_postgres::Error> {
    let stmt = c.prepare_cached(sql).await?;
    c.query_opt(&stmt, params).await
}

const INSERT_ACTIVITY: &str = "INSERT INTO activity (tenant_id, time, token_id, token_label, action, resource_type, resource_id, \
     name, changes, outcome, status, error, method, path, change_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";

/// The activity insert, prepared once per connection (for pipelining:
/// see [`PipelinedTx`]).
pub(crate) async fn prepare_activity(
    c: &impl deadpool_postgres::GenericClient,
) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
    c.prepare_cached(INSERT_ACTIVITY).await
}

/// Runs the prepared activity insert for `e`.
pub(crate) async fn run_activity(
    c: &impl deadpool_postgres::GenericClient,
    stmt: &tokio_postgres::Statement,
    e: &ActivityEvent,
) -> Result<(), tokio_postgres::Error> {
    let changes = e.changes.to_string();
    let status = i32::from(e.status);
    c.execute(
        stmt,
        &[
            &e.tenant_id,
            &e.time,
            &e.token_id,
            &e.token_label,
            &e.action,
            &e.resource_type,
            &e.resource_id,
            &e.name,
            &changes,
            &e.outcome,
            &status,
            &e.error,
            &e.method,
            &e.path,
            &e.change,
        ],
    )
    .await
    .map(|_| ())
}

/// One activity log entry, on a connection or inside a transaction.
pub(crate) async fn insert_activity(
    c: &impl deadpool_postgres::GenericClient,
    e: &ActivityEvent,
) -> Result<(), tokio_postgres::Error> {
    let stmt = prepare_activity(c).await?;
    run_activity(c, &stmt, e).await
}

/// A READ COMMITTED transaction whose `BEGIN` goes out with its first
/// statement and whose `COMMIT` with its last writes: tokio-postgres
/// pipelines requests polled together, so a PATCH is two round trips where
/// `Transaction` needs four, and a create one.
///
/// Statements pipelined with `BEGIN`/`COMMIT` must be prepared first
/// (`prepare_cached`): preparing is a round trip of its own, and a statement
/// still being prepared would be sent after the `COMMIT`. After a failed
/// statement PostgreSQL answers the pipelined `COMMIT` with a rollback, so
/// the statements' own results decide success, in the order sent.
///
/// Dropped while open (an early error return, or its caller gone) it rolls
/// back in the background and the connection returns to the pool after.
pub(crate) struct PipelinedTx {
    client: Option<deadpool_postgres::Object>,
    // Atomic only so that the statements' futures can borrow the client
    // while the state changes; one task uses it.
    open: std::sync::atomic::AtomicBool,
}

impl PipelinedTx {
    pub(crate) async fn connect(pool: &Pool) -> Result<Self, TxError> {
        let client = pool.get().await.map_err(|e| TxError::Store(internal(e)))?;
        Ok(PipelinedTx {
            client: Some(client),
            open: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub(crate) fn client(&self) -> Result<&deadpool_postgres::Object, TxError> {
        self.client
            .as_ref()
            .ok_or_else(|| TxError::Store(internal("the connection is gone")))
    }

    /// Marks the transaction open; call right before polling the `BEGIN`
    /// (so that a drop in between still rolls back: a `ROLLBACK` outside a
    /// transaction is only a warning).
    pub(crate) fn opening(&self) {
        self.open.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The `COMMIT` (or, after a failure, the rollback PostgreSQL made of it)
    /// was answered: the transaction is over.
    pub(crate) fn closed(&self) {
        self.open.store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// Commits on its own round trip (when the last statements could not be
    /// pipelined with it).
    pub(crate) async fn commit(&self) -> Result<(), TxError> {
        let r = self.client()?.batch_execute("COMMIT").await;
        self.closed();
        Ok(r?)
    }
}

/// The `BEGIN` of a [`PipelinedTx`].
pub(crate) const BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

impl Drop for PipelinedTx {
    fn drop(&mut self) {
        if !self.open.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let Some(client) = self.client.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    // Queued behind whatever is still running on the
                    // connection; the pool gets it back after.
                    if client.batch_execute("ROLLBACK").await.is_err() {
                        drop(deadpool_postgres::Object::take(client));
                    }
                });
            }
            // No runtime: close the connection, which ends the transaction.
            Err(_) => drop(deadpool_postgres::Object::take(client)),
        }
    }
}

/// Runs `$body` (an async block over a fresh [`PipelinedTx`] named `$tx`)
/// and retries it on serialisation failures and deadlocks, like `in_tx!`.
macro_rules! in_pipelined_tx {
    ($self:expr, |$tx:ident| $body:expr) => {{
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let r: Result<_, $crate::TxError> = async {
                let $tx = $crate::PipelinedTx::connect(&$self.pool).await?;
                $body
            }
            .await;
            match r {
                Err($crate::TxError::Db(e)) if attempt < $crate::MAX_ATTEMPTS && $crate::retryable(&e) => {
                    tokio::time::sleep($crate::backoff(attempt)).await
                }
                other => break other.map_err($crate::TxError::into_store),
            }
        }
    }};
}
pub(crate) use in_pipelined_tx;

/// Runs `$body` in a transaction on `$tx`, committing if it yields a value
/// and retrying the whole transaction on serialisation failures. `$body`
/// may use `?` on database, store and SCIM errors; an early `return`
/// rolls back.
macro_rules! in_tx {
    ($self:expr, $iso:expr, |$tx:ident| $body:block) => {{
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let r: Result<_, $crate::TxError> = async {
                let mut client = $self
                    .pool
                    .get()
                    .await
                    .map_err(|e| $crate::TxError::Store($crate::internal(e)))?;
                let $tx = client.build_transaction().isolation_level($iso).start().await?;
                let out = $body;
                $tx.commit().await?;
                Ok(out)
            }
            .await;
            match r {
                Err($crate::TxError::Db(e)) if attempt < $crate::MAX_ATTEMPTS && $crate::retryable(&e) => {
                    tokio::time::sleep($crate::backoff(attempt)).await
                }
                other => break other.map_err($crate::TxError::into_store),
            }
        }
    }};
}
pub(crate) use in_tx;

async fn migrate(pool: &Pool) -> StoreResult<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_migrate(pool).await {
            Ok(()) => return Ok(()),
            // Two processes migrating at once: the loser of a race on the
            // catalog retries and then sees the winner's work.
            Err(TxError::Db(e))
                if attempt < MAX_ATTEMPTS
                    && (retryable(&e)
                        || e.code().is_some_and(|c| {
                            *c == SqlState::UNIQUE_VIOLATION
                                || *c == SqlState::DUPLICATE_TABLE
                                || *c == SqlState::DUPLICATE_OBJECT
                        })
                        // Two sessions changing one catalog row at once.
                        || e.as_db_error().is_some_and(|d| {
                            *d.code() == SqlState::INTERNAL_ERROR && d.message().contains("concurrently")
                        })) =>
            {
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(e) => return Err(e.into_store()),
        }
    }
}

async fn try_migrate(pool: &Pool) -> Result<(), TxError> {
    let mut client = pool.get().await.map_err(|e| TxError::Store(internal(e)))?;
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")
        .await?;
    let tx = client.transaction().await?;
    for (name, sql) in MIGRATION_SETS.iter().flat_map(MigrationSet::keys) {
        // Claiming the row serialises concurrent migrators without advisory
        // locks: a second claimant waits on the primary key until the first
        // commits, then finds the row and skips the migration.
        let claimed = tx
            .execute(
                "INSERT INTO schema_migrations (name, applied) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&name, &now_utc()],
            )
            .await?;
        if claimed == 1 {
            tx.batch_execute(sql).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

impl PostgresStore {
    /// Connects (`postgres://user@host:port/db`, libpq-style options such
    /// as `?options=-csearch_path%3Dscim` allowed) and migrates.
    pub async fn connect(url: &str, pool_size: usize) -> StoreResult<Self> {
        probe(url).await?;
        let store = Self::pool(url, pool_size)?;
        migrate(&store.pool).await?;
        store.check_lower().await?;
        Ok(store)
    }

    /// Applies pending migrations and returns.
    pub async fn migrate_only(url: &str) -> StoreResult<()> {
        probe(url).await?;
        let store = Self::pool(url, 1)?;
        migrate(&store.pool).await
    }

    fn pool(url: &str, pool_size: usize) -> StoreResult<Self> {
        Self::from_config(parse_url(url)?, pool_size)
    }

    fn from_config(config: tokio_postgres::Config, pool_size: usize) -> StoreResult<Self> {
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .build()
            .map_err(internal)?;
        Ok(PostgresStore {
            pool,
            query_time_ms: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(DEFAULT_QUERY_TIME_MS)),
            schema: None,
        })
    }

    /// Case-insensitive filters rely on `lower()` folding all of Unicode,
    /// which a database with LC_CTYPE "C" does not do: refuse it rather than
    /// answer filters wrongly.
    async fn check_lower(&self) -> StoreResult<()> {
        let client = self.pool.get().await.map_err(internal)?;
        let row = client
            .query_one("SELECT lower('ÀÉÎ') = 'àéî'", &[])
            .await
            .map_err(db_error)?;
        if row.get::<_, bool>(0) {
            Ok(())
        } else {
            Err(StoreError::Internal(
                "the database's LC_CTYPE does not lower-case non-ASCII letters; create it with a UTF-8 locale (e.g. C.UTF-8)".into(),
            ))
        }
    }
}

/// Connects once before the pool does, so that a failed connection says
/// which failure (no such database or role, a wrong password, nothing
/// listening), where (host, port, database) and what to do.
async fn probe(url: &str) -> StoreResult<()> {
    let config = parse_url(url)?;
    match config.connect(NoTls).await {
        // The connection closes when both halves are dropped.
        Ok((client, connection)) => {
            drop(client);
            let _ = connection.await;
            Ok(())
        }
        Err(e) => Err(StoreError::Internal(connect::message(
            &connect::Target::of(&config),
            &connect::Failure::of(&e),
        ))),
    }
}

fn parse_url(url: &str) -> StoreResult<tokio_postgres::Config> {
    url.parse()
        .map_err(|e| StoreError::Internal(format!("invalid PostgreSQL URL: {e}")))
}
#[async_trait]
impl Store for PostgresStore {
    fn limit_query_time(&self, limit: Duration) {
        let ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX).max(1);
        self.query_time_ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    async fn ready(&self) -> StoreResult<()> {
        let client = self.pool.get().await.map_err(internal)?;
        let row = client
            .query_one("SELECT count(*) FROM schema_migrations", &[])
            .await
            .map_err(db_error)?;
        let applied: i64 = row.try_get(0).map_err(db_error)?;
        let expected = total_steps(MIGRATION_SETS);
        if usize::try_from(applied).unwrap_or(0) < expected {
            return Err(StoreError::Internal(format!(
                "{applied} of {expected} migrations applied"
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl SecretStore for PostgresStore {
    async fn secret(&self, name: &str, candidate: &[u8; 32]) -> StoreResult<[u8; 32]> {
        let candidate = candidate.as_slice();
        let value: Vec<u8> = in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            // The first writer wins; every node then reads the same value.
            tx.execute(
                "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&name, &candidate],
            )
            .await?;
            tx.query_one("SELECT value FROM secrets WHERE name = $1", &[&name])
                .await?
                .try_get(0)?
        })?;
        value
            .try_into()
            .map_err(|_| StoreError::Internal(format!("secret {name} is not 32 bytes")))
    }
}
