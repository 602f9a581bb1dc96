//! The LDAP source: users and groups from a directory server, read with
//! `ldap3` (docs/engine.md, "LDAP source").
//!
//! Two ways to find what changed, chosen per read:
//! - content synchronisation (RFC 4533, refreshOnly), when the server offers
//!   it and the job allows it: the first read is a sync search without a
//!   cookie per object type (every entry, and a cookie); later reads send the
//!   cookies and get the changed entries, plus either the deleted UUIDs (a
//!   server with a session log) or the UUIDs still present (one without);
//! - otherwise paged searches: everything first, then entries whose
//!   `modifyTimestamp` is at or after the previous read's start (less an
//!   overlap), and every `full_scan_every`-th incremental read a scan of
//!   every `entryUUID` so that deletions are seen.
//!
//! Entries are converted as they arrive, so a read holds the objects it
//! returns and never the raw entries as well. The watermark is JSON and
//! names the mode, so that a watermark from the other mode, or from another
//! server or search, starts over with a full read.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::controls::{
    Control, ControlParser, ControlType, EntryState, MakeCritical, RefreshMode, SyncDone, SyncInfo, SyncRequest,
    SyncState, parse_syncinfo,
};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, LdapResult, ResultEntry, Scope, SearchEntry};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

use super::{Source, SourceError};
use crate::job::LdapSpec;
use crate::model::{Delta, Kind, SourceObject};

/// The rootDSE's `supportedControl` value of content synchronisation.
pub const CONTENT_SYNC_OID: &str = "1.3.6.1.4.1.4203.1.9.1.1";

/// How far before the previous read's start a `modifyTimestamp` search
/// begins: the timestamps have a granularity of one second, a change is
/// stamped before it commits, and the two clocks are never quite equal.
pub const TIMESTAMP_OVERLAP: Duration = Duration::from_secs(5);

/// e-syncRefreshRequired (RFC 4533 §3.4): the server cannot continue from
/// the cookie, the client must read everything again.
const SYNC_REFRESH_REQUIRED: u32 = 4096;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the server may take to send the next message of an operation
/// (not the whole search).
const OPERATION_TIMEOUT: Duration = Duration::from_secs(120);

/// Attributes never read into objects: they are secrets, whatever the bind
/// account may see.
const NEVER_READ: &[&str] = &["userPassword", "authPassword", "sambaNTPassword", "sambaLMPassword"];

/// Generalized time as `modifyTimestamp` filters take it (RFC 4517 §3.3.13).
const GENERALIZED_TIME: &[BorrowedFormatItem<'static>] =
    format_description!("[year][month][day][hour][minute][second]Z");

/// A DN in the one form every comparison uses: attribute types and values
/// lower-cased, no spaces around `,`, `+` and `=` (nor leading or trailing
/// ones in a value), escapes kept as written (lower-cased).
///
/// Limits, for DNs that name the same entry but still differ after it: a
/// character escaped two ways (`\,` and `\2c`) stays different; attribute
/// types are not resolved (`cn` and `commonName` or `2.5.4.3` differ); the
/// parts of a multi-valued RDN (`cn=a+uid=b`) are not reordered; values are
/// lower-cased even for case-exact attributes; no Unicode normalisation
/// beyond lower-casing; the legacy `;` separator and quoted values of RFC
/// 1779 are not interpreted. Directory servers return the DNs of `member`
/// and `manager` as they store them, so in practice these do not arise.
pub fn normalize_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    // The current type or value, each character with "was escaped".
    let mut piece: Vec<(char, bool)> = Vec::new();
    let mut in_value = false;
    let mut chars = dn.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => piece.push((next, true)),
                None => piece.push(('\\', false)),
            },
            // A value may hold an unescaped `=` (RFC 4514 does not escape it).
            '=' if !in_value => {
                flush_dn_piece(&mut out, &mut piece);
                out.push('=');
                in_value = true;
            }
            ',' | '+' => {
                flush_dn_piece(&mut out, &mut piece);
                out.push(c);
                in_value = false;
            }
            _ => piece.push((c, false)),
        }
    }
    flush_dn_piece(&mut out, &mut piece);
    out
}

fn flush_dn_piece(out: &mut String, piece: &mut Vec<(char, bool)>) {
    let kept = |(c, escaped): &(char, bool)| *escaped || *c != ' ';
    if let (Some(start), Some(end)) = (piece.iter().position(kept), piece.iter().rposition(kept)) {
        for (c, escaped) in piece.iter().take(end + 1).skip(start) {
            if *escaped {
                out.push('\\');
            }
            out.extend(c.to_lowercase());
        }
    }
    piece.clear();
}

/// The DN of a `uniqueMember` value, without its optional `#'0101'B` UID.
fn unique_member_dn(value: &str) -> &str {
    match value.rsplit_once("#'") {
        Some((dn, uid)) if uid.ends_with("'B") && !dn.ends_with('\\') => dn,
        _ => value,
    }
}

