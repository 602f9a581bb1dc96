//! A tenant's overview: counts, recent activity, tokens.

use askama::Template;
use axum::extract::{Path, State};
use scimitar_store::{ActivityEvent, ActivityQuery, Kind};

use super::directory::{active_is, count};
use super::{Chrome, Shared, ago, chrome, tenant_for, when};
use crate::auth::Authed;
use crate::error::PageResult;
use crate::render;

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    c: Chrome,
    users: u64,
    active: u64,
    disabled: u64,
    groups: u64,
    writes_24h: usize,
    failures_24h: usize,
    reads_24h: u64,
    last_success: Option<(String, String)>,
    last_failure: Option<(String, String, String)>,
    last_request: Option<(String, String)>,
    active_tokens: usize,
    revoked_tokens: usize,
}

pub async fn overview(State(console): Shared, a: Authed, Path(tenant): Path<String>) -> PageResult {
    let t = tenant_for(&console, &a, &tenant).await?;
    let store = &console.app.store;
    let users = count(&console, &t, Kind::User, None).await?;
    let active = count(&console, &t, Kind::User, Some(active_is(true))).await?;
    let disabled = count(&console, &t, Kind::User, Some(active_is(false))).await?;
    let groups = count(&console, &t, Kind::Group, None).await?;
    let since = crate::time_ago(std::time::Duration::from_secs(86_400));
    let day = store
        .list_activity(
            t.id,
            ActivityQuery {
                since: Some(since.clone()),
                limit: 100_000,
                ..Default::default()
            },
        )
        .await?;
    let failures_24h = day.iter().filter(|e| e.outcome == "failure").count();
    let reads_24h = store
        .read_counts(t.id, since.get(..13).unwrap_or_default())
        .await?
        .iter()
        .map(|r| r.count)
        .sum();
    let last = |outcome: &'static str| ActivityQuery {
        outcome: Some(outcome.into()),
        limit: 1,
        ..Default::default()
    };
    let last_success = store
        .list_activity(t.id, last("success"))
        .await?
        .into_iter()
        .next()
        .map(|e| (when(&e.time), describe(&e)));
    let last_failure = store
        .list_activity(t.id, last("failure"))
        .await?
        .into_iter()
        .next()
        .map(|e| (when(&e.time), describe(&e), e.error.unwrap_or_default()));
    let tokens = store.list_tokens(t.id).await?;
    let last_used = tokens.iter().filter_map(|k| k.last_used.clone()).max();
    let page = OverviewPage {
        c: chrome(&a, &t.name, "overview"),
        users,
        active,
        disabled,
        groups,
        writes_24h: day.len(),
        failures_24h,
        reads_24h,
        last_success,
        last_failure,
        last_request: last_used.map(|l| (when(&l), ago(&l))),
        active_tokens: tokens
            .iter()
            .filter(|k| k.revoked.is_none() && k.scope == "scim")
            .count(),
        revoked_tokens: tokens.iter().filter(|k| k.revoked.is_some()).count(),
    };
    Ok(render(&page))
}

fn describe(e: &ActivityEvent) -> String {
    format!(
        "{} {} {}",
        e.action,
        e.resource_type.as_deref().unwrap_or(""),
        e.name.as_deref().or(e.resource_id.as_deref()).unwrap_or("")
    )
    .trim()
    .to_string()
}
