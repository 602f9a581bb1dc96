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

mod console;
mod lease;
mod sql;
pub mod test_support;

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Transaction};
use scimitar_protocol::ScimError;
use scimitar_protocol::output::Reference;
use scimitar_protocol::patch::{MemberAccess, MemberOp};
use scimitar_protocol::resource::MemberRef;
use scimitar_store::{
    ActivityEvent, ActivityQuery, AuditEvent, CursorPos, ExtensionRecord, Kind, ListQuery, ModifyFn, Page, ReadCount,
    Record, Store, StoreError, StoreResult, Tenant, TenantId, TokenInfo, now_utc,
};
use serde_json::{Map, Value};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Json;
use tokio_postgres::{IsolationLevel, NoTls, Row};

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
];

/// Attempts of a transaction that fails with a retryable error.
const MAX_ATTEMPTS: u32 = 6;

#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
}

fn internal(e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(e.to_string())
}

/// An error inside a transaction: database errors keep their SQLSTATE so
/// that the retry loop can tell a serialisation failure from a bug.
enum TxError {
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

fn retryable(e: &tokio_postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED)
}

/// Maps a database error to the store's vocabulary: unique violations to
/// `Conflict` on the attribute their index guards.
fn db_error(e: tokio_postgres::Error) -> StoreError {
    let Some(code) = e.code() else { return internal(e) };
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

fn backoff(attempt: u32) -> Duration {
    // Exponential with a little per-process jitter so retrying writers spread out.
    let jitter = u64::from(std::process::id() % 7) + u64::from(attempt);
    Duration::from_millis((5u64 << attempt.min(6)) + jitter)
}

/// Runs `$body` in a transaction on `$tx`, committing if it yields a value
/// and retrying the whole transaction on serialisation failures. `$body`
/// may use `?` on database, store and SCIM errors; an early `return`
/// rolls back.
/// One activity log entry, on a connection or inside a transaction.
async fn insert_activity(
    c: &impl deadpool_postgres::GenericClient,
    e: &ActivityEvent,
) -> Result<(), tokio_postgres::Error> {
    let changes = e.changes.to_string();
    let status = i32::from(e.status);
    c.execute(
        "INSERT INTO activity (tenant_id, time, token_id, token_label, action, resource_type, resource_id, \
         name, changes, outcome, status, error, method, path) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
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
        ],
    )
    .await
    .map(|_| ())
}