/// Where the next read starts. Serialised into `Delta::watermark`; stable
/// across restarts since it is plain data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
enum Watermark {
    /// Content synchronisation: each object type's cookie, in hex (cookies
    /// are octet strings).
    ContentSync {
        source: String,
        users: String,
        groups: String,
    },
    /// `modifyTimestamp` searches: the previous read's start (generalized
    /// time) and how many incremental reads have happened.
    Timestamp { source: String, since: String, cycle: u64 },
}

impl Watermark {
    fn source(&self) -> &str {
        match self {
            Watermark::ContentSync { source, .. } | Watermark::Timestamp { source, .. } => source,
        }
    }

    fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Reads users and groups from an LDAP server.
pub struct LdapSource {
    spec: LdapSpec,
    /// What a watermark must have been written for (server, base, filters,
    /// attributes): another search must not continue from it.
    fingerprint: String,
    /// Attributes requested for users and groups.
    attributes: Vec<String>,
    disabled_attribute: Option<String>,
    disabled_values: Vec<String>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl LdapSource {
    pub fn new(spec: &LdapSpec) -> LdapSource {
        let mut attributes: Vec<String> = ["*", "entryUUID", "modifyTimestamp", "createTimestamp"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // `*` returns user attributes only: extra and disabled attributes
        // may be operational (`memberOf`, `pwdAccountLockedTime`).
        for a in spec.extra_attributes.iter().chain(spec.disabled_attribute.iter()) {
            if !attributes.iter().any(|have| have.eq_ignore_ascii_case(a)) {
                attributes.push(a.clone());
            }
        }
        let fingerprint = {
            use sha2::{Digest, Sha256};
            let what = serde_json::json!([
                spec.url,
                normalize_dn(&spec.base_dn),
                spec.user_filter,
                spec.group_filter,
                attributes,
                spec.disabled_values,
            ]);
            let digest = Sha256::digest(what.to_string().as_bytes());
            hex(digest.get(..8).unwrap_or_default())
        };
        LdapSource {
            spec: spec.clone(),
            fingerprint,
            attributes,
            disabled_attribute: spec.disabled_attribute.clone(),
            disabled_values: spec.disabled_values.iter().map(|v| v.to_lowercase()).collect(),
            tls: None,
        }
    }

    /// The host and port the URL names, for messages.
    fn address(&self) -> String {
        let url = self.spec.url.trim();
        let (rest, default_port) = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("ldaps") => (rest, 636),
            Some((_, rest)) => (rest, 389),
            None => (url, 389),
        };
        let authority = rest.split(['/', '?']).next().unwrap_or(rest);
        let has_port = authority
            .rsplit_once(':')
            .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
        if has_port {
            authority.to_string()
        } else if authority.is_empty() {
            format!("localhost:{default_port}")
        } else {
            format!("{authority}:{default_port}")
        }
    }

    fn is_ldaps(&self) -> bool {
        self.spec
            .url
            .trim()
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("ldaps://"))
    }

