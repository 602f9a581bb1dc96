//! `scimitar export` and `scimitar import`: one tenant as SCIM JSON lines,
//! to move it between SQLite and PostgreSQL or between deployments.
//!
//! The file is one JSON object per line, in this order: the tenant's custom
//! schema extensions (`urn:…:core:2.0:Schema`), then every User, then every
//! Group. A resource line is its SCIM representation as stored: `schemas`,
//! `id`, every stored attribute that may be returned (`externalId`, the
//! Enterprise `manager` reference, extension objects), a Group's `members`
//! (`value`, `type`, `display`), and `meta` (`resourceType`, `created`,
//! `lastModified`, `version`). Server-derived values (`$ref`,
//! `meta.location`, a User's `groups`) are left out; they follow from the
//! rest. So are values that are never returned: `password` (its argon2
//! hash) and the `returned: never` attributes of extensions. The file
//! carries no password hashes: users imported from it have no password.
//!
//! Export pages through the store with a cursor, so memory does not grow
//! with the tenant. It is not a snapshot: writes during an export may or
//! may not be in it (pause provisioning for an exact copy).
//!
//! Import goes through the application layer like every other write: each
//! resource is validated as a client's PUT would be and recorded in the
//! activity log (`IMPORT /Users/{id}`), each schema extension is validated
//! and audited. It keeps `id`, `externalId` and `meta.created`, and
//! `meta.lastModified` too (by writing the resource a second time with that
//! time, which makes `meta.version` 2; the version itself restarts in the
//! new store). A resource whose id already exists is brought to the file's
//! state, so importing the same file twice changes nothing the second time.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use scimitar_app::resources::{Imported, ImportedResource};
use scimitar_app::schemas::NewExtension;
use scimitar_app::{Actor, App};
use scimitar_protocol::ScimError;
use scimitar_protocol::output::etag;
use scimitar_protocol::output::returnable;
use scimitar_protocol::resource::parse_members;
use scimitar_protocol::schema::{ResourceType, parse_extension, resource_types_with};
use scimitar_store::{CursorPos, ExtensionRecord, Kind, ListQuery, Record, Store, StoreError, Tenant, TenantId};

use crate::app_err;
use serde_json::{Map, Value, json};

pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const SCHEMA_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// Resources read per store query.
const PAGE: usize = 500;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub schemas: u64,
    pub users: u64,
    pub groups: u64,
    /// Import only: resources created, brought up to date, or already equal.
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
}

