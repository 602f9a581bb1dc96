//! A run: preflight, discovery, the tests in the catalogue's order, then
//! the cleanup. The only module that sends requests, always through the
//! engine's client, always shaped by the engine's dialect code.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scimitar_engine::client::{Client, Raw, TargetError};
use scimitar_engine::dialect::{self, Change, Op, Request};
use scimitar_engine::job::Dialect;
use scimitar_engine::log::{code_of_status, describe};
use scimitar_engine::mapping::TargetPath;
use scimitar_engine::model::Kind;
use scimitar_protocol::schema::urn;
use serde_json::{Value, json};

use crate::Options;
use crate::catalogue::{self, TestInfo};
use crate::discovery::{self, Declared, Discovery, get_ci, same, value_at};
use crate::preflight::{self, PreflightError, PreflightKind};
use crate::report::{BODY_LIMIT, Cleanup, Exchange, Failure, Load, Report, Status, Summary, TestResult, cut};

const INCOMPATIBLE: &str = "SystemForCrossDomainIdentityManagementServiceIncompatible";
/// The largest answer the validator reads (its own resources and pages of
/// 5 are far smaller); a larger one fails the test that asked for it.
pub const MAX_ANSWER_BYTES: usize = 8 << 20;
/// Pages walked at most by the pagination checks (5 per page).
const MAX_PAGES: u64 = 400;

/// Why a test did not pass.
enum Verdict {
    Fail(Box<Fail>),
    Skip(String),
}

struct Fail {
    message: String,
    /// What Entra logs, when the test's default does not say it.
    code: Option<&'static str>,
    exchange: Option<Exchange>,
}

type Step<T> = Result<T, Verdict>;

/// The requests of one test.
struct Trace {
    exchanges: Vec<Exchange>,
}

impl Trace {
    /// A failure about the last request.
    fn fail(&self, message: impl Into<String>) -> Verdict {
        Verdict::Fail(Box::new(Fail {
            message: message.into(),
            code: None,
            exchange: self.exchanges.last().cloned(),
        }))
    }

    fn fail_code(&self, message: impl Into<String>, code: &'static str) -> Verdict {
        Verdict::Fail(Box::new(Fail {
            message: message.into(),
            code: Some(code),
            exchange: self.exchanges.last().cloned(),
        }))
    }
}

/// An answer.
struct Got {
    status: u16,
    json: Option<Value>,
}

impl Got {
    fn from(raw: &Raw) -> Got {
        Got {
            status: raw.status,
            json: raw.json(),
        }
    }
}

fn statuses(ok: &[u16]) -> String {
    let s: Vec<String> = ok.iter().map(u16::to_string).collect();
    s.join(" or ")
}

impl Trace {
    fn status(&self, got: &Got, ok: &[u16], what: &str) -> Step<()> {
        if ok.contains(&got.status) {
            Ok(())
        } else {
            Err(self.fail(format!("{what}: expected {}, got {}", statuses(ok), got.status)))
        }
    }

    /// A DELETE's answer: 204, as RFC 7644 §3.6 and Microsoft's SCIM
    /// Validator want it; 200 passes too, since Entra counts any 2xx as
    /// success, with a note saying so.
    fn deleted(&self, got: &Got, what: &str) -> Step<Option<String>> {
        self.status(got, &[204, 200], what)?;
        Ok((got.status == 200).then(|| {
            format!("{what} answered 200: Entra accepts it, but RFC 7644 §3.6 (and Microsoft's SCIM Validator) expect 204 No Content")
        }))
    }

    fn json<'a>(&self, got: &'a Got, what: &str) -> Step<&'a Value> {
        got.json
            .as_ref()
            .ok_or_else(|| self.fail_code(format!("{what}: the answer is not JSON"), INCOMPATIBLE))
    }

    /// A 200 ListResponse's resources.
    fn list(&self, got: &Got, what: &str) -> Step<Vec<Value>> {
        self.status(got, &[200], what)?;
        let body = self.json(got, what)?;
        let total = get_ci(body, "totalResults").and_then(Value::as_u64);
        let resources: Vec<Value> = get_ci(body, "Resources")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if total.is_none() {
            return Err(self.fail_code(
                format!("{what}: not a SCIM ListResponse (no totalResults)"),
                INCOMPATIBLE,
            ));
        }
        Ok(resources)
    }

    /// 200 with no resources.
    fn empty(&self, got: &Got, what: &str) -> Step<()> {
        let r = self.list(got, what)?;
        let total = got
            .json
            .as_ref()
            .and_then(|b| get_ci(b, "totalResults"))
            .and_then(Value::as_u64);
        if !r.is_empty() || total != Some(0) {
            return Err(self.fail(format!(
                "{what}: expected no resources, got totalResults {} with {} resources",
                total.unwrap_or_default(),
                r.len()
            )));
        }
        Ok(())
    }

    /// Exactly one resource, with this id.
    fn one(&self, got: &Got, id: &str, what: &str) -> Step<Value> {
        let r = self.list(got, what)?;
        match r.as_slice() {
            [one] if get_ci(one, "id").and_then(Value::as_str) == Some(id) => Ok(one.clone()),
            [] => Err(self.fail(format!("{what}: found nothing"))),
            [_] => Err(self.fail(format!("{what}: found another resource, not {id}"))),
            many => Err(self.fail_code(
                format!("{what}: found {} resources, expected 1", many.len()),
                "DuplicateTargetEntries",
            )),
        }
    }
}

/// Something the run created (or tried to), to delete at the end.
#[derive(Debug, Clone)]
struct Made {
    kind: Kind,
    id: Option<String>,
    /// Its userName / displayName, every one it had.
    names: Vec<String>,
    deleted: bool,
}

struct TestUser {
    id: String,
    name: String,
    values: Vec<(TargetPath, Value)>,
    slot: usize,
}

struct TestGroup {
    id: String,
    name: String,
    slot: usize,
}

struct Ctx {
    client: Arc<Client>,
    /// The token, to keep it out of everything recorded (an endpoint may
    /// echo it in an answer or an error).
    token: String,
    base: String,
    dialect: Dialect,
    prefix: String,
    groups: bool,
    declared: Declared,
    discovery: Discovery,
    /// The /Schemas request, for the report of `schemas-discoverable`.
    schemas_exchange: Option<Exchange>,
    seq: std::sync::atomic::AtomicU32,
    made: Mutex<Vec<Made>>,
    load_seconds: f64,
    load_rate: u32,
    load: Mutex<Option<Load>>,
}