    /// rustls with ring and the system's trusted CAs, or those of
    /// `SSL_CERT_FILE` / `SSL_CERT_DIR` when set (instead), built once.
    fn tls_config(&mut self) -> Result<Arc<rustls::ClientConfig>, SourceError> {
        if let Some(config) = &self.tls {
            return Ok(config.clone());
        }
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            // A certificate rustls cannot use is no reason to refuse the others.
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            return Err(SourceError::new(format!(
                "cannot connect to {} with TLS: no trusted CA certificates found on this machine (install ca-certificates, or name a CA bundle with SSL_CERT_FILE)",
                self.spec.url
            )));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| SourceError::new(format!("TLS configuration: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let config = Arc::new(config);
        self.tls = Some(config.clone());
        Ok(config)
    }

    /// Connects and binds (anonymously without `bind_dn`).
    async fn connect(&mut self) -> Result<Session, SourceError> {
        let bind = match (&self.spec.bind_dn, &self.spec.bind_password) {
            (Some(dn), Some(password)) => Some((
                dn.clone(),
                password
                    .reveal()
                    .map_err(|e| SourceError::new(format!("the LDAP bind password: {e}")))?,
            )),
            (None, None) => None,
            // An empty password is an unauthenticated bind (RFC 4513 §5.1.2):
            // it would succeed and read as anonymous.
            (Some(dn), None) => {
                return Err(SourceError::new(format!(
                    "bind_dn is {dn} but no bind password is given: set bind_password (or bind_password_file, bind_password_env), or remove bind_dn to bind anonymously"
                )));
            }
            (None, Some(_)) => {
                return Err(SourceError::new(
                    "a bind password is given without bind_dn: set bind_dn, or remove the password to bind anonymously",
                ));
            }
        };
        let mut settings = LdapConnSettings::new().set_conn_timeout(CONNECT_TIMEOUT);
        if self.is_ldaps() {
            settings = settings.set_config(self.tls_config()?);
        }
        let address = self.address();
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, self.spec.url.trim())
            .await
            .map_err(|e| connect_error(&self.spec.url, &address, e))?;
        ldap3::drive!(conn);
        if let Some((dn, password)) = bind {
            ldap.with_timeout(OPERATION_TIMEOUT);
            let result = ldap
                .simple_bind(&dn, &password)
                .await
                .map_err(|e| transport_error(&address, "binding", e))?;
            match result.rc {
                0 => {}
                49 => return Err(SourceError::new(format!("invalid credentials for {dn}"))),
                _ => {
                    return Err(SourceError::new(format!(
                        "binding as {dn} to {address} failed: {}",
                        describe(&result)
                    )));
                }
            }
        }
        Ok(Session { ldap, address })
    }

    fn filter(&self, kind: Kind) -> String {
        let filter = match kind {
            Kind::User => self.spec.user_filter.trim(),
            Kind::Group => self.spec.group_filter.trim(),
        };
        if filter.starts_with('(') {
            filter.to_string()
        } else {
            format!("({filter})")
        }
    }

    /// The entries of `kind` changed at or after `since`, less the overlap.
    fn changed_since(&self, kind: Kind, since: OffsetDateTime) -> Result<String, SourceError> {
        let from = since - TIMESTAMP_OVERLAP;
        let stamp = from
            .format(GENERALIZED_TIME)
            .map_err(|e| SourceError::new(e.to_string()))?;
        Ok(format!("(&{}(modifyTimestamp>={stamp}))", self.filter(kind)))
    }

    fn page_size(&self) -> i32 {
        i32::try_from(self.spec.page_size.clamp(1, 1000)).unwrap_or(500)
    }

    /// Turns a search entry into an object.
    fn object(&self, kind: Kind, entry: SearchEntry, sync_uuid: Option<String>) -> Result<SourceObject, SourceError> {
        let SearchEntry { dn, attrs, .. } = entry;
        let mut pairs: Vec<(String, Vec<String>)> = attrs
            .into_iter()
            .filter(|(name, _)| {
                // `;binary` values are binary even when they happen to be UTF-8.
                !NEVER_READ.iter().any(|n| n.eq_ignore_ascii_case(name))
                    && !name.to_ascii_lowercase().ends_with(";binary")
            })
            .collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut anchor = None;
        let mut manager = None;
        let mut members = Vec::new();
        let mut seen_members = HashSet::new();
        let mut disabled = false;
        for (name, values) in &pairs {
            let is = |want: &str| name.eq_ignore_ascii_case(want);
            if is("entryUUID") {
                anchor = values.first().map(|v| v.trim().to_ascii_lowercase());
            } else if kind == Kind::User && is("manager") {
                manager = values.iter().find(|v| !v.trim().is_empty()).map(|v| normalize_dn(v));
            } else if kind == Kind::Group && (is("member") || is("uniqueMember")) {
                for v in values {
                    let dn = if is("uniqueMember") {
                        unique_member_dn(v)
                    } else {
                        v.as_str()
                    };
                    let dn = normalize_dn(dn);
                    if !dn.is_empty() && seen_members.insert(dn.clone()) {
                        members.push(dn);
                    }
                }
            }
            if self.disabled_attribute.as_deref().is_some_and(is) {
                disabled = values
                    .iter()
                    .any(|v| self.disabled_values.iter().any(|d| *d == v.trim().to_lowercase()));
            }
        }
        let Some(anchor) = anchor.or(sync_uuid) else {
            return Err(SourceError::new(format!(
                "the entry {dn} has no entryUUID: the LDAP source identifies entries by entryUUID (RFC 4530), which this server does not return to the bind account"
            )));
        };
        let mut out = Map::with_capacity(pairs.len() + 1);
        out.insert("dn".into(), Value::String(dn.clone()));
        for (name, mut values) in pairs {
            let value = match values.len() {
                1 => Value::String(values.pop().unwrap_or_default()),
                _ => Value::Array(values.into_iter().map(Value::String).collect()),
            };
            out.insert(name, value);
        }
        Ok(SourceObject {
            kind,
            anchor,
            source_ref: normalize_dn(&dn),
            attrs: out,
            manager,
            members,
            disabled,
        })
    }

    /// Every object of both types by paged searches.
    async fn paged_full(&self, session: &mut Session, delta: &mut Delta) -> Result<(), SourceError> {
        for kind in [Kind::User, Kind::Group] {
            let filter = self.filter(kind);
            self.paged_objects(session, kind, &filter, &mut delta.objects).await?;
        }
        Ok(())
    }

    /// The objects a paged search finds, appended to `out`.
    async fn paged_objects(
        &self,
        session: &mut Session,
        kind: Kind,
        filter: &str,
        out: &mut Vec<SourceObject>,
    ) -> Result<(), SourceError> {
        let search = Search {
            what: kind_name(kind),
            base: &self.spec.base_dn,
            filter,
            attributes: self.attributes.clone(),
        };
        session
            .paged(&search, self.page_size(), |entry| {
                out.push(self.object(kind, construct(entry)?, None)?);
                Ok(())
            })
            .await
    }

    /// Every anchor of one type, reading nothing but `entryUUID`.
    async fn paged_anchors(
        &self,
        session: &mut Session,
        kind: Kind,
        out: &mut Vec<(Kind, String)>,
    ) -> Result<(), SourceError> {
        let filter = self.filter(kind);
        let search = Search {
            what: kind_name(kind),
            base: &self.spec.base_dn,
            filter: &filter,
            attributes: vec!["entryUUID".to_string()],
        };
        session
            .paged(&search, self.page_size(), |entry| {
                let entry = construct(entry)?;
                let uuid = entry
                    .attrs
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case("entryUUID"))
                    .and_then(|(_, values)| values.first());
                match uuid {
                    Some(uuid) => {
                        out.push((kind, uuid.trim().to_ascii_lowercase()));
                        Ok(())
                    }
                    None => Err(SourceError::new(format!(
                        "the entry {} has no entryUUID: the LDAP source identifies entries by entryUUID (RFC 4530), which this server does not return to the bind account",
                        entry.dn
                    ))),
                }
            })
            .await
    }

