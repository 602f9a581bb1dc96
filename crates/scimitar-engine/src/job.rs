//! Job files: what a job provisions, from where, to where, and how. A job
//! is written in TOML (the keys are in docs/engine.md); [`parse_job`]
//! checks every part — unknown or missing keys, expressions, attributes,
//! scoping operators — and reports the first problem with its line and
//! key, so that nothing half-valid is stored.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::mapping::{Apply, Mapping, MappingSource, TargetPath};
use crate::model::Kind;
use crate::scoping::{Clause, Operator, ScopingFilter};
use crate::template;

/// A problem in a job file: where, which key, what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}", line.map(|l| format!("line {l}")).unwrap_or_else(|| "job".into()), key.as_ref().map(|k| format!(", key `{k}`")).unwrap_or_default())]
pub struct JobError {
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl JobError {
    fn at(text: &str, span: std::ops::Range<usize>, key: &str, message: impl Into<String>) -> Self {
        JobError {
            line: Some(line_of(text, span.start)),
            key: Some(key.to_string()),
            message: message.into(),
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map(|t| t.matches('\n').count() + 1).unwrap_or(1)
}

/// A secret as the job names it. Only `Sealed` is ever stored.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// Given in the file; sealed before the job is stored.
    Inline(String),
    /// Sealed (`scimitar_auth::seal`), as stored.
    Sealed(String),
    /// Read from this file when used.
    File(PathBuf),
    /// Read from this environment variable when used.
    Env(String),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::Inline(_) | Secret::Sealed(_) => f.write_str("Secret(…)"),
            Secret::File(p) => write!(f, "Secret(file {})", p.display()),
            Secret::Env(v) => write!(f, "Secret(env {v})"),
        }
    }
}

impl Secret {
    /// The secret's value, for the moment it is used.
    pub fn reveal(&self) -> Result<String, String> {
        match self {
            Secret::Inline(s) => Ok(s.clone()),
            Secret::Sealed(s) => scimitar_auth::seal::open(s).map_err(|e| e.to_string()),
            Secret::File(p) => std::fs::read_to_string(p)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|e| format!("cannot read {}: {e}", p.display())),
            Secret::Env(v) => std::env::var(v).map_err(|_| format!("the environment variable {v} is not set")),
        }
    }
}

/// How requests to the target are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Plain RFC 7644.
    Rfc,
    /// Entra's default (no flag): capitalised ops, one op per attribute,
    /// booleans as `"True"`/`"False"`, the legacy member removal.
    EntraLegacy,
    /// Entra with `aadOptscim062020`: lower-case ops, single-valued
    /// attributes in one path-less `replace`, member removal by value filter.
    EntraCompliant,
}

