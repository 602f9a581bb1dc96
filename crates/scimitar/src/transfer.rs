//! `scimitar export` and `scimitar import`: one tenant as SCIM JSON lines,
//! to move it between SQLite and PostgreSQL or between deployments.
//!
//! The file is one JSON object per line, in this order: the tenant's custom
//! schema extensions (`urn:…:core:2.0:Schema`), then every User, then every
//! Group. A resource line is its SCIM representation as stored: `schemas`,
//! `id`, every stored attribute (`externalId`, the Enterprise `manager`
//! reference, extension objects, and `returned: never` values such as
//! `password`, so the file is as sensitive as the database), a Group's
//! `members` (`value`, `type`, `display`), and `meta` (`resourceType`,
//! `created`, `lastModified`, `version`). Server-derived values (`$ref`,
//! `meta.location`, a User's `groups`) are left out; they follow from the
//! rest.
//!
//! Export pages through the store with a cursor, so memory does not grow
//! with the tenant. It is not a snapshot: writes during an export may or
//! may not be in it (pause provisioning for an exact copy).
//!
//! Import keeps `id`, `externalId` and `meta.created`, and `meta.lastModified`
//! too (by writing the resource a second time with that time, which makes
//! `meta.version` 2; the version itself restarts in the new store). A
//! resource whose id already exists is brought to the file's state, so
//! importing the same file twice changes nothing the second time.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use scimitar_protocol::output::etag;
use scimitar_protocol::patch::MemberOp;
use scimitar_protocol::resource::{MemberRef, parse_members};
use scimitar_protocol::schema::builtin_resource_types;
use scimitar_store::{
    CursorPos, ExtensionRecord, Kind, ListQuery, ModifyFn, Mutation, Record, Store, StoreError, Tenant, TenantId,
};
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