    /// A `modifyTimestamp` read: what changed since `since` (less the
    /// overlap), and on every `full_scan_every`-th cycle the anchors of
    /// everything, for deletions.
    async fn timestamp_incremental(
        &self,
        session: &mut Session,
        since: OffsetDateTime,
        cycle: u64,
        delta: &mut Delta,
    ) -> Result<(), SourceError> {
        for kind in [Kind::User, Kind::Group] {
            let filter = self.changed_since(kind, since)?;
            self.paged_objects(session, kind, &filter, &mut delta.objects).await?;
        }
        if cycle.is_multiple_of(u64::from(self.spec.full_scan_every.max(1))) {
            let mut present = Vec::new();
            for kind in [Kind::User, Kind::Group] {
                self.paged_anchors(session, kind, &mut present).await?;
            }
            // An entry added between the change search and the scan is in
            // the delta but not the scan: it exists all the same.
            present.extend(delta.objects.iter().map(|o| (o.kind, o.anchor.clone())));
            delta.present = Some(present);
        }
        Ok(())
    }

    /// A content-synchronisation read of both types. `cookies` are the
    /// stored ones (users, groups); `None` reads everything.
    async fn sync_read(
        &self,
        session: &mut Session,
        cookies: Option<(Vec<u8>, Vec<u8>)>,
        delta: &mut Delta,
    ) -> Result<SyncStep, SourceError> {
        let full = cookies.is_none();
        let (user_cookie, group_cookie) = match cookies {
            Some((u, g)) => (Some(u), Some(g)),
            None => (None, None),
        };
        let mut new_cookies = Vec::new();
        let mut present: Vec<(Kind, String)> = Vec::new();
        // The types whose refresh was a delete phase (only what changed).
        let mut delete_phase = Vec::new();
        for (kind, cookie) in [(Kind::User, user_cookie), (Kind::Group, group_cookie)] {
            let filter = self.filter(kind);
            let search = Search {
                what: kind_name(kind),
                base: &self.spec.base_dn,
                filter: &filter,
                attributes: self.attributes.clone(),
            };
            let had_cookie = cookie.clone();
            let outcome = session
                .sync(&search, cookie, |entry, uuid| {
                    delta.objects.push(self.object(kind, entry, uuid)?);
                    Ok(())
                })
                .await?;
            let SyncOutcome::Done(outcome) = outcome else {
                return Ok(SyncStep::RefreshRequired);
            };
            delta.deleted.extend(outcome.deleted.into_iter().map(|a| (kind, a)));
            if outcome.refresh_deletes {
                delete_phase.push(kind);
            } else {
                // A present phase: what it did not name was deleted.
                present.extend(outcome.present.into_iter().map(|a| (kind, a)));
            }
            match outcome.cookie.or(had_cookie) {
                Some(c) => new_cookies.push(c),
                None => {
                    return Err(SourceError::new(format!(
                        "the LDAP server at {} ended a content synchronisation of {}s without a cookie: set content_sync = false for this source",
                        session.address,
                        kind_name(kind)
                    )));
                }
            }
        }
        if !full && delete_phase.len() < 2 {
            // `present` speaks for every type, so a type that was answered
            // with a delete phase (typically: nothing changed, while the
            // other type had a present phase) needs its anchors listed too.
            for kind in delete_phase {
                self.paged_anchors(session, kind, &mut present).await?;
            }
            present.extend(delta.objects.iter().map(|o| (o.kind, o.anchor.clone())));
            delta.present = Some(present);
        }
        let mut cookies = new_cookies.into_iter();
        match (cookies.next(), cookies.next()) {
            (Some(users), Some(groups)) => Ok(SyncStep::Done(users, groups)),
            _ => Err(SourceError::new("content synchronisation returned no cookie")),
        }
    }
}

enum SyncStep {
    Done(Vec<u8>, Vec<u8>),
    RefreshRequired,
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::User => "user",
        Kind::Group => "group",
    }
}

#[async_trait]
impl Source for LdapSource {
    async fn read(&mut self, watermark: Option<&Value>) -> Result<Delta, SourceError> {
        let mark = watermark
            .and_then(|w| serde_json::from_value::<Watermark>(w.clone()).ok())
            .filter(|w| w.source() == self.fingerprint);
        let mut session = self.connect().await?;
        let result = self.read_with(&mut session, mark).await;
        session.close().await;
        result
    }
}