macro_rules! in_tx {
    ($self:expr, $iso:expr, |$tx:ident| $body:block) => {{
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let r: Result<_, TxError> = async {
                let mut client = $self.pool.get().await.map_err(|e| TxError::Store(internal(e)))?;
                let $tx = client.build_transaction().isolation_level($iso).start().await?;
                let out = $body;
                $tx.commit().await?;
                Ok(out)
            }
            .await;
            match r {
                Err(TxError::Db(e)) if attempt < MAX_ATTEMPTS && retryable(&e) => {
                    tokio::time::sleep(backoff(attempt)).await
                }
                other => break other.map_err(TxError::into_store),
            }
        }
    }};
}

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
                        || e.code()
                            .is_some_and(|c| *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::DUPLICATE_TABLE)) =>
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
    for (name, sql) in MIGRATIONS {
        // Claiming the row serialises concurrent migrators without advisory
        // locks: a second claimant waits on the primary key until the first
        // commits, then finds the row and skips the migration.
        let claimed = tx
            .execute(
                "INSERT INTO schema_migrations (name, applied) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[name, &now_utc()],
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
        let store = Self::pool(url, pool_size)?;
        migrate(&store.pool).await?;
        store.check_lower().await?;
        Ok(store)
    }

    /// Applies pending migrations and returns.
    pub async fn migrate_only(url: &str) -> StoreResult<()> {
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
        Ok(PostgresStore { pool })
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

fn parse_url(url: &str) -> StoreResult<tokio_postgres::Config> {
    url.parse()
        .map_err(|e| StoreError::Internal(format!("invalid PostgreSQL URL: {e}")))
}

const TOKEN_COLS: &str = "t.id, t.tenant_id, n.name, t.label, t.hint, t.created, t.last_used, t.revoked, t.scope, n.schema_version, t.expires";
const RECORD_COLS: &str = "r.id, r.kind, r.doc, r.created, r.modified, r.version, r.seq";

fn token_from_row(r: &Row) -> Result<TokenInfo, tokio_postgres::Error> {
    Ok(TokenInfo {
        id: r.try_get(0)?,
        tenant_id: r.try_get(1)?,
        tenant: r.try_get(2)?,
        label: r.try_get(3)?,
        hint: r.try_get(4)?,
        created: r.try_get(5)?,
        last_used: r.try_get(6)?,
        revoked: r.try_get(7)?,
        scope: r.try_get(8)?,
        schema_version: r.try_get(9)?,
        expires: r.try_get(10)?,
    })
}

fn tenant_from_row(r: &Row) -> Result<Tenant, tokio_postgres::Error> {
    Ok(Tenant {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        created: r.try_get(2)?,
    })
}

fn record_from_row(r: &Row) -> Result<Record, TxError> {
    let kind: String = r.try_get(1)?;
    let doc = match r.try_get::<_, Value>(2)? {
        Value::Object(m) => m,
        other => return Err(StoreError::Internal(format!("stored document is not an object: {other}")).into()),
    };
    let version: i64 = r.try_get(5)?;
    Ok(Record {
        seq: r.try_get(6)?,
        id: r.try_get(0)?,
        kind: if kind == "Group" { Kind::Group } else { Kind::User },
        doc,
        created: r.try_get(3)?,
        last_modified: r.try_get(4)?,
        version: u64::try_from(version).unwrap_or(0),
    })
}

/// The indexed columns extracted from a document.
fn columns(kind: Kind, doc: &Map<String, Value>) -> (Option<String>, Option<String>, Option<String>) {
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

fn version_param(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Applies membership changes; returns how many rows changed.
async fn apply_member_ops(
    tx: &Transaction<'_>,
    tenant: TenantId,
    group: &str,
    ops: &[MemberOp],
) -> Result<u64, TxError> {
    if ops.is_empty() {
        return Ok(0);
    }
    // The net effect, so that a PATCH or PUT leaving the members as they
    // were changes nothing (and no version).
    let net = scimitar_protocol::patch::net_member_changes(ops);
    let mut changed = 0;
    // FOR SHARE: a concurrent delete of the member waits for this
    // transaction (and then removes the new row), or wins and this one sees
    // the member gone. No dangling members.
    let kind_of = tx
        .prepare_cached("SELECT kind FROM resources WHERE tenant_id = $1 AND id = $2 FOR SHARE")
        .await?;
    let mut resolved = Vec::with_capacity(net.add.len());
    for m in &net.add {
        if m.value == group {
            return Err(ScimError::invalid_value("a group cannot be a member of itself").into());
        }
        let Some(row) = tx.query_opt(&kind_of, &[&tenant, &m.value]).await? else {
            return Err(ScimError::invalid_value(format!(
                "member '{}' is not a User or Group of this tenant",
                m.value
            ))
            .into());
        };
        let kind: String = row.try_get(0)?;
        if let Some(k) = &m.kind
            && !k.eq_ignore_ascii_case(&kind)
        {
            return Err(ScimError::invalid_value(format!("member '{}' is a {kind}, not a {k}", m.value)).into());
        }
        resolved.push((m, kind));
    }
    let delete = tx
        .prepare_cached("DELETE FROM members WHERE tenant_id = $1 AND group_id = $2 AND member_id = $3")
        .await?;
    if net.replace_all {
        let rows = tx
            .query(
                "SELECT member_id FROM members WHERE tenant_id = $1 AND group_id = $2",
                &[&tenant, &group],
            )
            .await?;
        for row in rows {
            let id: String = row.try_get(0)?;
            if !net.add.iter().any(|a| a.value == id) {
                changed += tx.execute(&delete, &[&tenant, &group, &id]).await?;
            }
        }
    } else {
        for id in &net.remove {
            changed += tx.execute(&delete, &[&tenant, &group, id]).await?;
        }
    }
    // An add keeps a display name given earlier unless it brings one; a
    // replace sets exactly what it was given.
    let upsert = if net.replace_all {
        "INSERT INTO members (tenant_id, group_id, member_id, member_type, display) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id, group_id, member_id) DO UPDATE SET display = excluded.display \
         WHERE excluded.display IS DISTINCT FROM members.display"
    } else {
        "INSERT INTO members (tenant_id, group_id, member_id, member_type, display) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id, group_id, member_id) DO UPDATE SET display = excluded.display \
         WHERE excluded.display IS NOT NULL AND excluded.display IS DISTINCT FROM members.display"
    };
    let insert = tx.prepare_cached(upsert).await?;
    for (m, kind) in resolved {
        changed += tx
            .execute(&insert, &[&tenant, &group, &m.value, &kind, &m.display])
            .await?;
    }
    Ok(changed)
}

const LIST_MEMBERS: &str = "SELECT m.member_id, m.member_type, COALESCE(m.display, r.doc ->> 'displayName', r.doc ->> 'userName') \
     FROM members m LEFT JOIN resources r ON r.tenant_id = m.tenant_id AND r.id = m.member_id \
     WHERE m.tenant_id = $1 AND m.group_id = $2 ORDER BY m.member_id COLLATE \"C\"";

fn reference_from_row(r: &Row) -> Result<Reference, tokio_postgres::Error> {
    Ok(Reference {
        value: r.try_get(0)?,
        kind: r.try_get(1)?,
        display: r.try_get(2)?,
    })
}

/// Member access for [`ModifyFn`], which is synchronous: the first run gets
/// no list and records that it asked; the store then loads the members
/// (inside the same transaction) and runs the function again. Plain
/// add/remove operations never ask, so they stay O(1) in the group size.
struct Preloaded {
    members: Option<Vec<Value>>,
    asked: bool,
}

impl MemberAccess for Preloaded {
    fn list(&mut self) -> Result<Vec<Value>, ScimError> {
        match &self.members {
            Some(m) => Ok(m.clone()),
            None => {
                self.asked = true;
                Err(ScimError::internal("member list not loaded yet"))
            }
        }
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_tenant(&self, name: &str) -> StoreResult<Tenant> {
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            let row = tx
                .query_one(
                    "INSERT INTO tenants (name, created) VALUES ($1, $2) RETURNING id, name, created",
                    &[&name, &now_utc()],
                )
                .await?;
            tenant_from_row(&row)?
        })
    }

    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>> {
        let client = self.pool.get().await.map_err(internal)?;
        let rows = client
            .query("SELECT id, name, created FROM tenants ORDER BY name COLLATE \"C\"", &[])
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(tenant_from_row)
            .collect::<Result<_, _>>()
            .map_err(db_error)
    }

    async fn tenant(&self, name: &str) -> StoreResult<Option<Tenant>> {
        let client = self.pool.get().await.map_err(internal)?;
        let row = client
            .query_opt("SELECT id, name, created FROM tenants WHERE name = $1", &[&name])
            .await
            .map_err(db_error)?;
        row.as_ref().map(tenant_from_row).transpose().map_err(db_error)
    }

    async fn delete_tenant(&self, name: &str) -> StoreResult<bool> {
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            let row = tx
                .query_opt("SELECT id FROM tenants WHERE name = $1 FOR UPDATE", &[&name])
                .await?;
            match row {
                None => false,
                Some(row) => {
                    let id: i64 = row.try_get(0)?;
                    tx.execute("DELETE FROM members WHERE tenant_id = $1", &[&id]).await?;
                    tx.execute("DELETE FROM resources WHERE tenant_id = $1", &[&id]).await?;
                    tx.execute("DELETE FROM tokens WHERE tenant_id = $1", &[&id]).await?;
                    tx.execute("DELETE FROM tenants WHERE id = $1", &[&id]).await?;
                    true
                }
            }
        })
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
        let hash = hash.as_slice();
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            tx.execute(
                "INSERT INTO tokens (id, tenant_id, label, hint, hash, created, scope) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&id, &tenant, &label, &hint, &hash, &now_utc(), &scope],
            )
            .await?;
            let row = tx
                .query_one(
                    &format!("SELECT {TOKEN_COLS} FROM tokens t JOIN tenants n ON n.id = t.tenant_id WHERE t.id = $1"),
                    &[&id],
                )
                .await?;
            token_from_row(&row)?
        })
    }

    async fn list_tokens(&self, tenant: TenantId) -> StoreResult<Vec<TokenInfo>> {
        let client = self.pool.get().await.map_err(internal)?;
        let rows = client
            .query(
                &format!("SELECT {TOKEN_COLS} FROM tokens t JOIN tenants n ON n.id = t.tenant_id WHERE t.tenant_id = $1 ORDER BY t.created, t.id COLLATE \"C\""),
                &[&tenant],
            )
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(token_from_row)
            .collect::<Result<_, _>>()
            .map_err(db_error)
    }

    async fn revoke_token(&self, id: &str) -> StoreResult<bool> {
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            tx.execute(
                "UPDATE tokens SET revoked = $1 WHERE id = $2 AND revoked IS NULL",
                &[&now_utc(), &id],
            )
            .await?
                > 0
        })
    }

    async fn token_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<TokenInfo>> {
        let client = self.pool.get().await.map_err(internal)?;
        let stmt = client
            .prepare_cached(&format!("SELECT {TOKEN_COLS}, t.hash FROM tokens t JOIN tenants n ON n.id = t.tenant_id WHERE t.hash = $1 AND t.revoked IS NULL AND (t.expires IS NULL OR t.expires > $2)"))
            .await
            .map_err(db_error)?;
        let Some(row) = client
            .query_opt(&stmt, &[&hash.as_slice(), &now_utc()])
            .await
            .map_err(db_error)?
        else {
            return Ok(None);
        };
        let info = token_from_row(&row).map_err(db_error)?;
        let stored: Vec<u8> = row.try_get(11).map_err(db_error)?;
        let Ok(stored) = <[u8; 32]>::try_from(stored) else {
            return Ok(None);
        };
        Ok(scimitar_auth::hashes_equal(&stored, hash).then_some(info))
    }

    async fn set_token_expiry(&self, id: &str, expires: Option<&str>) -> StoreResult<bool> {
        let client = self.pool.get().await.map_err(internal)?;
        let n = client
            .execute("UPDATE tokens SET expires = $1 WHERE id = $2", &[&expires, &id])
            .await
            .map_err(db_error)?;
        Ok(n > 0)
    }

    async fn touch_token(&self, id: &str, now: &str) -> StoreResult<()> {
        let client = self.pool.get().await.map_err(internal)?;
        client
            .execute("UPDATE tokens SET last_used = $1 WHERE id = $2", &[&now, &id])
            .await
            .map_err(db_error)?;
        Ok(())
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
        let (un, dn, ext) = columns(kind, &doc);
        let json = Json(&doc);
        let ops = if members.is_empty() {
            Vec::new()
        } else {
            vec![MemberOp::Add(members)]
        };
        let seq = in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            let row = tx
                .query_one(
                    "INSERT INTO resources (tenant_id, kind, id, user_name_ci, display_name_ci, external_id, version, created, modified, doc) \
                     VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7, $8) RETURNING seq",
                    &[&tenant, &kind.as_str(), &id, &un, &dn, &ext, &now, &json],
                )
                .await?;
            apply_member_ops(&tx, tenant, id, &ops).await?;
            if let Some(e) = &activity {
                insert_activity(&tx, e).await?;
            }
            row.try_get::<_, i64>(0)?
        })?;
        Ok(Record {
            seq,
            id: id.to_string(),
            kind,
            doc,
            created: now.to_string(),
            last_modified: now.to_string(),
            version: 1,
        })
    }

    async fn get(&self, tenant: TenantId, kind: Kind, id: &str) -> StoreResult<Option<Record>> {
        let client = self.pool.get().await.map_err(internal)?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {RECORD_COLS} FROM resources r WHERE r.tenant_id = $1 AND r.kind = $2 AND r.id = $3"
            ))
            .await
            .map_err(db_error)?;
        let row = client
            .query_opt(&stmt, &[&tenant, &kind.as_str(), &id])
            .await
            .map_err(db_error)?;
        row.as_ref()
            .map(record_from_row)
            .transpose()
            .map_err(TxError::into_store)
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
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            // The row lock makes concurrent writers of this resource (in any
            // process) queue here and each see the previous one's result.
            let row = tx
                .query_opt(&format!("SELECT {RECORD_COLS} FROM resources r WHERE r.tenant_id = $1 AND r.kind = $2 AND r.id = $3 FOR UPDATE"), &[
                    &tenant,
                    &kind.as_str(),
                    &id,
                ])
                .await?;
            let current = record_from_row(&row.ok_or(StoreError::NotFound)?)?;
            if if_match.is_some_and(|v| v != current.version) {
                return Err(StoreError::PreconditionFailed.into());
            }
            let mut access = Preloaded {
                members: None,
                asked: false,
            };
            let mut result = f(&current, &mut access);
            if access.asked {
                let rows = tx.query(LIST_MEMBERS, &[&tenant, &id]).await?;
                let list = rows
                    .iter()
                    .map(|r| {
                        reference_from_row(r)
                            .map(|m| serde_json::json!({"value": m.value, "type": m.kind, "display": m.display}))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                access.members = Some(list);
                result = f(&current, &mut access);
            }
            let mutation = result?;
            let changed_members = if kind == Kind::Group {
                apply_member_ops(&tx, tenant, id, &mutation.member_ops).await?
            } else {
                0
            };
            if mutation.doc == current.doc && changed_members == 0 {
                current // nothing changed: same version
            } else {
                let (un, dn, ext) = columns(kind, &mutation.doc);
                let version = current.version + 1;
                let json = Json(&mutation.doc);
                tx.execute(
                    "UPDATE resources SET user_name_ci = $1, display_name_ci = $2, external_id = $3, version = $4, modified = $5, doc = $6 \
                     WHERE tenant_id = $7 AND id = $8",
                    &[&un, &dn, &ext, &version_param(version), &now, &json, &tenant, &id],
                )
                .await?;
                if let Some(e) = &mutation.activity {
                    insert_activity(&tx, e).await?;
                }
                Record {
                    seq: current.seq,
                    id: id.to_string(),
                    kind,
                    doc: mutation.doc,
                    created: current.created,
                    last_modified: now.to_string(),
                    version,
                }
            }
        })
    }

    async fn delete(&self, tenant: TenantId, kind: Kind, id: &str, if_match: Option<u64>) -> StoreResult<()> {
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            let row = tx
                .query_opt(
                    "SELECT version FROM resources WHERE tenant_id = $1 AND kind = $2 AND id = $3 FOR UPDATE",
                    &[&tenant, &kind.as_str(), &id],
                )
                .await?;
            let version: i64 = row.ok_or(StoreError::NotFound)?.try_get(0)?;
            if if_match.is_some_and(|v| Some(v) != u64::try_from(version).ok()) {
                return Err(StoreError::PreconditionFailed.into());
            }
            tx.execute(
                "DELETE FROM resources WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &id],
            )
            .await?;
            // A deleted user or group leaves every group; a deleted group's
            // membership list goes with it.
            tx.execute(
                "DELETE FROM members WHERE tenant_id = $1 AND (member_id = $2 OR group_id = $2)",
                &[&tenant, &id],
            )
            .await?;
        })
    }

    async fn list(&self, tenant: TenantId, q: ListQuery) -> StoreResult<Page> {
        let mut b = sql::Builder::default();
        let t = b.bind(tenant, "bigint");
        let k = b.bind(q.kind.as_str().to_string(), "text");
        b.push(&format!(" FROM resources r WHERE r.tenant_id = {t} AND r.kind = {k}"));
        if let Some(f) = &q.filter {
            b.push(" AND ");
            sql::lower_filter(&mut b, &q.rt, q.kind, f)?;
        }
        let count_sql = format!("SELECT count(*){}", b.sql);
        let n_where = b.params.len();
        let mut select = format!("SELECT {RECORD_COLS}{}", b.sql);
        b.sql.clear();
        let limit = i64::try_from(q.count).unwrap_or(i64::MAX);
        match q.cursor {
            // Keyset paging on the primary key: the same cost for every page.
            // One extra row tells whether more follow.
            Some(pos) => {
                let (cmp, order, key) = match pos {
                    CursorPos::After(k) => (">", "ASC", k),
                    CursorPos::Before(k) => ("<", "DESC", k),
                };
                let key = b.bind(key, "bigint");
                let lim = b.bind(limit.saturating_add(1), "bigint");
                b.push(&format!(" AND r.seq {cmp} {key} ORDER BY r.seq {order} LIMIT {lim}"));
            }
            None => {
                match &q.sort {
                    Some(s) => sql::order_by(&mut b, &q.rt, q.kind, &s.by, s.order)?,
                    None => b.push(" ORDER BY r.seq"),
                }
                let lim = b.bind(limit, "bigint");
                let offset = b.bind(
                    i64::try_from(q.start_index.saturating_sub(1)).unwrap_or(i64::MAX),
                    "bigint",
                );
                b.push(&format!(" LIMIT {lim} OFFSET {offset}"));
            }
        }
        select.push_str(&b.sql);
        let params = sql::refs(&b.params);
        // One snapshot for the total and the page, so they agree.
        in_tx!(self, IsolationLevel::RepeatableRead, |tx| {
            let total: i64 = tx.query_one(&count_sql, &params[..n_where]).await?.try_get(0)?;
            let total = u64::try_from(total).unwrap_or(0);
            let mut records = Vec::new();
            let mut has_more = false;
            if q.cursor.is_some() || (q.count > 0 && (q.start_index as u64) <= total) {
                for row in tx.query(&select, &params).await? {
                    records.push(record_from_row(&row)?);
                }
            }
            if q.cursor.is_some() {
                if records.len() > q.count {
                    has_more = true;
                    records.truncate(q.count);
                }
                if matches!(q.cursor, Some(CursorPos::Before(_))) {
                    records.reverse();
                }
            }
            Page {
                total,
                records,
                has_more,
            }
        })
    }

    async fn members(&self, tenant: TenantId, group: &str) -> StoreResult<Vec<Reference>> {
        let client = self.pool.get().await.map_err(internal)?;
        let rows = client.query(LIST_MEMBERS, &[&tenant, &group]).await.map_err(db_error)?;
        rows.iter()
            .map(reference_from_row)
            .collect::<Result<_, _>>()
            .map_err(db_error)
    }

    async fn groups_of(&self, tenant: TenantId, user: &str) -> StoreResult<Vec<Reference>> {
        let client = self.pool.get().await.map_err(internal)?;
        let rows = client
            .query(
                "SELECT m.group_id, 'Group', g.doc ->> 'displayName' FROM members m \
                 JOIN resources g ON g.tenant_id = m.tenant_id AND g.id = m.group_id \
                 WHERE m.tenant_id = $1 AND m.member_id = $2 ORDER BY g.seq",
                &[&tenant, &user],
            )
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(reference_from_row)
            .collect::<Result<_, _>>()
            .map_err(db_error)
    }

    async fn ready(&self) -> StoreResult<()> {
        let client = self.pool.get().await.map_err(internal)?;
        let row = client
            .query_one("SELECT count(*) FROM schema_migrations", &[])
            .await
            .map_err(db_error)?;
        let applied: i64 = row.try_get(0).map_err(db_error)?;
        if usize::try_from(applied).unwrap_or(0) < MIGRATIONS.len() {
            return Err(StoreError::Internal(format!(
                "{applied} of {} migrations applied",
                MIGRATIONS.len()
            )));
        }
        Ok(())
    }

    async fn display_name(&self, tenant: TenantId, id: &str) -> StoreResult<Option<String>> {
        let client = self.pool.get().await.map_err(internal)?;
        let row = client
            .query_opt(
                "SELECT doc ->> 'displayName' FROM resources WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &id],
            )
            .await
            .map_err(db_error)?;
        Ok(row.and_then(|r| r.get::<_, Option<String>>(0)))
    }

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

    async fn put_extension(&self, tenant: TenantId, ext: ExtensionRecord) -> StoreResult<()> {
        let text = serde_json::to_string(&ext.schema).map_err(internal)?;
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            tx.execute(
                "INSERT INTO extensions (tenant_id, urn, resource_type, required, schema) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (tenant_id, urn) DO UPDATE SET resource_type = excluded.resource_type, \
                 required = excluded.required, schema = excluded.schema",
                &[&tenant, &ext.urn, &ext.resource_type, &ext.required, &text],
            )
            .await?;
            tx.execute(
                "UPDATE tenants SET schema_version = schema_version + 1 WHERE id = $1",
                &[&tenant],
            )
            .await?;
        })
    }

    async fn list_extensions(&self, tenant: TenantId) -> StoreResult<Vec<ExtensionRecord>> {
        let client = self.pool.get().await.map_err(internal)?;
        let rows = client
            .query("SELECT resource_type, urn, schema, required FROM extensions WHERE tenant_id = $1 ORDER BY urn COLLATE \"C\"", &[&tenant])
            .await
            .map_err(db_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let text: String = r.try_get(2).map_err(db_error)?;
            out.push(ExtensionRecord {
                resource_type: r.try_get(0).map_err(db_error)?,
                urn: r.try_get(1).map_err(db_error)?,
                schema: serde_json::from_str(&text).map_err(internal)?,
                required: r.try_get(3).map_err(db_error)?,
            });
        }
        Ok(out)
    }

    async fn delete_extension(&self, tenant: TenantId, urn: &str) -> StoreResult<bool> {
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            let n = tx
                .execute(
                    "DELETE FROM extensions WHERE tenant_id = $1 AND urn = $2",
                    &[&tenant, &urn],
                )
                .await?;
            tx.execute(
                "UPDATE tenants SET schema_version = schema_version + 1 WHERE id = $1",
                &[&tenant],
            )
            .await?;
            n > 0
        })
    }

    async fn record_activity(&self, e: ActivityEvent) -> StoreResult<()> {
        let client = self.pool.get().await.map_err(internal)?;
        insert_activity(&client, &e).await.map_err(db_error)
    }

    async fn list_activity(&self, tenant: TenantId, q: ActivityQuery) -> StoreResult<Vec<ActivityEvent>> {
        let mut b = sql::Builder::default();
        let t = b.bind(tenant, "bigint");
        b.push(&format!(
            "SELECT id, tenant_id, time, token_id, token_label, action, resource_type, resource_id, name, changes, \
             outcome, status, error, method, path FROM activity WHERE tenant_id = {t}"
        ));
        for (col, cmp, v) in [
            ("time", ">=", q.since),
            ("time", "<", q.until),
            ("action", "=", q.action),
            ("outcome", "=", q.outcome),
        ] {
            if let Some(v) = v {
                let p = b.bind(v, "text");
                b.push(&format!(" AND {col} {cmp} {p}"));
            }
        }
        if let Some(v) = q.text {
            // strpos, not LIKE: `%` and `_` in the needle are literal.
            let n = b.bind(v, "text");
            b.push(&format!(
                " AND (strpos(lower(coalesce(name, '')), lower({n})) > 0 OR strpos(lower(coalesce(resource_id, '')), lower({n})) > 0 \
                 OR strpos(lower(coalesce(error, '')), lower({n})) > 0 OR strpos(lower(changes), lower({n})) > 0)"
            ));
        }
        if let Some(v) = q.before_id {
            let p = b.bind(v, "bigint");
            b.push(&format!(" AND id < {p}"));
        }
        let lim = b.bind(i64::try_from(q.limit.max(1)).unwrap_or(1000), "bigint");
        b.push(&format!(" ORDER BY id DESC LIMIT {lim}"));
        let client = self.pool.get().await.map_err(internal)?;
        let rows = client.query(&b.sql, &sql::refs(&b.params)).await.map_err(db_error)?;
        let event = |r: &Row| -> Result<ActivityEvent, tokio_postgres::Error> {
            let changes: String = r.try_get(9)?;
            let status: i32 = r.try_get(11)?;
            Ok(ActivityEvent {
                id: r.try_get(0)?,
                tenant_id: r.try_get(1)?,
                time: r.try_get(2)?,
                token_id: r.try_get(3)?,
                token_label: r.try_get(4)?,
                action: r.try_get(5)?,
                resource_type: r.try_get(6)?,
                resource_id: r.try_get(7)?,
                name: r.try_get(8)?,
                changes: serde_json::from_str(&changes).unwrap_or(Value::Null),
                outcome: r.try_get(10)?,
                status: u16::try_from(status).unwrap_or(0),
                error: r.try_get(12)?,
                method: r.try_get(13)?,
                path: r.try_get(14)?,
            })
        };
        rows.iter().map(event).collect::<Result<_, _>>().map_err(db_error)
    }

    async fn count_reads(&self, tenant: TenantId, hour: &str, n: u64) -> StoreResult<()> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            // An upsert adds atomically, whichever node counts.
            tx.execute(
                "INSERT INTO read_counts (tenant_id, hour, count) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id, hour) DO UPDATE SET count = read_counts.count + excluded.count",
                &[&tenant, &hour, &n],
            )
            .await?;
        })
    }

    async fn read_counts(&self, tenant: TenantId, since_hour: &str) -> StoreResult<Vec<ReadCount>> {
        let client = self.pool.get().await.map_err(internal)?;
        let rows = client
            .query(
                "SELECT hour, count FROM read_counts WHERE tenant_id = $1 AND hour >= $2 ORDER BY hour COLLATE \"C\"",
                &[&tenant, &since_hour],
            )
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|r| {
                Ok(ReadCount {
                    hour: r.try_get(0)?,
                    count: u64::try_from(r.try_get::<_, i64>(1)?).unwrap_or(0),
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(db_error)
    }

    async fn record_audit(&self, e: AuditEvent) -> StoreResult<()> {
        let client = self.pool.get().await.map_err(internal)?;
        client
            .execute(
                "INSERT INTO audit (time, tenant_id, actor, action, target, detail, source) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&e.time, &e.tenant_id, &e.actor, &e.action, &e.target, &e.detail, &e.source],
            )
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn list_audit(&self, tenant: Option<TenantId>, limit: usize) -> StoreResult<Vec<AuditEvent>> {
        let client = self.pool.get().await.map_err(internal)?;
        let limit = i64::try_from(limit.clamp(1, 10_000)).unwrap_or(100);
        let cols = "SELECT id, time, tenant_id, actor, action, target, detail, source FROM audit";
        let rows = match tenant {
            Some(t) => client
                .query(
                    &format!("{cols} WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2"),
                    &[&t, &limit],
                )
                .await
                .map_err(db_error)?,
            None => client
                .query(&format!("{cols} ORDER BY id DESC LIMIT $1"), &[&limit])
                .await
                .map_err(db_error)?,
        };
        rows.iter()
            .map(|r| {
                Ok(AuditEvent {
                    id: r.try_get(0)?,
                    time: r.try_get(1)?,
                    tenant_id: r.try_get(2)?,
                    actor: r.try_get(3)?,
                    action: r.try_get(4)?,
                    target: r.try_get(5)?,
                    detail: r.try_get(6)?,
                    source: r.try_get(7)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(db_error)
    }

    async fn purge_activity(&self, before: &str) -> StoreResult<u64> {
        let hour: String = before.chars().take(13).collect();
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            let n = tx.execute("DELETE FROM activity WHERE time < $1", &[&before]).await?;
            tx.execute("DELETE FROM read_counts WHERE hour < $1", &[&hour]).await?;
            n
        })
    }
}
