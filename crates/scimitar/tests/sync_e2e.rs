//! The provisioning engine end to end, as an administrator runs it: a
//! directory (a throwaway OpenLDAP, an HR file, or another SCIM server) →
//! `scimitar sync run --once` → a SCIM application (a Scimitar server, or
//! python's scim2-server), through a recording proxy that sees every request
//! the engine sends to the application.
//!
//! One scenario, one table: the initial cycle (with one user already in the
//! application, to be matched rather than duplicated), then one source
//! change per row, each followed by one incremental cycle that must send
//! exactly the row's requests, and after which the application must hold
//! what the directory says (`Model::expected`). The last row changes nothing
//! and must send nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "../../scimitar-engine/tests/support/slapd.rs"]
mod slapd;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_scimitar");
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

// ---------------------------------------------------------------------------
// The directory's content, and what the application must hold.

#[derive(Clone, Debug)]
struct Person {
    uid: String,
    given: String,
    sn: String,
    title: String,
    dept: String,
    manager: Option<String>,
}

impl Person {
    fn new(uid: &str, given: &str, sn: &str, title: &str, dept: &str, manager: Option<&str>) -> Person {
        Person {
            uid: uid.into(),
            given: given.into(),
            sn: sn.into(),
            title: title.into(),
            dept: dept.into(),
            manager: manager.map(str::to_string),
        }
    }
    fn mail(&self) -> String {
        format!("{}@example.org", self.uid)
    }
}

/// Users, the assigned group `engineering` (and `sales`, not assigned), and
/// who is assigned directly. In scope: assigned, and department 42 (the
/// job's scoping filter).
#[derive(Clone, Debug)]
struct Model {
    users: BTreeMap<String, Person>,
    engineering: BTreeSet<String>,
    sales: BTreeSet<String>,
    direct: BTreeSet<String>,
    /// Users the engine has created or matched in the application (a user
    /// out of scope from the start is never provisioned).
    provisioned: BTreeSet<String>,
}

impl Model {
    fn fixture() -> Model {
        let people = [
            Person::new("alice", "Alice", "Archer", "Engineer", "42", None),
            Person::new("bob", "Bob", "Baker", "Developer", "42", Some("alice")),
            Person::new("carol", "Carol", "Cole", "Designer", "42", Some("alice")),
            Person::new("dave", "Dave", "Dunn", "Tester", "42", Some("alice")),
            Person::new("erin", "Erin", "Evans", "Writer", "42", None),
            // Not assigned: never provisioned.
            Person::new("frank", "Frank", "Fox", "Seller", "42", None),
            // Assigned, but filtered out by the scoping filter.
            Person::new("gina", "Gina", "Gray", "Intern", "7", None),
        ];
        let mut m = Model {
            users: people.into_iter().map(|p| (p.uid.clone(), p)).collect(),
            engineering: ["alice", "bob", "carol", "dave", "gina"].map(String::from).into(),
            sales: ["frank"].map(String::from).into(),
            direct: ["erin"].map(String::from).into(),
            provisioned: BTreeSet::new(),
        };
        m.provisioned = m.users.keys().filter(|u| m.in_scope(u)).cloned().collect();
        m
    }

    fn in_scope(&self, uid: &str) -> bool {
        let assigned = self.engineering.contains(uid) || self.direct.contains(uid);
        assigned && self.users.get(uid).is_some_and(|p| p.dept == "42")
    }

    /// The application's users (userName → facts) and engineering's members,
    /// as they must be.
    fn expected(&self) -> (BTreeMap<String, Value>, BTreeSet<String>) {
        let mut users = BTreeMap::new();
        for uid in &self.provisioned {
            let Some(p) = self.users.get(uid) else { continue };
            let active = self.in_scope(uid);
            let mut facts = json!({"active": active});
            if active {
                // A disabled account keeps whatever it had; only `active` is
                // asserted for it.
                facts = json!({
                    "active": true,
                    "title": p.title,
                    "givenName": p.given,
                    "familyName": p.sn,
                    "department": p.dept,
                    "manager": p.manager.clone().filter(|m| self.provisioned.contains(m) && self.users.contains_key(m)),
                });
            }
            users.insert(p.mail(), facts);
        }
        let members = self
            .engineering
            .iter()
            .filter(|u| self.provisioned.contains(*u) && self.users.contains_key(*u))
            .map(|u| format!("{u}@example.org"))
            .collect();
        (users, members)
    }
}