impl LdapSource {
    async fn read_with(&self, session: &mut Session, mark: Option<Watermark>) -> Result<Delta, SourceError> {
        let sync = self.spec.content_sync && session.supports_content_sync().await;
        let start = OffsetDateTime::now_utc();
        let mut delta = Delta::default();
        if sync {
            let cookies = match mark {
                Some(Watermark::ContentSync { users, groups, .. }) => match (unhex(&users), unhex(&groups)) {
                    (Some(u), Some(g)) => Some((u, g)),
                    _ => None,
                },
                _ => None,
            };
            delta.full = cookies.is_none();
            let mut step = self.sync_read(session, cookies, &mut delta).await?;
            if matches!(step, SyncStep::RefreshRequired) {
                tracing::info!(server = %session.address, "reading everything again");
                delta = Delta {
                    full: true,
                    ..Delta::default()
                };
                step = self.sync_read(session, None, &mut delta).await?;
            }
            let SyncStep::Done(users, groups) = step else {
                return Err(SourceError::new(format!(
                    "the LDAP server at {} asked for a full content synchronisation twice in a row",
                    session.address
                )));
            };
            if delta.full {
                delta.present = None;
            }
            delta.watermark = Watermark::ContentSync {
                source: self.fingerprint.clone(),
                users: hex(&users),
                groups: hex(&groups),
            }
            .to_value();
            return Ok(delta);
        }
        let previous = match mark {
            Some(Watermark::Timestamp { since, cycle, .. }) => parse_generalized_time(&since).map(|t| (t, cycle)),
            _ => None,
        };
        let cycle = match previous {
            Some((since, cycle)) => {
                let cycle = cycle.saturating_add(1);
                self.timestamp_incremental(session, since, cycle, &mut delta).await?;
                cycle
            }
            None => {
                delta.full = true;
                self.paged_full(session, &mut delta).await?;
                0
            }
        };
        delta.watermark = Watermark::Timestamp {
            source: self.fingerprint.clone(),
            since: start
                .format(GENERALIZED_TIME)
                .map_err(|e| SourceError::new(e.to_string()))?,
            cycle,
        }
        .to_value();
        Ok(delta)
    }
}

fn parse_generalized_time(s: &str) -> Option<OffsetDateTime> {
    time::PrimitiveDateTime::parse(s, GENERALIZED_TIME)
        .ok()
        .map(|t| t.assume_utc())
}

/// One search: what it reads (for messages), where, which entries, which
/// attributes.
struct Search<'a> {
    what: &'static str,
    base: &'a str,
    filter: &'a str,
    attributes: Vec<String>,
}

/// What one content-synchronisation search reported.
struct SyncDoneOutcome {
    /// Deleted UUIDs (a delete phase, or entries sent with state Delete).
    deleted: Vec<String>,
    /// UUIDs named present (a present phase), besides the changed entries.
    present: Vec<String>,
    /// SyncDone's `refreshDeletes`: false after a present phase.
    refresh_deletes: bool,
    cookie: Option<Vec<u8>>,
}

enum SyncOutcome {
    Done(SyncDoneOutcome),
    RefreshRequired,
}

struct Session {
    ldap: Ldap,
    address: String,
}

impl Session {
    /// Whether the rootDSE lists content synchronisation. A server that
    /// hides its rootDSE gets the paged searches.
    async fn supports_content_sync(&mut self) -> bool {
        self.ldap.with_timeout(OPERATION_TIMEOUT);
        let found = match self
            .ldap
            .search("", Scope::Base, "(objectClass=*)", vec!["supportedControl"])
            .await
        {
            Ok(result) => match result.success() {
                Ok((entries, _)) => entries.into_iter().any(|entry| {
                    construct(entry).is_ok_and(|e| {
                        e.attrs
                            .iter()
                            .filter(|(name, _)| name.eq_ignore_ascii_case("supportedControl"))
                            .any(|(_, values)| values.iter().any(|v| v.trim() == CONTENT_SYNC_OID))
                    })
                }),
                Err(_) => false,
            },
            Err(_) => false,
        };
        if !found {
            tracing::debug!(server = %self.address, "no content synchronisation: paged searches and modifyTimestamp");
        }
        found
    }

