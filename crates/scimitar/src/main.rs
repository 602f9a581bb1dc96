//! The `scimitar` command: the server and its administration.

#[macro_use]
mod terminal;
mod events;
mod job_edit;
mod jobs;
mod sync;
mod transfer;
mod validate;
mod webhook;

/// mimalloc instead of glibc's allocator: a request allocates and frees many
/// small JSON nodes on several threads, where glibc's malloc took about a
/// fifth of the server's CPU (docs/benchmarks.md has the comparison). Built
/// without transparent huge pages (`no_thp`): with them the kernel refilled
/// the memory mimalloc gave back after a burst, 2 MiB at a time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc gives freed memory back to the OS lazily: when it next frees a
/// page, once the memory has been unused for its purge delay (a second).
/// A server that goes idle after a burst frees no page and would keep the
/// burst's memory for good, so every 10 seconds this frees one (a block
/// too large to share a page, never written to, so it costs no memory).
async fn return_freed_memory() {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
    loop {
        tick.tick().await;
        drop(std::hint::black_box(Vec::<u8>::with_capacity(2 << 20)));
    }
}

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use scimitar_app::schemas::NewExtension;
use scimitar_app::tokens::TokenRequest;
use scimitar_app::{Actor, App};
use scimitar_protocol::ScimError;
use scimitar_server::{AppState, Settings, tenant_url};
use scimitar_store::Store;
use scimitar_store_postgres::PostgresStore;
use scimitar_store_sqlite::SqliteStore;
use serde::Deserialize;
use serde_json::json;

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_DATABASE: &str = "sqlite:data/scimitar.db";

#[derive(Parser)]
#[command(
    name = "scimitar",
    version,
    about = "A multi-tenant SCIM 2.0 service provider for Microsoft Entra ID, Okta and any SCIM client"
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Common {
    /// Database: `sqlite:PATH` (the embedded default; `sqlite://PATH` or a bare file path too) or `postgres://user@host/db` (`postgresql://` too).
    #[arg(long, global = true, env = "SCIMITAR_DATABASE_URL")]
    database: Option<String>,
    /// The public base URL that clients use; Tenant URLs, `Location` and `meta.location` are built from it.
    #[arg(long, global = true, env = "SCIMITAR_PUBLIC_URL")]
    public_url: Option<String>,
    /// A TOML file with `listen`, `database`, `public_url`, `smtp_url` and `smtp_from`; flags and environment variables override it.
    #[arg(long, global = true, env = "SCIMITAR_CONFIG")]
    config: Option<PathBuf>,
    /// The SMTP server for provisioning jobs' notification email: smtp://host:port, smtp://user:pass@host:587?tls=required (STARTTLS) or smtps://user:pass@host (TLS).
    #[arg(long, global = true, env = "SCIMITAR_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// The sender of notification email, e.g. "Scimitar <scimitar@example.com>".
    #[arg(long, global = true, env = "SCIMITAR_SMTP_FROM")]
    smtp_from: Option<String>,
    /// Address ranges (CIDR, comma-separated) that provisioning jobs sent through the admin API may connect to besides public addresses, e.g. 10.20.0.0/16 for an internal LDAP server.
    #[arg(long, global = true, env = "SCIMITAR_JOB_EGRESS_ALLOW", value_delimiter = ',')]
    job_egress_allow: Vec<String>,
    /// Address ranges (CIDR, comma-separated) webhooks may be sent to besides public addresses, e.g. 10.20.0.0/16; a loopback range (127.0.0.0/8) also allows plain http to it.
    #[arg(long, global = true, env = "SCIMITAR_WEBHOOK_ALLOW_PRIVATE", value_delimiter = ',')]
    webhook_allow_private: Vec<String>,
    /// Print one JSON object instead of text.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the SCIM server.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "SCIMITAR_LISTEN")]
        listen: Option<String>,
        #[command(flatten)]
        limits: ServeLimits,
    },
    /// Manage tenants (each has its own Tenant URL and data).
    #[command(subcommand)]
    Tenant(TenantCmd),
    /// Manage Secret Tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Manage a tenant's webhook endpoints (signed HTTP POSTs of its events).
    #[command(subcommand)]
    Webhook(webhook::WebhookCmd),
    /// Manage admin console accounts.
    #[command(subcommand)]
    Admin(AdminCmd),
    /// Manage a tenant's custom schema extensions.
    #[command(subcommand)]
    Schema(SchemaCmd),
    /// Apply database migrations and exit (for deployments that migrate before rolling out).
    Migrate,
    /// Show the audit log of administrative actions (tokens, tenants, schemas, console accounts, sign-ins).
    Audit {
        /// Only this tenant's entries (default: all, including cross-tenant ones).
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Write a tenant's schema extensions, users and groups as SCIM JSON lines.
    Export {
        #[arg(long)]
        tenant: String,
        /// The file to write (default: standard output).
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Read SCIM JSON lines written by `export` into a tenant (created if missing); ids are kept and importing again changes nothing.
    Import {
        #[arg(long)]
        tenant: String,
        /// The file to read (default: standard input).
        #[arg(long)]
        input: Option<PathBuf>,
    },
    /// The provisioning engine: provision an application from a directory (LDAP, HR files, a SCIM server).
    #[command(subcommand)]
    Sync(sync::SyncCmd),
    /// Entra's attribute-mapping expressions.
    #[command(subcommand)]
    Expression(sync::ExpressionCmd),
    /// Check that a SCIM endpoint (any, not only Scimitar) is ready for Microsoft Entra ID: runs the tests of Microsoft's SCIM Validator and the gallery's onboarding checks, offline. Exit code 0: no test failed; 1: tests failed; 2: the endpoint could not be validated (URL, token, not SCIM, no answer).
    Validate(validate::ValidateArgs),
    /// Show a tenant's change events (user.created, group.user_added, …) in order, as the events API gives them; see docs/events.md.
    Events {
        #[arg(long)]
        tenant: String,
        /// Only events after this cursor (the `next` of an earlier run, or an event's `cursor` with --json --follow).
        #[arg(long)]
        after: Option<String>,
        /// Only these types, comma-separated (e.g. user.created,user.deactivated).
        #[arg(long)]
        types: Option<String>,
        /// At most this many (1 to 1000); with --follow, per batch.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Keep running and print events as they are committed.
        #[arg(long)]
        follow: bool,
    },
    /// Show the provisioning activity log of a tenant.
    Activity {
        #[arg(long)]
        tenant: String,
        /// Only entries at or after this time: a duration before now (30m, 1h, 7d) or an RFC 3339 timestamp (e.g. 2026-11-26T00:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// Only this action: create, update, update-members, add-member, remove-member, disable, enable, delete.
        #[arg(long)]
        action: Option<String>,
        /// Only `success` or `failure`.
        #[arg(long)]
        outcome: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

#[derive(Subcommand)]
enum SchemaCmd {
    /// Register (or replace) an extension schema from a JSON file (`-` for stdin).
    Add {
        #[arg(long)]
        tenant: String,
        /// The resource type it extends.
        #[arg(long, default_value = "User", value_parser = ["User", "Group"])]
        resource_type: String,
        /// Whether every resource must carry the extension.
        #[arg(long)]
        required: bool,
        file: PathBuf,
    },
    /// List a tenant's extension schemas.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Remove an extension schema; stored values stay in the documents but are no longer served.
    Remove {
        #[arg(long)]
        tenant: String,
        urn: String,
    },
}

#[derive(Subcommand)]
enum TenantCmd {
    /// Create a tenant.
    Create { name: String },
    /// List tenants.
    List,
    /// Delete a tenant with all its users, groups and tokens.
    Delete { name: String },
    /// A one-time link that lets the customer's IT admin create their own Admin account for the tenant (shown once).
    Invite {
        name: String,
        /// How long the link works: 30m, 12h, 7d (at most 30d).
        #[arg(long, default_value = "7d")]
        expires: String,
    },
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Create a console account; the password is read from the terminal, or from the first line of stdin.
    Create {
        /// The tenant of an admin or viewer (an operator has none).
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "admin", value_parser = ["admin", "viewer", "operator"])]
        role: String,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Generate a Secret Token; it is shown once.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value = "")]
        label: String,
        /// `scim` for an identity provider; `admin` for the tenant administration API; `events` for the events API.
        #[arg(long, default_value = "scim", value_parser = ["scim", "admin", "events"])]
        scope: String,
        /// The token stops working after this many days (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List a tenant's tokens (never the secrets).
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Revoke a token by id; takes effect on the next request.
    Revoke { id: String },
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    database: Option<String>,
    public_url: Option<String>,
    smtp_url: Option<String>,
    smtp_from: Option<String>,
}