/// One change in the directory.
#[derive(Clone, Debug)]
enum Change {
    Title(&'static str, &'static str),
    Manager(&'static str, &'static str),
    AddMember(&'static str),
    RemoveMember(&'static str),
    Department(&'static str, &'static str),
    Delete(&'static str),
    /// A new user who is a member of engineering.
    NewMember(&'static str),
    Nothing,
}

impl Change {
    fn apply(&self, m: &mut Model) {
        match *self {
            Change::Title(u, t) => m.users.get_mut(u).unwrap().title = t.into(),
            Change::Manager(u, mgr) => m.users.get_mut(u).unwrap().manager = Some(mgr.into()),
            Change::AddMember(u) => {
                m.engineering.insert(u.into());
            }
            Change::RemoveMember(u) => {
                m.engineering.remove(u);
            }
            Change::Department(u, d) => m.users.get_mut(u).unwrap().dept = d.into(),
            Change::Delete(u) => {
                m.users.remove(u);
                m.engineering.remove(u);
            }
            Change::NewMember(u) => {
                let p = Person::new(u, "Hank", "Hill", "Welder", "42", Some("alice"));
                m.users.insert(u.into(), p);
                m.engineering.insert(u.into());
                m.provisioned.insert(u.into());
            }
            Change::Nothing => {}
        }
    }
}

const GROUP_READ: &str = "GET /Groups/engineering?excludedAttributes=members";

/// The scenario: each change, then the requests one incremental cycle must
/// send for it, nothing more. `{name}` stands for that object's id in the
/// application; a PATCH shows its operations.
fn scenario() -> Vec<(Change, Vec<&'static str>)> {
    vec![
        (
            Change::Title("alice", "Principal"),
            vec!["GET /Users/alice", "PATCH /Users/alice [replace title]"],
        ),
        (
            Change::Manager("bob", "dave"),
            vec![
                "GET /Users/bob",
                &*Box::leak(format!("PATCH /Users/bob [replace {ENTERPRISE}:manager]").into_boxed_str()),
            ],
        ),
        // Erin is assigned directly too: only the membership changes. A
        // changed group is read first, without its members, as Entra does.
        (
            Change::AddMember("erin"),
            vec![GROUP_READ, "PATCH /Groups/engineering [add members:erin]"],
        ),
        (
            Change::RemoveMember("erin"),
            vec![GROUP_READ, "PATCH /Groups/engineering [remove members:erin]"],
        ),
        // Dave's only assignment was the group: he is disabled.
        (
            Change::RemoveMember("dave"),
            vec![
                "GET /Users/dave",
                "PATCH /Users/dave [replace active]",
                GROUP_READ,
                "PATCH /Groups/engineering [remove members:dave]",
            ],
        ),
        // Out of the scoping filter: disabled.
        (
            Change::Department("carol", "7"),
            vec![
                "GET /Users/carol",
                &*Box::leak(
                    format!("PATCH /Users/carol [replace active; replace {ENTERPRISE}:department]").into_boxed_str(),
                ),
            ],
        ),
        (Change::Delete("erin"), vec!["DELETE /Users/erin"]),
        (
            Change::NewMember("hank"),
            vec![
                "GET /Users?filter=userName eq \"hank@example.org\"",
                "POST /Users",
                GROUP_READ,
                "PATCH /Groups/engineering [add members:hank]",
            ],
        ),
        (Change::Nothing, vec![]),
    ]
}

// ---------------------------------------------------------------------------
// Directories.

trait Directory {
    /// The job file's `[source]` table (and scope, scoping), for this
    /// directory's names.
    fn job_source(&self) -> String;
    fn apply(&mut self, change: &Change, model: &Model);
}

struct Ldap {
    slapd: slapd::Slapd,
}

fn dn(uid: &str) -> String {
    format!("uid={uid},ou=people,dc=example,dc=org")
}
const ENGINEERING: &str = "cn=engineering,ou=groups,dc=example,dc=org";

fn ldap_person(p: &Person) -> String {
    let mut s = format!(
        "dn: {}\nobjectClass: inetOrgPerson\nuid: {}\ncn: {} {}\ngivenName: {}\nsn: {}\nmail: {}\ntitle: {}\ndepartmentNumber: {}\n",
        dn(&p.uid),
        p.uid,
        p.given,
        p.sn,
        p.given,
        p.sn,
        p.mail(),
        p.title,
        p.dept
    );
    if let Some(m) = &p.manager {
        s += &format!("manager: {}\n", dn(m));
    }
    s
}

impl Ldap {
    fn start(model: &Model) -> Ldap {
        let mut ldif = String::new();
        for p in model.users.values() {
            ldif += &ldap_person(p);
            ldif += "\n";
        }
        for (cn, members) in [("engineering", &model.engineering), ("sales", &model.sales)] {
            if members.is_empty() {
                continue; // groupOfNames needs a member
            }
            ldif += &format!("dn: cn={cn},ou=groups,dc=example,dc=org\nobjectClass: groupOfNames\ncn: {cn}\n");
            for m in members {
                ldif += &format!("member: {}\n", dn(m));
            }
            ldif += "\n";
        }
        Ldap {
            slapd: slapd::Slapd::start(slapd::Options {
                ldif,
                ..Default::default()
            }),
        }
    }
}

impl Directory for Ldap {
    fn job_source(&self) -> String {
        format!(
            r#"[source]
kind = "ldap"
url = "{url}"
bind_dn = "{admin}"
bind_password = "{password}"
base_dn = "{base}"

[scope]
mode = "assigned"
groups = ["{ENGINEERING}"]
users = ["{erin}"]

[[scoping.user]]
clauses = [{{ attribute = "departmentNumber", operator = "EQUALS", value = "42" }}]
"#,
            url = self.slapd.url,
            admin = slapd::ADMIN,
            password = slapd::PASSWORD,
            base = slapd::BASE,
            erin = dn("erin"),
        )
    }

    fn apply(&mut self, change: &Change, model: &Model) {
        let ldif = match *change {
            Change::Title(u, t) => format!("dn: {}\nchangetype: modify\nreplace: title\ntitle: {t}\n", dn(u)),
            Change::Manager(u, m) => format!(
                "dn: {}\nchangetype: modify\nreplace: manager\nmanager: {}\n",
                dn(u),
                dn(m)
            ),
            Change::AddMember(u) => format!(
                "dn: {ENGINEERING}\nchangetype: modify\nadd: member\nmember: {}\n",
                dn(u)
            ),
            Change::RemoveMember(u) => format!(
                "dn: {ENGINEERING}\nchangetype: modify\ndelete: member\nmember: {}\n",
                dn(u)
            ),
            Change::Department(u, d) => format!(
                "dn: {}\nchangetype: modify\nreplace: departmentNumber\ndepartmentNumber: {d}\n",
                dn(u)
            ),
            Change::Delete(u) => format!("dn: {}\nchangetype: delete\n", dn(u)),
            Change::NewMember(u) => {
                let mut add = ldap_person(&model.users[u]).replacen('\n', "\nchangetype: add\n", 1);
                add += &format!(
                    "\ndn: {ENGINEERING}\nchangetype: modify\nadd: member\nmember: {}\n",
                    dn(u)
                );
                add
            }
            Change::Nothing => return,
        };
        self.slapd.modify(&ldif);
    }
}

/// An HR export: users.csv and groups.csv under Entra's attribute names,
/// rewritten from the model on every change.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new(dir: &Path, model: &Model) -> Files {
        let f = Files { dir: dir.to_path_buf() };
        f.write(model);
        f
    }

    fn write(&self, m: &Model) {
        let mut users = String::from(
            "mailNickname,userPrincipalName,mail,givenName,surname,displayName,jobTitle,department,manager\n",
        );
        for p in m.users.values() {
            users += &format!(
                "{},{},{},{},{},{} {},{},{},{}\n",
                p.uid,
                p.mail(),
                p.mail(),
                p.given,
                p.sn,
                p.given,
                p.sn,
                p.title,
                p.dept,
                p.manager.clone().unwrap_or_default()
            );
        }
        std::fs::write(self.dir.join("users.csv"), users).unwrap();
        let mut groups = String::from("objectId,displayName,members\n");
        for (g, members) in [("engineering", &m.engineering), ("sales", &m.sales)] {
            groups += &format!("{g},{g},{}\n", members.iter().cloned().collect::<Vec<_>>().join(";"));
        }
        std::fs::write(self.dir.join("groups.csv"), groups).unwrap();
    }
}

impl Directory for Files {
    fn job_source(&self) -> String {
        format!(
            r#"[source]
kind = "file"
users = "{dir}/users.csv"
groups = "{dir}/groups.csv"
key = "mailNickname"
group_key = "objectId"
manager_column = "manager"

[scope]
mode = "assigned"
groups = ["engineering"]
users = ["erin"]

[[scoping.user]]
clauses = [{{ attribute = "department", operator = "EQUALS", value = "42" }}]
"#,
            dir = self.dir.display()
        )
    }

    fn apply(&mut self, _: &Change, model: &Model) {
        self.write(model);
    }
}

/// Another Scimitar tenant (`hr`) as the directory, changed over SCIM.
struct ScimDirectory {
    base: String,
    token: String,
    ids: BTreeMap<String, String>,
    http: reqwest::Client,
}

fn scim_user(p: &Person, ids: &BTreeMap<String, String>) -> Value {
    let mut u = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "userName": p.mail(),
        "externalId": p.uid,
        "displayName": format!("{} {}", p.given, p.sn),
        "name": {"givenName": p.given, "familyName": p.sn},
        "title": p.title,
        "emails": [{"type": "work", "value": p.mail()}],
        ENTERPRISE: {"department": p.dept},
    });
    if let Some(m) = &p.manager {
        u[ENTERPRISE]["manager"] = json!({"value": ids[m]});
    }
    u
}