impl Dialect {
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Rfc => "rfc",
            Dialect::EntraLegacy => "entra-legacy",
            Dialect::EntraCompliant => "entra-compliant",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapSpec {
    pub url: String,
    pub bind_dn: Option<String>,
    pub bind_password: Option<Secret>,
    pub base_dn: String,
    pub user_filter: String,
    pub group_filter: String,
    pub page_size: u32,
    /// An attribute whose value says the account is disabled, and which
    /// values mean it (e.g. `employeeType` = `disabled`).
    pub disabled_attribute: Option<String>,
    pub disabled_values: Vec<String>,
    /// Without content synchronisation (RFC 4533), every Nth incremental
    /// cycle reads every entry's UUID to find deletions.
    pub full_scan_every: u32,
    /// Use content synchronisation when the server offers it.
    pub content_sync: bool,
    /// Attributes beyond the standard ones that mappings may read.
    pub extra_attributes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// CSV with a header row, or JSON lines (`.jsonl`/`.ndjson`).
    pub users: PathBuf,
    pub groups: Option<PathBuf>,
    /// The column that identifies a user (the anchor).
    pub key: String,
    pub group_key: String,
    /// The groups file's column of member keys.
    pub members_column: String,
    /// Separator of several values in one CSV cell.
    pub separator: String,
    /// The column holding the manager's key.
    pub manager_column: Option<String>,
    pub disabled_column: Option<String>,
    pub disabled_values: Vec<String>,
    /// The header of the users file (read when the job was parsed).
    pub user_columns: Vec<String>,
    pub group_columns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimSourceSpec {
    pub url: String,
    pub token: Secret,
    pub page_size: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    Ldap(LdapSpec),
    File(FileSpec),
    Scim(ScimSourceSpec),
}

impl SourceSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            SourceSpec::Ldap(_) => "ldap",
            SourceSpec::File(_) => "file",
            SourceSpec::Scim(_) => "scim",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    /// The Tenant URL (no trailing slash).
    pub url: String,
    pub token: Secret,
    pub dialect: Dialect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeMode {
    /// Assigned users, and the direct members of assigned groups.
    Assigned,
    /// Every object the source returns.
    All,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeSpec {
    pub mode: ScopeMode,
    /// Assigned groups, by source reference (an LDAP DN, a file key).
    pub groups: Vec<String>,
    /// Users assigned directly.
    pub users: Vec<String>,
}

/// Target object actions (Entra's Create / Update / Delete checkboxes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actions {
    pub create: bool,
    pub update: bool,
    pub delete: bool,
}

/// How one object type is provisioned.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectSpec {
    /// In the order they are evaluated and sent.
    pub mappings: Vec<Mapping>,
    /// ORed; each one's clauses ANDed. None: no attribute-based restriction.
    pub scoping: Vec<ScopingFilter>,
    pub actions: Actions,
    /// The group mapping can be switched off (users cannot).
    pub enabled: bool,
}

impl ObjectSpec {
    /// The matching mappings in precedence order.
    pub fn matching(&self) -> Vec<&Mapping> {
        let mut m: Vec<&Mapping> = self.mappings.iter().filter(|m| m.matching.is_some()).collect();
        m.sort_by_key(|m| m.matching);
        m
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub interval: Duration,
    /// How long one request to the target may take (each retry anew).
    pub request_timeout: Duration,
    /// Members per group PATCH (1 is Entra exactly).
    pub member_batch: usize,
    /// Requests in flight against the target.
    pub concurrency: usize,
    pub deletion_threshold: u64,
    pub notification_email: Option<String>,
    /// What `DefaultDomain()` returns.
    pub default_domain: Option<String>,
}

/// A checked job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    pub name: String,
    pub source: SourceSpec,
    pub target: TargetSpec,
    pub scope: ScopeSpec,
    pub users: ObjectSpec,
    pub groups: ObjectSpec,
    pub settings: Settings,
}

impl JobSpec {
    pub fn object(&self, kind: Kind) -> &ObjectSpec {
        match kind {
            Kind::User => &self.users,
            Kind::Group => &self.groups,
        }
    }
}

// ------------------------------------------------------------------ the file

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    name: Spanned<String>,
    source: RawSource,
    target: RawTarget,
    #[serde(default)]
    scope: RawScope,
    #[serde(default)]
    mappings: RawMappings,
    #[serde(default)]
    scoping: RawScoping,
    #[serde(default)]
    actions: RawActions,
    interval: Option<Spanned<String>>,
    request_timeout: Option<Spanned<String>>,
    member_batch: Option<Spanned<i64>>,
    concurrency: Option<Spanned<i64>>,
    deletion_threshold: Option<Spanned<i64>>,
    notification_email: Option<String>,
    default_domain: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    kind: Spanned<String>,
    // ldap
    url: Option<String>,
    bind_dn: Option<String>,
    bind_password: Option<String>,
    bind_password_file: Option<PathBuf>,
    bind_password_env: Option<String>,
    base_dn: Option<String>,
    user_filter: Option<String>,
    group_filter: Option<String>,
    page_size: Option<u32>,
    disabled_attribute: Option<String>,
    #[serde(default)]
    disabled_values: Vec<String>,
    full_scan_every: Option<u32>,
    content_sync: Option<bool>,
    #[serde(default)]
    extra_attributes: Vec<String>,
    // file
    users: Option<PathBuf>,
    groups: Option<PathBuf>,
    key: Option<String>,
    group_key: Option<String>,
    members_column: Option<String>,
    separator: Option<String>,
    manager_column: Option<String>,
    disabled_column: Option<String>,
    // scim
    token: Option<String>,
    token_file: Option<PathBuf>,
    token_env: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    url: Spanned<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
    token_env: Option<String>,
    dialect: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawScope {
    mode: Option<Spanned<String>>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    users: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMappings {
    /// `default` (the source's built-in template) or `none`.
    template: Option<Spanned<String>>,
    #[serde(default)]
    user: Vec<RawMapping>,
    #[serde(default)]
    group: Vec<RawMapping>,
    /// Switch the group mapping off.
    groups_enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    target: Spanned<String>,
    source: Option<Spanned<String>>,
    expression: Option<Spanned<String>>,
    constant: Option<String>,
    #[serde(default)]
    none: bool,
    /// Remove the template's mapping of this target.
    #[serde(default)]
    remove: bool,
    default: Option<String>,
    apply: Option<Spanned<String>>,
    matching: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawScoping {
    #[serde(default)]
    user: Vec<RawFilter>,
    #[serde(default)]
    group: Vec<RawFilter>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilter {
    clauses: Vec<RawClause>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClause {
    attribute: Spanned<String>,
    operator: Spanned<String>,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawActions {
    user: Option<RawActionSet>,
    group: Option<RawActionSet>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct RawActionSet {
    create: Option<bool>,
    update: Option<bool>,
    delete: Option<bool>,
}

/// Parses and checks a job file. `base` is the directory relative file
/// paths (HR files, token files) are resolved against.
pub fn parse_job(text: &str, base: &std::path::Path) -> Result<JobSpec, JobError> {
    let raw: RawJob = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
    Checker { text, base }.job(raw)
}

fn toml_error(text: &str, e: &toml::de::Error) -> JobError {
    let message = e.message().to_string();
    let line = e.span().map(|s| line_of(text, s.start));
    // Name the key: the one on the line, or for "missing field `url`" the
    // table the span points at and the field.
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|m| m.split('`').next())
        .map(str::to_string);
    let key = e.span().and_then(|s| {
        let line_start = text.get(..s.start)?.rfind('\n').map_or(0, |i| i + 1);
        let line_text = text.get(line_start..)?.lines().next()?.trim();
        if let Some(table) = line_text.strip_prefix('[') {
            let table = table.trim_start_matches('[').split(']').next()?.trim();
            return Some(match &missing {
                Some(f) => format!("{table}.{f}"),
                None => table.to_string(),
            });
        }
        if let Some(f) = &missing {
            return Some(f.clone());
        }
        let k = line_text.split('=').next()?.trim();
        (!k.is_empty() && k.len() < 80).then(|| k.to_string())
    });
    JobError { line, key, message }
}

struct Checker<'a> {
    text: &'a str,
    base: &'a std::path::Path,
}

fn secret(
    inline: Option<String>,
    file: Option<PathBuf>,
    env: Option<String>,
    base: &std::path::Path,
) -> Result<Option<Secret>, String> {
    match (inline, file, env) {
        (None, None, None) => Ok(None),
        (Some(s), None, None) if scimitar_auth::seal::is_sealed(&s) => Ok(Some(Secret::Sealed(s))),
        (Some(s), None, None) => Ok(Some(Secret::Inline(s))),
        (None, Some(f), None) => Ok(Some(Secret::File(base.join(f)))),
        (None, None, Some(v)) => Ok(Some(Secret::Env(v))),
        _ => Err("give the secret one way: inline, _file or _env".into()),
    }
}

impl Checker<'_> {
    /// Where a key of a secret is written (`bind_password`, `token_env`…),
    /// else `fallback`: serde gives no span for a key that it folded into
    /// another.
    fn key_span(&self, names: &[&str], fallback: std::ops::Range<usize>) -> std::ops::Range<usize> {
        let mut offset = 0;
        for line in self.text.split_inclusive('\n') {
            let t = line.trim_start();
            if names.iter().any(|n| {
                t.strip_prefix(n).is_some_and(|rest| {
                    rest.trim_start().starts_with('=') || rest.starts_with("_file") || rest.starts_with("_env")
                })
            }) {
                let start = offset + (line.len() - t.len());
                return start..start + t.len();
            }
            offset += line.len();
        }
        fallback
    }

    /// `key_span` from the line of `header` on (a key both tables have).
    fn key_span_after(&self, header: &str, names: &[&str], fallback: std::ops::Range<usize>) -> std::ops::Range<usize> {
        match self.text.find(header) {
            Some(at) => {
                let sub = Checker {
                    text: self.text.get(at..).unwrap_or_default(),
                    base: self.base,
                };
                let r = sub.key_span(names, 0..0);
                if r == (0..0) {
                    fallback
                } else {
                    r.start + at..r.end + at
                }
            }
            None => fallback,
        }
    }

    fn err<T>(&self, span: std::ops::Range<usize>, key: &str, m: impl Into<String>) -> Result<T, JobError> {
        Err(JobError::at(self.text, span, key, m))
    }

    fn job(&self, raw: RawJob) -> Result<JobSpec, JobError> {
        let name = raw.name.get_ref().trim().to_string();
        if name.is_empty() || name.len() > 100 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return self.err(
                raw.name.span(),
                "name",
                "a job name is 1–100 characters of letters, digits, '-', '_' and '.'",
            );
        }
        let source = self.source(raw.source)?;
        let target = self.target(raw.target)?;
        let scope = self.scope(raw.scope)?;
        let template_name = raw.mappings.template.as_ref().map(|t| (t.get_ref().clone(), t.span()));
        let use_template = match &template_name {
            None => true,
            Some((t, _)) if t == "default" => true,
            Some((t, _)) if t == "none" => false,
            Some((t, span)) => {
                return self.err(
                    span.clone(),
                    "mappings.template",
                    format!("unknown template '{t}': use \"default\" (the source's) or \"none\""),
                );
            }
        };
        let known = template::source_attributes(&source);
        let user_base = if use_template {
            template::user_mappings(&source)
        } else {
            Vec::new()
        };
        let group_base = if use_template {
            template::group_mappings(&source)
        } else {
            Vec::new()
        };
        let users = self.mappings(Kind::User, user_base, raw.mappings.user, &known)?;
        let groups = self.mappings(Kind::Group, group_base, raw.mappings.group, &known)?;
        let actions = |a: Option<RawActionSet>| {
            let a = a.unwrap_or(RawActionSet {
                create: None,
                update: None,
                delete: None,
            });
            Actions {
                create: a.create.unwrap_or(true),
                update: a.update.unwrap_or(true),
                delete: a.delete.unwrap_or(true),
            }
        };
        let users = ObjectSpec {
            mappings: users,
            scoping: self.scoping("scoping.user", raw.scoping.user, &known)?,
            actions: actions(raw.actions.user),
            enabled: true,
        };
        let groups = ObjectSpec {
            mappings: groups,
            scoping: self.scoping("scoping.group", raw.scoping.group, &known)?,
            actions: actions(raw.actions.group),
            enabled: raw.mappings.groups_enabled.unwrap_or(true),
        };
        if users.matching().is_empty() {
            return Err(JobError {
                line: None,
                key: Some("mappings.user".into()),
                message: "no user mapping is a matching attribute: give one `matching = 1`".into(),
            });
        }
        if groups.enabled && groups.matching().is_empty() {
            return Err(JobError {
                line: None,
                key: Some("mappings.group".into()),
                message: "no group mapping is a matching attribute: give one `matching = 1`".into(),
            });
        }
        let positive = |v: &Option<Spanned<i64>>, key: &str, default: i64, max: i64| -> Result<i64, JobError> {
            match v {
                None => Ok(default),
                Some(s) if (1..=max).contains(s.get_ref()) => Ok(*s.get_ref()),
                Some(s) => self.err(s.span(), key, format!("must be between 1 and {max}")),
            }
        };
        let interval = match &raw.interval {
            None => Duration::from_secs(40 * 60),
            Some(s) => parse_duration(s.get_ref()).ok_or_else(|| {
                JobError::at(
                    self.text,
                    s.span(),
                    "interval",
                    format!("'{}' is not a duration (e.g. \"40m\", \"1h\", \"30s\")", s.get_ref()),
                )
            })?,
        };
        let request_timeout = match &raw.request_timeout {
            None => Duration::from_secs(30),
            Some(s) => parse_duration(s.get_ref()).filter(|d| !d.is_zero()).ok_or_else(|| {
                JobError::at(
                    self.text,
                    s.span(),
                    "request_timeout",
                    format!("'{}' is not a duration above zero (e.g. \"30s\")", s.get_ref()),
                )
            })?,
        };
        let deletion_threshold = match &raw.deletion_threshold {
            None => 500,
            Some(s) if *s.get_ref() >= 0 => u64::try_from(*s.get_ref()).unwrap_or(0),
            Some(s) => return self.err(s.span(), "deletion_threshold", "must be 0 (off) or more"),
        };
        Ok(JobSpec {
            name,
            source,
            target,
            scope,
            users,
            groups,
            settings: Settings {
                interval,
                request_timeout,
                member_batch: usize::try_from(positive(&raw.member_batch, "member_batch", 100, 10_000)?).unwrap_or(100),
                concurrency: usize::try_from(positive(&raw.concurrency, "concurrency", 8, 64)?).unwrap_or(8),
                deletion_threshold,
                notification_email: raw.notification_email,
                default_domain: raw.default_domain,
            },
        })
    }

    fn source(&self, s: RawSource) -> Result<SourceSpec, JobError> {
        let kind = s.kind.get_ref().as_str();
        let span = s.kind.span();
        let need = |v: Option<String>, key: &str| -> Result<String, JobError> {
            v.filter(|x| !x.trim().is_empty()).ok_or_else(|| {
                JobError::at(
                    self.text,
                    span.clone(),
                    &format!("source.{key}"),
                    format!("a {kind} source needs `{key}`"),
                )
            })
        };
        let not_for = |present: bool, key: &str| -> Result<(), JobError> {
            if present {
                return Err(JobError::at(
                    self.text,
                    span.clone(),
                    &format!("source.{key}"),
                    format!("`{key}` does not apply to a {kind} source"),
                ));
            }
            Ok(())
        };
        let ldap_only = [
            ("bind_dn", s.bind_dn.is_some()),
            (
                "bind_password",
                s.bind_password.is_some() || s.bind_password_file.is_some() || s.bind_password_env.is_some(),
            ),
            ("base_dn", s.base_dn.is_some()),
            ("user_filter", s.user_filter.is_some()),
            ("group_filter", s.group_filter.is_some()),
            ("disabled_attribute", s.disabled_attribute.is_some()),
            ("full_scan_every", s.full_scan_every.is_some()),
            ("content_sync", s.content_sync.is_some()),
            ("extra_attributes", !s.extra_attributes.is_empty()),
        ];
        let file_only = [
            ("users", s.users.is_some()),
            ("groups", s.groups.is_some()),
            ("key", s.key.is_some()),
            ("group_key", s.group_key.is_some()),
            ("members_column", s.members_column.is_some()),
            ("separator", s.separator.is_some()),
            ("manager_column", s.manager_column.is_some()),
            ("disabled_column", s.disabled_column.is_some()),
        ];
        let token_keys = s.token.is_some() || s.token_file.is_some() || s.token_env.is_some();
        match kind {
            "ldap" => {
                for (k, present) in file_only {
                    not_for(present, k)?;
                }
                not_for(token_keys, "token")?;
                let bind_password = secret(s.bind_password, s.bind_password_file, s.bind_password_env, self.base)
                    .map_err(|m| {
                        JobError::at(
                            self.text,
                            self.key_span_after("[source]", &["bind_password"], span.clone()),
                            "source.bind_password",
                            m,
                        )
                    })?;
                Ok(SourceSpec::Ldap(LdapSpec {
                    url: need(s.url, "url")?,
                    bind_dn: s.bind_dn,
                    bind_password,
                    base_dn: need(s.base_dn, "base_dn")?,
                    user_filter: s.user_filter.unwrap_or_else(|| "(objectClass=inetOrgPerson)".into()),
                    group_filter: s.group_filter.unwrap_or_else(|| "(objectClass=groupOfNames)".into()),
                    page_size: s.page_size.unwrap_or(500).clamp(1, 1000),
                    disabled_attribute: s.disabled_attribute,
                    disabled_values: s.disabled_values,
                    full_scan_every: s.full_scan_every.unwrap_or(12).max(1),
                    content_sync: s.content_sync.unwrap_or(true),
                    extra_attributes: s.extra_attributes,
                }))
            }
            "file" => {
                for (k, present) in ldap_only {
                    if k != "disabled_attribute" {
                        not_for(present, k)?;
                    }
                }
                not_for(s.url.is_some(), "url")?;
                not_for(token_keys, "token")?;
                not_for(s.disabled_attribute.is_some(), "disabled_attribute")?;
                let users = self.base.join(s.users.ok_or_else(|| {
                    JobError::at(
                        self.text,
                        span.clone(),
                        "source.users",
                        "a file source needs `users` (a CSV or JSON lines file)",
                    )
                })?);
                let groups = s.groups.map(|g| self.base.join(g));
                let user_columns = crate::source::file::columns(&users)
                    .map_err(|m| JobError::at(self.text, span.clone(), "source.users", m))?;
                let group_columns = match &groups {
                    Some(g) => crate::source::file::columns(g)
                        .map_err(|m| JobError::at(self.text, span.clone(), "source.groups", m))?,
                    None => Vec::new(),
                };
                let key = s.key.unwrap_or_else(|| "id".into());
                if !user_columns.contains(&key) {
                    return self.err(
                        span,
                        "source.key",
                        format!(
                            "the users file has no column '{key}' (it has: {})",
                            user_columns.join(", ")
                        ),
                    );
                }
                let group_key = s.group_key.unwrap_or_else(|| key.clone());
                let members_column = s.members_column.unwrap_or_else(|| "members".into());
                if groups.is_some() {
                    for c in [&group_key, &members_column] {
                        if !group_columns.iter().any(|x| x == c) {
                            return self.err(
                                span,
                                "source.groups",
                                format!(
                                    "the groups file has no column '{c}' (it has: {})",
                                    group_columns.join(", ")
                                ),
                            );
                        }
                    }
                }
                Ok(SourceSpec::File(FileSpec {
                    users,
                    groups,
                    key,
                    group_key,
                    members_column,
                    separator: s.separator.unwrap_or_else(|| ";".into()),
                    manager_column: s.manager_column,
                    disabled_column: s.disabled_column,
                    disabled_values: s.disabled_values,
                    user_columns,
                    group_columns,
                }))
            }
            "scim" => {
                for (k, present) in ldap_only.into_iter().chain(file_only) {
                    not_for(present, k)?;
                }
                let token = secret(s.token, s.token_file, s.token_env, self.base)
                    .map_err(|m| {
                        JobError::at(
                            self.text,
                            self.key_span_after("[source]", &["token"], span.clone()),
                            "source.token",
                            m,
                        )
                    })?
                    .ok_or_else(|| {
                        JobError::at(self.text, span.clone(), "source.token", "a scim source needs `token`")
                    })?;
                Ok(SourceSpec::Scim(ScimSourceSpec {
                    url: need(s.url, "url")?.trim_end_matches('/').to_string(),
                    token,
                    page_size: s.page_size.unwrap_or(500).clamp(1, 1000),
                }))
            }
            other => self.err(
                span,
                "source.kind",
                format!("unknown source kind '{other}': use \"ldap\", \"file\" or \"scim\""),
            ),
        }
    }

    fn target(&self, t: RawTarget) -> Result<TargetSpec, JobError> {
        let url = t.url.get_ref().trim().trim_end_matches('/').to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return self.err(
                t.url.span(),
                "target.url",
                "the Tenant URL must start with https:// (or http:// for a local test)",
            );
        }
        let token = secret(t.token, t.token_file, t.token_env, self.base)
            .map_err(|m| {
                JobError::at(
                    self.text,
                    self.key_span_after("[target]", &["token"], t.url.span()),
                    "target.token",
                    m,
                )
            })?
            .ok_or_else(|| {
                JobError::at(
                    self.text,
                    t.url.span(),
                    "target.token",
                    "the target needs a Secret Token: `token`, `token_file` or `token_env`",
                )
            })?;
        let dialect = match t.dialect.as_ref().map(|d| (d.get_ref().as_str(), d.span())) {
            None | Some(("entra-compliant", _)) => Dialect::EntraCompliant,
            Some(("entra-legacy", _)) => Dialect::EntraLegacy,
            Some(("rfc", _)) => Dialect::Rfc,
            Some((other, span)) => {
                return self.err(
                    span,
                    "target.dialect",
                    format!("unknown dialect '{other}': use \"entra-compliant\", \"entra-legacy\" or \"rfc\""),
                );
            }
        };
        Ok(TargetSpec { url, token, dialect })
    }

    fn scope(&self, s: RawScope) -> Result<ScopeSpec, JobError> {
        let mode = match s.mode.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
            None | Some(("assigned", _)) => ScopeMode::Assigned,
            Some(("all", _)) => ScopeMode::All,
            Some((other, span)) => {
                return self.err(
                    span,
                    "scope.mode",
                    format!("unknown scope '{other}': use \"assigned\" or \"all\""),
                );
            }
        };
        Ok(ScopeSpec {
            mode,
            groups: s.groups,
            users: s.users,
        })
    }

    fn mappings(
        &self,
        kind: Kind,
        mut base: Vec<Mapping>,
        raw: Vec<RawMapping>,
        known: &[String],
    ) -> Result<Vec<Mapping>, JobError> {
        let section = if kind == Kind::User {
            "mappings.user"
        } else {
            "mappings.group"
        };
        let mut seen: Vec<String> = Vec::new();
        for m in raw {
            let span = m.target.span();
            let target = TargetPath::parse(kind, m.target.get_ref())
                .map_err(|e| JobError::at(self.text, span.clone(), &format!("{section}.target"), e))?;
            let key = target.key();
            if seen.contains(&key) {
                return self.err(span, &format!("{section}.target"), format!("'{key}' is mapped twice"));
            }
            seen.push(key.clone());
            let existing = base.iter().position(|b| b.target.key() == key);
            if m.remove {
                match existing {
                    Some(i) => {
                        base.remove(i);
                        continue;
                    }
                    None => {
                        return self.err(
                            span,
                            &format!("{section}.remove"),
                            format!("the template does not map '{key}'"),
                        );
                    }
                }
            }
            let given = [m.source.is_some(), m.expression.is_some(), m.constant.is_some(), m.none]
                .iter()
                .filter(|x| **x)
                .count();
            if given != 1 {
                return self.err(
                    span,
                    section,
                    "give exactly one of `source`, `expression`, `constant` or `none = true`",
                );
            }
            let source = if let Some(src) = &m.source {
                let attr = src
                    .get_ref()
                    .trim()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string();
                if !known_attribute(known, &attr) {
                    return self.err(
                        src.span(),
                        &format!("{section}.source"),
                        format!("unknown source attribute '{attr}' (known: {})", known.join(", ")),
                    );
                }
                MappingSource::Direct(attr)
            } else if let Some(e) = &m.expression {
                let expr = scimitar_expression::parse(e.get_ref()).map_err(|err| {
                    // The expression's own line and column, inside the file.
                    let inner_start = e.span().start + 1;
                    JobError {
                        line: Some(line_of(self.text, inner_start) + err.line - 1),
                        key: Some(format!("{section}.expression")),
                        message: format!("column {}: expected {}, found {}", err.column, err.expected, err.found),
                    }
                })?;
                for a in expr.attributes() {
                    if !known_attribute(known, a) {
                        return self.err(
                            e.span(),
                            &format!("{section}.expression"),
                            format!("unknown source attribute '[{a}]' (known: {})", known.join(", ")),
                        );
                    }
                }
                MappingSource::Expression(Box::new(expr))
            } else if let Some(c) = &m.constant {
                MappingSource::Constant(c.clone())
            } else {
                MappingSource::None
            };
            let apply = match m.apply.as_ref().map(|a| (a.get_ref().as_str(), a.span())) {
                None | Some(("always", _)) => Apply::Always,
                Some(("create", _)) => Apply::CreateOnly,
                Some((other, span)) => {
                    return self.err(
                        span,
                        &format!("{section}.apply"),
                        format!("unknown apply '{other}': use \"always\" or \"create\""),
                    );
                }
            };
            let matching = match &m.matching {
                None => None,
                Some(p) if (1..=100).contains(p.get_ref()) => u32::try_from(*p.get_ref()).ok(),
                Some(p) => return self.err(p.span(), &format!("{section}.matching"), "a precedence from 1 to 100"),
            };
            if matching.is_some() && matches!(&source, MappingSource::Expression(e) if e.is_select_unique()) {
                return self.err(
                    span,
                    &format!("{section}.matching"),
                    "SelectUniqueValue cannot be used on a matching attribute",
                );
            }
            let mapping = Mapping {
                reference: target.is_reference(),
                target,
                source,
                default: m.default,
                apply,
                matching,
            };
            match existing {
                Some(i) => {
                    if let Some(slot) = base.get_mut(i) {
                        *slot = mapping;
                    }
                }
                None => base.push(mapping),
            }
        }
        // A matching precedence is used once per object type.
        let mut precedences: Vec<u32> = base.iter().filter_map(|m| m.matching).collect();
        precedences.sort_unstable();
        if precedences.windows(2).any(|w| w.first() == w.get(1)) {
            return Err(JobError {
                line: None,
                key: Some(section.into()),
                message: "two mappings have the same matching precedence".into(),
            });
        }
        Ok(base)
    }

    fn scoping(&self, key: &str, raw: Vec<RawFilter>, known: &[String]) -> Result<Vec<ScopingFilter>, JobError> {
        let mut out = Vec::with_capacity(raw.len());
        for f in raw {
            let mut clauses = Vec::with_capacity(f.clauses.len());
            for c in f.clauses {
                let operator = Operator::parse(c.operator.get_ref()).ok_or_else(|| {
                    JobError::at(
                        self.text,
                        c.operator.span(),
                        &format!("{key}.operator"),
                        format!(
                            "unknown scoping operator '{}' (one of: {})",
                            c.operator.get_ref(),
                            Operator::NAMES.join(", ")
                        ),
                    )
                })?;
                let attr = c.attribute.get_ref().trim().to_string();
                if !known_attribute(known, &attr) {
                    return self.err(
                        c.attribute.span(),
                        &format!("{key}.attribute"),
                        format!("unknown source attribute '{attr}' (known: {})", known.join(", ")),
                    );
                }
                let value = c.value.unwrap_or_default();
                let clause = Clause::new(attr, operator, value)
                    .map_err(|m| JobError::at(self.text, c.operator.span(), &format!("{key}.value"), m))?;
                clauses.push(clause);
            }
            out.push(ScopingFilter { clauses });
        }
        Ok(out)
    }
}

/// Whether mappings may read `attr` from this source (matched
/// case-insensitively, as directories do).
fn known_attribute(known: &[String], attr: &str) -> bool {
    known.is_empty() || known.iter().any(|k| k.eq_ignore_ascii_case(attr))
}

/// `"40m"`, `"1h"`, `"30s"`, `"1h30m"`, or plain seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Some(Duration::from_secs(n));
    }
    let mut total = 0u64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        total += n * match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
    }
    (num.is_empty() && total > 0).then(|| Duration::from_secs(total))
}

