//! The provisioning activity log: list, chart and CSV.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use scimitar_store::{ActivityEvent, ActivityQuery};
use serde::Deserialize;
use serde_json::Value;

use super::{Chrome, PAGE_SIZE, Shared, chrome, tenant_for, urlencode, when};
use crate::auth::Authed;
use crate::error::PageResult;
use crate::render;

const ACTIONS: &[&str] = &[
    "create",
    "update",
    "disable",
    "enable",
    "delete",
    "add-member",
    "remove-member",
];

#[derive(Deserialize, Default)]
pub struct ActivityParams {
    #[serde(default)]
    range: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    q: String,
    before: Option<i64>,
}

impl ActivityParams {
    fn range_secs(&self) -> u64 {
        match self.range.as_str() {
            "1h" => 3600,
            "7d" => 7 * 86_400,
            "30d" => 30 * 86_400,
            _ => 86_400,
        }
    }
    fn query(&self, limit: usize) -> ActivityQuery {
        let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
        ActivityQuery {
            since: Some(crate::time_ago(std::time::Duration::from_secs(self.range_secs()))),
            until: None,
            action: opt(&self.action),
            outcome: opt(&self.outcome),
            text: opt(&self.q),
            before_id: self.before,
            limit,
        }
    }
    fn query_string(&self) -> String {
        format!(
            "range={}&action={}&outcome={}&q={}",
            urlencode(&self.range),
            urlencode(&self.action),
            urlencode(&self.outcome),
            urlencode(&self.q)
        )
    }
}

pub struct Change {
    pub attribute: String,
    pub old: String,
    pub new: String,
}

pub struct EventRow {
    pub time: String,
    pub action: String,
    pub resource_type: String,
    pub name: String,
    pub link: Option<String>,
    pub outcome: String,
    pub status: u16,
    pub error: String,
    pub request: String,
    pub token: String,
    pub changes: Vec<Change>,
}

pub struct Bar {
    pub x: u32,
    pub w: u32,
    pub label: String,
    pub title: String,
    pub segments: Vec<(u32, u32, String)>,
}

#[derive(Template)]
#[template(path = "activity.html")]
struct ActivityPage {
    c: Chrome,
    p: ActivityParams,
    actions: Vec<&'static str>,
    rows: Vec<EventRow>,
    next: Option<String>,
    csv: String,
    bars: Vec<Bar>,
    chart_rows: Vec<ChartRow>,
    chart_unit: &'static str,
    chart_max: u64,
}

fn short(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn event_row(tenant: &str, e: ActivityEvent) -> EventRow {
    let changes = e
        .changes
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| Change {
                    attribute: short(&c["attribute"]),
                    old: short(&c["old"]),
                    new: short(&c["new"]),
                })
                .collect()
        })
        .unwrap_or_default();
    let link = match (e.resource_type.as_deref(), e.resource_id.as_deref(), e.action.as_str()) {
        (_, _, "delete") => None,
        (Some("User"), Some(id), _) => Some(format!("/console/t/{tenant}/users/{}", urlencode(id))),
        (Some("Group"), Some(id), _) => Some(format!("/console/t/{tenant}/groups/{}", urlencode(id))),
        _ => None,
    };
    EventRow {
        time: when(&e.time),
        action: e.action,
        resource_type: e.resource_type.unwrap_or_default(),
        name: e.name.or(e.resource_id).unwrap_or_default(),
        link,
        outcome: e.outcome,
        status: e.status,
        error: e.error.unwrap_or_default(),
        request: format!("{} {}", e.method, e.path),
        token: e.token_label.unwrap_or_default(),
        changes,
    }
}

/// Buckets events by hour (ranges up to a day) or by day, per action,
/// with failures as their own series.
/// A bucket's label, its count per series, and its total.
type ChartRow = (String, Vec<u64>, u64);