struct Resolved {
    listen: String,
    database: String,
    public_url: String,
    /// Where `public_url` came from, for messages.
    public_url_source: String,
    smtp_url: Option<String>,
    smtp_from: Option<String>,
    /// Where jobs sent through the admin API may connect.
    egress: Arc<scimitar_engine::egress::Policy>,
    /// Where webhooks may be sent besides public addresses.
    webhook_allow: Vec<scimitar_app::webhooks::Cidr>,
}

/// `--webhook-allow-private`, read.
fn webhook_allow(common: &Common) -> Result<Vec<scimitar_app::webhooks::Cidr>> {
    common
        .webhook_allow_private
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.parse()
                .map_err(|e: String| anyhow::anyhow!("--webhook-allow-private: {e}"))
        })
        .collect()
}

/// Where jobs sent through the admin API may connect.
fn egress_policy(common: &Common) -> Result<Arc<scimitar_engine::egress::Policy>> {
    let allow = common
        .job_egress_allow
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.parse()
                .map_err(|e: String| anyhow::anyhow!("--job-egress-allow: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(scimitar_engine::egress::Policy { allow }))
}

impl Resolved {
    /// The SMTP server for notification email, if one is configured.
    fn mailer(&self) -> Result<Option<scimitar_engine::notify::Mailer>> {
        let Some(url) = &self.smtp_url else {
            return Ok(None);
        };
        let from = self
            .smtp_from
            .as_deref()
            .context("--smtp-url needs --smtp-from (SCIMITAR_SMTP_FROM, or smtp_from in the config file): the sender of notification email")?;
        scimitar_engine::notify::Mailer::new(url, from, &self.public_url)
            .map(Some)
            .map_err(anyhow::Error::msg)
    }
}

/// Checks a public base URL (`--public-url`): `http` or `https` with a
/// host, an optional port and path, no query, fragment or credentials.
/// Returns it without a trailing `/`.
fn check_public_url(url: &str) -> std::result::Result<String, String> {
    let example = "e.g. https://scim.example.com";
    let lower = url.to_ascii_lowercase();
    let Some(rest) = ["https://", "http://"]
        .iter()
        .find(|p| lower.starts_with(*p))
        .and_then(|p| url.get(p.len()..))
    else {
        return Err(format!(
            "--public-url '{url}' must start with https:// or http:// ({example})"
        ));
    };
    if url.contains(['?', '#']) {
        return Err(format!(
            "--public-url '{url}' must not have a query or fragment ({example})"
        ));
    }
    if url.chars().any(char::is_whitespace) {
        return Err(format!("--public-url '{url}' must not contain spaces ({example})"));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return Err(format!("--public-url '{url}' must not contain credentials ({example})"));
    }
    // `host`, `host:port`, `[v6]` or `[v6]:port`.
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, tail)) => (h, tail.strip_prefix(':')),
            None => ("", None),
        },
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'));
    if !host_ok {
        return Err(format!("--public-url '{url}' has no valid host ({example})"));
    }
    if port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return Err(format!("--public-url '{url}' has an invalid port ({example})"));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// Whether clients elsewhere cannot use the public URL: it was not set,
/// and the listen address is a wildcard (0.0.0.0, [::]), which is where
/// the server listens but no address to connect to.
fn unreachable_public_url(cfg: &Resolved) -> bool {
    cfg.public_url_source.starts_with("the listen address")
        && cfg.listen.parse::<SocketAddr>().is_ok_and(|a| a.ip().is_unspecified())
}