    /// A paged search; `each` gets every entry as it arrives.
    async fn paged(
        &mut self,
        search: &Search<'_>,
        page_size: i32,
        mut each: impl FnMut(ResultEntry) -> Result<(), SourceError>,
    ) -> Result<(), SourceError> {
        let adapters: Vec<Box<dyn Adapter<'_, String, Vec<String>>>> =
            vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(page_size))];
        self.ldap.with_timeout(OPERATION_TIMEOUT);
        let mut stream = self
            .ldap
            .streaming_search_with(
                adapters,
                search.base,
                Scope::Subtree,
                search.filter,
                search.attributes.clone(),
            )
            .await
            .map_err(|e| search_start_error(&self.address, search, e))?;
        let mut failed = None;
        loop {
            match stream.next().await {
                Ok(Some(entry)) => {
                    if let Err(e) = each(entry) {
                        failed = Some(e);
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    failed = Some(transport_error(&self.address, &format!("reading {}s", search.what), e));
                    break;
                }
            }
        }
        let result = stream.finish().await;
        // After a failure the session is closed, which ends the search.
        if let Some(e) = failed {
            return Err(e);
        }
        match result.rc {
            0 => Ok(()),
            _ => Err(search_error(&self.address, search, &result)),
        }
    }

    /// A refreshOnly content-synchronisation search.
    async fn sync(
        &mut self,
        search: &Search<'_>,
        cookie: Option<Vec<u8>>,
        mut each: impl FnMut(SearchEntry, Option<String>) -> Result<(), SourceError>,
    ) -> Result<SyncOutcome, SourceError> {
        let continuing = cookie.is_some();
        let request = SyncRequest {
            mode: RefreshMode::RefreshOnly,
            cookie,
            reload_hint: false,
        };
        self.ldap.with_timeout(OPERATION_TIMEOUT);
        let mut stream = self
            .ldap
            .with_controls(request.critical())
            .streaming_search(search.base, Scope::Subtree, search.filter, search.attributes.clone())
            .await
            .map_err(|e| search_start_error(&self.address, search, e))?;
        let mut deleted = Vec::new();
        let mut present = Vec::new();
        let mut cookie = None;
        let mut failed = None;
        loop {
            let entry = match stream.next().await {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                Err(e) => {
                    failed = Some(transport_error(&self.address, &format!("reading {}s", search.what), e));
                    break;
                }
            };
            let step = if entry.is_intermediate() {
                guarded("a SyncInfo message", move || parse_syncinfo(entry)).and_then(|info| {
                    match info {
                        SyncInfo::NewCookie(c) => cookie = Some(c),
                        SyncInfo::RefreshDelete { cookie: c, .. } | SyncInfo::RefreshPresent { cookie: c, .. } => {
                            cookie = c.or(cookie.take());
                        }
                        SyncInfo::SyncIdSet {
                            cookie: c,
                            refresh_deletes,
                            sync_uuids,
                        } => {
                            cookie = c.or(cookie.take());
                            let target = if refresh_deletes { &mut deleted } else { &mut present };
                            for uuid in sync_uuids {
                                target.push(uuid_text(&uuid)?);
                            }
                        }
                    }
                    Ok(())
                })
            } else if entry.is_ref() {
                // A continuation reference: a part of the tree held by
                // another server, which this source does not follow.
                Ok(())
            } else {
                sync_entry(entry, &mut deleted, &mut present, &mut cookie, &mut each)
            };
            if let Err(e) = step {
                failed = Some(e);
                break;
            }
        }
        let result = stream.finish().await;
        if let Some(e) = failed {
            return Err(e);
        }
        match result.rc {
            0 => {}
            // slapd answers unwillingToPerform ("consumer state is newer
            // than provider") to a cookie from a restored or another server.
            SYNC_REFRESH_REQUIRED | 53 if continuing => {
                tracing::info!(server = %self.address, reason = %describe(&result), "the LDAP server cannot continue from the stored cookie");
                return Ok(SyncOutcome::RefreshRequired);
            }
            _ => return Err(search_error(&self.address, search, &result)),
        }
        let done = result
            .ctrls
            .iter()
            .find(|Control(t, _)| matches!(t, Some(ControlType::SyncDone)))
            .map(|Control(_, raw)| {
                let value = raw.val.clone().unwrap_or_default();
                guarded("a SyncDone control", move || SyncDone::parse(&value))
            })
            .transpose()?;
        let (refresh_deletes, done_cookie) = match done {
            Some(d) => (d.refresh_deletes, d.cookie),
            // RFC 4533 §3.3.2: without SyncDone the refresh is over and the
            // client keeps its cookie; treat it as a delete phase (nothing
            // beyond what was named).
            None => (true, None),
        };
        Ok(SyncOutcome::Done(SyncDoneOutcome {
            deleted,
            present,
            refresh_deletes,
            cookie: done_cookie.or(cookie),
        }))
    }

    async fn close(mut self) {
        // The connection is dropped either way; unbinding is a courtesy.
        let _ = self.ldap.unbind().await;
    }
}

/// One entry of a synchronisation: changed (passed on), present or deleted
/// (only its UUID counts).
fn sync_entry(
    entry: ResultEntry,
    deleted: &mut Vec<String>,
    present: &mut Vec<String>,
    cookie: &mut Option<Vec<u8>>,
    each: &mut impl FnMut(SearchEntry, Option<String>) -> Result<(), SourceError>,
) -> Result<(), SourceError> {
    let state = entry
        .1
        .iter()
        .find(|Control(t, _)| matches!(t, Some(ControlType::SyncState)))
        .map(|Control(_, raw)| {
            let value = raw.val.clone().unwrap_or_default();
            guarded("a SyncState control", move || SyncState::parse(&value))
        })
        .transpose()?;
    let Some(state) = state else {
        return each(construct(entry)?, None);
    };
    if let Some(c) = state.cookie {
        *cookie = Some(c);
    }
    let uuid = uuid_text(&state.entry_uuid)?;
    match state.state {
        EntryState::Present => present.push(uuid),
        EntryState::Delete => deleted.push(uuid),
        EntryState::Add | EntryState::Modify => each(construct(entry)?, Some(uuid))?,
    }
    Ok(())
}

