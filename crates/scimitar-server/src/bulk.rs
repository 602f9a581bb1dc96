//! Bulk (RFC 7644 §3.7): operations run in dependency order so that
//! `bulkId:` references may point forward (a group whose members are users
//! created later in the same request); a cycle is reported per operation.
//! Each operation is atomic on its own, like a single request.

use std::collections::{HashMap, HashSet};
use std::fmt;

use scimitar_protocol::ScimError;
use scimitar_protocol::output;
use scimitar_protocol::schema::urn;
use scimitar_store::Kind;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use scimitar_app::{Ops, Via};

struct Op<'a> {
    index: usize,
    method: String,
    bulk_id: Option<String>,
    version: Option<u64>,
    path: String,
    /// The operation's data as sent, parsed only when it runs: one
    /// operation's tree is in memory at a time, not the whole request's.
    data: Option<&'a RawValue>,
    deps: HashSet<String>,
}

/// A Bulk request with its operations checked and their data still text.
pub struct Parsed<'a> {
    ops: Vec<Op<'a>>,
    fail_on_errors: Option<usize>,
    /// The largest estimated tree of one operation's data (`body::scan`).
    pub largest_tree: usize,
}

/// Checks a Bulk request and its operations (everything but their data,
/// which stays text); nothing runs if one is malformed.
pub fn parse(body: &[u8], max_ops: usize) -> Result<Parsed<'_>, ScimError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ScimError::invalid_syntax(format!("the request body is not valid JSON: {e}")))?;
    let raw = serde_json::from_str::<&RawValue>(text)
        .map_err(|e| ScimError::invalid_syntax(format!("the request body is not valid JSON: {e}")))?;
    let obj = Members::parse(raw).ok_or_else(|| ScimError::invalid_syntax("the bulk request must be a JSON object"))?;
    if let Some(s) = obj.get("schemas") {
        let ok = serde_json::from_str::<Vec<&RawValue>>(s.get()).is_ok_and(|a| {
            a.iter().any(|x| {
                serde_json::from_str::<String>(x.get()).is_ok_and(|x| x.eq_ignore_ascii_case(urn::BULK_REQUEST))
            })
        });
        if !ok {
            return Err(ScimError::invalid_syntax(format!(
                "'schemas' must contain {}",
                urn::BULK_REQUEST
            )));
        }
    }
    let fail_on_errors = match obj.get("failOnErrors") {
        None => None,
        Some(v) => match serde_json::from_str::<Option<u64>>(v.get()) {
            Ok(None) => None,
            Ok(Some(n)) if n >= 1 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            _ => return Err(ScimError::invalid_value("failOnErrors must be a positive integer")),
        },
    };
    let missing = || ScimError::invalid_syntax("the bulk request needs an 'Operations' array");
    let ops = match operations(obj.get("Operations").ok_or_else(missing)?, max_ops) {
        Ok(Some(ops)) => ops,
        Ok(None) => return Err(missing()),
        Err(n) => {
            return Err(ScimError::payload_too_large(format!(
                "the bulk request has {n} operations; the maximum is {max_ops}"
            )));
        }
    };
    let mut out = Vec::with_capacity(ops.len());
    let mut bulk_ids = HashSet::new();
    let mut largest_tree = 0;
    for (index, op) in ops.into_iter().enumerate() {
        let o = Members::parse(op)
            .ok_or_else(|| ScimError::invalid_syntax(format!("operation {index} is not an object")))?;
        let method = o
            .string("method")
            .map(|m| m.to_ascii_uppercase())
            .ok_or_else(|| ScimError::invalid_syntax(format!("operation {index} has no 'method'")))?;
        if !["POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
            return Err(ScimError::invalid_value(format!(
                "operation {index}: method '{method}' is not POST, PUT, PATCH or DELETE"
            )));
        }
        let path = o
            .string("path")
            .ok_or_else(|| ScimError::invalid_syntax(format!("operation {index} has no 'path'")))?;
        let bulk_id = o.string("bulkId");
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
        let version = o.string("version").and_then(|v| crate::scim::strong_version(&v));
        let data = o.get("data");
        if method != "DELETE" && data.is_none() {
            return Err(ScimError::invalid_value(format!(
                "operation {index}: {method} needs 'data'"
            )));
        }
        let mut deps = HashSet::new();
        if let Some(d) = data {
            let mut de = serde_json::Deserializer::from_str(d.get());
            Refs(&mut deps)
                .deserialize(&mut de)
                .map_err(|e| ScimError::invalid_syntax(format!("operation {index}: {e}")))?;
            let shape = crate::body::scan(d.get().as_bytes(), &crate::body::Limits::default(), None)?;
            largest_tree = largest_tree.max(shape.tree);
        }
        if let Some(id) = path.rsplit('/').next().and_then(|l| l.strip_prefix("bulkId:")) {
            deps.insert(id.to_string());
        }
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
    Ok(Parsed {
        ops: out,
        fail_on_errors,
        largest_tree,
    })
}

