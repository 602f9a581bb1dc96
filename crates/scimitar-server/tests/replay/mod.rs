//! Shared machinery of the identity-provider replay suites
//! (`entra_replay.rs`, `okta_replay.rs`): a soft-assertion collector so one
//! run lists every deviation, a step runner (request → expected status),
//! exact read-back comparison, and a model of Entra's diff engine (the
//! mapped attributes of a source user, the diff against the target, and
//! the PATCH Entra would send for it in either dialect).

#![allow(dead_code, clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use reqwest::Method;
use scimitar_testkit::{Resp, Tenant, patch_op};
use serde_json::{Map, Value, json};

pub const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const CORE_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const ENT_MISSPELT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0User";
pub const ADSCIM_GROUP: &str = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";
pub const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

// ---------------------------------------------------------------------------
// Soft assertions

/// Collects failed checks; `finish` panics with all of them at once.
#[derive(Default)]
pub struct Ck {
    pub steps: usize,
    pub checks: usize,
    pub failures: Vec<String>,
    /// Every write sent through `step`, for the activity-log check.
    pub writes: Vec<Write>,
}

/// A write request of the replay and whether it changed something.
#[derive(Debug, Clone)]
pub struct Write {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub label: String,
    pub noop: bool,
}

impl Ck {
    pub fn new() -> Self {
        Ck::default()
    }
    pub fn ok(&mut self, label: &str, cond: bool, detail: impl FnOnce() -> String) {
        self.checks += 1;
        if !cond {
            let msg = format!("[{label}] {}", detail());
            eprintln!("FAIL {msg}");
            self.failures.push(msg);
        }
    }
    pub fn eq(&mut self, label: &str, actual: &Value, expected: &Value) {
        self.ok(label, actual == expected, || {
            format!(
                "\n   expected: {expected}\n   actual:   {actual}\n   diff: {}",
                json_diff(expected, actual).join("; ")
            )
        });
    }
    pub fn status(&mut self, label: &str, r: &Resp, expected: u16) {
        self.ok(label, r.status.as_u16() == expected, || {
            format!("status expected {expected}, got {}: {}", r.status, r.text)
        });
    }
    #[track_caller]
    pub fn finish(self, suite: &str) {
        eprintln!(
            "{suite}: {} steps, {} checks, {} failed",
            self.steps,
            self.checks,
            self.failures.len()
        );
        assert!(
            self.failures.is_empty(),
            "{suite}: {} of {} checks failed:\n{}",
            self.failures.len(),
            self.checks,
            self.failures.join("\n")
        );
    }
}

/// Paths where two JSON values differ (for readable failure messages).
pub fn json_diff(a: &Value, b: &Value) -> Vec<String> {
    fn walk(p: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                for (k, v) in x {
                    match y.get(k) {
                        Some(w) => walk(&format!("{p}/{k}"), v, w, out),
                        None => out.push(format!("{p}/{k} missing (expected {v})")),
                    }
                }
                for (k, w) in y {
                    if !x.contains_key(k) {
                        out.push(format!("{p}/{k} unexpected ({w})"));
                    }
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, (v, w)) in x.iter().zip(y).enumerate() {
                    walk(&format!("{p}/{i}"), v, w, out);
                }
            }
            _ if a != b => out.push(format!("{p}: expected {a}, got {b}")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", a, b, &mut out);
    out
}

// ---------------------------------------------------------------------------
// Steps

/// Sends one request, checks its status, and returns the response.
pub async fn step(
    ck: &mut Ck,
    t: &Tenant,
    label: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    status: u16,
) -> Resp {
    ck.steps += 1;
    let r = t.send(method.clone(), path, body).await;
    if method != Method::GET && path.starts_with('/') {
        ck.writes.push(Write {
            method: method.to_string(),
            path: path.split('?').next().unwrap_or(path).to_ascii_lowercase(),
            status: r.status.as_u16(),
            label: label.to_string(),
            noop: false,
        });
    }
    eprintln!("step {:>3} {label}: {method} {path} -> {}", ck.steps, r.status);
    ck.status(label, &r, status);
    if !r.text.is_empty() {
        ck.ok(
            &format!("{label}: content-type"),
            r.header("content-type")
                .is_some_and(|c| c.starts_with("application/scim+json")),
            || format!("content-type {:?}", r.header("content-type")),
        );
    }
    r
}

/// A resource as read back, without `id` and `meta` (server-assigned).
pub fn strip(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("id");
        o.remove("meta");
        if let Some(Value::Array(m)) = o.get_mut("members") {
            m.sort_by(|a, b| a["value"].as_str().cmp(&b["value"].as_str()));
        }
    }
    v
}