impl ScimDirectory {
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.header("content-type", "application/scim+json").body(b.to_string());
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn create(base: String, token: String, model: &Model) -> ScimDirectory {
        let mut d = ScimDirectory {
            base,
            token,
            ids: BTreeMap::new(),
            http: scimitar_testkit::client(),
        };
        // Managers first.
        let mut order: Vec<&Person> = model.users.values().filter(|p| p.manager.is_none()).collect();
        order.extend(model.users.values().filter(|p| p.manager.is_some()));
        for p in order {
            let body = scim_user(p, &d.ids);
            let created = d.send(Method::POST, "/Users", Some(body)).await;
            d.ids.insert(p.uid.clone(), created["id"].as_str().unwrap().to_string());
        }
        for (g, members) in [("engineering", &model.engineering), ("sales", &model.sales)] {
            let members: Vec<Value> = members.iter().map(|m| json!({"value": d.ids[m]})).collect();
            let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": g, "members": members});
            let created = d.send(Method::POST, "/Groups", Some(body)).await;
            d.ids.insert(g.to_string(), created["id"].as_str().unwrap().to_string());
        }
        d
    }

    async fn patch(&self, path: &str, ops: Value) {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        self.send(Method::PATCH, path, Some(body)).await;
    }

    async fn apply_async(&mut self, change: &Change, model: &Model) {
        let id = |u: &str| self.ids[u].clone();
        match *change {
            Change::Title(u, t) => {
                self.patch(
                    &format!("/Users/{}", id(u)),
                    json!([{"op": "replace", "path": "title", "value": t}]),
                )
                .await
            }
            Change::Manager(u, m) => {
                self.patch(
                    &format!("/Users/{}", id(u)),
                    json!([{"op": "replace", "path": format!("{ENTERPRISE}:manager"), "value": {"value": id(m)}}]),
                )
                .await
            }
            Change::AddMember(u) => {
                self.patch(
                    &format!("/Groups/{}", id("engineering")),
                    json!([{"op": "add", "path": "members", "value": [{"value": id(u)}]}]),
                )
                .await
            }
            Change::RemoveMember(u) => {
                self.patch(
                    &format!("/Groups/{}", id("engineering")),
                    json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", id(u))}]),
                )
                .await
            }
            Change::Department(u, d) => {
                self.patch(
                    &format!("/Users/{}", id(u)),
                    json!([{"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": d}]),
                )
                .await
            }
            Change::Delete(u) => {
                self.send(Method::DELETE, &format!("/Users/{}", id(u)), None).await;
            }
            Change::NewMember(u) => {
                let body = scim_user(&model.users[u], &self.ids);
                let created = self.send(Method::POST, "/Users", Some(body)).await;
                self.ids
                    .insert(u.to_string(), created["id"].as_str().unwrap().to_string());
                self.patch(
                    &format!("/Groups/{}", self.ids["engineering"]),
                    json!([{"op": "add", "path": "members", "value": [{"value": self.ids[u]}]}]),
                )
                .await
            }
            Change::Nothing => {}
        }
    }

    fn job_source_text(&self) -> String {
        format!(
            r#"[source]
kind = "scim"
url = "{base}"
token = "{token}"

[scope]
mode = "assigned"
groups = ["{eng}"]
users = ["{erin}"]

[[scoping.user]]
clauses = [{{ attribute = "department", operator = "EQUALS", value = "42" }}]
"#,
            base = self.base,
            token = self.token,
            eng = self.ids["engineering"],
            erin = self.ids["erin"],
        )
    }
}

