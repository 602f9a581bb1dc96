//! `scimitar-bench`: drives any SCIM 2.0 server over HTTP/1.1 keep-alive with
//! N concurrent connections and reports throughput and latency per scenario.
//! See docs/benchmarks.md.

// Not production code: a benchmark tool: a malformed answer from the server under test ends the run.
#![allow(clippy::panic, clippy::indexing_slicing)]

mod data;
mod http;
mod report;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use hyper::Method;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use data::{Rng, eq_filter, user_name};
use http::{Conn, Target};
use report::{Outcome, new_histogram};

const ALL: &str = "healthz,lookup,create,patch,members,group-get,page,cycle";

/// Load generator for SCIM 2.0 servers (Scimitar or any peer).
#[derive(Parser, Debug)]
#[command(name = "scimitar-bench", version)]
struct Cli {
    /// Tenant URL (SCIM base URL), e.g. http://127.0.0.1:8080/scim/default/v2
    #[arg(long)]
    url: String,
    /// More nodes serving the same tenant (the same database): the
    /// connections are spread over --url and these, in turn. Populating and
    /// reading ids go through --url.
    #[arg(long)]
    also_url: Vec<String>,
    /// Bearer token.
    #[arg(long, env = "SCIM_TOKEN", hide_env_values = true)]
    token: String,
    /// Scenarios, comma-separated: healthz, lookup, create, patch, members,
    /// group-get, page (index and cursor, first and last pages), cycle; or all.
    #[arg(long, default_value = ALL)]
    scenarios: String,
    /// Concurrent connections (one worker each).
    #[arg(long, short = 'c', default_value_t = 16)]
    connections: usize,
    /// Client runtime threads (1: a single-threaded runtime, leaving the other cores to the server).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Upper bound of iterations per scenario (an iteration of members is 2 requests, of cycle 3).
    #[arg(long, default_value_t = 10_000_000)]
    requests: i64,
    /// Upper bound of seconds per scenario.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Unmeasured seconds before each scenario.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Users the tenant must hold (created through /Bulk unless --no-bulk; skipped when present).
    #[arg(long, default_value_t = 10_000)]
    populate: usize,
    /// Members of the large group used by `members` and `group-get` (at most --populate).
    #[arg(long, default_value_t = 10_000)]
    group_size: usize,
    /// Operations per /Bulk request while populating.
    #[arg(long, default_value_t = 500)]
    bulk_size: usize,
    /// Connections used to populate (SQLite has one writer: large concurrent
    /// Bulk requests only queue up behind it).
    #[arg(long, default_value_t = 2)]
    populate_connections: usize,
    /// Populate with one POST per user instead of /Bulk.
    #[arg(long)]
    no_bulk: bool,
    /// `count` of the `page` scenarios.
    #[arg(long, default_value_t = 100)]
    page_size: usize,
    /// Upper bound of seconds for the cursor walk that finds the last page.
    #[arg(long, default_value_t = 300.0)]
    walk_seconds: f64,
    /// Prefix of the names of the data this tool creates.
    #[arg(long, default_value = "bench")]
    prefix: String,
    /// Health URL path on the same host (the `healthz` scenario).
    #[arg(long, default_value = "/healthz")]
    healthz_path: String,
    /// Server process to read peak RSS (VmHWM) and CPU time from.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Name of the server in the JSON report.
    #[arg(long, default_value = "server")]
    label: String,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Healthz,
    Lookup,
    Create,
    Patch,
    Members,
    GroupGet,
    PageIndexFirst,
    PageIndexLast,
    PageCursorFirst,
    PageCursorLast,
    Cycle,
}

/// What every worker reads.
struct Shared {
    target: Arc<Target>,
    prefix: String,
    healthz_path: String,
    users: usize,
    user_ids: Vec<String>,
    group_id: String,
    group_members: usize,
    cycle_group_id: String,
    connections: usize,
    page_size: usize,
    total: AtomicUsize,
    last_cursor: Mutex<String>,
    nonce: u64,
    /// Numbers the users that `create` and `cycle` make, across phases.
    seq: AtomicU64,
}

/// One connection and what it measured.
struct Worker {
    id: usize,
    conn: Conn,
    hist: Histogram<u64>,
    requests: u64,
    errors: u64,
    first_error: Option<String>,
    rng: Rng,
    iter: u64,
}