/// GETs the resource and compares it (without id/meta) with `expected`.
/// Returns the full read-back.
pub async fn expect_read(ck: &mut Ck, t: &Tenant, label: &str, path: &str, expected: &Value) -> Value {
    let r = t.get(path).await;
    ck.status(&format!("{label}: read back"), &r, 200);
    ck.eq(&format!("{label}: read back"), &strip(&r.body), expected);
    r.body
}

/// `meta.version` and ETag of a resource as read now.
pub async fn version(t: &Tenant, path: &str) -> (Value, Option<String>) {
    let r = t.get(path).await;
    (r.body["meta"]["version"].clone(), r.header("etag").map(str::to_string))
}

/// Re-sends a PATCH that was already applied and checks that nothing
/// changes: not the version, not the ETag, not the representation.
pub async fn assert_noop_patch(ck: &mut Ck, t: &Tenant, label: &str, path: &str, body: Value, status: u16) {
    let before = t.get(path).await;
    let r = step(
        ck,
        t,
        &format!("{label} (re-sent)"),
        Method::PATCH,
        path,
        Some(body),
        status,
    )
    .await;
    if let Some(w) = ck.writes.last_mut() {
        w.noop = true; // re-sent unchanged: not a write the log should show
    }
    let after = t.get(path).await;
    ck.eq(
        &format!("{label} (re-sent): meta.version unchanged"),
        &after.body["meta"]["version"],
        &before.body["meta"]["version"],
    );
    ck.ok(
        &format!("{label} (re-sent): ETag unchanged"),
        before.header("etag") == after.header("etag"),
        || format!("ETag {:?} -> {:?}", before.header("etag"), after.header("etag")),
    );
    ck.eq(
        &format!("{label} (re-sent): lastModified unchanged"),
        &after.body["meta"]["lastModified"],
        &before.body["meta"]["lastModified"],
    );
    ck.eq(
        &format!("{label} (re-sent): representation unchanged"),
        &strip(&after.body),
        &strip(&before.body),
    );
    if r.status == 200 {
        ck.eq(
            &format!("{label} (re-sent): response version"),
            &r.body["meta"]["version"],
            &before.body["meta"]["version"],
        );
    }
}

/// Checks a ListResponse: its total and the ids of its resources.
pub fn expect_list(ck: &mut Ck, label: &str, r: &Resp, ids: &[&str]) {
    ck.status(label, r, 200);
    ck.eq(&format!("{label}: schemas"), &r.body["schemas"], &json!([LIST]));
    ck.eq(
        &format!("{label}: totalResults"),
        &r.body["totalResults"],
        &json!(ids.len()),
    );
    let got: Vec<Value> = r.body["Resources"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|x| x["id"].clone())
        .collect();
    let want: Vec<Value> = ids.iter().map(|s| json!(s)).collect();
    ck.eq(
        &format!("{label}: Resources ids"),
        &Value::Array(got),
        &Value::Array(want),
    );
}

/// `+`-encodes a filter the way Entra does (`userName+eq+%22…%22`).
pub fn q(filter: &str) -> String {
    form_encode(filter)
}

pub fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `%20`-encodes (what Okta sends).
pub fn pct(s: &str) -> String {
    form_encode(s).replace('+', "%20")
}

/// Sets (`Some`) or removes (`None`) the value at a JSON pointer, creating
/// objects on the way.
pub fn put(v: &mut Value, ptr: &str, new: Option<Value>) {
    let parts: Vec<String> = ptr
        .trim_start_matches('/')
        .split('/')
        .map(|p| p.replace("~1", "/").replace("~0", "~"))
        .collect();
    let (last, parents) = parts.split_last().unwrap();
    let mut cur = v;
    for p in parents {
        cur = match cur {
            Value::Array(a) => &mut a[p.parse::<usize>().unwrap()],
            Value::Object(o) => o.entry(p.clone()).or_insert_with(|| json!({})),
            _ => panic!("pointer {ptr} crosses a scalar"),
        };
    }
    match (cur, new) {
        (Value::Object(o), Some(n)) => {
            o.insert(last.clone(), n);
        }
        (Value::Object(o), None) => {
            o.remove(last);
        }
        (Value::Array(a), Some(n)) => {
            let i: usize = last.parse().unwrap();
            if i == a.len() { a.push(n) } else { a[i] = n }
        }
        (Value::Array(a), None) => {
            a.remove(last.parse::<usize>().unwrap());
        }
        _ => panic!("pointer {ptr} crosses a scalar"),
    }
}