/// How a stored job shows a sealed secret (`redact_sealed`); given back in
/// a job file, it stands for the secret the stored job already has.
pub const SEALED_SHOWN: &str = "(sealed)";

/// The keys whose inline values are secrets, by table.
const SECRET_KEYS: [(&str, &str); 3] = [("target", "token"), ("source", "token"), ("source", "bind_password")];

/// The job file as stored: its inline secrets sealed, so that the
/// database holds none in clear. The text stays a job file (it parses the
/// same way), which is what `sync jobs` and the console show.
pub fn seal_secrets(text: &str) -> Result<String, JobError> {
    seal_secrets_keeping(text, None)
}

/// [`seal_secrets`], where a secret written `"(sealed)"` — as a stored job
/// is shown, so that one read, edited and sent back keeps its secrets —
/// takes the sealed value of the same key in `previous` (the stored job
/// file). Without one there, it is a mistake: storing the placeholder
/// would replace the secret with it.
pub fn seal_secrets_keeping(text: &str, previous: Option<&str>) -> Result<String, JobError> {
    let mut doc: toml::Table = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
    let previous: Option<toml::Table> = previous.and_then(|p| toml::from_str(p).ok());
    for (table, key) in SECRET_KEYS {
        let Some(t) = doc.get_mut(table).and_then(toml::Value::as_table_mut) else {
            continue;
        };
        let value = match t.get(key) {
            Some(toml::Value::String(v)) if v == SEALED_SHOWN => {
                let kept = previous
                    .as_ref()
                    .and_then(|p| p.get(table))
                    .and_then(|p| p.get(key))
                    .and_then(toml::Value::as_str)
                    .filter(|v| scimitar_auth::seal::is_sealed(v));
                match kept {
                    Some(v) => v.to_string(),
                    None => {
                        return Err(JobError {
                            line: line_of_value(text, key, SEALED_SHOWN),
                            key: Some(format!("{table}.{key}")),
                            message: format!(
                                "\"{SEALED_SHOWN}\" stands for a stored secret, and the job has none there; give the secret"
                            ),
                        });
                    }
                }
            }
            Some(toml::Value::String(v)) if !scimitar_auth::seal::is_sealed(v) => scimitar_auth::seal::seal(v)
                .map_err(|e| JobError {
                    line: None,
                    key: Some(format!("{table}.{key}")),
                    message: e.to_string(),
                })?,
            _ => continue,
        };
        t.insert(key.to_string(), toml::Value::String(value));
    }
    toml::to_string(&doc).map_err(|e| JobError {
        line: None,
        key: None,
        message: e.to_string(),
    })
}