/// ldap3's BER parsers panic on malformed input; a server that sends it
/// gets an error, not a crashed cycle.
fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, SourceError> {
    catch_unwind(AssertUnwindSafe(f))
        .map_err(|_| SourceError::new(format!("the LDAP server sent a malformed message ({what})")))
}

fn construct(entry: ResultEntry) -> Result<SearchEntry, SourceError> {
    guarded("a search entry", move || SearchEntry::construct(entry))
}

/// A SyncState or SyncIdSet UUID (16 octets) in entryUUID's text form.
fn uuid_text(bytes: &[u8]) -> Result<String, SourceError> {
    uuid::Uuid::from_slice(bytes)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| SourceError::new("the LDAP server sent a malformed entryUUID in a synchronisation message"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect()
}

/// The name RFC 4511 gives a result code.
fn result_name(rc: u32) -> &'static str {
    match rc {
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        7 => "authMethodNotSupported",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        80 => "other",
        87 => "filterError",
        4096 => "e-syncRefreshRequired",
        _ => "error",
    }
}

fn describe(result: &LdapResult) -> String {
    let text = result.text.trim();
    if text.is_empty() {
        format!("{} ({})", result_name(result.rc), result.rc)
    } else {
        format!("{} ({}): {text}", result_name(result.rc), result.rc)
    }
}

/// Why a search the server answered failed, as an administrator reads it.
fn search_error(address: &str, search: &Search<'_>, result: &LdapResult) -> SourceError {
    let Search { what, base, filter, .. } = search;
    SourceError::new(match result.rc {
        32 => format!("the base DN {base} does not exist on the LDAP server at {address} (noSuchObject)"),
        34 => format!("the base DN {base} is not a valid DN (invalidDNSyntax)"),
        87 => format!("the {what} filter {filter} is not a valid LDAP filter"),
        4 => format!(
            "the LDAP server at {address} stopped the {what} search at its size limit (sizeLimitExceeded): let the bind account read every entry (OpenLDAP: limits dn.exact=\"<bind_dn>\" size=unlimited)"
        ),
        3 => format!(
            "the LDAP server at {address} stopped the {what} search at its time limit (timeLimitExceeded): raise the bind account's time limit"
        ),
        11 => format!(
            "the LDAP server at {address} stopped the {what} search at an administrative limit (adminLimitExceeded): raise the bind account's limits, or lower page_size"
        ),
        50 => format!("the bind account may not search {base} (insufficientAccessRights)"),
        10 => format!(
            "the LDAP server at {address} refers searches of {base} to {}: set url to that server",
            result.refs.join(", ")
        ),
        _ => format!(
            "searching {what}s under {base} on {address} failed: {}",
            describe(result)
        ),
    })
}

/// A search that could not start: a filter ldap3 cannot parse, or the
/// connection.
fn search_start_error(address: &str, search: &Search<'_>, e: LdapError) -> SourceError {
    match e {
        LdapError::FilterParsing => SourceError::new(format!(
            "the {} filter {} is not a valid LDAP filter",
            search.what, search.filter
        )),
        other => transport_error(address, &format!("searching {}s", search.what), other),
    }
}

/// A failure below the LDAP operation: the connection, a timeout.
fn transport_error(address: &str, doing: &str, e: LdapError) -> SourceError {
    SourceError::new(match e {
        LdapError::Timeout { .. } => format!(
            "the LDAP server at {address} did not answer within {} s while {doing}",
            OPERATION_TIMEOUT.as_secs()
        ),
        LdapError::LdapResult { result } => format!("{doing} on {address} failed: {}", describe(&result)),
        LdapError::EndOfStream | LdapError::OpSend { .. } | LdapError::ResultRecv { .. } => {
            format!("the LDAP server at {address} closed the connection while {doing}")
        }
        other => format!("{doing} on {address} failed: {other}"),
    })
}