/// Replaces every occurrence of the given strings (ids, base URLs) inside
/// string values, so resources of two tenants can be compared.
pub fn symbolise(v: &Value, subst: &[(String, String)]) -> Value {
    match v {
        Value::String(s) => {
            let mut s = s.clone();
            for (from, to) in subst {
                s = s.replace(from, to);
            }
            Value::String(s)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| symbolise(x, subst)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), symbolise(x, subst))).collect()),
        other => other.clone(),
    }
}

// ---------------------------------------------------------------------------
// Entra's side: source users, mapping, diff and PATCH dialects

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The default `scim` job, no flag (also every on-demand run).
    Legacy,
    /// `?aadOptscim062020`.
    Compliant,
}

impl Dialect {
    pub fn op(self, op: &str) -> String {
        match self {
            Dialect::Legacy => {
                let mut c = op.chars();
                c.next()
                    .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                    .unwrap_or_default()
            }
            Dialect::Compliant => op.to_lowercase(),
        }
    }
    pub fn boolean(self, b: bool) -> Value {
        match self {
            Dialect::Legacy => json!(if b { "True" } else { "False" }),
            Dialect::Compliant => json!(b),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Legacy => "legacy",
            Dialect::Compliant => "compliant",
        }
    }
}

/// An Entra user, with the attributes the default "scim" job maps.
#[derive(Debug, Clone, Default)]
pub struct EntraUser {
    pub upn: String,
    pub mail_nickname: String,
    pub display_name: String,
    pub given_name: String,
    pub surname: String,
    pub job_title: Option<String>,
    pub mail: Option<String>,
    pub preferred_language: Option<String>,
    pub office: Option<String>,
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub telephone: Option<String>,
    pub mobile: Option<String>,
    pub fax: Option<String>,
    pub employee_id: Option<String>,
    pub department: Option<String>,
    /// The manager's **target** id, once resolved.
    pub manager: Option<String>,
    pub soft_deleted: bool,
}

impl EntraUser {
    /// (target path, value) of every mapped attribute with a non-null
    /// source value, in mapping order.
    pub fn mapped(&self) -> Vec<(String, Value)> {
        let mut out: Vec<(String, Value)> = vec![
            ("userName".into(), json!(self.upn)),
            ("active".into(), json!(!self.soft_deleted)),
            ("displayName".into(), json!(self.display_name)),
        ];
        let mut opt = |p: &str, v: &Option<String>| {
            if let Some(v) = v {
                out.push((p.to_string(), json!(v)));
            }
        };
        opt("title", &self.job_title);
        opt("emails[type eq \"work\"].value", &self.mail);
        opt("preferredLanguage", &self.preferred_language);
        opt("name.givenName", &Some(self.given_name.clone()));
        opt("name.familyName", &Some(self.surname.clone()));
        opt("name.formatted", &Some(format!("{} {}", self.given_name, self.surname)));
        opt("addresses[type eq \"work\"].formatted", &self.office);
        opt("addresses[type eq \"work\"].streetAddress", &self.street);
        opt("addresses[type eq \"work\"].locality", &self.city);
        opt("addresses[type eq \"work\"].region", &self.state);
        opt("addresses[type eq \"work\"].postalCode", &self.postal_code);
        opt("addresses[type eq \"work\"].country", &self.country);
        opt("phoneNumbers[type eq \"work\"].value", &self.telephone);
        opt("phoneNumbers[type eq \"mobile\"].value", &self.mobile);
        opt("phoneNumbers[type eq \"fax\"].value", &self.fax);
        opt("externalId", &Some(self.mail_nickname.clone()));
        opt(&format!("{ENT}:employeeNumber"), &self.employee_id);
        opt(&format!("{ENT}:department"), &self.department);
        opt(&format!("{ENT}:manager"), &self.manager);
        out
    }

