//! Bulk (RFC 7644 §3.7): operations run in dependency order so that
//! `bulkId:` references may point forward (a group whose members are users
//! created later in the same request); a cycle is reported per operation.
//! Each operation is atomic on its own, like a single request.

use std::collections::{HashMap, HashSet};

use scimitar_protocol::ScimError;
use scimitar_protocol::output;
use scimitar_protocol::schema::urn;
use scimitar_store::Kind;
use serde_json::{Map, Value, json};

use scimitar_app::{Ops, Via};

struct Op {
    index: usize,
    method: String,
    bulk_id: Option<String>,
    version: Option<u64>,
    path: String,
    data: Option<Value>,
    deps: HashSet<String>,
}

fn collect_refs(v: &Value, out: &mut HashSet<String>) {
    match v {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix("bulkId:") {
                out.insert(id.to_string());
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

fn substitute(v: &mut Value, ids: &HashMap<String, String>) {
    match v {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix("bulkId:").and_then(|b| ids.get(b)) {
                *s = id.clone();
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| substitute(x, ids)),
        Value::Object(o) => o.values_mut().for_each(|x| substitute(x, ids)),
        _ => {}
    }
}

fn parse(body: &Value, max_ops: usize) -> Result<(Vec<Op>, Option<usize>), ScimError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("the bulk request must be a JSON object"))?;
    let field = |name: &str| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v);
    if let Some(s) = field("schemas") {
        let ok = s.as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x.as_str().is_some_and(|x| x.eq_ignore_ascii_case(urn::BULK_REQUEST)))
        });
        if !ok {
            return Err(ScimError::invalid_syntax(format!(
                "'schemas' must contain {}",
                urn::BULK_REQUEST
            )));
        }
    }
    let fail_on_errors = match field("failOnErrors") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            _ => return Err(ScimError::invalid_value("failOnErrors must be a positive integer")),
        },
    };
    let ops = field("Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("the bulk request needs an 'Operations' array"))?;
    if ops.len() > max_ops {
        return Err(ScimError::payload_too_large(format!(
            "the bulk request has {} operations; the maximum is {max_ops}",
            ops.len()
        )));
    }
    let mut out = Vec::with_capacity(ops.len());
    let mut bulk_ids = HashSet::new();
    for (index, op) in ops.iter().enumerate() {
        let o = op
            .as_object()
            .ok_or_else(|| ScimError::invalid_syntax(format!("operation {index} is not an object")))?;
        let f = |name: &str| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v);
        let method = f("method")
            .and_then(Value::as_str)
            .map(str::to_ascii_uppercase)
            .ok_or_else(|| ScimError::invalid_syntax(format!("operation {index} has no 'method'")))?;
        if !["POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
            return Err(ScimError::invalid_value(format!(
                "operation {index}: method '{method}' is not POST, PUT, PATCH or DELETE"
            )));
        }
        let path = f("path")
            .and_then(Value::as_str)
            .ok_or_else(|| ScimError::invalid_syntax(format!("operation {index} has no 'path'")))?
            .to_string();
        let bulk_id = f("bulkId").and_then(Value::as_str).map(str::to_string);
        if method == "POST" && bulk_id.is_none() {
            return Err(ScimError::invalid_value(format!(
                "operation {index}: POST needs a 'bulkId'"
            )));
        }
        if let Some(b) = &bulk_id
            && !bulk_ids.insert(b.clone())
        {
            return Err(ScimError::invalid_value(format!("bulkId '{b}' is used twice")));
        }
        let version = f("version")
            .and_then(Value::as_str)
            .and_then(crate::scim::strong_version);
        let data = f("data").cloned();
        if method != "DELETE" && data.is_none() {
            return Err(ScimError::invalid_value(format!(
                "operation {index}: {method} needs 'data'"
            )));
        }
        let mut deps = HashSet::new();
        if let Some(d) = &data {
            collect_refs(d, &mut deps);
        }
        collect_refs(
            &Value::String(path.rsplit('/').next().unwrap_or_default().to_string()),
            &mut deps,
        );
        out.push(Op {
            index,
            method,
            bulk_id,
            version,
            path,
            data,
            deps,
        });
    }
    Ok((out, fail_on_errors))
}

