//! The directory as the identity provider sent it: users and groups, read-only.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use scimitar_protocol::filter::{AttrPath, CompValue, CompareOp, Filter};
use scimitar_protocol::output::returnable;
use scimitar_protocol::schema::ResourceType;
use scimitar_store::{CursorPos, Kind, ListQuery, Record, Tenant};
use serde::Deserialize;
use serde_json::Value;

use super::{Chrome, PAGE_SIZE, Shared, chrome, tenant_for, urlencode, when};
use crate::auth::Authed;
use crate::error::{ConsoleError, PageResult};
use crate::{Console, render};

fn rt(console: &Console, kind: Kind) -> Result<Arc<ResourceType>, ConsoleError> {
    console
        .app
        .builtin
        .iter()
        .find(|r| r.name == kind.as_str())
        .cloned()
        .ok_or_else(|| ConsoleError::new(500, "Unknown resource type."))
}

/// `a co q or b co q or …` over attribute paths such as `name.givenName`,
/// built as a filter tree (never text to parse again).
fn any_contains(paths: &[&str], q: &str) -> Filter {
    let term = |path: &&str| {
        let (name, sub) = match path.split_once('.') {
            Some((n, s)) => (n, Some(s.to_string())),
            None => (*path, None),
        };
        let attr = AttrPath {
            urn: None,
            name: name.to_string(),
            sub,
        };
        Filter::Compare(attr, CompareOp::Co, CompValue::String(q.to_string()))
    };
    match paths {
        [one] => term(one),
        _ => Filter::Or(paths.iter().map(term).collect()),
    }
}

/// `active eq <value>`.
pub(crate) fn active_is(value: bool) -> Filter {
    Filter::Compare(AttrPath::new("active"), CompareOp::Eq, CompValue::Bool(value))
}

/// How many resources of a kind (matching `filter`) the tenant has.
pub(crate) async fn count(
    console: &Console,
    tenant: &Tenant,
    kind: Kind,
    filter: Option<Filter>,
) -> Result<u64, ConsoleError> {
    let query = ListQuery {
        kind,
        rt: rt(console, kind)?,
        filter,
        sort: None,
        start_index: 1,
        count: 0,
        cursor: None,
    };
    Ok(console.app.store.list(tenant.id, query).await?.total)
}

fn str_at<'a>(doc: &'a serde_json::Map<String, Value>, k: &str) -> Option<&'a str> {
    doc.get(k).and_then(Value::as_str)
}