impl Worker {
    fn new(id: usize, conn: Conn, seed: u64) -> Self {
        Self {
            id,
            conn,
            hist: new_histogram(),
            requests: 0,
            errors: 0,
            first_error: None,
            rng: Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(id as u64)),
            iter: 0,
        }
    }

    fn error(&mut self, msg: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(msg);
        }
    }

    /// One timed request; the body when the status is one of `ok`.
    async fn call(&mut self, method: Method, path: &str, body: Option<Value>, ok: &[u16]) -> Option<Bytes> {
        let body = body.map(|b| Bytes::from(b.to_string()));
        let t = Instant::now();
        let r = self.conn.send(method.clone(), path, body).await;
        let us = t.elapsed().as_micros() as u64;
        self.requests += 1;
        let _ = self.hist.record(us.max(1));
        match r {
            Ok(rep) if ok.contains(&rep.status) => Some(rep.body),
            Ok(rep) => {
                let text = String::from_utf8_lossy(&rep.body[..rep.body.len().min(300)]).into_owned();
                self.error(format!("{method} {path}: {} {text}", rep.status));
                None
            }
            Err(e) => {
                self.error(format!("{method} {path}: {e:#}"));
                None
            }
        }
    }
}

/// `totalResults` of a ListResponse, read without parsing the whole body.
fn total_results(body: &[u8]) -> Option<usize> {
    let s = std::str::from_utf8(body).ok()?;
    let at = s.find("\"totalResults\"")? + "\"totalResults\"".len();
    let rest = s[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// A top-level string field, read without parsing the whole body (for `nextCursor`).
fn string_field(body: &[u8], name: &str) -> Option<String> {
    let s = std::str::from_utf8(body).ok()?;
    let key = format!("\"{name}\"");
    let at = s.find(&key)? + key.len();
    let rest = s[at..].trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

async fn step(kind: Kind, sh: &Shared, w: &mut Worker) {
    w.iter += 1;
    let t = &sh.target;
    const OK: &[u16] = &[200];
    const WRITE_OK: &[u16] = &[200, 204];
    match kind {
        Kind::Healthz => {
            w.call(Method::GET, &sh.healthz_path, None, OK).await;
        }
        Kind::Lookup => {
            let i = w.rng.below(sh.users);
            let path = t.path(&format!(
                "/Users?filter={}",
                eq_filter("userName", &user_name(&sh.prefix, i))
            ));
            if let Some(body) = w.call(Method::GET, &path, None, OK).await
                && total_results(&body) != Some(1)
            {
                w.error(format!("lookup of user {i}: expected one result"));
            }
        }
        Kind::Create => {
            let n = sh.seq.fetch_add(1, Ordering::Relaxed);
            let name = format!("{}-new-{}-{n}@example.com", sh.prefix, sh.nonce);
            w.call(
                Method::POST,
                &t.path("/Users"),
                Some(data::entra_user(&name, n)),
                &[201],
            )
            .await;
        }
        Kind::Patch => {
            let id = &sh.user_ids[w.rng.below(sh.users)];
            let body = data::patch_replace("title", &format!("Title {}-{}", w.id, w.iter));
            w.call(Method::PATCH, &t.path(&format!("/Users/{id}")), Some(body), WRITE_OK)
                .await;
        }
        Kind::Members => {
            // Each worker owns the members whose index is its id modulo the connections,
            // so no two workers touch the same member: remove one, add it back.
            let slots = (sh.group_members / sh.connections).max(1);
            let idx = (w.id + sh.connections * w.rng.below(slots)) % sh.group_members.max(1);
            let id = sh.user_ids[idx].as_str();
            let path = t.path(&format!("/Groups/{}", sh.group_id));
            w.call(Method::PATCH, &path, Some(data::members_remove(&[id])), WRITE_OK)
                .await;
            w.call(Method::PATCH, &path, Some(data::members_add(&[id])), WRITE_OK)
                .await;
        }
        Kind::GroupGet => {
            let path = t.path(&format!("/Groups/{}?excludedAttributes=members", sh.group_id));
            w.call(Method::GET, &path, None, OK).await;
        }
        Kind::PageIndexFirst => {
            let path = t.path(&format!("/Users?startIndex=1&count={}", sh.page_size));
            w.call(Method::GET, &path, None, OK).await;
        }
        Kind::PageIndexLast => {
            let start = sh.total.load(Ordering::Relaxed).saturating_sub(sh.page_size) + 1;
            let path = t.path(&format!("/Users?startIndex={start}&count={}", sh.page_size));
            w.call(Method::GET, &path, None, OK).await;
        }
        Kind::PageCursorFirst => {
            let path = t.path(&format!("/Users?cursor=&count={}", sh.page_size));
            w.call(Method::GET, &path, None, OK).await;
        }
        Kind::PageCursorLast => {
            let cursor = sh.last_cursor.lock().map(|c| c.clone()).unwrap_or_default();
            let path = t.path(&format!(
                "/Users?cursor={}&count={}",
                data::encode(&cursor),
                sh.page_size
            ));
            w.call(Method::GET, &path, None, OK).await;
        }
        Kind::Cycle => cycle(sh, w).await,
    }
}

/// An Entra-like provisioning step: match query, then create (new user) or
/// PATCH (existing user), then add the user to a group.
async fn cycle(sh: &Shared, w: &mut Worker) {
    let t = &sh.target;
    let existing = w.rng.below(2) == 0 && sh.users > 0;
    let (name, idx) = if existing {
        let i = w.rng.below(sh.users);
        (user_name(&sh.prefix, i), Some(i))
    } else {
        let n = sh.seq.fetch_add(1, Ordering::Relaxed);
        (format!("{}-cyc-{}-{n}@example.com", sh.prefix, sh.nonce), None)
    };
    let path = t.path(&format!("/Users?filter={}", eq_filter("userName", &name)));
    let Some(body) = w.call(Method::GET, &path, None, &[200]).await else {
        return;
    };
    let found = total_results(&body).unwrap_or(0);
    let id = match idx {
        Some(i) => {
            if found != 1 {
                w.error(format!("cycle: user {i} not found"));
                return;
            }
            let id = sh.user_ids[i].clone();
            let body = data::patch_replace("displayName", &format!("Bench User {i} v{}", w.iter));
            w.call(Method::PATCH, &t.path(&format!("/Users/{id}")), Some(body), &[200, 204])
                .await;
            id
        }
        None => {
            let Some(created) = w
                .call(
                    Method::POST,
                    &t.path("/Users"),
                    Some(data::entra_user(&name, w.iter)),
                    &[201],
                )
                .await
            else {
                return;
            };
            match string_field(&created, "id") {
                Some(id) => id,
                None => {
                    w.error("cycle: no id in the created user".into());
                    return;
                }
            }
        }
    };
    let path = t.path(&format!("/Groups/{}", sh.cycle_group_id));
    w.call(Method::PATCH, &path, Some(data::members_add(&[&id])), &[200, 204])
        .await;
}

/// Runs `kind` on every connection until the time or the iteration budget runs out.
async fn phase(
    kind: Kind,
    sh: &Arc<Shared>,
    conns: &mut Vec<Conn>,
    seconds: f64,
    budget: i64,
    pid: Option<u32>,
) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let budget = Arc::new(AtomicI64::new(budget));
    let (srv0, cli0) = (report::cpu_ticks(pid), report::cpu_ticks(None));
    let start = Instant::now();
    let seed = start.elapsed().as_nanos() as u64 ^ sh.nonce;
    let mut tasks = Vec::new();
    for (id, conn) in conns.drain(..).enumerate() {
        let sh = sh.clone();
        let budget = budget.clone();
        tasks.push(tokio::spawn(async move {
            let mut w = Worker::new(id, conn, seed);
            while Instant::now() < deadline && budget.fetch_sub(1, Ordering::Relaxed) > 0 {
                step(kind, &sh, &mut w).await;
            }
            w
        }));
    }
    let mut out = Outcome {
        name: String::new(),
        hist: new_histogram(),
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        first_error: None,
        server_cpu: None,
        client_cpu: None,
        server_hwm_kib: None,
        server_rss_kib: None,
        unit: "requests",
    };
    for task in tasks {
        match task.await {
            Ok(w) => {
                let _ = out.hist.add(&w.hist);
                out.requests += w.requests;
                out.errors += w.errors;
                if out.first_error.is_none() {
                    out.first_error = w.first_error;
                }
                conns.push(w.conn);
            }
            Err(e) => {
                out.errors += 1;
                out.first_error.get_or_insert_with(|| format!("worker failed: {e}"));
            }
        }
    }
    out.elapsed = start.elapsed();
    let secs = out.elapsed.as_secs_f64().max(1e-9);
    let share = |a: Option<u64>, b: Option<u64>| Some((b? - a?) as f64 / report::TICKS_PER_SEC / secs);
    out.server_cpu = share(srv0, report::cpu_ticks(pid));
    out.client_cpu = share(cli0, report::cpu_ticks(None));
    if let Some((hwm, rss)) = pid.and_then(report::rss_kib) {
        out.server_hwm_kib = Some(hwm);
        out.server_rss_kib = Some(rss);
    }
    out
}

/// One request on a setup connection; fails unless the status is one of `ok`.
async fn must(conn: &mut Conn, method: Method, path: &str, body: Option<Value>, ok: &[u16]) -> Result<Bytes> {
    let rep = conn
        .send(method.clone(), path, body.map(|b| Bytes::from(b.to_string())))
        .await?;
    if !ok.contains(&rep.status) {
        bail!(
            "{method} {path}: {} {}",
            rep.status,
            String::from_utf8_lossy(&rep.body[..rep.body.len().min(500)])
        );
    }
    Ok(rep.body)
}

/// Creates users 0..n that are missing, through /Bulk (or POSTs), on every connection.
async fn populate(cli: &Cli, target: &Arc<Target>, conns: &mut Vec<Conn>) -> Result<Option<Outcome>> {
    let n = cli.populate;
    let filter = format!(
        "userName%20sw%20%22{}%22",
        data::encode(&format!("{}-user-", cli.prefix))
    );
    let count = target.path(&format!("/Users?count=1&attributes=userName&filter={filter}"));
    let body = must(&mut conns[0], Method::GET, &count, None, &[200]).await?;
    if total_results(&body).unwrap_or(0) >= n {
        eprintln!("populate: the {n} users exist, skipping");
        return Ok(None);
    }
    let chunk = if cli.no_bulk { 1 } else { cli.bulk_size.max(1) };
    let chunks = n.div_ceil(chunk);
    let next = Arc::new(AtomicUsize::new(0));
    let prefix = Arc::new(cli.prefix.clone());
    let no_bulk = cli.no_bulk;
    let start = Instant::now();
    let mut tasks = Vec::new();
    let used = cli.populate_connections.clamp(1, conns.len());
    for (id, conn) in conns.drain(..used).enumerate() {
        let (next, prefix, target) = (next.clone(), prefix.clone(), target.clone());
        tasks.push(tokio::spawn(async move {
            let mut w = Worker::new(id, conn, 7);
            let mut created = 0u64;
            loop {
                let c = next.fetch_add(1, Ordering::Relaxed);
                if c >= chunks {
                    break;
                }
                let range = c * chunk..((c + 1) * chunk).min(n);
                if no_bulk {
                    let i = range.start;
                    if w
                        .call(Method::POST, &target.path("/Users"), Some(data::entra_user(&user_name(&prefix, i), i as u64)), &[201, 409])
                        .await
                        .is_some()
                    {
                        created += 1;
                    }
                    continue;
                }
                let ops: Vec<Value> = range
                    .clone()
                    .map(|i| json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"), "data": data::entra_user(&user_name(&prefix, i), i as u64)}))
                    .collect();
                let body = json!({"schemas": [data::BULK_REQUEST], "Operations": ops});
                let Some(resp) = w.call(Method::POST, &target.path("/Bulk"), Some(body), &[200]).await else {
                    continue;
                };
                let resp: Value = serde_json::from_slice(&resp).unwrap_or(Value::Null);
                for op in resp["Operations"].as_array().into_iter().flatten() {
                    let status = match &op["status"] {
                        Value::String(s) => s.parse::<u16>().unwrap_or(0),
                        Value::Number(x) => x.as_u64().unwrap_or(0) as u16,
                        Value::Object(o) => o.get("code").and_then(|c| c.as_str()).and_then(|c| c.parse().ok()).unwrap_or(0),
                        _ => 0,
                    };
                    match status {
                        201 => created += 1,
                        409 => {}
                        s => w.error(format!("bulk op: status {s}: {}", op["response"])),
                    }
                }
            }
            (w, created)
        }));
    }
    let mut out = Outcome {
        name: "populate".into(),
        hist: new_histogram(),
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        first_error: None,
        server_cpu: None,
        client_cpu: None,
        server_hwm_kib: None,
        server_rss_kib: None,
        unit: "users",
    };
    for t in tasks {
        let (w, created) = t.await?;
        let _ = out.hist.add(&w.hist);
        out.requests += created;
        out.errors += w.errors;
        if out.first_error.is_none() {
            out.first_error = w.first_error;
        }
        conns.push(w.conn);
    }
    out.elapsed = start.elapsed();
    if let Some((hwm, rss)) = cli.server_pid.and_then(report::rss_kib) {
        out.server_hwm_kib = Some(hwm);
        out.server_rss_kib = Some(rss);
    }
    Ok(Some(out))
}

/// Ids of users 0..n, read by walking /Users (by cursor where the server has it).
async fn collect_ids(conn: &mut Conn, target: &Target, prefix: &str, n: usize) -> Result<Vec<String>> {
    let mut ids = vec![String::new(); n];
    let mut take = |body: &Value| {
        for r in body["Resources"].as_array().into_iter().flatten() {
            if let (Some(id), Some(un)) = (r["id"].as_str(), r["userName"].as_str())
                && let Some(i) = data::user_index(prefix, un)
                && i < n
            {
                ids[i] = id.to_string();
            }
        }
    };
    let first = conn
        .send(
            Method::GET,
            &target.path("/Users?cursor=&count=1000&attributes=userName"),
            None,
        )
        .await?;
    let body: Value = serde_json::from_slice(&first.body).unwrap_or(Value::Null);
    if first.status == 200 && body.get("startIndex").is_none() {
        take(&body);
        let mut next = body["nextCursor"].as_str().map(str::to_string);
        while let Some(c) = next {
            let path = target.path(&format!(
                "/Users?cursor={}&count=1000&attributes=userName",
                data::encode(&c)
            ));
            let body: Value = serde_json::from_slice(&must(conn, Method::GET, &path, None, &[200]).await?)?;
            take(&body);
            next = body["nextCursor"].as_str().map(str::to_string);
        }
    } else {
        let mut start = 1;
        loop {
            let path = target.path(&format!("/Users?startIndex={start}&count=1000&attributes=userName"));
            let body: Value = serde_json::from_slice(&must(conn, Method::GET, &path, None, &[200]).await?)?;
            take(&body);
            let got = body["Resources"].as_array().map_or(0, Vec::len);
            let total = body["totalResults"].as_u64().unwrap_or(0) as usize;
            start += got;
            if got == 0 || start > total {
                break;
            }
        }
    }
    let missing = ids.iter().filter(|s| s.is_empty()).count();
    if missing > 0 {
        bail!("{missing} of the {n} populated users were not found by listing /Users");
    }
    Ok(ids)
}

/// Finds or creates group `name` and makes sure it has `members`.
async fn ensure_group(conn: &mut Conn, target: &Target, name: &str, members: &[String]) -> Result<String> {
    let path = target.path(&format!(
        "/Groups?filter={}&excludedAttributes=members",
        eq_filter("displayName", name)
    ));
    let body: Value = serde_json::from_slice(&must(conn, Method::GET, &path, None, &[200]).await?)?;
    let id = match body["Resources"][0]["id"].as_str() {
        Some(id) => id.to_string(),
        None => {
            let g = json!({"schemas": [data::GROUP_SCHEMA], "displayName": name});
            let body: Value =
                serde_json::from_slice(&must(conn, Method::POST, &target.path("/Groups"), Some(g), &[201]).await?)?;
            body["id"].as_str().context("no id in the created group")?.to_string()
        }
    };
    if members.is_empty() {
        return Ok(id);
    }
    let path = target.path(&format!("/Groups/{id}?attributes=members"));
    let body: Value = serde_json::from_slice(&must(conn, Method::GET, &path, None, &[200]).await?)?;
    let have: HashSet<&str> = body["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["value"].as_str())
        .collect();
    let missing: Vec<&str> = members
        .iter()
        .map(String::as_str)
        .filter(|m| !have.contains(m))
        .collect();
    if !missing.is_empty() {
        let t = Instant::now();
        let path = target.path(&format!("/Groups/{id}"));
        for chunk in missing.chunks(1000) {
            must(conn, Method::PATCH, &path, Some(data::members_add(chunk)), &[200, 204]).await?;
        }
        eprintln!(
            "group {name}: added {} members in {:.1} s",
            missing.len(),
            t.elapsed().as_secs_f64()
        );
    }
    Ok(id)
}

/// Walks /Users by cursor to the last page; records each page. Returns the last page's cursor.
async fn cursor_walk(conn: Conn, sh: &Shared, seconds: f64) -> (Outcome, Option<String>, Conn) {
    let mut w = Worker::new(0, conn, 1);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut cursor = String::new();
    let mut last = None;
    while Instant::now() < deadline {
        let path = sh.target.path(&format!(
            "/Users?cursor={}&count={}",
            data::encode(&cursor),
            sh.page_size
        ));
        let Some(body) = w.call(Method::GET, &path, None, &[200]).await else {
            break;
        };
        match string_field(&body, "nextCursor") {
            Some(next) => cursor = next,
            None => {
                last = Some(cursor.clone());
                break;
            }
        }
    }
    if last.is_none() && w.errors == 0 {
        w.error(format!("the walk did not reach the last page in {seconds} s"));
    }
    let out = Outcome {
        name: "page-cursor-walk".into(),
        requests: w.requests,
        errors: w.errors,
        elapsed: start.elapsed(),
        first_error: w.first_error.take(),
        hist: std::mem::replace(&mut w.hist, new_histogram()),
        server_cpu: None,
        client_cpu: None,
        server_hwm_kib: None,
        server_rss_kib: None,
        unit: "requests",
    };
    (out, last, w.conn)
}

async fn run(cli: Cli) -> Result<()> {
    let target = Arc::new(Target::parse(&cli.url, &cli.token)?);
    let mut names: Vec<String> = cli
        .scenarios
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if names.iter().any(|s| s == "all") {
        names = ALL.split(',').map(str::to_string).collect();
    }
    for n in &names {
        if !ALL.split(',').any(|a| a == n) {
            bail!("unknown scenario {n}; known: {ALL}");
        }
    }
    let has = |s: &str| names.iter().any(|n| n == s);
    let load_start = report::loadavg();
    eprintln!(
        "scimitar-bench: {} ({}), {} connections, {} client thread(s); load average {}",
        cli.url,
        cli.label,
        cli.connections,
        cli.threads,
        load_start.as_deref().unwrap_or("?")
    );
    let mut targets = vec![target.clone()];
    for u in &cli.also_url {
        targets.push(Arc::new(Target::parse(u, &cli.token)?));
    }
    let mut conns: Vec<Conn> = (0..cli.connections.max(1))
        .map(|i| Conn::new(targets[i % targets.len()].clone()))
        .collect();
    let mut outcomes = Vec::new();
    let needs_users = ["lookup", "patch", "members", "group-get", "page", "cycle"]
        .iter()
        .any(|s| has(s));
    if needs_users && cli.populate == 0 {
        bail!("these scenarios need --populate N > 0");
    }
    if cli.populate > 0
        && needs_users
        && let Some(o) = populate(&cli, &target, &mut conns).await?
    {
        eprint!("{}", report::table(std::slice::from_ref(&o)));
        outcomes.push(o);
    }
    let needs_ids = ["patch", "members", "group-get", "cycle"].iter().any(|s| has(s));
    let user_ids = if needs_ids {
        let t = Instant::now();
        let ids = collect_ids(&mut conns[0], &target, &cli.prefix, cli.populate).await?;
        eprintln!("read {} user ids in {:.1} s", ids.len(), t.elapsed().as_secs_f64());
        ids
    } else {
        Vec::new()
    };
    let group_members = cli.group_size.min(cli.populate).max(1);
    let group_id = if has("members") || has("group-get") {
        let name = format!("{}-group-{group_members}", cli.prefix);
        ensure_group(&mut conns[0], &target, &name, &user_ids[..group_members]).await?
    } else {
        String::new()
    };
    let cycle_group_id = if has("cycle") {
        ensure_group(&mut conns[0], &target, &format!("{}-cycle-group", cli.prefix), &[]).await?
    } else {
        String::new()
    };
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let sh = Arc::new(Shared {
        target: target.clone(),
        prefix: cli.prefix.clone(),
        healthz_path: cli.healthz_path.clone(),
        users: cli.populate,
        user_ids,
        group_id,
        group_members,
        cycle_group_id,
        connections: conns.len(),
        page_size: cli.page_size.max(1),
        total: AtomicUsize::new(0),
        last_cursor: Mutex::new(String::new()),
        nonce,
        seq: AtomicU64::new(0),
    });

    for name in &names {
        let kinds: Vec<(Kind, &str)> = match name.as_str() {
            "healthz" => vec![(Kind::Healthz, "healthz")],
            "lookup" => vec![(Kind::Lookup, "lookup")],
            "create" => vec![(Kind::Create, "create")],
            "patch" => vec![(Kind::Patch, "patch")],
            "members" => vec![(Kind::Members, "members")],
            "group-get" => vec![(Kind::GroupGet, "group-get")],
            "cycle" => vec![(Kind::Cycle, "cycle")],
            _ => {
                let body = must(&mut conns[0], Method::GET, &target.path("/Users?count=1"), None, &[200]).await?;
                sh.total.store(total_results(&body).unwrap_or(0), Ordering::Relaxed);
                let mut v = vec![
                    (Kind::PageIndexFirst, "page-index-first"),
                    (Kind::PageIndexLast, "page-index-last"),
                ];
                let conn = conns.remove(0);
                let (walk, last, conn) = cursor_walk(conn, &sh, cli.walk_seconds).await;
                conns.insert(0, conn);
                eprint!("{}", report::table(std::slice::from_ref(&walk)));
                outcomes.push(walk);
                if let Some(c) = last {
                    if let Ok(mut l) = sh.last_cursor.lock() {
                        *l = c;
                    }
                    v.push((Kind::PageCursorFirst, "page-cursor-first"));
                    v.push((Kind::PageCursorLast, "page-cursor-last"));
                }
                v
            }
        };
        for (kind, label) in kinds {
            if cli.warmup > 0.0 {
                phase(kind, &sh, &mut conns, cli.warmup, i64::MAX, cli.server_pid).await;
            }
            let mut o = phase(kind, &sh, &mut conns, cli.seconds, cli.requests, cli.server_pid).await;
            o.name = label.to_string();
            eprint!("{}", report::table(std::slice::from_ref(&o)));
            if let Some(e) = &o.first_error {
                eprintln!("  first error: {e}");
            }
            outcomes.push(o);
        }
    }

    let load_end = report::loadavg();
    println!(
        "\n{} — {} connections; load average at start {}, at end {}",
        cli.label,
        cli.connections,
        load_start.as_deref().unwrap_or("?"),
        load_end.as_deref().unwrap_or("?")
    );
    print!("{}", report::table(&outcomes));
    let rss = cli.server_pid.and_then(report::rss_kib);
    if let Some((hwm, cur)) = rss {
        println!(
            "server pid {}: peak RSS (VmHWM) {:.1} MiB, RSS now {:.1} MiB",
            cli.server_pid.unwrap_or(0),
            hwm as f64 / 1024.0,
            cur as f64 / 1024.0
        );
    }
    if let Some(path) = &cli.json {
        let doc = json!({
            "tool": "scimitar-bench",
            "version": env!("CARGO_PKG_VERSION"),
            "label": cli.label,
            "url": cli.url,
            "also_url": cli.also_url,
            "connections": cli.connections,
            "client_threads": cli.threads,
            "seconds_per_scenario": cli.seconds,
            "populate": cli.populate,
            "group_size": group_members,
            "page_size": cli.page_size,
            "loadavg_start": load_start,
            "loadavg_end": load_end,
            "server_pid": cli.server_pid,
            "server_vmhwm_mib": rss.map(|(h, _)| h as f64 / 1024.0),
            "results": outcomes.iter().map(Outcome::to_json).collect::<Vec<_>>(),
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let errors: u64 = outcomes.iter().map(|o| o.errors).sum();
    if errors > 0 {
        eprintln!("{errors} errors");
        std::process::exit(2);
    }
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads)
            .enable_all()
            .build()?
    };
    rt.block_on(run(cli))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_total_results_and_cursor() {
        assert_eq!(total_results(br#"{"totalResults": 12,"x":1}"#), Some(12));
        assert_eq!(total_results(br#"{"totalResults":0}"#), Some(0));
        assert_eq!(
            string_field(br#"{"a":1,"nextCursor":"abc_-"}"#, "nextCursor").as_deref(),
            Some("abc_-")
        );
        assert_eq!(string_field(br#"{"a":1}"#, "nextCursor"), None);
    }

    #[test]
    fn parses_tenant_urls() -> Result<()> {
        let t = Target::parse("http://127.0.0.1:8080/scim/default/v2/", "x")?;
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.path("/Users"), "/scim/default/v2/Users");
        assert!(Target::parse("https://h/x", "x").is_err());
        Ok(())
    }
}