/// The line where `key` is given `value`, for an error about it.
fn line_of_value(text: &str, key: &str, value: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('=') && rest.contains(value))
        })
        .map(|i| i + 1)
}

/// A stored job file as it may be shown: every sealed value, wherever it
/// is, replaced by `"(sealed)"`.
pub fn redact_sealed(text: &str) -> Result<String, JobError> {
    fn redact(v: &mut toml::Value) {
        match v {
            toml::Value::String(s) if scimitar_auth::seal::is_sealed(s) => *s = SEALED_SHOWN.to_string(),
            toml::Value::Array(a) => a.iter_mut().for_each(redact),
            toml::Value::Table(t) => t.iter_mut().for_each(|(_, v)| redact(v)),
            _ => {}
        }
    }
    let mut doc: toml::Table = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
    doc.iter_mut().for_each(|(_, v)| redact(v));
    toml::to_string(&doc).map_err(|e| JobError {
        line: None,
        key: None,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("40m"), Some(Duration::from_secs(2400)));
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("m"), None);
    }

    #[test]
    fn a_shown_job_sent_back_keeps_its_secrets() {
        let file = "name = \"j\"\n[target]\nurl = \"https://a.example/scim\"\ntoken = \"t0ken\"\n";
        let stored = seal_secrets(file).unwrap();
        let sealed = |t: &str| t.lines().find(|l| l.starts_with("token")).unwrap().to_string();
        assert!(sealed(&stored).contains("sealed:v1:"), "{stored}");
        // Shown: no sealed value, no secret.
        let shown = redact_sealed(&stored).unwrap();
        assert_eq!(sealed(&shown), "token = \"(sealed)\"", "{shown}");
        assert!(!shown.contains("t0ken") && !shown.contains("sealed:v1:"));
        // Sent back: the stored sealed value is kept.
        assert_eq!(
            sealed(&seal_secrets_keeping(&shown, Some(&stored)).unwrap()),
            sealed(&stored)
        );
        // With nothing stored, the placeholder is refused with its line and key.
        let e = seal_secrets_keeping(&shown, None).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(4), Some("target.token")), "{e}");
    }
}