fn user_email(doc: &serde_json::Map<String, Value>) -> String {
    let emails = doc.get("emails").and_then(Value::as_array);
    emails
        .and_then(|a| {
            a.iter()
                .find(|e| e["primary"] == Value::Bool(true))
                .or_else(|| a.first())
        })
        .and_then(|e| e["value"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn user_name(doc: &serde_json::Map<String, Value>) -> String {
    let name = doc.get("name");
    if let Some(f) = name.and_then(|n| n["formatted"].as_str()) {
        return f.to_string();
    }
    let parts: Vec<&str> = ["givenName", "familyName"]
        .iter()
        .filter_map(|k| name.and_then(|n| n[*k].as_str()))
        .collect();
    if parts.is_empty() {
        str_at(doc, "displayName").unwrap_or_default().to_string()
    } else {
        parts.join(" ")
    }
}

fn is_active(doc: &serde_json::Map<String, Value>) -> bool {
    doc.get("active").and_then(Value::as_bool).unwrap_or(true)
}

/// Flattens a document into `(path, value)` rows for the detail pages.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, v, out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        Value::Null => {}
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

#[derive(Deserialize, Default)]
pub struct ListParams {
    #[serde(default)]
    q: String,
    after: Option<i64>,
    before: Option<i64>,
}

pub struct Pager {
    pub prev: Option<String>,
    pub next: Option<String>,
}

/// Keyset paging links for a page fetched with `after`/`before`.
fn pager(base: &str, q: &str, p: &ListParams, records: &[Record], has_more: bool) -> Pager {
    let qs = if q.is_empty() {
        String::new()
    } else {
        format!("q={}&", urlencode(q))
    };
    let (first, last) = (records.first().map(|r| r.seq), records.last().map(|r| r.seq));
    let going_back = p.before.is_some();
    let prev = if going_back {
        has_more
    } else {
        p.after.is_some_and(|a| a > 0)
    };
    let next = if going_back { true } else { has_more };
    Pager {
        prev: first.filter(|_| prev).map(|s| format!("{base}?{qs}before={s}")),
        next: last.filter(|_| next).map(|s| format!("{base}?{qs}after={s}")),
    }
}

async fn list_page(
    console: &Console,
    t: &Tenant,
    kind: Kind,
    filter: Option<Filter>,
    p: &ListParams,
) -> Result<scimitar_store::Page, ConsoleError> {
    let rt = rt(console, kind)?;
    let cursor = match (p.after, p.before) {
        (_, Some(b)) => CursorPos::Before(b),
        (Some(a), None) => CursorPos::After(a),
        (None, None) => CursorPos::After(0),
    };
    console
        .app
        .store
        .list(
            t.id,
            ListQuery {
                kind,
                rt,
                filter,
                sort: None,
                start_index: 1,
                count: PAGE_SIZE,
                cursor: Some(cursor),
            },
        )
        .await
        .map_err(ConsoleError::from)
}

pub struct UserRow {
    pub id: String,
    pub user_name: String,
    pub name: String,
    pub email: String,
    pub active: bool,
    pub modified: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    c: Chrome,
    q: String,
    total: u64,
    rows: Vec<UserRow>,
    pager: Pager,
}

pub async fn users(
    State(console): Shared,
    a: Authed,
    Path(tenant): Path<String>,
    Query(p): Query<ListParams>,
) -> PageResult {
    let t = tenant_for(&console, &a, &tenant).await?;
    let q = p.q.trim().to_string();
    let filter = (!q.is_empty()).then(|| {
        any_contains(
            &[
                "userName",
                "name.formatted",
                "name.givenName",
                "name.familyName",
                "displayName",
                "emails.value",
            ],
            &q,
        )
    });
    let page = list_page(&console, &t, Kind::User, filter, &p).await?;
    let base = format!("/console/t/{}/users", t.name);
    let pager = pager(&base, &q, &p, &page.records, page.has_more);
    let rows = page
        .records
        .iter()
        .map(|r| UserRow {
            id: r.id.clone(),
            user_name: str_at(&r.doc, "userName").unwrap_or_default().to_string(),
            name: user_name(&r.doc),
            email: user_email(&r.doc),
            active: is_active(&r.doc),
            modified: when(&r.last_modified),
        })
        .collect();
    Ok(render(&UsersPage {
        c: chrome(&a, &t.name, "users"),
        q,
        total: page.total,
        rows,
        pager,
    }))
}

pub struct Link {
    pub label: String,
    pub href: String,
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    c: Chrome,
    id: String,
    user_name: String,
    name: String,
    active: bool,
    manager: Option<Link>,
    groups: Vec<Link>,
    attributes: Vec<(String, String)>,
    /// Whether the user has a `password`: never shown, in clear or hashed.
    password_set: bool,
    created: String,
    modified: String,
    version: u64,
}

/// The tenant's resource type of `kind`, with its extensions: what decides
/// which attributes a page may show.
async fn tenant_rt(console: &Console, t: &Tenant, kind: Kind) -> Result<Arc<ResourceType>, ConsoleError> {
    let rts = console.app.resource_types(t).await?;
    rts.iter()
        .find(|r| r.name == kind.as_str())
        .cloned()
        .ok_or_else(|| ConsoleError::new(500, "Unknown resource type."))
}

/// The rows of "All attributes": what SCIM would return of the document
/// (never `password`, nor an extension's `returned: never` attributes),
/// for every role.
fn shown_attributes(rt: &ResourceType, doc: &serde_json::Map<String, Value>) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    flatten("", &Value::Object(returnable(rt, doc)), &mut rows);
    rows
}

pub async fn user(State(console): Shared, a: Authed, Path((tenant, id)): Path<(String, String)>) -> PageResult {
    let t = tenant_for(&console, &a, &tenant).await?;
    let store = &console.app.store;
    let r = store
        .get(t.id, Kind::User, &id)
        .await?
        .ok_or_else(|| ConsoleError::not_found("There is no such user in this tenant."))?;
    let groups = store.groups_of(t.id, &id).await?;
    let manager_id = r
        .doc
        .iter()
        .find(|(k, _)| k.to_ascii_lowercase().contains("enterprise:2.0:user"))
        .and_then(|(_, v)| v.get("manager")?.get("value")?.as_str())
        .map(str::to_string);
    let manager = match manager_id {
        Some(mid) => {
            let label = store
                .display_name(t.id, &mid)
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| mid.clone());
            Some(Link {
                href: format!("/console/t/{}/users/{}", t.name, urlencode(&mid)),
                label,
            })
        }
        None => None,
    };
    let attributes = shown_attributes(&*tenant_rt(&console, &t, Kind::User).await?, &r.doc);
    Ok(render(&UserPage {
        c: chrome(&a, &t.name, "users"),
        user_name: str_at(&r.doc, "userName").unwrap_or_default().to_string(),
        name: user_name(&r.doc),
        active: is_active(&r.doc),
        manager,
        groups: groups
            .into_iter()
            .map(|g| Link {
                href: format!("/console/t/{}/groups/{}", t.name, urlencode(&g.value)),
                label: g.display.unwrap_or_else(|| g.value.clone()),
            })
            .collect(),
        attributes,
        password_set: r.doc.contains_key("password"),
        created: when(&r.created),
        modified: when(&r.last_modified),
        version: r.version,
        id: r.id,
    }))
}

pub struct GroupRow {
    pub id: String,
    pub name: String,
    pub external_id: String,
    pub members: u64,
    pub modified: String,
}

#[derive(Template)]
#[template(path = "groups.html")]
struct GroupsPage {
    c: Chrome,
    q: String,
    total: u64,
    rows: Vec<GroupRow>,
    pager: Pager,
}

pub async fn groups(
    State(console): Shared,
    a: Authed,
    Path(tenant): Path<String>,
    Query(p): Query<ListParams>,
) -> PageResult {
    let t = tenant_for(&console, &a, &tenant).await?;
    let q = p.q.trim().to_string();
    let filter = (!q.is_empty()).then(|| any_contains(&["displayName"], &q));
    let page = list_page(&console, &t, Kind::Group, filter, &p).await?;
    let ids: Vec<String> = page.records.iter().map(|r| r.id.clone()).collect();
    let counts: HashMap<String, u64> = console.app.store.member_counts(t.id, &ids).await?.into_iter().collect();
    let base = format!("/console/t/{}/groups", t.name);
    let pager = pager(&base, &q, &p, &page.records, page.has_more);
    let rows = page
        .records
        .iter()
        .map(|r| GroupRow {
            id: r.id.clone(),
            name: str_at(&r.doc, "displayName").unwrap_or_default().to_string(),
            external_id: str_at(&r.doc, "externalId").unwrap_or_default().to_string(),
            members: counts.get(&r.id).copied().unwrap_or(0),
            modified: when(&r.last_modified),
        })
        .collect();
    Ok(render(&GroupsPage {
        c: chrome(&a, &t.name, "groups"),
        q,
        total: page.total,
        rows,
        pager,
    }))
}

#[derive(Deserialize)]
pub struct MembersParams {
    after: Option<String>,
}

#[derive(Template)]
#[template(path = "group.html")]
struct GroupPage {
    c: Chrome,
    id: String,
    name: String,
    member_count: u64,
    members: Vec<(Link, String)>,
    next: Option<String>,
    first_page: bool,
    attributes: Vec<(String, String)>,
    created: String,
    modified: String,
}

pub async fn group(
    State(console): Shared,
    a: Authed,
    Path((tenant, id)): Path<(String, String)>,
    Query(p): Query<MembersParams>,
) -> PageResult {
    let t = tenant_for(&console, &a, &tenant).await?;
    let store = &console.app.store;
    let r = store
        .get(t.id, Kind::Group, &id)
        .await?
        .ok_or_else(|| ConsoleError::not_found("There is no such group in this tenant."))?;
    let member_count = store
        .member_counts(t.id, std::slice::from_ref(&id))
        .await?
        .first()
        .map(|(_, n)| *n)
        .unwrap_or(0);
    let mut page = store.members_page(t.id, &id, p.after.as_deref(), PAGE_SIZE + 1).await?;
    let more = page.len() > PAGE_SIZE;
    page.truncate(PAGE_SIZE);
    let base = format!("/console/t/{}/groups/{}", t.name, urlencode(&id));
    let next = page
        .last()
        .filter(|_| more)
        .map(|m| format!("{base}?after={}", urlencode(&m.value)));
    // Clients often send members without `display`: name them from the
    // store (a user by userName), one indexed read per member on the page.
    for m in page.iter_mut() {
        let kind = if m.kind == "Group" { Kind::Group } else { Kind::User };
        if let Ok(Some(r)) = store.get(t.id, kind, &m.value).await {
            let key = if kind == Kind::Group { "displayName" } else { "userName" };
            m.display = str_at(&r.doc, key).map(str::to_string).or(m.display.take());
        }
    }
    let members = page
        .into_iter()
        .map(|m| {
            let section = if m.kind == "Group" { "groups" } else { "users" };
            (
                Link {
                    href: format!("/console/t/{}/{section}/{}", t.name, urlencode(&m.value)),
                    label: m.display.clone().unwrap_or_else(|| m.value.clone()),
                },
                m.kind,
            )
        })
        .collect();
    let attributes = shown_attributes(&*tenant_rt(&console, &t, Kind::Group).await?, &r.doc);
    Ok(render(&GroupPage {
        c: chrome(&a, &t.name, "groups"),
        name: str_at(&r.doc, "displayName").unwrap_or_default().to_string(),
        member_count,
        members,
        next,
        first_page: p.after.is_none(),
        attributes,
        created: when(&r.created),
        modified: when(&r.last_modified),
        id: r.id,
    }))
}
