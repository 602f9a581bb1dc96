//! The provisioning activity log: the application's side of Entra's
//! provisioning logs. Every write, and every write that failed, is recorded
//! per tenant; reads are counted per hour instead.

use std::collections::HashMap;
use std::sync::Mutex;

use scimitar_protocol::patch::MemberOp;
use scimitar_store::{ActivityEvent, Kind, Store, TenantId};
use serde_json::{Map, Value, json};

use crate::Actor;

/// Reads are counted in memory and flushed to the store in batches.
#[derive(Default)]
pub(crate) struct ReadCounter {
    pending: Mutex<HashMap<(TenantId, String), u64>>,
}

impl ReadCounter {
    pub(crate) fn add(&self, tenant: TenantId) {
        let hour: String = scimitar_store::now_utc().chars().take(13).collect();
        if let Ok(mut p) = self.pending.lock() {
            *p.entry((tenant, hour)).or_insert(0) += 1;
        }
    }

    pub(crate) async fn flush(&self, store: &dyn Store) {
        let batch: Vec<((TenantId, String), u64)> = match self.pending.lock() {
            Ok(mut p) => p.drain().collect(),
            Err(_) => return,
        };
        for ((tenant, hour), n) in batch {
            if let Err(e) = store.count_reads(tenant, &hour, n).await {
                tracing::warn!(error = %e, "could not record read counts");
            }
        }
    }
}

/// The action of a successful write, from what it changed.
pub(crate) fn action(
    kind: Kind,
    method: &str,
    old: Option<&Map<String, Value>>,
    new: Option<&Map<String, Value>>,
    members: &[MemberOp],
) -> &'static str {
    match (method, old, new) {
        ("POST", _, _) => "create",
        ("DELETE", _, _) => "delete",
        (_, Some(o), Some(n)) => {
            let active = |m: &Map<String, Value>| m.get("active").and_then(Value::as_bool);
            if kind == Kind::User && active(o) != Some(false) && active(n) == Some(false) {
                return "disable";
            }
            if kind == Kind::User && active(o) == Some(false) && active(n) != Some(false) {
                return "enable";
            }
            if o == n && !members.is_empty() {
                let adds = members.iter().any(|m| matches!(m, MemberOp::Add(_)));
                let removes = members
                    .iter()
                    .any(|m| matches!(m, MemberOp::Remove(_) | MemberOp::Clear));
                return match (adds, removes) {
                    (true, false) => "add-member",
                    (false, true) => "remove-member",
                    _ => "update-members",
                };
            }
            "update"
        }
        _ => "update",
    }
}

/// Member changes as activity entries.
pub(crate) fn member_changes(ops: &[MemberOp]) -> Vec<Value> {
    let mut out = Vec::new();
    for op in ops {
        match op {
            MemberOp::Add(refs) => {
                let ids: Vec<&str> = refs.iter().map(|r| r.value.as_str()).collect();
                out.push(
                    json!({"attribute": "members", "old": null, "new": scimitar_protocol::diff::shorten(&json!(ids))}),
                );
            }
            MemberOp::Remove(ids) => {
                out.push(
                    json!({"attribute": "members", "old": scimitar_protocol::diff::shorten(&json!(ids)), "new": null}),
                );
            }
            MemberOp::Clear => out.push(json!({"attribute": "members", "old": "all members", "new": null})),
        }
    }
    out
}

/// What a write did (or failed to do), for its log entry.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outcome<'a> {
    pub action: &'a str,
    pub kind: Option<Kind>,
    pub id: Option<&'a str>,
    /// userName or displayName.
    pub name: Option<&'a str>,
    pub changes: Vec<Value>,
    pub status: u16,
    pub error: Option<&'a str>,
}

/// The request a log entry describes.
pub(crate) struct Request<'a> {
    pub tenant: TenantId,
    pub actor: &'a Actor,
    pub method: &'a str,
    pub path: &'a str,
}

/// The log entry of a write.
pub(crate) fn event(r: &Request<'_>, o: Outcome<'_>) -> ActivityEvent {
    let (token_id, token_label) = r.actor.activity_token();
    ActivityEvent {
        id: 0,
        tenant_id: r.tenant,
        time: scimitar_store::now_utc(),
        token_id,
        token_label,
        action: o.action.to_string(),
        resource_type: o.kind.map(|k| k.as_str().to_string()),
        resource_id: o.id.map(str::to_string),
        name: o.name.map(str::to_string),
        changes: Value::Array(o.changes),
        outcome: if o.status < 400 { "success" } else { "failure" }.to_string(),
        status: o.status,
        error: o.error.map(str::to_string),
        method: r.method.to_string(),
        path: r.path.chars().take(500).collect(),
        change: None,
    }
}

/// Records an entry; a failure to record is logged, never the request's.
pub(crate) async fn record(store: &dyn Store, event: ActivityEvent) {
    if let Err(err) = store.record_activity(event).await {
        tracing::error!(error = %err, "could not record provisioning activity");
    }
}

/// userName or displayName of a document.
pub(crate) fn name_of(doc: &Map<String, Value>) -> Option<&str> {
    doc.get("userName")
        .or_else(|| doc.get("displayName"))
        .and_then(Value::as_str)
}