/// Runs a Bulk request's operations as `tenant`'s client; `max_operations`
/// is the advertised limit.
pub async fn run(tenant: &Ops, max_operations: usize, body: &Value) -> Result<Value, ScimError> {
    let (ops, fail_on_errors) = parse(body, max_operations)?;
    let mut results: Vec<Option<Value>> = vec![None; ops.len()];
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut failed_ids: HashSet<String> = HashSet::new();
    let mut pending: Vec<&Op> = ops.iter().collect();
    let mut errors = 0usize;
    'outer: while !pending.is_empty() {
        let mut progressed = false;
        let mut still = Vec::new();
        for op in pending {
            if fail_on_errors.is_some_and(|n| errors >= n) {
                break 'outer;
            }
            if let Some(bad) = op.deps.iter().find(|d| failed_ids.contains(*d)) {
                let e = ScimError::new(
                    409,
                    Some(scimitar_protocol::ScimType::InvalidValue),
                    format!("bulkId:{bad} refers to an operation that failed"),
                );
                set(&mut results, op.index, result_error(op, &e));
                if let Some(b) = &op.bulk_id {
                    failed_ids.insert(b.clone());
                }
                errors += 1;
                progressed = true;
                continue;
            }
            if !op.deps.iter().all(|d| ids.contains_key(d)) {
                // Unknown bulkIds (never defined) fail at once.
                if let Some(missing) = op
                    .deps
                    .iter()
                    .find(|d| !ops.iter().any(|o| o.bulk_id.as_deref() == Some(d.as_str())))
                {
                    let e = ScimError::invalid_value(format!("bulkId:{missing} is not defined in this request"));
                    set(&mut results, op.index, result_error(op, &e));
                    if let Some(b) = &op.bulk_id {
                        failed_ids.insert(b.clone());
                    }
                    errors += 1;
                    progressed = true;
                    continue;
                }
                still.push(op);
                continue;
            }
            progressed = true;
            match execute(tenant, op, &ids).await {
                Ok((value, new_id)) => {
                    if let (Some(b), Some(id)) = (&op.bulk_id, new_id) {
                        ids.insert(b.clone(), id);
                    }
                    set(&mut results, op.index, value);
                }
                Err(e) => {
                    set(&mut results, op.index, result_error(op, &e));
                    if let Some(b) = &op.bulk_id {
                        failed_ids.insert(b.clone());
                    }
                    errors += 1;
                }
            }
        }
        if !progressed {
            // Every remaining operation waits for another: a cycle.
            for op in &still {
                let e = ScimError::new(
                    409,
                    Some(scimitar_protocol::ScimType::InvalidValue),
                    "circular bulkId references: this operation and the ones it refers to depend on each other",
                );
                set(&mut results, op.index, result_error(op, &e));
            }
            break;
        }
        pending = still;
    }
    let operations: Vec<Value> = results.into_iter().flatten().collect();
    Ok(json!({"schemas": [urn::BULK_RESPONSE], "Operations": operations}))
}

/// Records the result of the operation at `index` (always in range: one
/// slot per operation).
fn set(results: &mut [Option<Value>], index: usize, value: Value) {
    if let Some(slot) = results.get_mut(index) {
        *slot = Some(value);
    }
}

/// The start of an operation's result: its method and bulkId.
fn result_entry(op: &Op) -> Map<String, Value> {
    let mut entry = Map::new();
    entry.insert("method".into(), json!(op.method));
    if let Some(b) = &op.bulk_id {
        entry.insert("bulkId".into(), json!(b));
    }
    entry
}

fn result_error(op: &Op, e: &ScimError) -> Value {
    let mut v = result_entry(op);
    v.insert("status".into(), json!(e.status.to_string()));
    v.insert("response".into(), e.to_json());
    Value::Object(v)
}

/// Runs one operation; returns its result entry and the id it created.
async fn execute(tenant: &Ops, op: &Op, ids: &HashMap<String, String>) -> Result<(Value, Option<String>), ScimError> {
    let mut path = op.path.clone();
    if let Some(last) = path
        .rsplit('/')
        .next()
        .and_then(|l| l.strip_prefix("bulkId:"))
        .and_then(|b| ids.get(b))
    {
        let cut = path.rfind('/').unwrap_or(0);
        path = format!("{}/{last}", &path[..cut]);
    }
    let mut data = op.data.clone().unwrap_or(Value::Null);
    substitute(&mut data, ids);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (rt_name, id) = match segments.as_slice() {
        [t] => (*t, None),
        [t, id] => (*t, Some(*id)),
        _ => return Err(ScimError::invalid_path(format!("invalid bulk path '{path}'"))),
    };
    let rt_name = match rt_name.to_ascii_lowercase().as_str() {
        "users" => "User",
        "groups" => "Group",
        _ => {
            return Err(ScimError::invalid_path(format!(
                "unknown resource endpoint in '{path}'"
            )));
        }
    };
    let rt = tenant
        .rt(rt_name)
        .ok_or_else(|| ScimError::invalid_path("unknown resource type"))?;
    let kind = Kind::of(&rt).ok_or_else(|| ScimError::invalid_path("unknown resource type"))?;
    let mut entry = result_entry(op);
    let log_path = format!("/Bulk{path}");
    let via = Via {
        method: &op.method,
        path: &log_path,
    };
    let done = |rec: &scimitar_store::Record, status: &str, mut entry: Map<String, Value>| {
        entry.insert("location".into(), json!(output::location(&tenant.base, &rt, &rec.id)));
        entry.insert("version".into(), json!(output::etag(rec.version)));
        entry.insert("status".into(), json!(status));
        Value::Object(entry)
    };
    match (op.method.as_str(), id) {
        ("POST", None) => {
            let rec = tenant.create(&rt, kind, &data, via).await?;
            Ok((done(&rec, "201", entry), Some(rec.id.clone())))
        }
        ("PUT", Some(id)) => {
            let rec = tenant.replace(&rt, kind, id, &data, op.version, via).await?;
            Ok((done(&rec, "200", entry), None))
        }
        ("PATCH", Some(id)) => {
            let rec = tenant.patch(&rt, kind, id, &data, op.version, via).await?;
            Ok((done(&rec, "200", entry), None))
        }
        ("DELETE", Some(id)) => {
            tenant.delete(kind, id, op.version, via).await?;
            entry.insert("location".into(), json!(output::location(&tenant.base, &rt, id)));
            entry.insert("status".into(), json!("204"));
            Ok((Value::Object(entry), None))
        }
        _ => Err(ScimError::invalid_path(format!(
            "{} cannot be used on '{path}'",
            op.method
        ))),
    }
}
