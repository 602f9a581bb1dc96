//! `scimitar events`: a tenant's change events from the database, as the
//! events API gives them (`docs/events.md`); `--follow` waits for more.

use std::time::Duration;

use anyhow::Result;
use scimitar_app::App;
use scimitar_app::events::{self as ev, EventQuery};
use serde_json::{Value, json};

/// What `scimitar events` was asked.
pub struct EventsArgs {
    pub tenant: String,
    pub after: Option<String>,
    pub types: Option<String>,
    pub limit: usize,
    pub follow: bool,
    pub json: bool,
}

/// One line of text: sequence number, time, type, subject.
fn text_line(e: &scimitar_store::Event) -> String {
    let d = &e.data;
    let s = |v: &Value| v.as_str().map(str::to_string);
    let subject = if let Some(user) = d.get("user").and_then(|u| u.get("id")).and_then(Value::as_str) {
        format!(
            "{} ← user {user}",
            s(&d["displayName"]).unwrap_or_else(|| s(&d["id"]).unwrap_or_default())
        )
    } else if let Some(t) = d.get("token") {
        format!(
            "token {} {}",
            s(&t["id"]).unwrap_or_default(),
            s(&t["label"]).unwrap_or_default()
        )
    } else {
        s(&d["userName"])
            .or_else(|| s(&d["displayName"]))
            .or_else(|| s(&d["id"]))
            .unwrap_or_default()
    };
    let changed = d
        .get("changed")
        .and_then(Value::as_array)
        .map(|a| {
            let names: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
            format!("\t{}", names.join(","))
        })
        .unwrap_or_default();
    format!("{}\t{}\t{}\t{}{}", e.seq, e.time, e.event_type, subject, changed)
}

pub async fn run(app: &App, args: EventsArgs) -> Result<()> {
    let usage = |e: scimitar_protocol::ScimError| crate::usage(e.detail);
    let tenant = app
        .tenant(&args.tenant)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
    let mut after = args
        .after
        .as_deref()
        .map(ev::parse_cursor)
        .transpose()
        .map_err(usage)?
        .unwrap_or(0);
    let types = args
        .types
        .as_deref()
        .map(ev::parse_types)
        .transpose()
        .map_err(usage)?
        .unwrap_or_default();
    if args.limit == 0 || args.limit > ev::MAX_LIMIT {
        return Err(crate::usage(format!("--limit must be 1 to {}", ev::MAX_LIMIT)));
    }
    loop {
        let query = EventQuery {
            after,
            limit: args.limit,
            types: types.clone(),
            wait: if args.follow {
                Duration::from_secs(30)
            } else {
                Duration::ZERO
            },
        };
        let page = app
            .read_events(&tenant, query)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
        if args.json && !args.follow {
            let events: Vec<Value> = page.events.iter().map(|e| ev::event_json(&tenant.name, e)).collect();
            out!("{}", json!({"events": events, "next": page.next}));
            return Ok(());
        }
        for e in &page.events {
            if args.json {
                // One event per line, with the cursor to resume after it.
                let mut v = ev::event_json(&tenant.name, e);
                if let Some(o) = v.as_object_mut() {
                    o.insert("cursor".into(), Value::String(ev::cursor(e.seq)));
                }
                out!("{v}");
            } else {
                out!("{}", text_line(e));
            }
        }
        after = page.next_seq;
        if !args.follow {
            eprintln!("next: {}", page.next);
            return Ok(());
        }
    }
}