fn store_err(e: StoreError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// A progress bar on stderr when it is a terminal, otherwise nothing.
fn progress(len: Option<u64>, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match len {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner(),
    };
    bar.set_message(what.to_string());
    bar
}

/// The export line of a stored resource of the resource type `rt` (the
/// tenant's, with its extensions): what may be returned of it.
pub fn resource_line(
    rt: &ResourceType,
    rec: &Record,
    members: Option<Vec<scimitar_protocol::output::Reference>>,
) -> Value {
    let mut out = Map::new();
    let core = if rec.kind == Kind::Group { GROUP_URN } else { USER_URN };
    let doc = returnable(rt, &rec.doc);
    let mut schemas = vec![Value::String(core.into())];
    for (k, v) in &doc {
        if k.starts_with("urn:") && v.is_object() {
            schemas.push(Value::String(k.clone()));
        }
    }
    out.insert("schemas".into(), Value::Array(schemas));
    out.insert("id".into(), Value::String(rec.id.clone()));
    for (k, v) in doc {
        out.insert(k, v);
    }
    if let Some(members) = members {
        let list = members
            .into_iter()
            .map(|m| {
                let mut o = Map::new();
                o.insert("value".into(), Value::String(m.value));
                o.insert("type".into(), Value::String(m.kind));
                if let Some(d) = m.display {
                    o.insert("display".into(), Value::String(d));
                }
                Value::Object(o)
            })
            .collect();
        out.insert("members".into(), Value::Array(list));
    }
    out.insert(
        "meta".into(),
        json!({
            "resourceType": rec.kind.as_str(),
            "created": rec.created,
            "lastModified": rec.last_modified,
            "version": etag(rec.version),
        }),
    );
    Value::Object(out)
}

/// Writes the tenant's extensions, users and groups to `out`, one JSON
/// object per line.
pub async fn export(store: &dyn Store, tenant: TenantId, out: &mut dyn Write, show_progress: bool) -> Result<Counts> {
    let mut counts = Counts::default();
    let exts = store.list_extensions(tenant).await.map_err(store_err)?;
    let mut parsed = Vec::with_capacity(exts.len());
    for ext in exts {
        if let Ok(schema) = parse_extension(&ext.schema) {
            parsed.push((ext.resource_type.clone(), schema, ext.required));
        }
        let line = json!({
            "schemas": [SCHEMA_URN],
            "id": ext.urn,
            "resourceType": ext.resource_type,
            "required": ext.required,
            "schema": ext.schema,
            "meta": {"resourceType": "Schema"},
        });
        writeln!(out, "{line}")?;
        counts.schemas += 1;
    }
    // The tenant's resource types: what is never returned is left out.
    let rts = resource_types_with(&parsed);
    for (kind, name) in [(Kind::User, "User"), (Kind::Group, "Group")] {
        let rt = rts
            .iter()
            .find(|rt| rt.name == name)
            .cloned()
            .with_context(|| format!("no built-in {name} resource type"))?;
        let rt = Arc::new(rt);
        let mut after = 0;
        let mut bar: Option<ProgressBar> = None;
        loop {
            let page = store
                .list(
                    tenant,
                    ListQuery {
                        kind,
                        rt: rt.clone(),
                        filter: None,
                        sort: None,
                        start_index: 1,
                        count: PAGE,
                        cursor: Some(CursorPos::After(after)),
                    },
                )
                .await
                .map_err(store_err)?;
            let bar = bar.get_or_insert_with(|| {
                if show_progress {
                    progress(Some(page.total), &format!("{name}s"))
                } else {
                    ProgressBar::hidden()
                }
            });
            for rec in &page.records {
                let members = if kind == Kind::Group {
                    Some(store.members(tenant, &rec.id).await.map_err(store_err)?)
                } else {
                    None
                };
                writeln!(out, "{}", resource_line(&rt, rec, members))?;
                after = rec.seq;
                bar.inc(1);
                match kind {
                    Kind::User => counts.users += 1,
                    Kind::Group => counts.groups += 1,
                }
            }
            if !page.has_more || page.records.is_empty() {
                break;
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
    }
    out.flush()?;
    Ok(counts)
}

fn parse_resource(obj: Map<String, Value>, kind: Kind) -> Result<ImportedResource> {
    let mut doc = Map::new();
    let mut id = None;
    let mut meta = Map::new();
    let mut members = Vec::new();
    for (k, v) in obj {
        match k.as_str() {
            "schemas" | "groups" => {}
            "id" => id = v.as_str().map(str::to_string),
            "meta" => meta = v.as_object().cloned().unwrap_or_default(),
            "members" if kind == Kind::Group => {
                members = parse_members(&v).map_err(|e| anyhow::anyhow!("{}", e.detail))?
            }
            _ => {
                doc.insert(k, v);
            }
        }
    }
    let id = id.filter(|s| !s.is_empty()).context("a resource without an 'id'")?;
    let time = |key: &str| meta.get(key).and_then(Value::as_str).map(str::to_string);
    let created = time("created").unwrap_or_else(scimitar_store::now_utc);
    let last_modified = time("lastModified").unwrap_or_else(|| created.clone());
    Ok(ImportedResource {
        kind,
        id,
        doc,
        members,
        created,
        last_modified,
    })
}

fn line_error(e: ScimError, r: &ImportedResource) -> anyhow::Error {
    if e.status == 409 {
        return anyhow::anyhow!(
            "{} '{}': its {}",
            r.kind.as_str(),
            r.id,
            e.detail.replace(
                " is already in use in this tenant",
                " is already taken by another resource of the tenant"
            )
        );
    }
    anyhow::anyhow!("{} '{}': {}", r.kind.as_str(), r.id, e.detail)
}

/// Imports lines from `input` into the tenant, as `actor`; returns what it did.
/// `len` (the input's size in bytes, if known) sizes the progress bar.
pub async fn import(
    app: &Arc<App>,
    actor: &Actor,
    tenant: &Tenant,
    input: &mut dyn BufRead,
    len: Option<u64>,
    show_progress: bool,
) -> Result<Counts> {
    let bar = if show_progress {
        progress(len, "importing")
    } else {
        ProgressBar::hidden()
    };
    let mut counts = Counts::default();
    let mut existing_exts: HashMap<String, ExtensionRecord> = app
        .store
        .list_extensions(tenant.id)
        .await
        .map_err(store_err)?
        .into_iter()
        .map(|e| (e.urn.clone(), e))
        .collect();
    let mut ops = app.ops(tenant.clone(), actor.clone()).await.map_err(app_err)?;
    // Groups whose members could not all be set when they were written.
    let mut deferred: Vec<ImportedResource> = Vec::new();
    let mut text = String::new();
    let mut n = 0u64;
    loop {
        text.clear();
        let read = input.read_line(&mut text)?;
        if read == 0 {
            break;
        }
        n += 1;
        bar.inc(read as u64);
        let trimmed = text.trim();
        if trimmed.is_empty() {
            continue;
        }
        let result: Result<()> = async {
            let value: Value = serde_json::from_str(trimmed).context("not a JSON object")?;
            let Value::Object(obj) = value else {
                bail!("not a JSON object")
            };
            let resource_type = obj
                .get("meta")
                .and_then(|m| m.get("resourceType"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| {
                    let schemas = obj.get("schemas")?.as_array()?;
                    [(USER_URN, "User"), (GROUP_URN, "Group"), (SCHEMA_URN, "Schema")]
                        .into_iter()
                        .find(|(urn, _)| schemas.iter().any(|s| s.as_str() == Some(urn)))
                        .map(|(_, name)| name.to_string())
                })
                .context("neither meta.resourceType nor schemas say what this is")?;
            let kind = match resource_type.as_str() {
                "Schema" => {
                    let ext = ExtensionRecord {
                        resource_type: obj
                            .get("resourceType")
                            .and_then(Value::as_str)
                            .unwrap_or("User")
                            .to_string(),
                        urn: obj
                            .get("id")
                            .and_then(Value::as_str)
                            .context("a schema without an 'id'")?
                            .to_string(),
                        schema: obj.get("schema").cloned().context("a schema line without 'schema'")?,
                        required: obj.get("required").and_then(Value::as_bool).unwrap_or(false),
                    };
                    counts.schemas += 1;
                    if existing_exts.get(&ext.urn) != Some(&ext) {
                        let new = NewExtension {
                            resource_type: ext.resource_type.clone(),
                            required: ext.required,
                            schema: ext.schema.clone(),
                        };
                        app.register_extension(actor, tenant, new).await.map_err(app_err)?;
                        existing_exts.insert(ext.urn.clone(), ext);
                        // Later lines are validated with the new extension.
                        let fresh = app.tenant(&tenant.name).await.map_err(app_err)?;
                        ops = app.ops(fresh, actor.clone()).await.map_err(app_err)?;
                    }
                    return Ok(());
                }
                "User" => Kind::User,
                "Group" => Kind::Group,
                other => bail!("unknown resource type '{other}'"),
            };
            let line = parse_resource(obj, kind)?;
            match kind {
                Kind::User => counts.users += 1,
                Kind::Group => counts.groups += 1,
            }
            let outcome = ops.import(&line).await.map_err(|e| line_error(e, &line))?;
            match outcome.imported {
                Imported::Created => counts.created += 1,
                Imported::Updated => counts.updated += 1,
                Imported::Unchanged => counts.unchanged += 1,
            }
            if outcome.members_pending {
                // Members that come later in the file: set at the end.
                deferred.push(line);
            }
            Ok(())
        }
        .await;
        result.with_context(|| format!("line {n}"))?;
    }
    for line in deferred {
        ops.import_members(&line)
            .await
            .map_err(|e| anyhow::anyhow!("members of Group '{}': {}", line.id, e.detail))?;
    }
    bar.finish_and_clear();
    Ok(counts)
}

/// `scimitar export`.
pub async fn export_cmd(store: &dyn Store, tenant: &str, output: Option<PathBuf>, as_json: bool) -> Result<()> {
    let t = store
        .tenant(tenant)
        .await
        .map_err(store_err)?
        .with_context(|| format!("no tenant named '{tenant}'"))?;
    let counts = match &output {
        Some(path) => {
            // Written next to the target and renamed: a failed export leaves no partial file.
            let tmp = path.with_extension("partial");
            let file = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            let mut out = std::io::BufWriter::new(file);
            let counts = export(store, t.id, &mut out, true).await?;
            out.into_inner()
                .map_err(|e| e.into_error())?
                .sync_all()
                .with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
            counts
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            export(store, t.id, &mut out, true).await?
        }
    };
    let summary = json!({
        "tenant": t.name, "schemas": counts.schemas, "users": counts.users, "groups": counts.groups,
        "output": output.as_ref().map(|p| p.display().to_string()),
    });
    // With no --output the lines go to stdout, so the summary goes to stderr.
    if as_json && output.is_some() {
        out!("{summary}");
    } else if as_json {
        eprintln!("{summary}");
    } else {
        eprintln!(
            "Exported tenant '{}': {} users, {} groups, {} schema extensions.",
            t.name, counts.users, counts.groups, counts.schemas
        );
    }
    Ok(())
}

/// `scimitar import`.
pub async fn import_cmd(app: &Arc<App>, tenant: &str, input: Option<PathBuf>, as_json: bool) -> Result<()> {
    let actor = Actor::Cli;
    let t = app.tenant_or_create(&actor, tenant).await.map_err(app_err)?;
    let counts = match &input {
        Some(path) => {
            let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            let len = file.metadata().ok().map(|m| m.len());
            let mut reader = std::io::BufReader::new(file);
            import(app, &actor, &t, &mut reader, len, true).await?
        }
        None => {
            let stdin = std::io::stdin();
            let mut reader = stdin.lock();
            import(app, &actor, &t, &mut reader, None, true).await?
        }
    };
    // A bulk load leaves the planner's statistics behind (PostgreSQL would
    // scan a tenant for a lookup); a failure here loses nothing.
    if let Err(e) = app.store.refresh_statistics().await {
        tracing::warn!(error = %e, "could not refresh the database's statistics after the import");
    }
    if as_json {
        out!(
            "{}",
            json!({
                "tenant": t.name, "schemas": counts.schemas, "users": counts.users, "groups": counts.groups,
                "created": counts.created, "updated": counts.updated, "unchanged": counts.unchanged,
            })
        );
    } else {
        out!(
            "Imported into tenant '{}': {} users, {} groups ({} created, {} updated, {} unchanged), {} schema extensions.",
            t.name,
            counts.users,
            counts.groups,
            counts.created,
            counts.updated,
            counts.unchanged,
            counts.schemas
        );
    }
    Ok(())
}
