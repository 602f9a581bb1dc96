//! The provisioning activity log: list, chart and CSV.

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
    fn range_name(&self) -> &'static str {
        match self.range.as_str() {
            "1h" => "the last hour",
            "7d" => "the last 7 days",
            "30d" => "the last 30 days",
            _ => "the last 24 hours",
        }
    }
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
    /// The page of the change's events (`ActivityEvent::change`).
    pub events_link: Option<String>,
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
    /// Events matching the filters in the range (what the list pages through).
    total: usize,
    total_capped: bool,
    range_name: &'static str,
}

/// The most events the chart and the count read.
const CHART_MAX_EVENTS: usize = 50_000;

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
    let events_link = e.change.as_deref().map(|c| {
        format!(
            "/console/t/{tenant}/activity/changes/{}?at={}",
            urlencode(c),
            urlencode(&e.time)
        )
    });
    EventRow {
        events_link,
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

/// A bucket's label, its count per series, and its total.
type ChartRow = (String, Vec<u64>, u64);

/// The chart of a range: its bars, its data table, the unit of a bucket
/// and the highest bucket's total.
pub struct Chart {
    pub bars: Vec<Bar>,
    pub rows: Vec<ChartRow>,
    pub unit: &'static str,
    pub max: u64,
}

/// The bucket of a range: a minute for the last hour, an hour up to a day,
/// a day beyond.
fn bucket(range_secs: u64) -> (i64, &'static str) {
    match range_secs {
        0..=3600 => (60, "minute"),
        3601..=86_400 => (3600, "hour"),
        _ => (86_400, "day"),
    }
}

/// Buckets the events of `[now - range, now]` per action, with failures as
/// their own series. Buckets are aligned to their unit (UTC) from the one
/// holding the range's start to the one holding `now`, so every event of
/// the range is in exactly one bucket and the totals add up to the list's
/// count. Labels carry the date when the range spans more than one day.
fn chart(events: &[ActivityEvent], range_secs: u64, now: time::OffsetDateTime) -> Chart {
    let (size, unit) = bucket(range_secs);
    let now_s = now.unix_timestamp();
    let start_s = now_s.saturating_sub(i64::try_from(range_secs).unwrap_or(i64::MAX));
    let first = start_s.div_euclid(size);
    let last = now_s.div_euclid(size);
    let n = usize::try_from(last - first + 1).unwrap_or(1).clamp(1, 2000);
    // Series: one per action, then failures.
    let mut series: Vec<&str> = ACTIONS.to_vec();
    series.push("failure");
    let mut counts: Vec<Vec<u64>> = vec![vec![0; series.len()]; n];
    for e in events {
        let Some(t) = super::parse_time(&e.time) else { continue };
        // Clamped: an event written while the page was being made belongs
        // to the last bucket, one on the range's first instant to the first.
        let i = usize::try_from(t.unix_timestamp().div_euclid(size) - first)
            .unwrap_or(0)
            .min(n - 1);
        let idx = if e.outcome == "failure" {
            series.len() - 1
        } else {
            ACTIONS.iter().position(|a| *a == e.action).unwrap_or(1)
        };
        if let Some(c) = counts.get_mut(i).and_then(|row| row.get_mut(idx)) {
            *c += 1;
        }
    }
    let at = |i: usize| {
        let secs = (first + i64::try_from(i).unwrap_or(0)) * size;
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(now)
    };
    let one_day = at(0).date() == at(n - 1).date();
    let label = |t: time::OffsetDateTime| {
        let date = format!("{}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day());
        let clock = format!("{:02}:{:02}", t.hour(), t.minute());
        match (unit, one_day) {
            ("day", _) => date,
            (_, true) => clock,
            (_, false) => format!("{date} {clock}"),
        }
    };
    let max = counts.iter().map(|v| v.iter().sum::<u64>()).max().unwrap_or(0).max(1);
    let (width, height) = (720u32, 140u32);
    let slot = width / u32::try_from(n).unwrap_or(1).max(1);
    let mut bars = Vec::new();
    let mut rows = Vec::new();
    for (i, v) in counts.iter().enumerate() {
        let total: u64 = v.iter().sum();
        let mut y = height;
        let mut segments = Vec::new();
        for (c, name) in v.iter().zip(&series) {
            if *c == 0 {
                continue;
            }
            let h = u32::try_from((*c * u64::from(height)) / max).unwrap_or(height).max(1);
            y = y.saturating_sub(h);
            segments.push((y, h, format!("s-{name}")));
        }
        let label = label(at(i));
        bars.push(Bar {
            x: u32::try_from(i).unwrap_or(0) * slot + 1,
            w: slot.saturating_sub(2).max(1),
            title: format!("{label}: {total} event{}", if total == 1 { "" } else { "s" }),
            label: label.clone(),
            segments,
        });
        rows.push((label, v.clone(), total));
    }
    Chart { bars, rows, unit, max }
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
    let mut chart_q = p.query(CHART_MAX_EVENTS);
    chart_q.before_id = None;
    let now = time::OffsetDateTime::now_utc();
    let all = store.list_activity(t.id, chart_q).await?;
    let total = all.len();
    let Chart {
        bars,
        rows: chart_rows,
        unit: chart_unit,
        max: chart_max,
    } = chart(&all, p.range_secs(), now);
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
        total,
        total_capped: total >= CHART_MAX_EVENTS,
        range_name: p.range_name(),
        p,
    }))
}