    /// The POST Entra sends to create this user (no manager: that follows
    /// by PATCH). The legacy body carries the doc example's quirks: the
    /// misspelt enterprise URN, literal nulls, `meta` and `roles: []`.
    pub fn create_body(&self, d: Dialect) -> Value {
        let ent_urn = if d == Dialect::Legacy { ENT_MISSPELT } else { ENT };
        let mut b = Map::new();
        b.insert("schemas".into(), json!([CORE_USER, ent_urn]));
        b.insert("externalId".into(), json!(self.mail_nickname));
        b.insert("userName".into(), json!(self.upn));
        b.insert("active".into(), json!(!self.soft_deleted));
        b.insert("displayName".into(), json!(self.display_name));
        match (&self.job_title, d) {
            (Some(t), _) => {
                b.insert("title".into(), json!(t));
            }
            (None, Dialect::Legacy) => {
                b.insert("title".into(), Value::Null);
            }
            _ => {}
        }
        if let Some(l) = &self.preferred_language {
            b.insert("preferredLanguage".into(), json!(l));
        }
        if let Some(m) = &self.mail {
            b.insert("emails".into(), json!([{"type": "work", "value": m, "primary": true}]));
        }
        b.insert(
            "name".into(),
            json!({"givenName": self.given_name, "familyName": self.surname, "formatted": format!("{} {}", self.given_name, self.surname)}),
        );
        let addr: Vec<(&str, &Option<String>)> = vec![
            ("streetAddress", &self.street),
            ("locality", &self.city),
            ("region", &self.state),
            ("postalCode", &self.postal_code),
            ("country", &self.country),
            ("formatted", &self.office),
        ];
        if addr.iter().any(|(_, v)| v.is_some()) {
            let mut a = Map::new();
            a.insert("type".into(), json!("work"));
            for (k, v) in addr {
                if let Some(v) = v {
                    a.insert(k.into(), json!(v));
                }
            }
            a.insert("primary".into(), json!(true));
            b.insert("addresses".into(), json!([a]));
        } else if d == Dialect::Legacy {
            b.insert("addresses".into(), Value::Null);
        }
        let phones: Vec<Value> = [("work", &self.telephone), ("mobile", &self.mobile), ("fax", &self.fax)]
            .iter()
            .filter_map(|(t, v)| v.as_ref().map(|v| json!({"type": t, "value": v})))
            .collect();
        if !phones.is_empty() {
            b.insert("phoneNumbers".into(), Value::Array(phones));
        }
        let mut e = Map::new();
        if let Some(n) = &self.employee_id {
            e.insert("employeeNumber".into(), json!(n));
        }
        if let Some(n) = &self.department {
            e.insert("department".into(), json!(n));
        }
        b.insert(ent_urn.into(), Value::Object(e));
        b.insert("meta".into(), json!({"resourceType": "User"}));
        b.insert("roles".into(), json!([]));
        Value::Object(b)
    }
}

/// Reads an Entra target path (`a`, `a.b`, `a[type eq "x"].b`, `urn:…:attr`)
/// from a representation. `manager` reads its `value`.
pub fn target_value(res: &Value, path: &str) -> Option<Value> {
    if let Some(attr) = path.strip_prefix(&format!("{ENT}:")) {
        let v = res.get(ENT)?.get(attr)?;
        return if attr == "manager" {
            v.get("value").cloned()
        } else {
            Some(v.clone())
        };
    }
    if let Some((attr, rest)) = path.split_once('[') {
        let (filter, sub) = rest.split_once("].").unwrap();
        let ty = filter.trim_start_matches("type eq \"").trim_end_matches('"');
        let el = res
            .get(attr)?
            .as_array()?
            .iter()
            .find(|e| e.get("type").and_then(Value::as_str) == Some(ty))?;
        return el.get(sub).cloned();
    }
    if let Some((a, b)) = path.split_once('.') {
        return res.get(a)?.get(b).cloned();
    }
    res.get(path).cloned()
}

/// One attribute Entra would update: its path, the source value, and
/// whether the target already has a value (→ Replace, else Add).
#[derive(Debug, Clone)]
pub struct Change {
    pub path: String,
    pub value: Value,
    pub present: bool,
}

/// Entra's diff: mapped attributes whose target value differs.
pub fn entra_diff(src: &EntraUser, res: &Value) -> Vec<Change> {
    src.mapped()
        .into_iter()
        .filter_map(|(path, value)| {
            let t = target_value(res, &path);
            let same = match (&t, &value) {
                (Some(Value::String(a)), Value::String(b)) if path == "userName" => a.eq_ignore_ascii_case(b),
                (Some(a), b) => a == b,
                (None, _) => false,
            };
            (!same).then(|| Change {
                path,
                present: t.is_some(),
                value,
            })
        })
        .collect()
}

