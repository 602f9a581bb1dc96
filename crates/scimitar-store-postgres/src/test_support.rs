//! Fresh, isolated stores for tests (the conformance suite, the testkit):
//! one PostgreSQL schema per store, so tests run in parallel against one
//! database. Schemas are named `scimitar_t_<pid>_<unix secs>_<n>`. A
//! schema is dropped when its [`TestSchema`] is (at the end of the test,
//! also when it fails: the guard is dropped while the panic unwinds); each
//! new schema also drops those of test processes that have exited without
//! (killed, aborted).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use scimitar_store::StoreResult;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::{PostgresStore, db_error, parse_url};

const PREFIX: &str = "scimitar_t_";
static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

async fn client(config: &tokio_postgres::Config) -> StoreResult<tokio_postgres::Client> {
    let (client, conn) = config.connect(NoTls).await.map_err(db_error)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// Creates the database named in the URL if it does not exist.
async fn ensure_database(config: &tokio_postgres::Config) -> StoreResult<()> {
    let Some(db) = config.get_dbname() else { return Ok(()) };
    let mut admin = config.clone();
    admin.dbname("postgres");
    let c = client(&admin).await?;
    if c.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&db])
        .await
        .map_err(db_error)?
        .is_some()
    {
        return Ok(());
    }
    match c
        .batch_execute(&format!(
            "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'",
            quote_ident(db)
        ))
        .await
    {
        // Another test process created it first.
        Err(e)
            if e.code()
                .is_some_and(|c| *c == SqlState::DUPLICATE_DATABASE || *c == SqlState::UNIQUE_VIOLATION) =>
        {
            Ok(())
        }
        other => other.map_err(db_error),
    }
}

fn stale(name: &str, now: u64) -> bool {
    let mut parts = name.trim_start_matches(PREFIX).split('_');
    let (Some(Ok(pid)), Some(Ok(secs))) = (parts.next().map(str::parse::<u32>), parts.next().map(str::parse::<u64>))
    else {
        return false;
    };
    let age = now.saturating_sub(secs);
    let dead = !std::path::Path::new(&format!("/proc/{pid}")).exists();
    // A pid is only meaningful on this machine: require some age too, and
    // collect anything older than a day whatever its pid says.
    (dead && age > 60) || age > 86_400
}

/// A test's own schema: its URL (`Deref` to `str`, `Display`), connecting
/// to that schema only. Dropping it drops the schema and everything in it.
#[derive(Debug)]
pub struct TestSchema {
    url: String,
    base: String,
    schema: String,
}

impl TestSchema {
    /// The URL whose connections use this schema.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.schema
    }
}

impl std::ops::Deref for TestSchema {
    type Target = str;
    fn deref(&self) -> &str {
        &self.url
    }
}

impl std::fmt::Display for TestSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

/// Drops the schema on a thread of its own with its own runtime: `drop`
/// cannot await, and may run inside the test's runtime or while it shuts
/// down. Best effort, bounded by a connect and a lock timeout: a schema
/// left behind is collected by a later run (see `stale`).
impl Drop for TestSchema {
    fn drop(&mut self) {
        let (base, schema) = (self.base.clone(), self.schema.clone());
        let dropper = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                let Ok(mut config) = parse_url(&base) else { return };
                config.connect_timeout(Duration::from_secs(5));
                let Ok(c) = client(&config).await else { return };
                // Connections still open on the schema (a pool whose
                // runtime is going away, a transaction a failed test left
                // open) would hold its locks: end them first. They are the
                // ones named after it (`application_name`, see `fresh_url`).
                let _ = c
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE application_name = $1 AND pid <> pg_backend_pid()",
                        &[&schema],
                    )
                    .await;
                let _ = c
                    .batch_execute(&format!(
                        "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {} CASCADE",
                        quote_ident(&schema)
                    ))
                    .await;
            });
        });
        let _ = dropper.join();
    }
}

/// A new, empty schema of the database at `url` (created if missing),
/// dropped with the returned guard. Every store connected with its URL
/// shares that schema.
pub async fn fresh_url(url: &str) -> StoreResult<TestSchema> {
    let config = parse_url(url)?;
    ensure_database(&config).await?;
    let c = client(&config).await?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let rows = c
        .query(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)",
            &[&PREFIX],
        )
        .await
        .map_err(db_error)?;
    for row in rows {
        let name: String = row.get(0);
        if stale(&name, now) {
            // Best effort: another process may be dropping it too.
            let _ = c
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", quote_ident(&name)))
                .await;
        }
    }
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let schema = format!("{PREFIX}{}_{now}_{n}", std::process::id());
    c.batch_execute(&format!("CREATE SCHEMA {}", quote_ident(&schema)))
        .await
        .map_err(db_error)?;
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok(TestSchema {
        url: format!("{url}{sep}application_name={schema}&options=-csearch_path%3D{schema}"),
        base: url.to_string(),
        schema,
    })
}

/// A migrated store in a new, empty schema of the database at `url`; the
/// schema is dropped when the store's last clone is.
pub async fn fresh_store(url: &str, pool_size: usize) -> StoreResult<PostgresStore> {
    let schema = fresh_url(url).await?;
    let mut store = PostgresStore::connect(&schema, pool_size).await?;
    store.schema = Some(std::sync::Arc::new(schema));
    Ok(store)
}

/// `n` migrated stores, each with its own pool, sharing one new schema (as
/// `n` nodes share a database); the schema is dropped when the last clone
/// of the last of them is.
pub async fn fresh_stores(url: &str, n: usize, pool_size: usize) -> StoreResult<Vec<PostgresStore>> {
    let schema = std::sync::Arc::new(fresh_url(url).await?);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut store = PostgresStore::connect(&schema, pool_size).await?;
        store.schema = Some(schema.clone());
        out.push(store);
    }
    Ok(out)
}

/// The schema of a store made by [`fresh_store`].
pub fn schema_of(store: &PostgresStore) -> Option<&str> {
    store.schema.as_deref().map(TestSchema::name)
}