fn connect_error(url: &str, address: &str, e: LdapError) -> SourceError {
    SourceError::new(match e {
        LdapError::Io { source } => {
            let tls = source
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
            if tls {
                format!(
                    "the TLS handshake with the LDAP server at {address} failed: {source} (the server's certificate must be valid for that name and signed by a CA this machine trusts; SSL_CERT_FILE or SSL_CERT_DIR name the CAs to trust instead of the system's)"
                )
            } else {
                format!("cannot connect to the LDAP server at {address}: {source}")
            }
        }
        LdapError::Timeout { .. } => format!(
            "cannot connect to the LDAP server at {address}: no answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        ),
        LdapError::UrlParsing { .. } | LdapError::UnknownScheme(_) => {
            format!("the url {url} is not an LDAP URL: write ldap://host:port or ldaps://host:port")
        }
        LdapError::DNSName { .. } => format!("the host in {url} is not a valid name for TLS"),
        other => format!("cannot connect to the LDAP server at {address}: {other}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_normalise() {
        for (dn, want) in [
            (
                "uid=alice,ou=people,dc=example,dc=org",
                "uid=alice,ou=people,dc=example,dc=org",
            ),
            (
                "UID=Alice, OU=People , DC=Example,DC=ORG",
                "uid=alice,ou=people,dc=example,dc=org",
            ),
            ("  cn = Admin ,dc=x", "cn=admin,dc=x"),
            ("cn=Smith\\, John,dc=x", "cn=smith\\, john,dc=x"),
            ("cn=trailing\\ ,dc=x", "cn=trailing\\ ,dc=x"),
            ("cn=a + uid=B,dc=x", "cn=a+uid=b,dc=x"),
            ("cn=x=y,dc=z", "cn=x=y,dc=z"),
            ("cn=Ünïcode,dc=x", "cn=ünïcode,dc=x"),
            ("cn=hex\\2C,dc=x", "cn=hex\\2c,dc=x"),
            ("", ""),
            ("cn=end\\", "cn=end\\"),
        ] {
            assert_eq!(normalize_dn(dn), want, "{dn:?}");
        }
    }

    #[test]
    fn unique_member_uids_are_dropped() {
        for (value, want) in [
            ("uid=a,dc=x#'0101'B", "uid=a,dc=x"),
            ("uid=a,dc=x", "uid=a,dc=x"),
            ("cn=a\\#'1'B", "cn=a\\#'1'B"),
        ] {
            assert_eq!(unique_member_dn(value), want, "{value:?}");
        }
    }

    #[test]
    fn cookies_round_trip_through_hex() {
        for bytes in [
            &b""[..],
            b"rid=000,csn=20261130182209.098794Z#000000#000#000000",
            &[0, 255, 16],
        ] {
            assert_eq!(unhex(&hex(bytes)).as_deref(), Some(bytes));
        }
        for bad in ["0", "zz", "abc"] {
            assert_eq!(unhex(bad), None, "{bad}");
        }
    }

    fn spec(url: &str) -> LdapSpec {
        LdapSpec {
            url: url.into(),
            bind_dn: None,
            bind_password: None,
            base_dn: "dc=example,dc=org".into(),
            user_filter: "objectClass=inetOrgPerson".into(),
            group_filter: "(objectClass=groupOfNames)".into(),
            page_size: 500,
            disabled_attribute: None,
            disabled_values: vec![],
            full_scan_every: 12,
            content_sync: true,
            extra_attributes: vec![],
        }
    }

    #[test]
    fn addresses_for_messages() {
        for (url, want) in [
            ("ldap://127.0.0.1:3890", "127.0.0.1:3890"),
            ("ldap://ldap.example.org", "ldap.example.org:389"),
            ("ldaps://ldap.example.org/", "ldap.example.org:636"),
            ("LDAPS://[::1]:1636/dc=x", "[::1]:1636"),
            ("ldap://[::1]", "[::1]:389"),
            ("ldap:///", "localhost:389"),
        ] {
            assert_eq!(LdapSource::new(&spec(url)).address(), want, "{url}");
        }
    }

    #[test]
    fn filters_get_parentheses() {
        let source = LdapSource::new(&spec("ldap://x"));
        assert_eq!(source.filter(Kind::User), "(objectClass=inetOrgPerson)");
        assert_eq!(source.filter(Kind::Group), "(objectClass=groupOfNames)");
    }

    #[test]
    fn changes_are_searched_from_before_the_previous_read() {
        let source = LdapSource::new(&spec("ldap://x"));
        let since = parse_generalized_time("20261130182209Z").unwrap_or(OffsetDateTime::UNIX_EPOCH);
        for (kind, want) in [
            (
                Kind::User,
                "(&(objectClass=inetOrgPerson)(modifyTimestamp>=20261130182204Z))",
            ),
            (
                Kind::Group,
                "(&(objectClass=groupOfNames)(modifyTimestamp>=20261130182204Z))",
            ),
        ] {
            assert_eq!(source.changed_since(kind, since).ok().as_deref(), Some(want));
        }
    }

    #[test]
    fn watermarks_are_stable_json() {
        let mark = Watermark::Timestamp {
            source: "ab".into(),
            since: "20261130182209Z".into(),
            cycle: 3,
        };
        let value = mark.to_value();
        assert_eq!(
            value,
            serde_json::json!({"mode": "timestamp", "source": "ab", "since": "20261130182209Z", "cycle": 3})
        );
        assert_eq!(serde_json::from_value::<Watermark>(value).ok(), Some(mark));
        let t = parse_generalized_time("20261130182209Z");
        assert_eq!(t.map(|t| t.unix_timestamp()), Some(1_796_062_929));
        // Another search's watermark is not continued from.
        let a = LdapSource::new(&spec("ldap://x"));
        let mut other = spec("ldap://x");
        other.user_filter = "(objectClass=person)".into();
        assert_ne!(a.fingerprint, LdapSource::new(&other).fingerprint);
        assert_eq!(a.fingerprint, LdapSource::new(&spec("ldap://x")).fingerprint);
    }
}