fn target(kind: Kind, path: &str) -> Option<TargetPath> {
    TargetPath::parse(kind, path).ok()
}

fn manager_path() -> String {
    format!("{}:manager", urn::ENTERPRISE_USER)
}

fn change(t: TargetPath, op: Op, value: Value) -> Change {
    Change { target: t, op, value }
}

/// Whether a URL names one resource (`…/Users/{id}`), not an endpoint
/// (`…/Users?filter=…`).
fn on_resource(url: &str) -> bool {
    let p = url
        .split('?')
        .next()
        .unwrap_or(url)
        .trim_end_matches('/')
        .to_ascii_lowercase();
    !(p.ends_with("/users") || p.ends_with("/groups"))
}

impl Ctx {
    fn next(&self) -> u32 {
        self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }

    /// `text` without the token.
    fn redact(&self, text: &str) -> String {
        redact(text, &self.token)
    }

    fn record(&self, req: &Request, answer: Result<&Raw, &TargetError>) -> Exchange {
        let (status, content_type, response_body, error, elapsed_ms) = match answer {
            Ok(raw) => (
                Some(raw.status),
                raw.content_type.as_deref().map(|c| self.redact(c)),
                Some(cut(&self.redact(&String::from_utf8_lossy(&raw.bytes)), BODY_LIMIT)),
                None,
                u64::try_from(raw.elapsed.as_millis()).unwrap_or(u64::MAX),
            ),
            Err(e) => (None, None, None, Some(self.redact(&e.info.details)), 0),
        };
        Exchange {
            method: req.method.to_string(),
            url: format!("{}{}", self.base, req.path),
            request_body: req.body.clone(),
            status,
            content_type,
            response_body,
            error,
            elapsed_ms,
        }
    }

    async fn send(&self, t: &mut Trace, req: &Request) -> Step<Got> {
        match self.client.exchange(req).await {
            Ok(raw) => {
                t.exchanges.push(self.record(req, Ok(&raw)));
                Ok(Got::from(&raw))
            }
            Err(e) => {
                t.exchanges.push(self.record(req, Err(&e)));
                Err(t.fail_code(self.redact(&e.info.details), e.info.code))
            }
        }
    }

    fn track(&self, kind: Kind, name: &str) -> usize {
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        made.push(Made {
            kind,
            id: None,
            names: vec![name.to_string()],
            deleted: false,
        });
        made.len() - 1
    }

    fn set_id(&self, slot: usize, id: &str) {
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = made.get_mut(slot) {
            m.id = Some(id.to_string());
        }
    }

    fn add_name(&self, slot: usize, name: &str) {
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = made.get_mut(slot) {
            m.names.push(name.to_string());
        }
    }

    fn set_deleted(&self, slot: usize) {
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = made.get_mut(slot) {
            m.deleted = true;
        }
    }

    /// Sends a create that should be refused (a duplicate of `original`),
    /// tracked before it is sent: what it makes anyway is deleted at the
    /// end, also when the run is interrupted before the answer arrives
    /// (then it is found by its name).
    async fn post_duplicate(&self, t: &mut Trace, kind: Kind, name: &str, original: &str, req: &Request) -> Step<Got> {
        let slot = self.track(kind, name);
        let got = self.send(t, req).await?;
        match created_id(&got) {
            Some(id) if id != original => self.set_id(slot, &id),
            // Nothing was made (or the original was answered again).
            _ => self.set_deleted(slot),
        }
        Ok(got)
    }

    fn user_name(&self, n: u32) -> String {
        format!("{}-u{n}@example.com", self.prefix)
    }

    /// POSTs a user; `(slot, answer)`.
    async fn post_user(&self, t: &mut Trace, n: u32) -> Step<(usize, String, Vec<(TargetPath, Value)>, Got)> {
        let name = self.user_name(n);
        let values = discovery::user_values(&self.declared, &name, &format!("{} User {n}", self.prefix), n);
        let slot = self.track(Kind::User, &name);
        let got = self
            .send(t, &dialect::create(Kind::User, self.dialect, &values))
            .await?;
        if let Some(id) = created_id(&got) {
            self.set_id(slot, &id);
        }
        Ok((slot, name, values, got))
    }

    /// A user for a test (its creation is not what the test is about: a
    /// failure skips the test).
    async fn user(&self, t: &mut Trace) -> Step<TestUser> {
        let n = self.next();
        let (slot, name, values, got) = self.post_user(t, n).await.map_err(setup)?;
        match created_id(&got) {
            Some(id) if (200..300).contains(&got.status) => Ok(TestUser { id, name, values, slot }),
            _ => Err(Verdict::Skip(format!(
                "setup: creating a test user failed ({}); see 'POST /Users - Create a new User'",
                got.status
            ))),
        }
    }

    fn group_values(&self, name: &str) -> Vec<(TargetPath, Value)> {
        let mut v = Vec::new();
        if let Some(t) = target(Kind::Group, "displayName") {
            v.push((t, json!(name)));
        }
        if self.declared.has_name(Kind::Group, "externalId")
            && let Some(t) = target(Kind::Group, "externalId")
        {
            v.push((t, json!(uuid::Uuid::new_v4().to_string())));
        }
        v
    }

    async fn post_group(&self, t: &mut Trace, n: u32) -> Step<(usize, String, Vec<(TargetPath, Value)>, Got)> {
        let name = format!("{} Group {n}", self.prefix);
        let values = self.group_values(&name);
        let slot = self.track(Kind::Group, &name);
        let got = self
            .send(t, &dialect::create(Kind::Group, self.dialect, &values))
            .await?;
        if let Some(id) = created_id(&got) {
            self.set_id(slot, &id);
        }
        Ok((slot, name, values, got))
    }

    async fn group(&self, t: &mut Trace) -> Step<TestGroup> {
        let n = self.next();
        let (slot, name, _, got) = self.post_group(t, n).await.map_err(setup)?;
        match created_id(&got) {
            Some(id) if (200..300).contains(&got.status) => Ok(TestGroup { id, name, slot }),
            _ => Err(Verdict::Skip(format!(
                "setup: creating a test group failed ({}); see 'POST /Groups - Create a new Group'",
                got.status
            ))),
        }
    }

    /// A PATCH whose success is what a test is about: 200 or 204.
    async fn patch(&self, t: &mut Trace, req: Option<Request>, what: &str) -> Step<()> {
        let req = req.ok_or_else(|| Verdict::Skip(format!("{what}: nothing to send")))?;
        let got = self.send(t, &req).await?;
        t.status(&got, &[200, 204], what)
    }