// ---------------------------------------------------------------------------
// The application, behind a recording proxy.

/// What the proxy saw: method, path and query (decoded), body.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    body: Value,
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    http: reqwest::Client,
}

async fn forward(State(p): State<Proxy>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let pq = uri.path_and_query().map(|x| x.as_str()).unwrap_or("/").to_string();
    let decoded = percent_encoding::percent_decode_str(&pq)
        .decode_utf8_lossy()
        .replace('+', " ");
    p.seen.lock().unwrap().push(Seen {
        method: method.to_string(),
        path: decoded,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let mut req = p
        .http
        .request(method, format!("{}{pq}", p.upstream))
        .body(body.to_vec());
    for name in ["authorization", "content-type", "accept", "if-match"] {
        if let Some(v) = headers.get(name) {
            req = req.header(name, v.as_bytes());
        }
    }
    match req.send().await {
        Ok(r) => {
            let status = StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let ct = r
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/scim+json")
                .to_string();
            let bytes = r.bytes().await.unwrap_or_default();
            (status, [("content-type", ct)], bytes.to_vec()).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

async fn start_proxy(upstream: &str) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let state = Proxy {
        upstream: upstream.trim_end_matches('/').to_string(),
        seen: seen.clone(),
        http: scimitar_testkit::client(),
    };
    let app = axum::Router::new().fallback(forward).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), seen)
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_for(url: &str) {
    let http = scimitar_testkit::client();
    for _ in 0..400 {
        if http.get(url).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} did not answer");
}

/// A test's scratch directory, its key file and its engine database.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("scimitar-sync-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch { dir }
    }
    fn key(&self) -> PathBuf {
        self.dir.join("server.key")
    }
    fn engine_db(&self) -> String {
        format!("sqlite:{}/engine.db", self.dir.display())
    }
    /// Runs the CLI. The proxy runs on this test's runtime: the wait moves
    /// off it (`block_in_place`, hence multi-threaded test runtimes).
    fn cli(&self, db: &str, args: &[&str]) -> Value {
        let out = tokio::task::block_in_place(|| {
            Command::new(BIN)
                .env("SCIMITAR_KEY_FILE", self.key())
                .args(args)
                .args(["--database", db, "--json"])
                .output()
                .unwrap()
        });
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The application the engine provisions into.
struct App {
    _process: Kill,
    /// Where its SCIM endpoints are (the Tenant URL), directly.
    base: String,
    /// The path prefix of that URL, stripped when requests are shown.
    prefix: String,
    token: String,
    /// A second tenant on the same server (Scimitar only), for the SCIM
    /// directory.
    hr: Option<(String, String)>,
}

async fn scimitar_app(s: &Scratch) -> App {
    let db = format!("sqlite:{}/app.db", s.dir.display());
    let port = free_port();
    let child = Command::new(BIN)
        .env("SCIMITAR_KEY_FILE", s.key())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
            &db,
            "--rate-limit",
            "0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let process = Kill(child);
    let root = format!("http://127.0.0.1:{port}");
    wait_for(&format!("{root}/healthz")).await;
    let token = s.cli(&db, &["token", "create", "--tenant", "default"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    s.cli(&db, &["tenant", "create", "hr"]);
    let hr_token = s.cli(&db, &["token", "create", "--tenant", "hr"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    App {
        _process: process,
        base: format!("{root}/scim/default/v2"),
        prefix: "/scim/default/v2".into(),
        token,
        hr: Some((format!("{root}/scim/hr/v2"), hr_token)),
    }
}

/// python's scim2-server, when `.ci/run` installed it (its path in
/// `SCIMITAR_TEST_SCIM2_SERVER`).
async fn scim2_server() -> App {
    let program = std::env::var("SCIMITAR_TEST_SCIM2_SERVER")
        .expect("SCIMITAR_TEST_SCIM2_SERVER: the path of scim2-server (.ci/run installs it in a venv)");
    let port = free_port();
    let child = Command::new(program)
        .args(["--port", &port.to_string(), "--bearer-token", "e2e-token"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let process = Kill(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_for(&format!("{base}/ServiceProviderConfig")).await;
    App {
        _process: process,
        base,
        prefix: String::new(),
        token: "e2e-token".into(),
        hr: None,
    }
}

impl App {
    async fn get(&self, path: &str) -> Value {
        let r = scimitar_testkit::client()
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let r = scimitar_testkit::client()
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "POST {path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// Every resource of an endpoint, page by page.
    async fn all(&self, endpoint: &str) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let page = self
                .get(&format!("{endpoint}?startIndex={}&count=1000", out.len() + 1))
                .await;
            let got = page["Resources"].as_array().cloned().unwrap_or_default();
            let total = page["totalResults"].as_u64().unwrap_or(0) as usize;
            let n = got.len();
            out.extend(got);
            if n == 0 || out.len() >= total {
                return out;
            }
        }
    }

    /// Every user and group: (users by userName, with duplicates counted;
    /// groups by displayName).
    async fn snapshot(&self) -> (BTreeMap<String, Vec<Value>>, BTreeMap<String, Value>) {
        let mut users: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for u in self.all("/Users").await {
            users
                .entry(u["userName"].as_str().unwrap().to_string())
                .or_default()
                .push(u);
        }
        let groups = self
            .all("/Groups")
            .await
            .into_iter()
            .map(|g| (g["displayName"].as_str().unwrap().to_string(), g))
            .collect();
        (users, groups)
    }

    /// id → a short name (a user's uid, a group's displayName).
    async fn names(&self, names: &mut BTreeMap<String, String>) {
        let (users, groups) = self.snapshot().await;
        for (user_name, list) in users {
            for u in list {
                let short = user_name.split('@').next().unwrap().to_string();
                names.insert(u["id"].as_str().unwrap().to_string(), short);
            }
        }
        for (name, g) in groups {
            names.insert(g["id"].as_str().unwrap().to_string(), name);
        }
    }

    /// The application holds what the model says: no duplicates, each
    /// provisioned user's facts, engineering's members.
    async fn assert_holds(&self, model: &Model, step: &str) {
        let (users, groups) = self.snapshot().await;
        let mut names = BTreeMap::new();
        self.names(&mut names).await;
        let (expected_users, expected_members) = model.expected();
        for (user_name, list) in &users {
            assert_eq!(list.len(), 1, "{step}: {user_name} exists {} times", list.len());
        }
        let have: BTreeSet<&String> = users.keys().collect();
        let want: BTreeSet<&String> = expected_users.keys().collect();
        let extra: Vec<&&String> = have.difference(&want).take(5).collect();
        let missing: Vec<&&String> = want.difference(&have).take(5).collect();
        assert!(
            extra.is_empty() && missing.is_empty(),
            "{step}: the application's users: {} of {} expected; unexpected {extra:?}, missing {missing:?}",
            have.len(),
            want.len()
        );
        for (user_name, facts) in &expected_users {
            let u = &users[user_name][0];
            let active = u.get("active").and_then(Value::as_bool).unwrap_or(true);
            assert_eq!(
                active,
                facts["active"].as_bool().unwrap(),
                "{step}: {user_name}.active in {u}"
            );
            if !active {
                continue;
            }
            let manager = u[ENTERPRISE]["manager"]["value"].as_str().map(|id| names[id].clone());
            let got = json!({
                "active": true,
                "title": u["title"],
                "givenName": u["name"]["givenName"],
                "familyName": u["name"]["familyName"],
                "department": u[ENTERPRISE]["department"],
                "manager": manager,
            });
            assert_eq!(&got, facts, "{step}: {user_name}");
            assert_eq!(
                u["emails"][0]["value"],
                json!(user_name),
                "{step}: {user_name}'s work email"
            );
        }
        let eng = groups
            .get("engineering")
            .unwrap_or_else(|| panic!("{step}: no group engineering"));
        let members: BTreeSet<String> = eng["members"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|m| format!("{}@example.org", names[m["value"].as_str().unwrap()]))
            .collect();
        assert!(
            members == expected_members,
            "{step}: engineering's members: {} of {}; unexpected {:?}, missing {:?}",
            members.len(),
            expected_members.len(),
            members.difference(&expected_members).take(5).collect::<Vec<_>>(),
            expected_members.difference(&members).take(5).collect::<Vec<_>>()
        );
        assert!(!groups.contains_key("sales"), "{step}: sales is not assigned");
    }
}

/// A request as the scenario table writes it.
fn show(s: &Seen, prefix: &str, names: &BTreeMap<String, String>) -> String {
    let mut path = s.path.strip_prefix(prefix).unwrap_or(&s.path).to_string();
    for (id, name) in names {
        path = path.replace(id.as_str(), name);
    }
    if s.method != "PATCH" {
        return format!("{} {path}", s.method);
    }
    let name_of = |v: &Value| {
        v.get("value")
            .and_then(Value::as_str)
            .map(|id| names.get(id).cloned().unwrap_or_else(|| id.to_string()))
            .unwrap_or_default()
    };
    // One entry per attribute touched, whichever way the dialect writes it
    // (a path, or a path-less value object; an extension's attributes under
    // its URN).
    let mut ops = Vec::new();
    for op in s.body["Operations"].as_array().cloned().unwrap_or_default() {
        let verb = op["op"].as_str().unwrap_or_default().to_lowercase();
        match op.get("path").and_then(Value::as_str) {
            Some("members") => {
                let who: Vec<String> = op["value"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(name_of)
                    .collect();
                ops.push(format!("{verb} members:{}", who.join(",")));
            }
            Some(p) if p.starts_with("members[value eq") => {
                let id = p.split('"').nth(1).unwrap_or_default();
                ops.push(format!(
                    "{verb} members:{}",
                    names.get(id).cloned().unwrap_or_else(|| id.to_string())
                ));
            }
            Some(p) => ops.push(format!("{verb} {p}")),
            None => {
                for (k, v) in op["value"].as_object().cloned().unwrap_or_default() {
                    match v.as_object() {
                        Some(sub) if k.starts_with("urn:") => {
                            ops.extend(sub.keys().map(|x| format!("{verb} {k}:{x}")));
                        }
                        _ => ops.push(format!("{verb} {k}")),
                    }
                }
            }
        }
    }
    ops.sort();
    format!("PATCH {path} [{}]", ops.join("; "))
}

/// Runs one cycle of the job; the cycle's JSON summary. A failed object
/// fails the test with its provisioning-log record.
fn run_cycle(s: &Scratch, job: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["sync", "run", "--job", job.to_str().unwrap(), "--once"];
    args.extend_from_slice(extra);
    let summary = s.cli(&s.engine_db(), &args);
    if summary["failed"] != 0 {
        let out = tokio::task::block_in_place(|| {
            Command::new(BIN)
                .env("SCIMITAR_KEY_FILE", s.key())
                .args([
                    "sync",
                    "logs",
                    "--job",
                    "e2e",
                    "--status",
                    "failure",
                    "--database",
                    &s.engine_db(),
                    "--json",
                ])
                .output()
                .unwrap()
        });
        panic!("{summary}\n{}", String::from_utf8_lossy(&out.stdout));
    }
    summary
}

fn write_job(s: &Scratch, source: &str, app: &App, target_base: &str, dialect: &str) -> PathBuf {
    let job = format!(
        r#"name = "e2e"
{source}
[target]
url = "{target_base}"
token = "{token}"
dialect = "{dialect}"
"#,
        token = app.token,
    );
    let path = s.dir.join("job.toml");
    std::fs::write(&path, job).unwrap();
    path
}

/// The whole scenario against one directory and one application.
async fn scenario_run(s: &Scratch, dir: &mut dyn Directory, model: &mut Model, app: &App, dialect: &str) {
    // Alice already has an account in the application: she is matched, not
    // created again.
    app.post(
        "/Users",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "alice@example.org", "title": "Old title"}),
    )
    .await;
    let (proxy, seen) = start_proxy(&app.base.replace(&app.prefix, "")).await;
    let job = write_job(s, &dir.job_source(), app, &format!("{proxy}{}", app.prefix), dialect);

    let summary = run_cycle(s, &job, &[]);
    assert_eq!(summary["kind"], "initial", "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    app.assert_holds(model, "initial cycle").await;
    let mut names = BTreeMap::new();
    app.names(&mut names).await;
    let initial: Vec<String> = seen
        .lock()
        .unwrap()
        .drain(..)
        .map(|x| show(&x, &app.prefix, &names))
        .collect();
    let count = |prefix: &str| initial.iter().filter(|r| r.starts_with(prefix)).count();
    assert_eq!(
        count("POST /Users"),
        4,
        "bob, carol, dave and erin are created; alice is matched: {initial:#?}"
    );
    assert_eq!(count("POST /Groups"), 1, "{initial:#?}");
    assert_eq!(count("DELETE"), 0, "{initial:#?}");
    assert!(
        initial.iter().any(|r| r.starts_with("PATCH /Users/alice")),
        "alice's existing account is brought up to date: {initial:#?}"
    );
    // Test Connection's probe, at most two requests per user (match +
    // create or update), and a lookup, a create and a membership PATCH for
    // the group.
    assert!(
        initial.len() <= 1 + 2 * 5 + 3,
        "{} requests: {initial:#?}",
        initial.len()
    );

    for (i, (change, expected)) in scenario().into_iter().enumerate() {
        let step = format!("step {} ({change:?})", i + 1);
        change.apply(model);
        dir.apply(&change, model);
        if i == 0 {
            // A dry run computes the same, sends no write and keeps no state.
            let dry = run_cycle(s, &job, &["--dry-run"]);
            assert_eq!(dry["updated"], 1, "{step}, dry run: {dry}");
            let sent: Vec<Seen> = seen.lock().unwrap().drain(..).collect();
            assert!(
                sent.iter().all(|x| x.method == "GET"),
                "{step}: a dry run wrote: {sent:#?}"
            );
            let (users, _) = app.snapshot().await;
            assert_eq!(
                users["alice@example.org"][0]["title"], "Engineer",
                "{step}: the dry run changed the application"
            );
        }
        let summary = run_cycle(s, &job, &[]);
        assert_eq!(summary["kind"], "incremental", "{step}: {summary}");
        assert_eq!(summary["failed"], 0, "{step}: {summary}");
        app.names(&mut names).await;
        let mut sent: Vec<String> = seen
            .lock()
            .unwrap()
            .drain(..)
            .map(|x| show(&x, &app.prefix, &names))
            .collect();
        let mut expected: Vec<String> = expected.into_iter().map(String::from).collect();
        sent.sort();
        expected.sort();
        assert_eq!(sent, expected, "{step}: the requests of one incremental cycle");
        app.assert_holds(model, &step).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_slapd), ignore = "needs OpenLDAP's slapd: apt-get install slapd ldap-utils")]
async fn ldap_to_scimitar() {
    let s = Scratch::new("ldap-scimitar");
    let app = scimitar_app(&s).await;
    let mut model = Model::fixture();
    let mut dir = Ldap::start(&model);
    scenario_run(&s, &mut dir, &mut model, &app, "entra-compliant").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python scim2-server: .ci/run installs it and runs this with --ignored (SCIMITAR_TEST_SCIM2_SERVER)"]
async fn ldap_to_scim2_server() {
    let s = Scratch::new("ldap-scim2");
    let app = scim2_server().await;
    let mut model = Model::fixture();
    let mut dir = Ldap::start(&model);
    scenario_run(&s, &mut dir, &mut model, &app, "rfc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hr_files_to_scimitar() {
    let s = Scratch::new("file-scimitar");
    let app = scimitar_app(&s).await;
    let mut model = Model::fixture();
    let mut dir = Files::new(&s.dir, &model);
    scenario_run(&s, &mut dir, &mut model, &app, "entra-legacy").await;
}

struct ScimDir(ScimDirectory, tokio::runtime::Handle);

impl Directory for ScimDir {
    fn job_source(&self) -> String {
        self.0.job_source_text()
    }
    fn apply(&mut self, change: &Change, model: &Model) {
        let handle = self.1.clone();
        let dir = &mut self.0;
        tokio::task::block_in_place(|| handle.block_on(dir.apply_async(change, model)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim_directory_to_scimitar() {
    let s = Scratch::new("scim-scimitar");
    let app = scimitar_app(&s).await;
    let mut model = Model::fixture();
    let (hr, hr_token) = app.hr.clone().unwrap();
    let directory = ScimDirectory::create(hr, hr_token, &model).await;
    let mut dir = ScimDir(directory, tokio::runtime::Handle::current());
    scenario_run(&s, &mut dir, &mut model, &app, "entra-compliant").await;
}

// ---------------------------------------------------------------------------
// Interruptions and failures.

/// `n` users, all in engineering; every user but the first reports to it.
fn many(n: usize) -> Model {
    let mut users = BTreeMap::new();
    for i in 0..n {
        let uid = format!("u{i:04}");
        let manager = (i > 0).then_some("u0000");
        users.insert(
            uid.clone(),
            Person::new(&uid, "User", &format!("N{i}"), "Staff", "42", manager),
        );
    }
    let mut m = Model {
        engineering: users.keys().cloned().collect(),
        users,
        sales: BTreeSet::new(),
        direct: BTreeSet::new(),
        provisioned: BTreeSet::new(),
    };
    m.provisioned = m.engineering.clone();
    m
}

/// The engine killed with SIGKILL in the middle of its initial cycle (after
/// its first chunk of 1,000 objects was saved, during the second), then run
/// again: the application ends as an uninterrupted run leaves it (every
/// user once, with its manager; the group once, with every member), and the
/// cycle after that sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_slapd), ignore = "needs OpenLDAP's slapd: apt-get install slapd ldap-utils")]
async fn sigkill_mid_cycle_then_rerun_converges() {
    let s = Scratch::new("sigkill");
    let app = scimitar_app(&s).await;
    let model = many(1500);
    let dir = Ldap::start(&model);
    let (proxy, seen) = start_proxy(&app.base.replace(&app.prefix, "")).await;
    let job = write_job(
        &s,
        &dir.job_source(),
        &app,
        &format!("{proxy}{}", app.prefix),
        "entra-compliant",
    );

    let mut engine = Kill(
        Command::new(BIN)
            .env("SCIMITAR_KEY_FILE", s.key())
            .args([
                "sync",
                "run",
                "--job",
                job.to_str().unwrap(),
                "--once",
                "--json",
                "--database",
                &s.engine_db(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let creates = || seen.lock().unwrap().iter().filter(|x| x.method == "POST").count();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while creates() < 100 {
        assert!(
            std::time::Instant::now() < deadline,
            "the engine did not create 100 users"
        );
        assert!(
            engine.0.try_wait().unwrap().is_none(),
            "the engine finished before it was killed"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    engine.0.kill().unwrap(); // SIGKILL
    engine.0.wait().unwrap();
    let before = creates();
    assert!(before < 301, "killed mid-cycle: {before} creates sent");

    let summary = run_cycle(&s, &job, &[]);
    assert_eq!(
        summary["kind"], "initial",
        "nothing was committed by the killed run: {summary}"
    );
    app.assert_holds(&model, "after the rerun").await;
    seen.lock().unwrap().clear();
    let summary = run_cycle(&s, &job, &[]);
    assert_eq!(summary["kind"], "incremental", "{summary}");
    let sent: Vec<Seen> = seen.lock().unwrap().drain(..).collect();
    assert!(sent.is_empty(), "a cycle after convergence sent {sent:#?}");
}

fn run_failing(s: &Scratch, job: &Path) -> String {
    let out = tokio::task::block_in_place(|| {
        Command::new(BIN)
            .env("SCIMITAR_KEY_FILE", s.key())
            .args([
                "sync",
                "run",
                "--job",
                job.to_str().unwrap(),
                "--once",
                "--database",
                &s.engine_db(),
            ])
            .output()
            .unwrap()
    });
    assert!(
        !out.status.success(),
        "the cycle should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn job_state(s: &Scratch) -> Value {
    s.cli(&s.engine_db(), &["sync", "jobs"])["jobs"][0].clone()
}

/// A wrong directory password, a refused Secret Token, an unreachable
/// application: the cycle fails and says which, its watermark is not
/// committed, and the next run (fixed) does what the failed one would have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_slapd), ignore = "needs OpenLDAP's slapd: apt-get install slapd ldap-utils")]
async fn a_failed_cycle_does_not_advance_and_the_next_resumes() {
    let s = Scratch::new("failures");
    let app = scimitar_app(&s).await;
    let mut model = Model::fixture();
    let mut dir = Ldap::start(&model);
    let target = app.base.clone();
    let good = dir.job_source();

    let wrong_password = good.replace("bind_password = \"secret\"", "bind_password = \"wrong\"");
    let job = write_job(&s, &wrong_password, &app, &target, "entra-compliant");
    let err = run_failing(&s, &job);
    assert!(err.contains("password") || err.contains("credentials"), "{err}");
    assert_eq!(job_state(&s)["initial_next"], true, "no state after a failed read");

    let job = write_job(&s, &good, &app, &target, "entra-compliant");
    let summary = run_cycle(&s, &job, &[]);
    assert_eq!(summary["kind"], "initial");
    app.assert_holds(&model, "initial cycle after the fix").await;
    let last = job_state(&s)["last_cycle"].clone();

    // A change, then a cycle with a refused token, then one that cannot
    // reach the application: both fail, neither commits.
    let change = Change::Title("alice", "Principal");
    change.apply(&mut model);
    dir.apply(&change, &model);
    let wrong_token = app_with_token(&app, "scim_not-a-real-token");
    let job = write_job(&s, &good, &wrong_token, &target, "entra-compliant");
    let err = run_failing(&s, &job);
    assert!(err.contains("refused the Secret Token"), "{err}");
    assert!(err.contains("watermark was not committed"), "{err}");
    // A refused token quarantines the job, as Entra does: retried 6 hours
    // after the first failure rather than every interval.
    let state = job_state(&s);
    assert_eq!(state["status"], "quarantined", "{state}");
    let q = &state["last_cycle"]["quarantine"];
    assert_eq!(q["reason"], "EncounteredQuarantineException", "{state}");
    assert_eq!(
        (q["retries"].as_u64(), q["previous_status"].as_str()),
        (Some(0), Some("off")),
        "{state}"
    );
    let since = time::OffsetDateTime::parse(
        q["since"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let retry = time::OffsetDateTime::parse(
        q["next_retry"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(retry - since, time::Duration::hours(6), "{state}");
    let closed = format!("http://127.0.0.1:{}/scim/default/v2", free_port());
    let job = write_job(&s, &good, &app, &closed, "entra-compliant");
    let err = run_failing(&s, &job);
    assert!(err.contains("cannot be reached"), "{err}");
    // The failure is the job's last cycle (what `sync jobs` and the next
    // attempt's time go by); the watermark stays where it was (the next
    // cycle below sends the change).
    let state = job_state(&s);
    assert!(
        state["last_cycle"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot be reached"),
        "{state}"
    );
    assert_ne!(state["last_cycle"], last);
    assert_eq!(state["initial_next"], false, "{state}");
    // Still quarantined: a failed retry (the next at +12 h).
    assert_eq!(state["status"], "quarantined", "{state}");
    assert_eq!(state["last_cycle"]["quarantine"]["retries"], 1, "{state}");

    let job = write_job(&s, &good, &app, &target, "entra-compliant");
    let summary = run_cycle(&s, &job, &[]);
    assert_eq!(
        summary["updated"], 1,
        "the change is sent once the target works: {summary}"
    );
    assert_eq!(job_state(&s)["status"], "off", "a successful cycle ends the quarantine");
    app.assert_holds(&model, "after the failures").await;
}

/// The same application with another token (the process is not shared).
fn app_with_token(app: &App, token: &str) -> App {
    App {
        _process: Kill(Command::new("true").spawn().unwrap()),
        base: app.base.clone(),
        prefix: app.prefix.clone(),
        token: token.into(),
        hr: None,
    }
}

/// `scimitar sync test-connection`: Entra's probe, and what it says when
/// the URL, the token or the answer is wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_says_what_is_wrong() {
    let s = Scratch::new("test-connection");
    let app = scimitar_app(&s).await;
    std::fs::write(s.dir.join("users.csv"), "id,userPrincipalName\n").unwrap();
    let source = format!("[source]\nkind = \"file\"\nusers = \"{}/users.csv\"\n", s.dir.display());
    let root = app.base.replace(&app.prefix, "");
    let bad_token = app_with_token(&app, "scim_wrong");
    let cases: Vec<(&str, &App, String, Option<&str>)> = vec![
        ("right", &app, app.base.clone(), None),
        (
            "wrong token",
            &bad_token,
            app.base.clone(),
            Some("refused the Secret Token"),
        ),
        ("not a SCIM base URL", &app, format!("{root}/scim/v2"), Some("404")),
        ("an answer that is not SCIM", &app, format!("{root}/healthz#"), Some("")),
        (
            "nothing listening",
            &app,
            format!("http://127.0.0.1:{}/scim/v2", free_port()),
            Some("cannot connect"),
        ),
    ];
    for (what, target_app, url, error) in cases {
        let job = write_job(&s, &source, target_app, &url, "entra-compliant");
        let out = tokio::task::block_in_place(|| {
            Command::new(BIN)
                .env("SCIMITAR_KEY_FILE", s.key())
                .args([
                    "sync",
                    "test-connection",
                    "--job",
                    job.to_str().unwrap(),
                    "--database",
                    &s.engine_db(),
                ])
                .output()
                .unwrap()
        });
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        match error {
            None => {
                assert!(out.status.success(), "{what}: {stderr}");
                assert!(stdout.contains("works"), "{what}: {stdout}");
            }
            Some(words) => {
                assert!(!out.status.success(), "{what}: succeeded: {stdout}");
                assert!(stderr.contains(words), "{what}: '{stderr}' does not say '{words}'");
                assert!(!stderr.contains(&app.token), "{what}: the token was printed");
            }
        }
    }
}

/// A job file with a mistake: the error names the line and key, and nothing
/// is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_job_file_is_refused_and_nothing_is_stored() {
    let s = Scratch::new("bad-job");
    std::fs::write(s.dir.join("users.csv"), "id,userPrincipalName\n").unwrap();
    let job = s.dir.join("job.toml");
    std::fs::write(
        &job,
        format!(
            "name = \"bad\"\n[source]\nkind = \"file\"\nusers = \"{}/users.csv\"\n[target]\nurl = \"https://app.example/scim/v2\"\ntoken = \"x\"\n[[mappings.user]]\ntarget = \"title\"\nexpression = 'Lft([jobTitle], 3)'\n",
            s.dir.display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .env("SCIMITAR_KEY_FILE", s.key())
        .args([
            "sync",
            "run",
            "--job",
            job.to_str().unwrap(),
            "--once",
            "--database",
            &s.engine_db(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 10, key `mappings.user.expression`") && err.contains("Lft"),
        "{err}"
    );
    let jobs = s.cli(&s.engine_db(), &["sync", "jobs"]);
    assert_eq!(jobs["jobs"], json!([]), "nothing stored");
}

/// `scimitar expression eval`: an expression against an object from a file
/// or standard input, printed as JSON; a mistake is shown with its position.
#[test]
fn expression_eval_prints_json() {
    use std::io::Write;
    let eval = |args: &[&str], stdin: &str| {
        let mut child = Command::new(BIN)
            .args(["expression", "eval"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let alice = r#"{"givenName": "Alice", "surname": "Smith", "mail": "alice@contoso.com", "userPrincipalName": "alice@contoso.com"}"#;
    let cases: &[(&str, &[&str], Value)] = &[
        (r#"Join(" ", [givenName], [surname])"#, &[], json!("Alice Smith")),
        (
            r#"ToLower(Append(Left([givenName], 1), [surname]))"#,
            &[],
            json!("asmith"),
        ),
        (r#"Split([mail], "@")"#, &[], json!(["alice", "contoso.com"])),
        (r#"IsNullOrEmpty([department])"#, &[], json!("True")),
        (
            r#"Now()"#,
            &["--now", "2026-11-30T10:00:00Z"],
            json!("11/30/2026 10:00:00 AM"),
        ),
        (
            r#"DefaultDomain()"#,
            &["--default-domain", "contoso.com"],
            json!("contoso.com"),
        ),
    ];
    for (expr, extra, want) in cases {
        let mut args = vec![*expr, "--object", "-"];
        args.extend_from_slice(extra);
        let out = eval(&args, alice);
        assert!(out.status.success(), "{expr}: {}", String::from_utf8_lossy(&out.stderr));
        let got: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(&got, want, "{expr}");
    }
    let bad = eval(&["Join(\" \", [givenName]", "--object", "-"], alice);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("position") || err.contains("column"), "{err}");
}