#[derive(Deserialize)]
pub struct ChangeParams {
    /// The activity entry's time (the lookup's window).
    #[serde(default)]
    at: String,
}

/// An event of a change, as its page shows it.
pub struct ChangeEventRow {
    pub seq: String,
    pub time: String,
    pub event_type: String,
    pub id: String,
    pub data: String,
}

#[derive(Template)]
#[template(path = "change_events.html")]
struct ChangeEventsPage {
    c: Chrome,
    at: String,
    events: Vec<ChangeEventRow>,
}

/// The events a change made (linked from each entry of the activity
/// page): what the host application was told, by the events API and its
/// webhooks.
pub async fn change_events(
    State(console): Shared,
    a: Authed,
    Path((tenant, change)): Path<(String, String)>,
    Query(p): Query<ChangeParams>,
) -> PageResult {
    let t = tenant_for(&console, &a, &tenant).await?;
    let events = console.app.change_events(&t, &change, &p.at).await?;
    let events = events
        .into_iter()
        .map(|e| ChangeEventRow {
            // Not numbered yet (PostgreSQL numbers events when first read).
            seq: if e.seq > 0 { e.seq.to_string() } else { "pending".into() },
            time: when(&e.time),
            event_type: e.event_type,
            id: e.id,
            data: serde_json::to_string_pretty(&e.data).unwrap_or_default(),
        })
        .collect();
    Ok(render(&ChangeEventsPage {
        c: chrome(&a, &t.name, "activity"),
        at: when(&p.at),
        events,
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn at(s: &str) -> time::OffsetDateTime {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
    }

    fn event(time: &str, action: &str, outcome: &str) -> ActivityEvent {
        ActivityEvent {
            id: 0,
            tenant_id: Default::default(),
            time: time.into(),
            token_id: None,
            token_label: None,
            action: action.into(),
            resource_type: None,
            resource_id: None,
            name: None,
            changes: Value::Null,
            outcome: outcome.into(),
            status: 200,
            error: None,
            method: "POST".into(),
            path: "/Users".into(),
            change: None,
        }
    }

    /// Each range: its unit, its number of buckets, its first and last
    /// labels (with dates when it spans days), and that every event of the
    /// range is counted once.
    #[test]
    fn buckets_and_labels_per_range() {
        // (range, now, unit, buckets, first label, last label)
        let cases: &[(u64, &str, &str, usize, &str, &str)] = &[
            (3600, "2026-12-01T14:30:10Z", "minute", 61, "13:30", "14:30"),
            (3600, "2026-12-01T14:00:00Z", "minute", 61, "13:00", "14:00"),
            (
                3600,
                "2026-12-01T00:20:00Z",
                "minute",
                61,
                "2026-11-30 23:20",
                "2026-12-01 00:20",
            ),
            (
                86_400,
                "2026-12-01T14:30:00Z",
                "hour",
                25,
                "2026-11-30 14:00",
                "2026-12-01 14:00",
            ),
            (7 * 86_400, "2026-12-01T14:30:00Z", "day", 8, "2026-11-24", "2026-12-01"),
            (
                30 * 86_400,
                "2026-12-01T14:30:00Z",
                "day",
                31,
                "2026-11-01",
                "2026-12-01",
            ),
        ];
        for (range, now, unit, n, first, last) in cases {
            let now = at(now);
            let start = now - time::Duration::seconds(i64::try_from(*range).unwrap());
            let fmt = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap();
            // The range's first and last instants, its middle, a failure.
            let events = vec![
                event(&fmt(start), "create", "success"),
                event(&fmt(now), "update", "success"),
                event(&fmt(start + (now - start) / 2), "delete", "success"),
                event(&fmt(now - time::Duration::seconds(1)), "create", "failure"),
            ];
            let c = chart(&events, *range, now);
            assert_eq!(c.unit, *unit, "{range}");
            assert_eq!(c.rows.len(), *n, "{range} at {now}");
            assert_eq!(c.bars.len(), *n);
            assert_eq!(c.rows.first().unwrap().0, *first, "{range} at {now}");
            assert_eq!(c.rows.last().unwrap().0, *last, "{range} at {now}");
            let total: u64 = c.rows.iter().map(|r| r.2).sum();
            assert_eq!(total, 4, "{range} at {now}: every event once");
            let failures: u64 = c.rows.iter().map(|r| r.1[ACTIONS.len()]).sum();
            assert_eq!(failures, 1);
        }
    }
}