fn chart(events: &[ActivityEvent], range_secs: u64) -> (Vec<Bar>, Vec<ChartRow>, &'static str, u64) {
    let hourly = range_secs <= 86_400;
    let key_len = if hourly { 13 } else { 10 };
    let n = if hourly {
        (range_secs / 3600) as usize
    } else {
        (range_secs / 86_400) as usize
    };
    let step = if hourly { 3600 } else { 86_400 };
    let keys: Vec<String> = (0..n)
        .rev()
        .map(|i| {
            let t = crate::time_ago(std::time::Duration::from_secs(i as u64 * step));
            t.get(..key_len).unwrap_or(&t).to_string()
        })
        .collect();
    // Series: one per action, then failures.
    let mut series: Vec<&str> = ACTIONS.to_vec();
    series.push("failure");
    let mut counts: BTreeMap<String, Vec<u64>> = keys.iter().map(|k| (k.clone(), vec![0; series.len()])).collect();
    for e in events {
        let Some(row) = e.time.get(..key_len).and_then(|k| counts.get_mut(k)) else {
            continue;
        };
        let idx = if e.outcome == "failure" {
            series.len() - 1
        } else {
            ACTIONS.iter().position(|a| *a == e.action).unwrap_or(1)
        };
        if let Some(c) = row.get_mut(idx) {
            *c += 1;
        }
    }
    let max = counts.values().map(|v| v.iter().sum::<u64>()).max().unwrap_or(0).max(1);
    let (width, height) = (720u32, 140u32);
    let slot = width / (n.max(1) as u32);
    let mut bars = Vec::new();
    let mut rows = Vec::new();
    for (i, (k, v)) in counts.iter().enumerate() {
        let total: u64 = v.iter().sum();
        let mut y = height;
        let mut segments = Vec::new();
        for (c, name) in v.iter().zip(&series) {
            if *c == 0 {
                continue;
            }
            let h = ((*c * u64::from(height)) / max).max(1) as u32;
            y = y.saturating_sub(h);
            segments.push((y, h, format!("s-{name}")));
        }
        let label = if hourly {
            format!("{}:00", k.get(11..13).unwrap_or_default())
        } else {
            k.get(5..10).unwrap_or_default().to_string()
        };
        bars.push(Bar {
            x: i as u32 * slot + 1,
            w: slot.saturating_sub(2).max(1),
            title: format!("{label}: {total} events"),
            label: label.clone(),
            segments,
        });
        rows.push((label, v.clone(), total));
    }
    (bars, rows, if hourly { "hour" } else { "day" }, max)
}

pub async fn activity(
    State(console): Shared,
    a: Authed,
    Path(tenant): Path<String>,
    Query(p): Query<ActivityParams>,
) -> PageResult {
    let t = tenant_for(&console, &a, &tenant).await?;
    let store = &console.app.store;
    let mut events = store.list_activity(t.id, p.query(PAGE_SIZE + 1)).await?;
    let more = events.len() > PAGE_SIZE;
    events.truncate(PAGE_SIZE);
    let base = format!("/console/t/{}/activity", t.name);
    let next = events
        .last()
        .filter(|_| more)
        .map(|e| format!("{base}?{}&before={}", p.query_string(), e.id));
    let mut chart_q = p.query(50_000);
    chart_q.before_id = None;
    let all = store.list_activity(t.id, chart_q).await?;
    let (bars, chart_rows, chart_unit, chart_max) = chart(&all, p.range_secs());
    let csv = format!("/console/t/{}/activity.csv?{}", t.name, p.query_string());
    Ok(render(&ActivityPage {
        c: chrome(&a, &t.name, "activity"),
        actions: ACTIONS.to_vec(),
        rows: events.into_iter().map(|e| event_row(&t.name, e)).collect(),
        next,
        csv,
        bars,
        chart_rows,
        chart_unit,
        chart_max,
        p,
    }))
}

/// A CSV cell: quoted, and with a leading quote when a spreadsheet would
/// read it as a formula.
pub(crate) fn cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub async fn activity_csv(
    State(console): Shared,
    a: Authed,
    Path(tenant): Path<String>,
    Query(p): Query<ActivityParams>,
) -> PageResult {
    let t = tenant_for(&console, &a, &tenant).await?;
    let events = console.app.store.list_activity(t.id, p.query(100_000)).await?;
    let mut out =
        String::from("time,action,outcome,status,resource_type,resource_id,name,token,method,path,error,changes\r\n");
    for e in events {
        let fields = [
            e.time,
            e.action,
            e.outcome,
            e.status.to_string(),
            e.resource_type.unwrap_or_default(),
            e.resource_id.unwrap_or_default(),
            e.name.unwrap_or_default(),
            e.token_label.unwrap_or_default(),
            e.method,
            e.path,
            e.error.unwrap_or_default(),
            e.changes.to_string(),
        ];
        out.push_str(&fields.iter().map(|f| cell(f)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"activity-{}.csv\"", t.name),
            ),
        ],
        out,
    )
        .into_response())
}