fn resolve(common: &Common, listen: Option<String>) -> Result<Resolved> {
    let file: FileConfig = match &common.config {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading config file {}", p.display()))?;
            toml::from_str(&text).with_context(|| format!("parsing config file {}", p.display()))?
        }
        None => FileConfig::default(),
    };
    // Commands other than `serve` have no --listen, but SCIMITAR_LISTEN
    // still decides the default public URL, as it does for the server.
    let listen = listen
        .or_else(|| std::env::var("SCIMITAR_LISTEN").ok().filter(|l| !l.is_empty()))
        .or(file.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let database = common
        .database
        .clone()
        .or(file.database)
        .unwrap_or_else(|| DEFAULT_DATABASE.to_string());
    let (public_url, public_url_source) = match (common.public_url.clone(), file.public_url) {
        (Some(url), _) => {
            let flag = std::env::args().any(|a| a == "--public-url" || a.starts_with("--public-url="));
            (url, if flag { "--public-url" } else { "SCIMITAR_PUBLIC_URL" }.to_string())
        }
        (None, Some(url)) => {
            let file = common.config.as_deref().unwrap_or(Path::new("")).display();
            (url, format!("public_url in {file}"))
        }
        (None, None) => (
            format!("http://{listen}"),
            "the listen address; set --public-url, SCIMITAR_PUBLIC_URL or public_url in the config file to the address clients use".to_string(),
        ),
    };
    let public_url = check_public_url(&public_url).map_err(|e| usage(format!("{e} (from {public_url_source})")))?;
    // Checked before anything is created or connected.
    self::database(&database)?;
    Ok(Resolved {
        listen,
        database,
        public_url,
        public_url_source,
        smtp_url: common.smtp_url.clone().or(file.smtp_url),
        smtp_from: common.smtp_from.clone().or(file.smtp_from),
        egress: egress_policy(common)?,
        webhook_allow: webhook_allow(common)?,
    })
}

async fn open_store(url: &str) -> Result<Arc<dyn Store>> {
    match database(url)? {
        Database::Postgres(url) => {
            let pool: usize = std::env::var("SCIMITAR_DB_POOL_SIZE")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(16);
            let store = PostgresStore::connect(url, pool).await.map_err(|e| match e {
                // Says what failed and where (no database, role or server).
                scimitar_store::StoreError::Internal(m) => anyhow::anyhow!("PostgreSQL: {m}"),
                e => anyhow::anyhow!("connecting to PostgreSQL: {e}"),
            })?;
            // Only once the database answered: a failed connection leaves
            // no key file behind.
            load_key(url)?;
            Ok(Arc::new(store))
        }
        Database::Sqlite(path) => {
            load_key(url)?;
            let store =
                SqliteStore::open(path).map_err(|e| anyhow::anyhow!("opening database {}: {e}", path.display()))?;
            // The directory's data is the tenant directory: owner-only.
            restrict_permissions(path)?;
            Ok(Arc::new(store))
        }
    }
}

/// A mistake in the command line or the configuration: exit code 2, as
/// for the mistakes clap finds itself.
#[derive(Debug)]
struct UsageError(String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

/// What `--database` accepts, for its error messages.
const DATABASE_FORMS: &str = "sqlite:PATH, sqlite://PATH, a file path without a scheme (SQLite), \
     postgres://USER@HOST:PORT/DATABASE or postgresql://USER@HOST:PORT/DATABASE";

/// The database a `--database` value names.
#[derive(Debug, PartialEq)]
enum Database<'a> {
    Sqlite(&'a Path),
    Postgres(&'a str),
}

/// Parses `--database`: `sqlite:PATH`, `sqlite://PATH`, a bare file path
/// (SQLite), `postgres://…` or `postgresql://…`; any other scheme is a
/// mistake (`mysql://x` must not become a SQLite file named `mysql:/x`).
fn database(url: &str) -> Result<Database<'_>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Database::Postgres(url));
    }
    let path = match url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        Some(path) => path,
        None => {
            if let Some(scheme) = scheme_of(url) {
                return Err(usage(format!(
                    "--database: unknown scheme '{scheme}:' in '{}'; accepted: {DATABASE_FORMS}",
                    redact_url(url)
                )));
            }
            url
        }
    };
    if path.is_empty() {
        return Err(usage(format!(
            "--database: empty database path in '{url}'; accepted: {DATABASE_FORMS}"
        )));
    }
    Ok(Database::Sqlite(Path::new(path)))
}