    async fn read_user(&self, t: &mut Trace, id: &str) -> Step<Value> {
        let got = self.send(t, &dialect::read(Kind::User, id)).await?;
        t.status(&got, &[200], "GET /Users/{id}")?;
        t.json(&got, "GET /Users/{id}").cloned()
    }

    async fn group_members(&self, t: &mut Trace, id: &str) -> Step<Vec<String>> {
        let got = self.send(t, &dialect::read_all(Kind::Group, id)).await?;
        t.status(&got, &[200], "GET /Groups/{id}")?;
        let body = t.json(&got, "GET /Groups/{id}")?;
        Ok(get_ci(body, "members")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|m| get_ci(m, "value").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    fn update(&self, kind: Kind, id: &str, changes: &[Change]) -> Option<Request> {
        dialect::update(kind, self.dialect, id, changes, None)
    }

    fn user_target(&self, path: &str) -> Step<TargetPath> {
        let t = target(Kind::User, path).ok_or_else(|| Verdict::Skip(format!("'{path}' is no User attribute")))?;
        if self.declared.has(Kind::User, &t) {
            Ok(t)
        } else {
            Err(Verdict::Skip(format!("/Schemas does not declare {path}")))
        }
    }
}

/// A failure while setting a test up skips it.
fn setup(v: Verdict) -> Verdict {
    match v {
        Verdict::Fail(f) => Verdict::Skip(format!("setup failed: {}", f.message)),
        skip => skip,
    }
}

/// `text` with every occurrence of `token` replaced (tokens too short to
/// tell from ordinary text are left alone).
pub(crate) fn redact(text: &str, token: &str) -> String {
    if token.chars().count() < 8 || !text.contains(token) {
        text.to_string()
    } else {
        text.replace(token, "[the token]")
    }
}

fn created_id(got: &Got) -> Option<String> {
    if !(200..300).contains(&got.status) {
        return None;
    }
    got.json
        .as_ref()
        .and_then(|b| get_ci(b, "id"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn has_members_key(v: &Value) -> bool {
    get_ci(v, "members").is_some_and(|m| !m.is_null())
}

/// Runs one test.
async fn run_test(cx: &Ctx, info: &TestInfo, t: &mut Trace) -> Step<Option<String>> {
    if info.groups && !cx.groups {
        return Err(Verdict::Skip("a Group test: run with --groups".into()));
    }
    let u = Kind::User;
    let g = Kind::Group;
    match info.id {
        "test-connection" => {
            let guid = uuid::Uuid::new_v4().to_string();
            let got = cx.send(t, &dialect::probe(u, "userName", &guid)).await?;
            t.empty(&got, "a user that cannot exist")?;
            if cx.groups {
                let got = cx.send(t, &dialect::probe(g, "displayName", &guid)).await?;
                t.empty(&got, "a group that cannot exist")?;
            }
            Ok(None)
        }
        "schemas-discoverable" => {
            if let Some(x) = &cx.schemas_exchange {
                t.exchanges.push(x.clone());
            }
            if let Some(p) = &cx.discovery.schemas_problem {
                return Err(t.fail(format!("GET /Schemas: {p}")));
            }
            let mut missing = discovery::undeclared(&cx.declared, u);
            if cx.groups {
                missing.extend(
                    discovery::undeclared(&cx.declared, g)
                        .into_iter()
                        .map(|m| format!("Group {m}")),
                );
            }
            if missing.is_empty() {
                Ok(None)
            } else {
                Err(t.fail(format!(
                    "/Schemas does not list these attributes of Entra's default mapping: {}",
                    missing.join(", ")
                )))
            }
        }
        "create-user" => {
            let n = cx.next();
            let (_, name, values, got) = cx.post_user(t, n).await?;
            t.status(&got, &[201], "POST /Users")?;
            let id = created_id(&got).ok_or_else(|| t.fail_code("POST /Users: the answer has no id", INCOMPATIBLE))?;
            let found = cx.send(t, &dialect::lookup(u, "userName", &name)).await?;
            let res = t.one(&found, &id, "the filter by userName")?;
            let diff = discovery::differences(&values, &res);
            if !diff.is_empty() {
                return Err(t.fail_code(
                    format!("values read back differ from those sent: {}", diff.join("; ")),
                    "(no error: Entra sees the difference and sends a PATCH every cycle)",
                ));
            }
            Ok(None)
        }
        "create-duplicate-user" => {
            let user = cx.user(t).await?;
            let req = dialect::create(u, cx.dialect, &user.values);
            let got = cx.post_duplicate(t, u, &user.name, &user.id, &req).await?;
            t.status(&got, &[409], "the second POST /Users with the same userName")?;
            Ok(None)
        }
        "filter-user" => {
            let user = cx.user(t).await?;
            let got = cx.send(t, &dialect::lookup(u, "userName", &user.name)).await?;
            t.one(&got, &user.id, "the filter by userName")?;
            Ok(None)
        }
        "filter-user-none" => {
            let name = format!("{}-nobody-{}@example.com", cx.prefix, cx.next());
            let got = cx.send(t, &dialect::lookup(u, "userName", &name)).await?;
            t.empty(&got, "a filter that matches nothing")?;
            Ok(None)
        }
        "filter-user-case" => {
            let user = cx.user(t).await?;
            let got = cx
                .send(t, &dialect::lookup(u, "userName", &user.name.to_uppercase()))
                .await?;
            t.one(&got, &user.id, "the filter by userName in upper case")?;
            Ok(None)
        }
        "patch-user-replace" => {
            let user = cx.user(t).await?;
            let changed = discovery::changed_values(&user.values);
            if changed.is_empty() {
                return Err(Verdict::Skip(
                    "/Schemas declares no attribute to change besides userName and active".into(),
                ));
            }
            let changes: Vec<Change> = changed
                .iter()
                .map(|(p, v)| change(p.clone(), Op::Replace, v.clone()))
                .collect();
            cx.patch(t, cx.update(u, &user.id, &changes), "PATCH /Users/{id}")
                .await?;
            let res = cx.read_user(t, &user.id).await?;
            let diff = discovery::differences(&changed, &res);
            if diff.is_empty() {
                Ok(None)
            } else {
                Err(t.fail(format!("not changed: {}", diff.join("; "))))
            }
        }
        "patch-user-username" => {
            let user = cx.user(t).await?;
            let new = format!("{}-u{}-renamed@example.com", cx.prefix, cx.next());
            cx.add_name(user.slot, &new);
            let path = cx.user_target("userName")?;
            cx.patch(
                t,
                cx.update(u, &user.id, &[change(path.clone(), Op::Replace, json!(new))]),
                "PATCH /Users/{id}",
            )
            .await?;
            let res = cx.read_user(t, &user.id).await?;
            if value_at(&res, &path) != Some(json!(new)) {
                return Err(t.fail(format!(
                    "GET /Users/{{id}} returns userName {}, not {new}",
                    value_at(&res, &path).unwrap_or(Value::Null)
                )));
            }
            let got = cx.send(t, &dialect::lookup(u, "userName", &new)).await?;
            t.one(&got, &user.id, "the filter by the new userName")?;
            Ok(None)
        }
        "patch-user-disable" => {
            let active = cx.user_target("active")?;
            let user = cx.user(t).await?;
            cx.patch(
                t,
                cx.update(u, &user.id, &[change(active.clone(), Op::Replace, json!(false))]),
                "PATCH /Users/{id}",
            )
            .await?;
            let got = cx.send(t, &dialect::lookup(u, "userName", &user.name)).await?;
            let res = t.one(
                &got,
                &user.id,
                "a disabled user by filter (disabled users must still be returned)",
            )?;
            match value_at(&res, &active) {
                Some(v) if same(&json!(false), &v) => Ok(None),
                v => Err(t.fail(format!(
                    "the filter returns the disabled user with active {}",
                    v.unwrap_or(Value::Null)
                ))),
            }
        }
        "patch-user-manager-add" => {
            let mp = cx.user_target(&manager_path())?;
            let user = cx.user(t).await?;
            let boss = cx.user(t).await?;
            cx.patch(
                t,
                cx.update(u, &user.id, &[change(mp.clone(), Op::Add, json!(boss.id))]),
                "PATCH /Users/{id}",
            )
            .await?;
            manager_is(cx, t, &user.id, &mp, Some(&boss.id)).await
        }
        "patch-user-manager-replace" => {
            let mp = cx.user_target(&manager_path())?;
            let user = cx.user(t).await?;
            let first = cx.user(t).await?;
            let second = cx.user(t).await?;
            cx.patch(
                t,
                cx.update(u, &user.id, &[change(mp.clone(), Op::Add, json!(first.id))]),
                "setting the first manager",
            )
            .await
            .map_err(setup)?;
            cx.patch(
                t,
                cx.update(u, &user.id, &[change(mp.clone(), Op::Replace, json!(second.id))]),
                "PATCH /Users/{id}",
            )
            .await?;
            manager_is(cx, t, &user.id, &mp, Some(&second.id)).await
        }
        "patch-user-manager-remove" => {
            let mp = cx.user_target(&manager_path())?;
            let user = cx.user(t).await?;
            let boss = cx.user(t).await?;
            cx.patch(
                t,
                cx.update(u, &user.id, &[change(mp.clone(), Op::Add, json!(boss.id))]),
                "setting the manager",
            )
            .await
            .map_err(setup)?;
            let before = cx.read_user(t, &user.id).await.map_err(setup)?;
            if !value_at(&before, &mp).is_some_and(|v| same(&json!(boss.id), &v)) {
                return Err(Verdict::Skip(
                    "setup: the manager could not be set (see 'Add Manager')".into(),
                ));
            }
            cx.patch(
                t,
                Some(dialect::clear_manager(cx.dialect, &user.id)),
                "PATCH /Users/{id}",
            )
            .await?;
            manager_is(cx, t, &user.id, &mp, None).await
        }
        "delete-user" => {
            let user = cx.user(t).await?;
            let got = cx.send(t, &dialect::delete(u, &user.id)).await?;
            let note = t.deleted(&got, "DELETE /Users/{id}")?;
            cx.set_deleted(user.slot);
            let got = cx.send(t, &dialect::read(u, &user.id)).await?;
            t.status(&got, &[404], "GET /Users/{id} after DELETE")?;
            Ok(note)
        }
        "patch-null-empty" => {
            let user = cx.user(t).await?;
            let Some((path, _)) = ["title", "preferredLanguage", "name.formatted", "displayName"]
                .iter()
                .find_map(|k| user.values.iter().find(|(p, _)| p.key() == *k))
                .cloned()
            else {
                return Err(Verdict::Skip("/Schemas declares no optional string attribute".into()));
            };
            for (i, empty) in [json!(""), Value::Null].into_iter().enumerate() {
                if i > 0 {
                    cx.patch(
                        t,
                        cx.update(u, &user.id, &[change(path.clone(), Op::Replace, json!("again"))]),
                        "setting the value again",
                    )
                    .await
                    .map_err(setup)?;
                }
                let what = format!("PATCH {} to {empty}", path.key());
                cx.patch(
                    t,
                    cx.update(u, &user.id, &[change(path.clone(), Op::Replace, empty)]),
                    &what,
                )
                .await?;
                let res = cx.read_user(t, &user.id).await?;
                match value_at(&res, &path) {
                    None => {}
                    Some(Value::String(s)) if s.is_empty() => {}
                    Some(v) => {
                        return Err(t.fail(format!("after {what}, {} reads back {v}", path.key())));
                    }
                }
            }
            Ok(None)
        }
        "user-pagination" => paginate(cx, t, u).await,
        "group-pagination" => paginate(cx, t, g).await,
        "empty-filters" => {
            let guid = uuid::Uuid::new_v4().to_string();
            let got = cx.send(t, &dialect::lookup(u, "externalId", &guid)).await?;
            t.empty(&got, "GET /Users?filter=externalId eq …")?;
            if cx.groups {
                let got = cx.send(t, &dialect::lookup(g, "externalId", &guid)).await?;
                t.empty(&got, "GET /Groups?filter=externalId eq …")?;
            }
            Ok(None)
        }
        "preview-user-multiple-ops" => {
            let user = cx.user(t).await?;
            let mut parts: Vec<(TargetPath, Op, Value)> = Vec::new();
            for (k, op, v) in [
                ("displayName", Op::Replace, format!("{} multi", cx.prefix)),
                ("nickName", Op::Add, "Multi".to_string()),
                ("title", Op::Replace, "Multi".to_string()),
            ] {
                if let Ok(p) = cx.user_target(k) {
                    parts.push((p, op, json!(v)));
                }
            }
            if parts.len() < 2 {
                return Err(Verdict::Skip(
                    "/Schemas declares fewer than two of displayName, nickName, title".into(),
                ));
            }
            let req = combined(
                parts
                    .iter()
                    .map(|(p, op, v)| cx.update(u, &user.id, &[change(p.clone(), op.clone(), v.clone())])),
            );
            cx.patch(t, req, "PATCH /Users/{id}").await?;
            let res = cx.read_user(t, &user.id).await?;
            let sent: Vec<(TargetPath, Value)> = parts.into_iter().map(|(p, _, v)| (p, v)).collect();
            let diff = discovery::differences(&sent, &res);
            if diff.is_empty() {
                Ok(None)
            } else {
                Err(t.fail(format!("not changed: {}", diff.join("; "))))
            }
        }
        "preview-user-same-attribute" => {
            let user = cx.user(t).await?;
            let path = cx.user_target("title").or_else(|_| cx.user_target("displayName"))?;
            let req = combined(["first", "second"].iter().map(|v| {
                cx.update(
                    u,
                    &user.id,
                    &[change(path.clone(), Op::Replace, json!(format!("{} {v}", cx.prefix)))],
                )
            }));
            cx.patch(t, req, "PATCH /Users/{id}").await?;
            let res = cx.read_user(t, &user.id).await?;
            let want = json!(format!("{} second", cx.prefix));
            match value_at(&res, &path) {
                Some(v) if v == want => Ok(None),
                v => Err(t.fail(format!(
                    "{} reads back {}, expected the last value {want}",
                    path.key(),
                    v.unwrap_or(Value::Null)
                ))),
            }
        }
        "preview-delete-user-missing" => delete_missing(cx, t, u).await,
        "preview-delete-group-missing" => delete_missing(cx, t, g).await,
        "preview-delete-user-twice" => {
            let user = cx.user(t).await?;
            delete_twice(cx, t, u, &user.id, user.slot).await
        }
        "preview-delete-group-twice" => {
            let group = cx.group(t).await?;
            delete_twice(cx, t, g, &group.id, group.slot).await
        }
        "create-group" => {
            let n = cx.next();
            let (_, name, _, got) = cx.post_group(t, n).await?;
            t.status(&got, &[201], "POST /Groups")?;
            let id = created_id(&got).ok_or_else(|| t.fail_code("POST /Groups: the answer has no id", INCOMPATIBLE))?;
            let found = cx.send(t, &dialect::lookup(g, "displayName", &name)).await?;
            t.one(&found, &id, "the filter by displayName")?;
            Ok(None)
        }
        "create-duplicate-group" => {
            let group = cx.group(t).await?;
            let values = cx.group_values(&group.name);
            let req = dialect::create(g, cx.dialect, &values);
            let got = cx.post_duplicate(t, g, &group.name, &group.id, &req).await?;
            t.status(&got, &[409], "the second POST /Groups with the same displayName")?;
            Ok(None)
        }
        "get-group-excluding-members" => {
            let group = cx.group(t).await?;
            let user = cx.user(t).await?;
            // A member, so that leaving members out means something.
            let _ = cx
                .send(
                    t,
                    &dialect::add_members(cx.dialect, &group.id, std::slice::from_ref(&user.id)),
                )
                .await;
            let got = cx.send(t, &dialect::read(g, &group.id)).await?;
            t.status(&got, &[200], "GET /Groups/{id}?excludedAttributes=members")?;
            let body = t.json(&got, "GET /Groups/{id}")?;
            if has_members_key(body) {
                return Err(t.fail("the answer carries members although excludedAttributes=members"));
            }
            Ok(None)
        }
        "filter-group-excluding-members" => {
            let group = cx.group(t).await?;
            let user = cx.user(t).await?;
            let _ = cx
                .send(
                    t,
                    &dialect::add_members(cx.dialect, &group.id, std::slice::from_ref(&user.id)),
                )
                .await;
            let got = cx.send(t, &dialect::lookup(g, "displayName", &group.name)).await?;
            let res = t.one(&got, &group.id, "the filter by displayName")?;
            if has_members_key(&res) {
                return Err(t.fail("the group carries members although excludedAttributes=members"));
            }
            Ok(None)
        }
        "filter-group" => {
            let group = cx.group(t).await?;
            let got = cx.send(t, &dialect::filter_all(g, "displayName", &group.name)).await?;
            t.one(&got, &group.id, "the filter by displayName")?;
            Ok(None)
        }
        "filter-group-none" => {
            let name = format!("{} Nobody {}", cx.prefix, cx.next());
            let got = cx.send(t, &dialect::filter_all(g, "displayName", &name)).await?;
            t.empty(&got, "a filter that matches nothing")?;
            Ok(None)
        }
        "filter-group-case" => {
            let group = cx.group(t).await?;
            let got = cx
                .send(t, &dialect::filter_all(g, "displayName", &group.name.to_uppercase()))
                .await?;
            t.one(&got, &group.id, "the filter by displayName in upper case")?;
            Ok(None)
        }
        "patch-group-replace" => {
            if !cx.declared.has_name(g, "externalId") {
                return Err(Verdict::Skip("/Schemas declares no Group externalId".into()));
            }
            let path = target(g, "externalId").ok_or_else(|| Verdict::Skip("externalId".into()))?;
            let group = cx.group(t).await?;
            let new = uuid::Uuid::new_v4().to_string();
            cx.patch(
                t,
                cx.update(g, &group.id, &[change(path.clone(), Op::Replace, json!(new))]),
                "PATCH /Groups/{id}",
            )
            .await?;
            let got = cx.send(t, &dialect::read(g, &group.id)).await?;
            t.status(&got, &[200], "GET /Groups/{id}")?;
            let body = t.json(&got, "GET /Groups/{id}")?;
            match value_at(body, &path) {
                Some(v) if v == json!(new) => Ok(None),
                v => Err(t.fail(format!("externalId reads back {}, not {new}", v.unwrap_or(Value::Null)))),
            }
        }
        "patch-group-displayname" => {
            let path = target(g, "displayName").ok_or_else(|| Verdict::Skip("displayName".into()))?;
            let group = cx.group(t).await?;
            let new = format!("{} renamed", group.name);
            cx.add_name(group.slot, &new);
            cx.patch(
                t,
                cx.update(g, &group.id, &[change(path.clone(), Op::Replace, json!(new))]),
                "PATCH /Groups/{id}",
            )
            .await?;
            let got = cx.send(t, &dialect::read(g, &group.id)).await?;
            t.status(&got, &[200], "GET /Groups/{id}")?;
            let body = t.json(&got, "GET /Groups/{id}")?;
            match value_at(body, &path) {
                Some(v) if v == json!(new) => Ok(None),
                v => Err(t.fail(format!(
                    "displayName reads back {}, not {new}",
                    v.unwrap_or(Value::Null)
                ))),
            }
        }
        "patch-group-add-member" => {
            let group = cx.group(t).await?;
            let user = cx.user(t).await?;
            cx.patch(
                t,
                Some(dialect::replace_members(
                    cx.dialect,
                    &group.id,
                    std::slice::from_ref(&user.id),
                )),
                "PATCH /Groups/{id}",
            )
            .await?;
            let members = cx.group_members(t, &group.id).await?;
            if members.contains(&user.id) {
                Ok(None)
            } else {
                Err(t.fail(format!("the group's members are {members:?}, without {}", user.id)))
            }
        }
        "patch-group-remove-member" => {
            let group = cx.group(t).await?;
            let user = cx.user(t).await?;
            let ids = std::slice::from_ref(&user.id);
            cx.patch(
                t,
                Some(dialect::add_members(cx.dialect, &group.id, ids)),
                "adding the member",
            )
            .await
            .map_err(setup)?;
            if !cx.group_members(t, &group.id).await.map_err(setup)?.contains(&user.id) {
                return Err(Verdict::Skip(
                    "setup: the member could not be added (see 'Add Member')".into(),
                ));
            }
            cx.patch(
                t,
                Some(dialect::remove_members(Dialect::EntraCompliant, &group.id, ids)),
                "PATCH /Groups/{id}",
            )
            .await?;
            let members = cx.group_members(t, &group.id).await?;
            if members.contains(&user.id) {
                Err(t.fail(format!("{} is still a member", user.id)))
            } else {
                Ok(None)
            }
        }
        "delete-group" => {
            let group = cx.group(t).await?;
            let got = cx.send(t, &dialect::delete(g, &group.id)).await?;
            let note = t.deleted(&got, "DELETE /Groups/{id}")?;
            cx.set_deleted(group.slot);
            let got = cx.send(t, &dialect::read(g, &group.id)).await?;
            t.status(&got, &[404], "GET /Groups/{id} after DELETE")?;
            Ok(note)
        }
        "multi-member-patch" => {
            let group = cx.group(t).await?;
            let a = cx.user(t).await?;
            let b = cx.user(t).await?;
            let both = vec![a.id.clone(), b.id.clone()];
            cx.patch(
                t,
                Some(dialect::add_members(cx.dialect, &group.id, &both)),
                "PATCH adding two members",
            )
            .await?;
            let members = cx.group_members(t, &group.id).await?;
            if !both.iter().all(|m| members.contains(m)) {
                return Err(t.fail(format!("after adding {both:?} the members are {members:?}")));
            }
            cx.patch(
                t,
                Some(dialect::remove_members(cx.dialect, &group.id, &both)),
                "PATCH removing two members",
            )
            .await?;
            let members = cx.group_members(t, &group.id).await?;
            if both.iter().any(|m| members.contains(m)) {
                return Err(t.fail(format!("after removing {both:?} the members are {members:?}")));
            }
            Ok(None)
        }
        "preview-group-same-attribute" => {
            let group = cx.group(t).await?;
            let a = cx.user(t).await?;
            let b = cx.user(t).await?;
            let req = dialect::combine(
                &dialect::add_members(cx.dialect, &group.id, &[a.id.clone(), b.id.clone()]),
                &dialect::remove_members(cx.dialect, &group.id, std::slice::from_ref(&b.id)),
            );
            cx.patch(t, req, "PATCH /Groups/{id}").await?;
            let members = cx.group_members(t, &group.id).await?;
            if members.contains(&a.id) && !members.contains(&b.id) {
                Ok(None)
            } else {
                Err(t.fail(format!(
                    "after adding {} and {} and removing {} in one PATCH, the members are {members:?}",
                    a.id, b.id, b.id
                )))
            }
        }
        "load" => load(cx, t).await,
        other => Err(Verdict::Skip(format!("unknown test {other}"))),
    }
}

/// Several one-operation PATCHes as one request.
fn combined(parts: impl Iterator<Item = Option<Request>>) -> Option<Request> {
    let mut out: Option<Request> = None;
    for p in parts {
        let p = p?;
        out = Some(match out {
            None => p,
            Some(acc) => dialect::combine(&acc, &p)?,
        });
    }
    out
}

async fn manager_is(cx: &Ctx, t: &mut Trace, id: &str, mp: &TargetPath, want: Option<&str>) -> Step<Option<String>> {
    let res = cx.read_user(t, id).await?;
    let got = value_at(&res, mp);
    let ok = match (want, &got) {
        (Some(w), Some(v)) => same(&json!(w), v),
        (Some(_), None) => false,
        (None, None) => true,
        // `{"value":""}` left in place reads as no manager.
        (None, Some(v)) => same(&json!(""), v) || v.as_object().is_some_and(|o| o.is_empty()),
    };
    if ok {
        Ok(None)
    } else {
        Err(t.fail(format!(
            "GET /Users/{{id}} returns manager {}, expected {}",
            got.unwrap_or(Value::Null),
            want.map(|w| format!("{{\"value\":\"{w}\"}}"))
                .unwrap_or_else(|| "none".into())
        )))
    }
}

async fn delete_missing(cx: &Ctx, t: &mut Trace, kind: Kind) -> Step<Option<String>> {
    let id = uuid::Uuid::new_v4().to_string();
    let got = cx.send(t, &dialect::delete(kind, &id)).await?;
    t.status(&got, &[404], "DELETE of an id that does not exist")?;
    Ok(None)
}

async fn delete_twice(cx: &Ctx, t: &mut Trace, kind: Kind, id: &str, slot: usize) -> Step<Option<String>> {
    let got = cx.send(t, &dialect::delete(kind, id)).await?;
    let note = t.deleted(&got, "the first DELETE")?;
    cx.set_deleted(slot);
    let got = cx.send(t, &dialect::delete(kind, id)).await?;
    t.status(&got, &[404], "the second DELETE")?;
    Ok(note)
}

/// 6 resources, then the pages of 5 from `startIndex=1`.
async fn paginate(cx: &Ctx, t: &mut Trace, kind: Kind) -> Step<Option<String>> {
    let mut ours = Vec::new();
    for _ in 0..6 {
        let id = match kind {
            Kind::User => cx.user(t).await?.id,
            Kind::Group => cx.group(t).await?.id,
        };
        ours.push(id);
    }
    let label = match kind {
        Kind::User => "/Users",
        Kind::Group => "/Groups",
    };
    let mut seen: Vec<String> = Vec::new();
    let mut start = 1u64;
    let mut pages = 0u64;
    let mut first_total = None;
    loop {
        let got = cx.send(t, &dialect::page(kind, start, 5)).await?;
        let what = format!("GET {label}?startIndex={start}&count=5");
        let resources = t.list(&got, &what)?;
        let body = got.json.as_ref().unwrap_or(&Value::Null);
        let total = get_ci(body, "totalResults").and_then(Value::as_u64).unwrap_or_default();
        first_total.get_or_insert(total);
        if resources.len() > 5 {
            return Err(t.fail(format!("{what}: {} resources, more than count=5", resources.len())));
        }
        if let Some(si) = get_ci(body, "startIndex").and_then(Value::as_u64)
            && si != start
        {
            return Err(t.fail(format!("{what}: the answer says startIndex {si}")));
        }
        for r in &resources {
            let id = get_ci(r, "id").and_then(Value::as_str).unwrap_or_default().to_string();
            if seen.contains(&id) {
                return Err(t.fail(format!(
                    "{what}: {id} was already on an earlier page: startIndex is not honoured"
                )));
            }
            seen.push(id);
        }
        pages += 1;
        start += resources.len() as u64;
        if resources.is_empty() || start > total {
            break;
        }
        if pages >= MAX_PAGES {
            return Ok(Some(format!(
                "{pages} pages checked of {total} resources (not all walked)"
            )));
        }
    }
    if pages < 2 {
        return Err(t.fail(format!(
            "{label}: one page holds everything (totalResults {}), though at least 6 resources exist",
            first_total.unwrap_or_default()
        )));
    }
    let missing: Vec<&String> = ours.iter().filter(|id| !seen.contains(id)).collect();
    if !missing.is_empty() {
        return Err(t.fail(format!(
            "walking the pages from startIndex=1 with count=5 never returned {missing:?}"
        )));
    }
    Ok(Some(format!("{pages} pages")))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len() - 1))
        .copied()
        .unwrap_or_default()
}

/// `rate` requests per second for `seconds`, paced, each on its own task.
async fn load(cx: &Ctx, t: &mut Trace) -> Step<Option<String>> {
    if cx.load_seconds <= 0.0 || cx.load_rate == 0 {
        return Err(Verdict::Skip("the load check is off (--load-seconds 0)".into()));
    }
    let user = cx.user(t).await?;
    let n = (cx.load_seconds * f64::from(cx.load_rate)).round().max(1.0) as u64;
    let interval = Duration::from_secs_f64(1.0 / f64::from(cx.load_rate));
    let started = tokio::time::Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let at = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(at).await;
        let req = if i % 2 == 0 {
            dialect::lookup(Kind::User, "userName", &user.name)
        } else {
            dialect::read(Kind::User, &user.id)
        };
        let client = cx.client.clone();
        set.spawn(async move {
            let r = client.exchange(&req).await;
            (req, r)
        });
    }
    let mut latencies = Vec::new();
    let mut errors = 0u64;
    let mut first_error: Option<Exchange> = None;
    while let Some(joined) = set.join_next().await {
        let Ok((req, r)) = joined else {
            errors += 1;
            continue;
        };
        match &r {
            Ok(raw) if (200..300).contains(&raw.status) => latencies.push(raw.elapsed.as_secs_f64() * 1000.0),
            _ => {
                errors += 1;
                if first_error.is_none() {
                    first_error = Some(cx.record(&req, r.as_ref()));
                }
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let stats = Load {
        requests: n,
        errors,
        seconds,
        per_second: latencies.len() as f64 / seconds.max(0.001),
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        max_ms: latencies.last().copied().unwrap_or_default(),
    };
    let note = format!(
        "{} requests in {:.1} s ({:.1}/s), p50 {:.1} ms, p99 {:.1} ms",
        stats.requests, stats.seconds, stats.per_second, stats.p50_ms, stats.p99_ms
    );
    *cx.load.lock().unwrap_or_else(|p| p.into_inner()) = Some(stats.clone());
    if let Some(x) = first_error {
        t.exchanges.push(x);
        return Err(t.fail(format!("{errors} of {n} requests failed; {note}")));
    }
    if stats.per_second < f64::from(cx.load_rate) * 0.9 {
        return Err(t.fail_code(
            format!(
                "only {:.1} answers per second (at least {} needed); {note}",
                stats.per_second, cx.load_rate
            ),
            "Timeout",
        ));
    }
    Ok(Some(note))
}

fn failure_of(info: &TestInfo, f: Fail) -> Failure {
    let code: String = match (f.code, &f.exchange) {
        (Some(c), _) => c.to_string(),
        (None, Some(x)) if x.status.is_some_and(|s| s >= 400) => {
            let scim_type = x
                .response_body
                .as_deref()
                .and_then(|b| serde_json::from_str::<Value>(b).ok())
                .and_then(|v| v.get("scimType").and_then(Value::as_str).map(str::to_string));
            code_of_status(x.status.unwrap_or_default(), scim_type.as_deref(), on_resource(&x.url)).to_string()
        }
        _ => info.entra.to_string(),
    };
    let reason = if code.starts_with('(') {
        "Entra reports success, but the application does not hold what Entra sent.".to_string()
    } else {
        describe(&code).0.to_string()
    };
    Failure {
        message: f.message,
        exchange: f.exchange,
        entra_error: code,
        entra_reason: reason,
        fix: info.fix.to_string(),
    }
}

async fn run_all(cx: &Ctx, tests: &[&'static TestInfo], out: &mut Vec<TestResult>) {
    for info in tests {
        let started = Instant::now();
        let mut t = Trace { exchanges: Vec::new() };
        let verdict = run_test(cx, info, &mut t).await;
        let (status, skipped, note, failure) = match verdict {
            Ok(note) => (Status::Pass, None, note, None),
            Err(Verdict::Skip(why)) => (Status::Skip, Some(why), None, None),
            Err(Verdict::Fail(f)) => (Status::Fail, None, None, Some(failure_of(info, *f))),
        };
        out.push(TestResult {
            id: info.id.to_string(),
            name: info.name.to_string(),
            category: info.category,
            status,
            skipped,
            note,
            failure,
            requests: t.exchanges.len(),
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
    }
}

/// Deletes what the run created (by id; what it tried to create without
/// learning the id, by its exact name), Groups first.
async fn cleanup(cx: &Ctx, keep: bool) -> Cleanup {
    let made: Vec<Made> = cx.made.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut out = Cleanup {
        kept: keep,
        ..Cleanup::default()
    };
    let label = |kind: Kind| match kind {
        Kind::User => "Users",
        Kind::Group => "Groups",
    };
    let mut ordered: Vec<&Made> = made.iter().filter(|m| m.kind == Kind::Group).rev().collect();
    ordered.extend(made.iter().filter(|m| m.kind == Kind::User).rev());
    for m in ordered.into_iter().filter(|m| !m.deleted) {
        let name = m.names.last().cloned().unwrap_or_default();
        if keep {
            if let Some(id) = &m.id {
                out.left.push(format!("{}/{id} ({name})", label(m.kind)));
            }
            continue;
        }
        let ids = match &m.id {
            Some(id) => vec![id.clone()],
            None => match find_by_name(cx, m).await {
                Ok(ids) => ids,
                Err(e) => {
                    out.left.push(format!("{} {name}: {e}", label(m.kind)));
                    continue;
                }
            },
        };
        for id in ids {
            match cx.client.exchange(&dialect::delete(m.kind, &id)).await {
                Ok(r) if (200..300).contains(&r.status) => out.deleted += 1,
                Ok(r) if r.status == 404 => {}
                Ok(r) => out
                    .left
                    .push(format!("{}/{id} ({name}): DELETE answered {}", label(m.kind), r.status)),
                Err(e) => out.left.push(format!(
                    "{}/{id} ({name}): {}",
                    label(m.kind),
                    cx.redact(&e.info.details)
                )),
            }
        }
    }
    out
}

/// The ids of resources with one of `m`'s exact names.
async fn find_by_name(cx: &Ctx, m: &Made) -> Result<Vec<String>, String> {
    let attr = match m.kind {
        Kind::User => "userName",
        Kind::Group => "displayName",
    };
    let mut ids = Vec::new();
    for name in &m.names {
        let raw = cx
            .client
            .exchange(&dialect::lookup(m.kind, attr, name))
            .await
            .map_err(|e| cx.redact(&e.info.details))?;
        if raw.status != 200 {
            return Err(format!("looking it up answered {}", raw.status));
        }
        let body = raw.json().unwrap_or_default();
        for r in get_ci(&body, "Resources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let same_name = get_ci(r, attr)
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(name));
            if let (true, Some(id)) = (same_name, get_ci(r, "id").and_then(Value::as_str)) {
                ids.push(id.to_string());
            }
        }
    }
    Ok(ids)
}

async fn discover(cx: &mut Ctx) {
    let mut t = Trace { exchanges: Vec::new() };
    let get = async |path: &str, t: &mut Trace| -> Option<Value> {
        let req = dialect::discovery(path);
        match cx.client.exchange(&req).await {
            Ok(raw) => {
                t.exchanges.push(cx.record(&req, Ok(&raw)));
                if raw.status == 200 { raw.json() } else { None }
            }
            Err(e) => {
                t.exchanges.push(cx.record(&req, Err(&e)));
                None
            }
        }
    };
    let spc = get("ServiceProviderConfig", &mut t).await;
    let rts = get("ResourceTypes", &mut t).await;
    let schemas = get("Schemas", &mut t).await;
    let mut d = discovery::summarise(spc.as_ref(), rts.as_ref());
    let schemas_exchange = t.exchanges.last().cloned();
    match schemas.as_ref().map(discovery::declared) {
        Some(Ok((declared, ids))) => {
            d.schemas = Some(ids);
            d.left_out = discovery::undeclared(&declared, Kind::User)
                .into_iter()
                .filter(|k| !k.ends_with(":manager"))
                .collect();
            cx.declared = declared;
        }
        Some(Err(e)) => d.schemas_problem = Some(e),
        None => {
            d.schemas_problem = Some(match schemas_exchange.as_ref().and_then(|x| x.status) {
                Some(s) if s != 200 => format!("answered {s}"),
                Some(_) => "the answer is not JSON".into(),
                None => "no answer".into(),
            })
        }
    }
    cx.schemas_exchange = schemas_exchange;
    cx.discovery = d;
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Runs the validation: preflight (an error there is the whole answer),
/// discovery, the selected tests until done or until `cancel` resolves
/// (Ctrl-C), then the cleanup, whatever happened.
pub async fn validate(opts: &Options, cancel: impl Future<Output = ()>) -> Result<Report, PreflightError> {
    let tests = catalogue::select(&opts.only).map_err(|e| PreflightError::new(PreflightKind::BadInput, e))?;
    let base = preflight::base_url(&opts.url)?;
    if opts.token.trim().is_empty() {
        return Err(PreflightError::new(
            PreflightKind::BadInput,
            "no token: pass --token or set SCIMITAR_VALIDATE_TOKEN",
        ));
    }
    let client = Client::with_timeout(&base, opts.token.trim(), 32, opts.timeout)
        .map_err(|e| PreflightError::new(PreflightKind::BadInput, e))?
        .answer_limit(MAX_ANSWER_BYTES);
    let started = Instant::now();
    let started_at = now();
    let mut cancel = std::pin::pin!(cancel);
    // Preflight: one request, one message.
    let probe = dialect::page(Kind::User, 1, 1);
    let answer = tokio::select! {
        a = client.exchange(&probe) => a,
        _ = &mut cancel => return Err(PreflightError::new(PreflightKind::Interrupted, "interrupted")),
    };
    match answer {
        Ok(raw) => preflight::judge(&base, &raw)?,
        Err(e) => return Err(preflight::transport(&base, &e, opts.timeout.as_secs_f64())),
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let mut cx = Ctx {
        client: Arc::new(client),
        token: opts.token.trim().to_string(),
        base: base.clone(),
        dialect: opts.dialect,
        prefix: format!("scv{}", id.get(..8).unwrap_or("00000000")),
        groups: opts.groups,
        declared: Declared(None),
        discovery: Discovery::default(),
        schemas_exchange: None,
        seq: std::sync::atomic::AtomicU32::new(0),
        made: Mutex::new(Vec::new()),
        load_seconds: opts.load_seconds,
        load_rate: opts.load_rate,
        load: Mutex::new(None),
    };
    let mut results = Vec::new();
    let interrupted = tokio::select! {
        _ = async {
            discover(&mut cx).await;
            run_all(&cx, &tests, &mut results).await;
        } => false,
        _ = &mut cancel => true,
    };
    let cleanup = cleanup(&cx, opts.keep).await;
    let mut report = Report {
        url: base,
        dialect: opts.dialect.as_str().to_string(),
        groups: opts.groups,
        prefix: cx.prefix.clone(),
        started: started_at,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        discovery: cx.discovery.clone(),
        tests: results,
        load: cx.load.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        cleanup,
        interrupted,
        summary: Summary::default(),
    };
    report.summarise();
    Ok(report)
}