/// The members of a JSON object in order, their values still text.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'a> Members<'a> {
    /// `None` if `raw` is not an object.
    fn parse(raw: &'a RawValue) -> Option<Self> {
        serde_json::from_str(raw.get()).ok()
    }

    /// The first member named `name`, in any case (as SCIM names go).
    fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// A member's value if it is a string.
    fn string(&self, name: &str) -> Option<String> {
        self.get(name)
            .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    out.push((k, map.next_value::<&'de RawValue>()?));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// The elements of an `Operations` array, if it is one; `Err(n)` if it
/// has more than `max` (`n` of them, counted without keeping them).
fn operations(raw: &RawValue, max: usize) -> Result<Option<Vec<&RawValue>>, usize> {
    struct Seed(usize);
    impl<'de> DeserializeSeed<'de> for Seed {
        type Value = Result<Vec<&'de RawValue>, usize>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_seq(self)
        }
    }
    impl<'de> Visitor<'de> for Seed {
        type Value = Result<Vec<&'de RawValue>, usize>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(op) = seq.next_element::<&'de RawValue>()? {
                if out.len() == self.0 {
                    let mut n = out.len() + 1;
                    while seq.next_element::<IgnoredAny>()?.is_some() {
                        n += 1;
                    }
                    return Ok(Err(n));
                }
                out.push(op);
            }
            Ok(Ok(out))
        }
    }
    let mut d = serde_json::Deserializer::from_str(raw.get());
    match Seed(max).deserialize(&mut d) {
        Ok(Ok(ops)) => Ok(Some(ops)),
        Ok(Err(n)) => Err(n),
        Err(_) => Ok(None),
    }
}

/// Collects the `bulkId:` references among the string values of a JSON
/// text, building nothing else.
struct Refs<'s>(&'s mut HashSet<String>);

impl<'de> DeserializeSeed<'de> for Refs<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Refs<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        if let Some(id) = s.strip_prefix("bulkId:") {
            self.0.insert(id.to_string());
        }
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Refs(&mut *self.0))?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(Refs(&mut *self.0))?;
        }
        Ok(())
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

/// Runs a Bulk request's operations as `tenant`'s client.
pub async fn run(tenant: &Ops, bulk: Parsed<'_>) -> Value {
    let Parsed {
        ops, fail_on_errors, ..
    } = bulk;
    let mut results: Vec<Option<Value>> = vec![None; ops.len()];
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut failed_ids: HashSet<String> = HashSet::new();
    let mut pending: Vec<&Op<'_>> = ops.iter().collect();
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
    json!({"schemas": [urn::BULK_RESPONSE], "Operations": operations})
}

/// Records the result of the operation at `index` (always in range: one
/// slot per operation).
fn set(results: &mut [Option<Value>], index: usize, value: Value) {
    if let Some(slot) = results.get_mut(index) {
        *slot = Some(value);
    }
}

/// The start of an operation's result: its method and bulkId.
fn result_entry(op: &Op<'_>) -> Map<String, Value> {
    let mut entry = Map::new();
    entry.insert("method".into(), json!(op.method));
    if let Some(b) = &op.bulk_id {
        entry.insert("bulkId".into(), json!(b));
    }
    entry
}

fn result_error(op: &Op<'_>, e: &ScimError) -> Value {
    let mut v = result_entry(op);
    v.insert("status".into(), json!(e.status.to_string()));
    v.insert("response".into(), e.to_json());
    Value::Object(v)
}

/// Runs one operation; returns its result entry and the id it created.
async fn execute(
    tenant: &Ops,
    op: &Op<'_>,
    ids: &HashMap<String, String>,
) -> Result<(Value, Option<String>), ScimError> {
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
    let mut data: Value = match op.data {
        Some(raw) => serde_json::from_str(raw.get())
            .map_err(|e| ScimError::invalid_syntax(format!("the operation's data is not valid JSON: {e}")))?,
        None => Value::Null,
    };
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