/// The PATCH Entra sends for a diff, in the dialect's shape. `base` is
/// the Tenant URL (for the legacy manager `$ref`).
pub fn entra_patch(d: Dialect, changes: &[Change], base: &str) -> Option<Value> {
    if changes.is_empty() {
        return None;
    }
    let mut ops = Vec::new();
    let mut grouped_replace = Map::new();
    let mut grouped_add = Map::new();
    for c in changes {
        let verb = if c.present { "replace" } else { "add" };
        let is_manager = c.path == format!("{ENT}:manager");
        match d {
            Dialect::Legacy => {
                let (path, value) = if is_manager {
                    let id = c.value.as_str().unwrap();
                    (
                        "manager".to_string(),
                        json!([{"$ref": format!("{base}/Users/{id}"), "value": id}]),
                    )
                } else if c.path == "active" {
                    (c.path.clone(), d.boolean(c.value.as_bool().unwrap()))
                } else {
                    (c.path.clone(), c.value.clone())
                };
                ops.push(json!({"op": d.op(verb), "path": path, "value": value}));
            }
            Dialect::Compliant => {
                if c.path.contains('[') || c.path == "active" || is_manager {
                    ops.push(json!({"op": d.op(verb), "path": c.path, "value": c.value}));
                } else if c.present {
                    grouped_replace.insert(c.path.clone(), c.value.clone());
                } else {
                    grouped_add.insert(c.path.clone(), c.value.clone());
                }
            }
        }
    }
    if !grouped_add.is_empty() {
        ops.push(json!({"op": "add", "value": grouped_add}));
    }
    if !grouped_replace.is_empty() {
        ops.push(json!({"op": "replace", "value": grouped_replace}));
    }
    Some(patch_op(Value::Array(ops)))
}

/// Asserts that Entra's diff of this source against the read-back is
/// empty (a next cycle would send nothing).
pub fn assert_in_sync(ck: &mut Ck, label: &str, src: &EntraUser, res: &Value) {
    let diff = entra_diff(src, res);
    ck.ok(&format!("{label}: Entra diff empty"), diff.is_empty(), || {
        format!("Entra would PATCH again: {diff:?}")
    });
}

// ---------------------------------------------------------------------------
// The provisioning activity log

/// The tenant's activity log shows the replay's writes: every create,
/// delete and rejected write is there with the right outcome; every logged
/// update carries its modified attributes and an action that fits them.
/// (That a write changing nothing is not logged is tested in http_activity.rs.)
/// `admin` is an admin-scope token of the same tenant.
pub async fn check_activity(ck: &mut Ck, admin: &Tenant, public_url: &str) {
    let url = format!("{public_url}/admin/v1/tenants/{}/activity?limit=1000", admin.name);
    let r = admin.send(Method::GET, &url, None).await;
    ck.status("activity log", &r, 200);
    let events: Vec<Value> = r.body["events"].as_array().cloned().unwrap_or_default();
    let writes = ck.writes.clone();
    let norm = |p: &str| p.trim_end_matches('/').to_ascii_lowercase();
    let mut used = vec![false; events.len()];
    let mut problems = Vec::new();
    for w in writes
        .iter()
        .filter(|w| w.status != 401 && (w.status >= 400 || ((w.method == "POST" || w.method == "DELETE") && !w.noop)))
    {
        let outcome = if w.status < 400 { "success" } else { "failure" };
        let hit = events.iter().enumerate().position(|(i, e)| {
            !used[i]
                && e["method"] == w.method.as_str()
                && norm(e["path"].as_str().unwrap_or_default()) == norm(&w.path)
                && e["outcome"] == outcome
                && e["status"] == w.status
        });
        match hit {
            Some(i) => used[i] = true,
            None => problems.push(format!(
                "not in the log: {} ({} {} -> {})",
                w.label, w.method, w.path, w.status
            )),
        }
    }
    for e in &events {
        let method = e["method"].as_str().unwrap_or_default();
        let action = e["action"].as_str().unwrap_or_default();
        let changed: Vec<&str> = e["changes"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c["attribute"].as_str()).collect())
            .unwrap_or_default();
        let what = format!("{method} {} ({action})", e["path"].as_str().unwrap_or_default());
        if e["outcome"] == "success" && (method == "PATCH" || method == "PUT") && changed.is_empty() {
            problems.push(format!("{what}: no modified attributes logged"));
        }
        if (action == "disable" || action == "enable") && !changed.contains(&"active") {
            problems.push(format!("{what}: {action} without an 'active' change"));
        }
        if (action == "add-member" || action == "remove-member")
            && (changed.is_empty() || changed.iter().any(|c| *c != "members"))
        {
            problems.push(format!("{what}: {action} with changes {changed:?}"));
        }
        let expected_action = match (method, e["outcome"].as_str()) {
            ("POST", _) => Some("create"),
            ("DELETE", _) => Some("delete"),
            _ => None,
        };
        if expected_action.is_some_and(|a| a != action) {
            problems.push(format!("{what}: logged as {action}"));
        }
    }
    ck.ok("activity log: events match the requests", problems.is_empty(), || {
        problems.join("\n   ")
    });
    ck.ok("activity log: writes were logged", !events.is_empty(), || {
        "no events".into()
    });
}