/// The scheme of a URL (`mysql` of `mysql://x`); none for a file path
/// (one letter before the colon is a Windows drive).
fn scheme_of(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let starts = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    (starts && scheme.len() > 1 && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
        .then_some(scheme)
}

/// The token-hashing key: `SCIMITAR_KEY_FILE`, or `scimitar.key` beside the
/// SQLite database (in the working directory for PostgreSQL). Created with
/// mode 0600 on first use; every node of a cluster needs the same file.
fn key_path(url: &str) -> PathBuf {
    if let Ok(p) = std::env::var("SCIMITAR_KEY_FILE") {
        return PathBuf::from(p);
    }
    match database(url) {
        Ok(Database::Sqlite(p)) => p
            .parent()
            .map(|d| d.join("scimitar.key"))
            .unwrap_or_else(|| PathBuf::from("scimitar.key")),
        _ => PathBuf::from("scimitar.key"),
    }
}

fn load_key(url: &str) -> Result<()> {
    let path = key_path(url);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => {
            refuse_if_readable_by_others(&path, "key file", 0o077)?;
            t
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            // Several processes may start at once (nodes, CLI commands): write
            // a private temporary file and link it into place, which fails
            // if another process got there first; then use theirs.
            let key = scimitar_auth::random_key()?;
            let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
            let tmp = path.with_extension(format!("key.{}.tmp", std::process::id()));
            write_private(&tmp, &hex).with_context(|| format!("writing key file {}", tmp.display()))?;
            let linked = std::fs::hard_link(&tmp, &path);
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Ok(()) => hex,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    std::fs::read_to_string(&path).with_context(|| format!("reading key file {}", path.display()))?
                }
                Err(e) => return Err(e).with_context(|| format!("writing key file {}", path.display())),
            }
        }
        Err(e) => return Err(e).with_context(|| format!("reading key file {}", path.display())),
    };
    let hex = text.trim();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .filter_map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect();
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("key file {} must hold 64 hexadecimal characters", path.display()))?;
    scimitar_auth::set_key(key);
    Ok(())
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// Refuses a secret file that users other than the owner may read.
#[cfg(unix)]
fn refuse_if_readable_by_others(path: &Path, what: &str, mask: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & mask != 0 {
        bail!(
            "the {what} {} is readable by other users (mode {:o}); run `chmod 600 {}` and start again",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_if_readable_by_others(_: &Path, _: &str, _: u32) -> Result<()> {
    Ok(())
}

/// Makes the SQLite files private to the owner (SQLite creates them with
/// the umask, usually world-readable).
#[cfg(unix)]
fn restrict_permissions(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let mut shm = path.as_os_str().to_owned();
    shm.push("-shm");
    for p in [path.to_path_buf(), PathBuf::from(wal), PathBuf::from(shm)] {
        if let Ok(meta) = std::fs::metadata(&p)
            && meta.permissions().mode() & 0o077 != 0
        {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting permissions of {}", p.display()))?;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict_permissions(_: &Path) -> Result<()> {
    Ok(())
}

/// A failed application operation, for the terminal: its detail says what
/// is wrong.
fn app_err(e: ScimError) -> anyhow::Error {
    anyhow::anyhow!("{}", e.detail)
}

/// The application layer over the configured database.
async fn open_app(cfg: &Resolved) -> Result<Arc<App>> {
    let store = open_store(&cfg.database).await?;
    let mut config = scimitar_app::Config::new(&cfg.public_url);
    config.webhook_allow = cfg.webhook_allow.clone();
    let app = App::new(store, config);
    app.set_job_files(Arc::new(jobs::EngineJobFiles {
        egress: cfg.egress.clone(),
    }));
    Ok(app)
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        // `scimitar export | head`: the reader went away, nothing is wrong.
        if terminal::is_broken_pipe(&e) {
            std::process::exit(0);
        }
        eprintln!("error: {e:#}");
        if e.downcast_ref::<UsageError>().is_some() {
            std::process::exit(2);
        }
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Admin(AdminCmd::Create { tenant, email, role }) => {
            let cfg = resolve(&cli.common, None)?;
            let app = open_app(&cfg).await?;
            let password = terminal::read_password().map_err(anyhow::Error::msg)?;
            let tenant = match tenant {
                Some(name) => Some(app.tenant(&name).await.map_err(app_err)?),
                None => None,
            };
            let account = scimitar_app::accounts::NewAccount {
                tenant: tenant.as_ref(),
                email: &email,
                role: &role,
                password,
            };
            let a = app.create_account(&Actor::Cli, account).await.map_err(app_err)?;
            if cli.common.json {
                print_json(json!({"email": a.email, "role": a.role, "tenant": a.tenant, "created": a.created}));
            } else {
                out!(
                    "Created {} ({}). Sign in at {}/login (public URL from {})",
                    a.email,
                    a.role,
                    cfg.public_url,
                    cfg.public_url_source
                );
            }
            Ok(())
        }
        Command::Serve { listen, limits } => {
            let cfg = resolve(&cli.common, listen)?;
            serve(cfg, limits).await
        }
        Command::Tenant(cmd) => {
            let cfg = resolve(&cli.common, None)?;
            let app = open_app(&cfg).await?;
            tenant_cmd(&app, cmd, cli.common.json, &cfg.public_url_source).await
        }
        Command::Webhook(cmd) => {
            let cfg = resolve(&cli.common, None)?;
            let app = open_app(&cfg).await?;
            webhook::webhook_cmd(&app, cmd, cli.common.json).await
        }
        Command::Token(cmd) => {
            let cfg = resolve(&cli.common, None)?;
            let app = open_app(&cfg).await?;
            token_cmd(&app, cmd, cli.common.json, &cfg.public_url_source).await
        }
        Command::Export { tenant, output } => {
            let cfg = resolve(&cli.common, None)?;
            let store = open_store(&cfg.database).await?;
            transfer::export_cmd(&*store, &tenant, output, cli.common.json).await
        }
        Command::Import { tenant, input } => {
            let cfg = resolve(&cli.common, None)?;
            let app = open_app(&cfg).await?;
            transfer::import_cmd(&app, &tenant, input, cli.common.json).await
        }
        Command::Audit { tenant, limit } => {
            let cfg = resolve(&cli.common, None)?;
            let store = open_store(&cfg.database).await?;
            let tenant_id = match tenant {
                Some(name) => Some(
                    store
                        .tenant(&name)
                        .await
                        .map_err(anyhow::Error::msg)?
                        .with_context(|| format!("no tenant named '{name}'"))?
                        .id,
                ),
                None => None,
            };
            let events = store.list_audit(tenant_id, limit).await.map_err(anyhow::Error::msg)?;
            if cli.common.json {
                print_json(json!({"events": events}));
            } else {
                for e in events {
                    out!(
                        "{}\t{}\t{}\t{}\t{}",
                        e.time,
                        e.actor,
                        e.action,
                        e.target.as_deref().unwrap_or("-"),
                        e.source.as_deref().unwrap_or("-")
                    );
                }
            }
            Ok(())
        }
        Command::Migrate => {
            let cfg = resolve(&cli.common, None)?;
            // Opening a store applies its embedded migrations; then the
            // data migrations that need the application layer.
            let app = open_app(&cfg).await?;
            let done = app.upgrade_data(&Actor::Cli).await.map_err(app_err)?;
            if cli.common.json {
                print_json(json!({"database": redact_url(&cfg.database), "migrated": true,
                    "passwords_hashed": done.passwords_hashed, "unique_duplicates": done.unique_duplicates}));
            } else {
                out!("Database {} is migrated.", redact_url(&cfg.database));
                if done.passwords_hashed > 0 {
                    out!(
                        "Hashed {} SCIM passwords that were stored in clear.",
                        done.passwords_hashed
                    );
                }
                if done.unique_duplicates > 0 {
                    out!(
                        "{} values that must be unique were already another resource's; they are left as they are (see the log).",
                        done.unique_duplicates
                    );
                }
            }
            Ok(())
        }
        Command::Schema(cmd) => {
            let cfg = resolve(&cli.common, None)?;
            let app = open_app(&cfg).await?;
            schema_cmd(&app, cmd, cli.common.json).await
        }
        Command::Sync(cmd) => {
            let cfg = resolve(&cli.common, None)?;
            let mailer = cfg.mailer()?;
            let app = open_app(&cfg).await?;
            sync::sync_cmd(app, cmd, cli.common.json, mailer).await
        }
        Command::Expression(cmd) => sync::expression_cmd(cmd),
        Command::Validate(args) => {
            let code = validate::validate_cmd(args, cli.common.json).await;
            std::process::exit(code)
        }
        Command::Events {
            tenant,
            after,
            types,
            limit,
            follow,
        } => {
            let cfg = resolve(&cli.common, None)?;
            let app = open_app(&cfg).await?;
            let args = events::EventsArgs {
                tenant,
                after,
                types,
                limit,
                follow,
                json: cli.common.json,
            };
            events::run(&app, args).await
        }
        Command::Activity {
            tenant,
            since,
            action,
            outcome,
            limit,
        } => {
            // The same checks as the admin API's; a mistake is exit code 2.
            use scimitar_protocol::activity as filter;
            let now = time::OffsetDateTime::now_utc();
            let checked = |r: Result<String, ScimError>| r.map_err(|e| usage(format!("--{}", e.detail)));
            let since = since
                .map(|v| checked(filter::parse_time("since", &v, now)))
                .transpose()?;
            let action = action.map(|v| checked(filter::parse_action(&v))).transpose()?;
            let outcome = outcome.map(|v| checked(filter::parse_outcome(&v))).transpose()?;
            let cfg = resolve(&cli.common, None)?;
            let store = open_store(&cfg.database).await?;
            let t = store
                .tenant(&tenant)
                .await
                .map_err(anyhow::Error::msg)?
                .with_context(|| format!("no tenant named '{tenant}'"))?;
            let query = scimitar_store::ActivityQuery {
                since,
                action,
                outcome,
                limit,
                ..Default::default()
            };
            let events = store.list_activity(t.id, query).await.map_err(anyhow::Error::msg)?;
            if cli.common.json {
                print_json(json!({"events": events}));
            } else {
                for e in events {
                    let changed: Vec<String> = e
                        .changes
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|c| c["attribute"].as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    out!(
                        "{}\t{}\t{}\t{} {}\t{}\t{}{}",
                        e.time,
                        e.outcome,
                        e.action,
                        e.resource_type.as_deref().unwrap_or("-"),
                        e.name.as_deref().or(e.resource_id.as_deref()).unwrap_or("-"),
                        e.token_label.as_deref().unwrap_or("-"),
                        changed.join(","),
                        e.error.map(|m| format!("\terror: {m}")).unwrap_or_default()
                    );
                }
            }
            Ok(())
        }
    }
}

/// Operational limits of `serve` (all also settable by environment).
#[derive(Args, Clone)]
struct ServeLimits {
    /// SCIM requests per second per tenant (token bucket; 0 = no limit).
    #[arg(long, env = "SCIMITAR_RATE_LIMIT", default_value_t = 2000)]
    rate_limit: u32,
    /// Failed authentications per minute per source before it gets 429 (0 = no limit).
    #[arg(long, env = "SCIMITAR_AUTH_FAILURES_PER_MINUTE", default_value_t = 30)]
    auth_failures_per_minute: u32,
    /// Take client addresses from X-Forwarded-For (only behind a trusted proxy).
    #[arg(long, env = "SCIMITAR_TRUST_FORWARDED_FOR")]
    trust_forwarded_for: bool,
    /// With --trust-forwarded-for: the proxies in front that each append to X-Forwarded-For; the client is the entry this many places from the right.
    #[arg(long, env = "SCIMITAR_TRUSTED_PROXY_HOPS", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..))]
    trusted_proxy_hops: u8,
    /// Days of provisioning activity to keep.
    #[arg(long, env = "SCIMITAR_ACTIVITY_RETENTION_DAYS", default_value_t = 30)]
    activity_retention_days: u32,
    /// Days of change events (the events API's feed) to keep.
    #[arg(long, env = "SCIMITAR_EVENT_RETENTION_DAYS", default_value_t = 30)]
    event_retention_days: u32,
    /// Seconds a request may take before it is answered 503 (its query is
    /// stopped then too).
    #[arg(long, env = "SCIMITAR_REQUEST_TIMEOUT", default_value_t = 30)]
    request_timeout: u64,
    /// Searches (lists that are not index lookups) one tenant may run at
    /// once; more get 429 (0 = no cap).
    #[arg(long, env = "SCIMITAR_SCANS_PER_TENANT", default_value_t = scimitar_app::DEFAULT_SCANS_PER_TENANT)]
    scans_per_tenant: usize,
    /// The most a filter may cost (resources × the cost of testing one);
    /// more is 400 tooMany without running (0 = no budget).
    #[arg(long, env = "SCIMITAR_FILTER_COST_BUDGET", default_value_t = scimitar_app::DEFAULT_FILTER_COST_BUDGET)]
    filter_cost_budget: u64,
    /// Seconds a client may take to send a request's headers, from their first byte.
    #[arg(long, env = "SCIMITAR_HEADER_READ_TIMEOUT", default_value_t = 10)]
    header_read_timeout: u64,
    /// Seconds a connection may stay open with no request in progress and no data moving.
    #[arg(long, env = "SCIMITAR_IDLE_TIMEOUT", default_value_t = 75)]
    idle_timeout: u64,
    /// Bytes of memory for request bodies in flight, shared by all requests: a quarter for bodies as received, the rest for their parsed form; requests beyond it wait, then get 503.
    #[arg(long, env = "SCIMITAR_MAX_BODY_MEMORY", default_value_t = 128 * 1024 * 1024)]
    max_body_memory: usize,
    /// Maximum request body in bytes (Bulk has its own, 4x larger, limit).
    #[arg(long, env = "SCIMITAR_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    max_body_bytes: usize,
    /// Serve HTTPS with this certificate chain (PEM); reloaded when the file changes.
    #[arg(long, env = "SCIMITAR_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) for --tls-cert.
    #[arg(long, env = "SCIMITAR_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Log format: `text` or `json` (then every line on standard output is
    /// a JSON object, the start-up banner included; the one-time setup
    /// link goes to standard error).
    #[arg(long, env = "SCIMITAR_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// One log line per request at `info` (method, route, status, duration,
    /// request id, tenant): `on` or `off`.
    #[arg(long, env = "SCIMITAR_REQUEST_LOG", default_value = "on", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set)]
    request_log: bool,
    /// Seconds a provisioning job's cycle holds its lease without renewal (renewed every third): how long a job of a node that died waits before another node takes it.
    #[arg(long, env = "SCIMITAR_JOB_LEASE", default_value_t = 60, value_parser = clap::value_parser!(u64).range(3..))]
    job_lease: u64,
    /// Seconds a node holds a webhook endpoint's lease without renewal (renewed every third): how long an endpoint of a node that died waits before another node (or the restarted one) delivers to it.
    #[arg(long, env = "SCIMITAR_WEBHOOK_LEASE", default_value_t = 60, value_parser = clap::value_parser!(u64).range(3..))]
    webhook_lease: u64,
    /// Deliveries in flight at once to one webhook endpoint (never two for one resource; each resource's events in order).
    #[arg(long, env = "SCIMITAR_WEBHOOK_IN_FLIGHT", default_value_t = scimitar_app::delivery::DEFAULT_WEBHOOK_IN_FLIGHT, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    webhook_in_flight: usize,
}

impl ServeLimits {
    fn apply(&self, s: &mut Settings) {
        s.rate_limit_per_tenant = self.rate_limit;
        s.auth_failures_per_minute = self.auth_failures_per_minute;
        s.trust_forwarded_for = self.trust_forwarded_for;
        s.trusted_proxy_hops = usize::from(self.trusted_proxy_hops);
        s.activity_retention_days = self.activity_retention_days;
        s.event_retention_days = self.event_retention_days;
        s.request_timeout = std::time::Duration::from_secs(self.request_timeout.max(1));
        s.scans_per_tenant = self.scans_per_tenant;
        s.filter_cost_budget = self.filter_cost_budget;
        s.header_read_timeout = std::time::Duration::from_secs(self.header_read_timeout.max(1));
        s.idle_timeout = std::time::Duration::from_secs(self.idle_timeout.max(1));
        s.max_body_bytes = self.max_body_bytes;
        s.body_memory = self.max_body_memory;
        s.bulk_max_payload_bytes = self.max_body_bytes.saturating_mul(4);
        s.log_requests = self.request_log;
        if let Some(d) = s.webhook_delivery.as_mut() {
            d.lease = std::time::Duration::from_secs(self.webhook_lease);
            d.in_flight = self.webhook_in_flight;
        }
    }
}

/// A line of `serve`'s start-up banner: as it is on standard output in
/// the text format, a JSON log record (with `warning` at `warn`) in the
/// JSON one, so that every line there parses.
fn banner(json: bool, warning: bool, line: &str) {
    match (json, warning) {
        (false, _) => out!("{line}"),
        (true, false) => tracing::info!(target: "scimitar::banner", "{line}"),
        (true, true) => tracing::warn!(target: "scimitar::banner", "{line}"),
    }
}

async fn serve(cfg: Resolved, limits: ServeLimits) -> Result<()> {
    // Refuse to serve a directory that other users can read.
    if let Ok(Database::Sqlite(path)) = database(&cfg.database)
        && path.exists()
    {
        refuse_if_readable_by_others(path, "database", 0o004)?;
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("SCIMITAR_LOG").unwrap_or_else(|_| "info".into());
    let json = limits.log_format == "json";
    // Colours only for a person at a terminal: never in a file, a pipe or
    // a journal, nor with NO_COLOR set.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    if json {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_ansi(ansi).with_env_filter(filter).init();
    }
    let store = open_store(&cfg.database).await?;
    let addr: SocketAddr = cfg
        .listen
        .parse()
        .with_context(|| format!("invalid listen address '{}'", cfg.listen))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    // Nodes starting together on an empty database race for this; the
    // losers see a conflict and carry on.
    let mut settings = Settings::new(&cfg.public_url);
    limits.apply(&mut settings);
    settings.webhook_allow = cfg.webhook_allow.clone();
    let state = AppState::new(store, settings);
    // The admin API's job routes compile and describe jobs with the engine.
    state.app.set_job_files(Arc::new(jobs::EngineJobFiles {
        egress: cfg.egress.clone(),
    }));
    // The console's "Validate this tenant".
    state
        .app
        .set_validator(Arc::new(validate::ConsoleValidator { load_seconds: 2.0 }));
    let fresh = state
        .app
        .store
        .list_tenants()
        .await
        .map_err(anyhow::Error::msg)?
        .is_empty()
        && match state.app.create_tenant(&Actor::Server, "default").await {
            Ok(_) => true,
            Err(e) if e.status == 409 => false,
            Err(e) => return Err(app_err(e)),
        };
    let unreachable = unreachable_public_url(&cfg);
    if fresh {
        banner(json, false, "Created the first tenant, 'default'.");
        banner(
            json,
            false,
            &format!("  Tenant URL:   {}", tenant_url(&cfg.public_url, "default")),
        );
        banner(
            json,
            false,
            &format!(
                "  Secret Token: run `scimitar token create --tenant default --database {}`",
                cfg.database
            ),
        );
        banner(
            json,
            false,
            "Paste both into Microsoft Entra ID (Provisioning → Admin Credentials) and click Test Connection.",
        );
    }
    banner(
        json,
        false,
        &format!("Public URL: {} (from {})", cfg.public_url, cfg.public_url_source),
    );
    if unreachable {
        banner(
            json,
            true,
            &format!(
                "WARNING: {} is not an address clients can reach: Tenant URLs, links and Location headers built from it will not work from another machine. Start with --public-url https://scim.example.com (the address Entra or Okta reach this server at).",
                cfg.public_url
            ),
        );
    }
    // Data an older version left (passwords in clear, values of unique
    // attributes not yet indexed) is brought up to date in the background:
    // a few tens of milliseconds per password. Until then such passwords
    // are still never returned or filterable. Idempotent on every node.
    let upgrading = state.app.clone();
    tokio::spawn(async move {
        match upgrading.upgrade_data(&Actor::Server).await {
            Ok(done) if done == scimitar_app::DataUpgrade::default() => {}
            Ok(done) => tracing::info!(
                passwords_hashed = done.passwords_hashed,
                unique_duplicates = done.unique_duplicates,
                "upgraded stored data"
            ),
            Err(e) => tracing::warn!(error = %e.detail, "could not upgrade stored data"),
        }
    });
    tracing::info!(%local, public_url = %cfg.public_url, "scimitar is serving");
    if let Some(link) = scimitar_console::setup_link(&state.app)
        .await
        .map_err(anyhow::Error::msg)?
    {
        // A credential: on standard error, never in the log on standard
        // output (which is shipped and kept).
        // (Not eprintln!: a closed stderr is no reason to stop serving.)
        let _ = std::io::Write::write_fmt(
            &mut std::io::stderr(),
            format_args!("Set up the admin console (one-time link, valid 24 hours): {link}\n"),
        );
    }
    let tls = match (&limits.tls_cert, &limits.tls_key) {
        (Some(cert), Some(key)) => {
            let files = scimitar_server::tls::TlsFiles::new(cert.clone(), key.clone());
            // Fail at start, not at the first connection, on a bad certificate.
            scimitar_server::tls::load(&files).map_err(anyhow::Error::msg)?;
            Some(files)
        }
        (None, None) => None,
        _ => bail!("--tls-cert and --tls-key go together"),
    };
    banner(
        json,
        false,
        &format!(
            "Listening on {}://{local}",
            if tls.is_some() { "https" } else { "http" }
        ),
    );
    tokio::spawn(return_freed_memory());
    // Provisioning jobs switched on run here, on one node of a cluster at a time.
    let scheduler = scimitar_engine::schedule::SchedulerConfig {
        lease: std::time::Duration::from_secs(limits.job_lease),
        mailer: cfg.mailer()?,
        egress: cfg.egress.clone(),
        ..Default::default()
    };
    tokio::spawn(scimitar_engine::schedule::run(
        state.app.store.clone(),
        scheduler,
        shutdown_signal(),
    ));
    // The admin console is served beside the SCIM API, at the root of the URL.
    let app = scimitar_server::router_with(state.clone(), scimitar_console::router(state.app.clone()));
    scimitar_server::serve_app(listener, state, app, tls, shutdown_signal()).await?;
    tracing::info!("shut down");
    Ok(())
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn print_json(v: serde_json::Value) {
    out!("{v}");
}

/// `source`: where the public URL came from, said beside Tenant URLs.
async fn tenant_cmd(app: &App, cmd: TenantCmd, as_json: bool, source: &str) -> Result<()> {
    let err = anyhow::Error::msg;
    match cmd {
        TenantCmd::Create { name } => {
            let t = app.create_tenant(&Actor::Cli, &name).await.map_err(app_err)?;
            let url = app.tenant_url(&t.name);
            if as_json {
                print_json(json!({"name": t.name, "scim_url": url, "created": t.created}));
            } else {
                out!(
                    "Created tenant '{}'.\n  Tenant URL: {url} (public URL from {source})\n  Next: scimitar token create --tenant {}",
                    t.name,
                    t.name
                );
            }
        }
        TenantCmd::List => {
            let tenants = app.store.list_tenants().await.map_err(err)?;
            if as_json {
                let list: Vec<_> = tenants
                    .iter()
                    .map(|t| json!({"name": t.name, "scim_url": app.tenant_url(&t.name), "created": t.created}))
                    .collect();
                print_json(json!({"tenants": list}));
            } else {
                for t in tenants {
                    out!("{}\t{}\t{}", t.name, app.tenant_url(&t.name), t.created);
                }
            }
        }
        TenantCmd::Delete { name } => {
            app.delete_tenant(&Actor::Cli, &name).await.map_err(app_err)?;
            if as_json {
                print_json(json!({"name": name, "deleted": true}));
            } else {
                out!("Deleted tenant '{name}' with all its data and tokens.");
            }
        }
        TenantCmd::Invite { name, expires } => {
            let ttl = scimitar_app::invites::parse_ttl(&expires).map_err(|e| anyhow::anyhow!("--expires: {e}"))?;
            let t = app.tenant(&name).await.map_err(app_err)?;
            let invite = app.create_invite(&Actor::Cli, &t, ttl).await.map_err(app_err)?;
            if as_json {
                print_json(json!({"tenant": t.name, "link": invite.link, "expires": invite.expires}));
            } else {
                out!(
                    "Invite link for the IT admin of '{}' (works once, until {}; shown once):\n\n  {}\n",
                    t.name,
                    invite.expires,
                    invite.link
                );
                out!("Opening it, they create their own Admin account and land on Settings → Provisioning.");
            }
        }
    }
    Ok(())
}

/// `source`: where the public URL came from, said beside Tenant URLs.
async fn token_cmd(app: &App, cmd: TokenCmd, as_json: bool, source: &str) -> Result<()> {
    let err = anyhow::Error::msg;
    match cmd {
        TokenCmd::Create {
            tenant,
            label,
            scope,
            expires_in_days,
        } => {
            let t = app.tenant(&tenant).await.map_err(app_err)?;
            let req = TokenRequest {
                label,
                scope,
                expires_in_days,
            };
            let new = app.generate_token(&Actor::Cli, &t, req).await.map_err(app_err)?;
            let (info, url) = (new.info, app.tenant_url(&t.name));
            if as_json {
                print_json(json!({
                    "id": info.id, "token": new.secret, "scim_url": url, "tenant": t.name,
                    "label": info.label, "scope": info.scope, "created": info.created, "expires": info.expires
                }));
            } else {
                out!(
                    "Secret Token (shown once; it cannot be recovered):\n\n  {}\n",
                    new.secret
                );
                out!(
                    "Tenant URL: {url} (public URL from {source})\nToken id:   {} (use it to revoke)",
                    info.id
                );
            }
        }
        TokenCmd::List { tenant } => {
            let t = app.tenant(&tenant).await.map_err(app_err)?;
            let tokens = app.store.list_tokens(t.id).await.map_err(err)?;
            if as_json {
                print_json(json!({"tokens": tokens}));
            } else {
                for k in tokens {
                    let state = if k.revoked.is_some() { "revoked" } else { "active" };
                    out!(
                        "{}\t{}\t{}\tcreated {}\tlast used {}\t{state}",
                        k.id,
                        k.hint,
                        if k.label.is_empty() { "-" } else { &k.label },
                        k.created,
                        k.last_used.as_deref().unwrap_or("never")
                    );
                }
            }
        }
        TokenCmd::Revoke { id } => {
            app.revoke_token_by_id(&Actor::Cli, &id).await.map_err(app_err)?;
            if as_json {
                print_json(json!({"id": id, "revoked": true}));
            } else {
                out!("Revoked {id}; requests with it are refused from now on.");
            }
        }
    }
    Ok(())
}

async fn schema_cmd(app: &App, cmd: SchemaCmd, as_json: bool) -> Result<()> {
    let err = anyhow::Error::msg;
    match cmd {
        SchemaCmd::Add {
            tenant,
            resource_type,
            required,
            file,
        } => {
            let t = app.tenant(&tenant).await.map_err(app_err)?;
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?
            };
            let schema: serde_json::Value = serde_json::from_str(&text).context("the schema file is not valid JSON")?;
            let ext = NewExtension {
                resource_type: resource_type.clone(),
                required,
                schema,
            };
            let s = app.register_extension(&Actor::Cli, &t, ext).await.map_err(app_err)?;
            if as_json {
                print_json(json!({"urn": s.id, "resourceType": resource_type, "attributes": s.attributes.len()}));
            } else {
                out!(
                    "Registered {} on {resource_type} ({} attributes).",
                    s.id,
                    s.attributes.len()
                );
            }
        }
        SchemaCmd::List { tenant } => {
            let t = app.tenant(&tenant).await.map_err(app_err)?;
            let exts = app.store.list_extensions(t.id).await.map_err(err)?;
            if as_json {
                let list: Vec<_> = exts.iter().map(|e| json!({"urn": e.urn, "resourceType": e.resource_type, "required": e.required, "schema": e.schema})).collect();
                print_json(json!({"extensions": list}));
            } else {
                for e in exts {
                    out!(
                        "{}\t{}\t{}",
                        e.urn,
                        e.resource_type,
                        if e.required { "required" } else { "optional" }
                    );
                }
            }
        }
        SchemaCmd::Remove { tenant, urn } => {
            let t = app.tenant(&tenant).await.map_err(app_err)?;
            app.remove_extension(&Actor::Cli, &t, &urn).await.map_err(app_err)?;
            if as_json {
                print_json(json!({"urn": urn, "removed": true}));
            } else {
                out!("Removed {urn}.");
            }
        }
    }
    Ok(())
}

/// A database URL without its password, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("https://scim.example.com", Ok("https://scim.example.com")),
            ("https://scim.example.com/", Ok("https://scim.example.com")),
            ("http://127.0.0.1:8080", Ok("http://127.0.0.1:8080")),
            (
                "HTTPS://Scim.Example.com/prefix/",
                Ok("HTTPS://Scim.Example.com/prefix"),
            ),
            ("http://[::1]:8080", Ok("http://[::1]:8080")),
            ("scim.example.com", Err("must start with https:// or http://")),
            ("ftp://scim.example.com", Err("must start with https:// or http://")),
            ("https://", Err("no valid host")),
            ("https:///path", Err("no valid host")),
            ("https://scim.example.com?x=1", Err("query or fragment")),
            ("https://scim.example.com/#top", Err("query or fragment")),
            ("https://u:p@scim.example.com", Err("credentials")),
            ("https://scim.example.com:99999", Err("invalid port")),
            ("https://scim.example.com:", Err("invalid port")),
            ("https://scim example.com", Err("spaces")),
        ];
        for (url, want) in cases {
            match (check_public_url(url), want) {
                (Ok(got), Ok(want)) => assert_eq!(&got, want, "{url}"),
                (Err(e), Err(words)) => assert!(e.contains(words), "{url}: {e}"),
                (got, want) => panic!("{url}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn database_values() {
        let cases: &[(&str, Option<Database<'_>>)] = &[
            (
                "sqlite:data/scimitar.db",
                Some(Database::Sqlite(Path::new("data/scimitar.db"))),
            ),
            (
                "sqlite:///var/lib/s.db",
                Some(Database::Sqlite(Path::new("/var/lib/s.db"))),
            ),
            ("sqlite://rel/s.db", Some(Database::Sqlite(Path::new("rel/s.db")))),
            (
                "data/scimitar.db",
                Some(Database::Sqlite(Path::new("data/scimitar.db"))),
            ),
            ("/tmp/x:y/s.db", Some(Database::Sqlite(Path::new("/tmp/x:y/s.db")))),
            ("C:/data/s.db", Some(Database::Sqlite(Path::new("C:/data/s.db")))),
            ("postgres://u@h/db", Some(Database::Postgres("postgres://u@h/db"))),
            (
                "postgresql://u@h:5433/db",
                Some(Database::Postgres("postgresql://u@h:5433/db")),
            ),
            ("mysql://x", None),
            ("mysql:x", None),
            ("postgre://u@h/db", None),
            ("http://h/db", None),
            ("sqlite:", None),
            ("", None),
        ];
        for (value, want) in cases {
            match (database(value), want) {
                (Ok(got), Some(want)) => assert_eq!(&got, want, "{value}"),
                (Err(e), None) => {
                    assert!(e.downcast_ref::<UsageError>().is_some(), "{value}: {e}");
                    assert!(e.to_string().contains("sqlite:PATH"), "{value}: {e}");
                }
                (got, want) => panic!("{value}: got {got:?}, want {want:?}"),
            }
        }
    }
}