/// The export line of a stored resource.
pub fn resource_line(rec: &Record, members: Option<Vec<scimitar_protocol::output::Reference>>) -> Value {
    let mut out = Map::new();
    let core = if rec.kind == Kind::Group { GROUP_URN } else { USER_URN };
    let mut schemas = vec![Value::String(core.into())];
    for (k, v) in &rec.doc {
        if k.starts_with("urn:") && v.is_object() {
            schemas.push(Value::String(k.clone()));
        }
    }
    out.insert("schemas".into(), Value::Array(schemas));
    out.insert("id".into(), Value::String(rec.id.clone()));
    for (k, v) in &rec.doc {
        out.insert(k.clone(), v.clone());
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
    for ext in store.list_extensions(tenant).await.map_err(store_err)? {
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
    let rts = builtin_resource_types();
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
                writeln!(out, "{}", resource_line(rec, members))?;
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

/// One parsed resource line.
#[derive(Clone)]
struct Line {
    kind: Kind,
    id: String,
    doc: Map<String, Value>,
    members: Vec<MemberRef>,
    created: String,
    last_modified: String,
}

fn parse_resource(obj: Map<String, Value>, kind: Kind) -> Result<Line> {
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
    Ok(Line {
        kind,
        id,
        doc,
        members,
        created,
        last_modified,
    })
}

/// A modification that sets the document and, for a Group, the members.
fn set_to(doc: Map<String, Value>, ops: Vec<MemberOp>) -> ModifyFn {
    Arc::new(move |_, _| {
        Ok(Mutation {
            doc: doc.clone(),
            member_ops: ops.clone(),
            activity: None,
        })
    })
}

/// A member that is not (yet) a resource of the tenant: a nested group that
/// comes later in the file.
fn unknown_member(e: &StoreError) -> bool {
    matches!(e, StoreError::Invalid(_))
}

fn conflict(e: StoreError, line: &Line) -> anyhow::Error {
    match e {
        StoreError::Conflict(attr) => anyhow::anyhow!(
            "{} '{}': its {attr} is already taken by another resource of the tenant",
            line.kind.as_str(),
            line.id
        ),
        e => store_err(e),
    }
}

/// Groups whose members could not all be added when they were created.
type Deferred = Vec<(String, Vec<MemberRef>, String)>;

async fn create(store: &dyn Store, tenant: TenantId, line: Line, deferred: &mut Deferred) -> Result<()> {
    let Line {
        kind,
        id,
        doc,
        members,
        created,
        last_modified,
    } = line.clone();
    if last_modified == created {
        match store
            .create(tenant, kind, &id, doc.clone(), members.clone(), &created, None)
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if kind == Kind::Group && !members.is_empty() && unknown_member(&e) => {
                store
                    .create(tenant, kind, &id, doc, vec![], &created, None)
                    .await
                    .map_err(|e| conflict(e, &line))?;
                deferred.push((id, members, last_modified));
                return Ok(());
            }
            Err(e) => return Err(conflict(e, &line)),
        }
    }
    // Created at `created`, then written once more at `lastModified`: the
    // store has no other way to set both.
    if kind == Kind::Group && !members.is_empty() {
        store
            .create(tenant, kind, &id, doc.clone(), vec![], &created, None)
            .await
            .map_err(|e| conflict(e, &line))?;
        match store
            .modify(
                tenant,
                kind,
                &id,
                None,
                &last_modified,
                set_to(doc, vec![MemberOp::Add(members.clone())]),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if unknown_member(&e) => deferred.push((id, members, last_modified)),
            Err(e) => return Err(conflict(e, &line)),
        }
        return Ok(());
    }
    let keep = if kind == Kind::Group { "displayName" } else { "userName" };
    let mut first = doc.clone();
    let dropped = first.keys().rev().find(|k| k.as_str() != keep).cloned();
    match dropped {
        Some(k) => {
            first.remove(&k);
            store
                .create(tenant, kind, &id, first, vec![], &created, None)
                .await
                .map_err(|e| conflict(e, &line))?;
            store
                .modify(tenant, kind, &id, None, &last_modified, set_to(doc, vec![]))
                .await
                .map_err(|e| conflict(e, &line))?;
        }
        // Nothing to write twice: lastModified becomes the creation time.
        None => {
            store
                .create(tenant, kind, &id, doc, vec![], &created, None)
                .await
                .map_err(|e| conflict(e, &line))?;
        }
    }
    Ok(())
}

/// Imports lines from `input` into the tenant; returns what it did.
/// `len` (the input's size in bytes, if known) sizes the progress bar.
pub async fn import(
    store: &dyn Store,
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
    let mut existing_exts: HashMap<String, ExtensionRecord> = store
        .list_extensions(tenant.id)
        .await
        .map_err(store_err)?
        .into_iter()
        .map(|e| (e.urn.clone(), e))
        .collect();
    let mut deferred: Deferred = Vec::new();
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
                        store.put_extension(tenant.id, ext.clone()).await.map_err(store_err)?;
                        existing_exts.insert(ext.urn.clone(), ext);
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
            match store.get(tenant.id, kind, &line.id).await.map_err(store_err)? {
                None => {
                    create(store, tenant.id, line, &mut deferred).await?;
                    counts.created += 1;
                }
                Some(current) => {
                    let ops = if kind == Kind::Group {
                        vec![MemberOp::Clear, MemberOp::Add(line.members.clone())]
                    } else {
                        vec![]
                    };
                    let rec = match store
                        .modify(
                            tenant.id,
                            kind,
                            &line.id,
                            None,
                            &line.last_modified,
                            set_to(line.doc.clone(), ops),
                        )
                        .await
                    {
                        Err(e) if unknown_member(&e) => {
                            // Members that come later: set the document now, the members at the end.
                            deferred.push((line.id.clone(), line.members.clone(), line.last_modified.clone()));
                            store
                                .modify(
                                    tenant.id,
                                    kind,
                                    &line.id,
                                    None,
                                    &line.last_modified,
                                    set_to(line.doc.clone(), vec![]),
                                )
                                .await
                                .map_err(|e| conflict(e, &line))?
                        }
                        other => other.map_err(|e| conflict(e, &line))?,
                    };
                    if rec.version == current.version {
                        counts.unchanged += 1;
                    } else {
                        counts.updated += 1;
                    }
                }
            }
            Ok(())
        }
        .await;
        result.with_context(|| format!("line {n}"))?;
    }
    for (id, members, last_modified) in deferred {
        let ops = vec![MemberOp::Clear, MemberOp::Add(members)];
        let keep: ModifyFn = Arc::new(move |current, _| {
            Ok(Mutation {
                doc: current.doc.clone(),
                member_ops: ops.clone(),
                activity: None,
            })
        });
        store
            .modify(tenant.id, Kind::Group, &id, None, &last_modified, keep)
            .await
            .map_err(|e| anyhow::anyhow!("members of Group '{id}': {e}"))?;
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
        println!("{summary}");
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
pub async fn import_cmd(store: &dyn Store, tenant: &str, input: Option<PathBuf>, as_json: bool) -> Result<()> {
    let t = match store.tenant(tenant).await.map_err(store_err)? {
        Some(t) => t,
        None => {
            if !crate::valid_tenant_name(tenant) {
                bail!("tenant names are 1–63 characters of a-z, 0-9 and '-', starting with a letter or digit");
            }
            match store.create_tenant(tenant).await {
                Ok(t) => t,
                // Created by someone else meanwhile.
                Err(StoreError::Conflict(_)) => store
                    .tenant(tenant)
                    .await
                    .map_err(store_err)?
                    .with_context(|| format!("no tenant named '{tenant}'"))?,
                Err(e) => return Err(store_err(e)),
            }
        }
    };
    let counts = match &input {
        Some(path) => {
            let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            let len = file.metadata().ok().map(|m| m.len());
            let mut reader = std::io::BufReader::new(file);
            import(store, &t, &mut reader, len, true).await?
        }
        None => {
            let stdin = std::io::stdin();
            let mut reader = stdin.lock();
            import(store, &t, &mut reader, None, true).await?
        }
    };
    if as_json {
        println!(
            "{}",
            json!({
                "tenant": t.name, "schemas": counts.schemas, "users": counts.users, "groups": counts.groups,
                "created": counts.created, "updated": counts.updated, "unchanged": counts.unchanged,
            })
        );
    } else {
        println!(
            "Imported into tenant '{}': {} users, {} groups ({} created, {} updated, {} unchanged), {} schema extensions.",
            t.name, counts.users, counts.groups, counts.created, counts.updated, counts.unchanged, counts.schemas
        );
    }
    Ok(())
}
