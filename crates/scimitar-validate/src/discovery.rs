//! What an endpoint declares (`/ServiceProviderConfig`, `/ResourceTypes`,
//! `/Schemas`), the test objects built from it with Entra's default
//! mapping, and reading an attribute path back out of a resource. Pure.

use std::collections::BTreeSet;

use scimitar_engine::mapping::TargetPath;
use scimitar_engine::model::Kind;
use scimitar_engine::template::entra_default_rows;
use scimitar_protocol::filter::{CompValue, CompareOp, Filter};
use scimitar_protocol::schema::urn;
use serde::Serialize;
use serde_json::{Map, Value, json};

/// What discovery found, for the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Discovery {
    /// `/ServiceProviderConfig` answered with JSON.
    pub service_provider_config: bool,
    /// `patch.supported`, `filter.supported`, `filter.maxResults` when said.
    pub patch_supported: Option<bool>,
    pub filter_supported: Option<bool>,
    pub max_results: Option<u64>,
    /// The resource types `/ResourceTypes` names.
    pub resource_types: Vec<String>,
    /// The schema URNs `/Schemas` lists (`None`: /Schemas is not served or
    /// not understood; Entra's default attributes are then assumed).
    pub schemas: Option<Vec<String>>,
    /// Why /Schemas could not be used.
    pub schemas_problem: Option<String>,
    /// Attributes of Entra's default mapping left out of the test objects
    /// because /Schemas does not declare them.
    pub left_out: Vec<String>,
}

/// The attributes an endpoint declares, as lower-case `urn|name` and
/// `urn|name.sub`; `None`: everything (no usable /Schemas).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Declared(pub Option<BTreeSet<String>>);

/// The schemas of a `/Schemas` answer: a ListResponse's `Resources`, or a
/// bare array (some servers answer that).
pub fn schema_list(body: &Value) -> Option<Vec<&Value>> {
    match body {
        Value::Array(a) => Some(a.iter().collect()),
        Value::Object(_) => body
            .get("Resources")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect()),
        _ => None,
    }
}

/// The declared attributes of a `/Schemas` answer.
pub fn declared(body: &Value) -> Result<(Declared, Vec<String>), String> {
    let list = schema_list(body).ok_or("the answer is not a ListResponse of schemas")?;
    let mut set = BTreeSet::new();
    let mut ids = Vec::new();
    for s in list {
        let Some(id) = s.get("id").and_then(Value::as_str) else {
            continue;
        };
        ids.push(id.to_string());
        let id = id.to_lowercase();
        for a in s.get("attributes").and_then(Value::as_array).into_iter().flatten() {
            let Some(name) = a.get("name").and_then(Value::as_str) else {
                continue;
            };
            let name = name.to_lowercase();
            set.insert(format!("{id}|{name}"));
            for sub in a.get("subAttributes").and_then(Value::as_array).into_iter().flatten() {
                if let Some(sn) = sub.get("name").and_then(Value::as_str) {
                    set.insert(format!("{id}|{name}.{}", sn.to_lowercase()));
                }
            }
        }
    }
    if ids.is_empty() {
        return Err("it lists no schema".into());
    }
    Ok((Declared(Some(set)), ids))
}

impl Declared {
    /// Whether the endpoint declares a target path of `kind`
    /// (`emails[type eq "work"].value` → `emails` with `value`).
    pub fn has(&self, kind: Kind, target: &TargetPath) -> bool {
        let Some(set) = &self.0 else {
            return true;
        };
        let p = &target.path;
        // RFC 7643 §3.1: id, externalId and meta are common to every
        // resource and are not listed in the resource's schema.
        if p.urn.is_none() && ["id", "externalid", "meta"].contains(&p.name.to_lowercase().as_str()) {
            return true;
        }
        let schema = p
            .urn
            .clone()
            .unwrap_or_else(|| core_urn(kind).to_string())
            .to_lowercase();
        let name = p.name.to_lowercase();
        if !set.contains(&format!("{schema}|{name}")) {
            return false;
        }
        let sub = match (&p.sub, &p.filter) {
            (Some(s), _) => Some(s.to_lowercase()),
            (None, Some(_)) => Some("value".to_string()),
            (None, None) => None,
        };
        match sub {
            None => true,
            Some(s) => {
                // An attribute declared without its sub-attributes is
                // taken to have them all.
                let prefix = format!("{schema}|{name}.");
                !set.iter().any(|k| k.starts_with(&prefix)) || set.contains(&format!("{prefix}{s}"))
            }
        }
    }

    /// `attr` (a plain name of the core schema of `kind`), if declared.
    pub fn has_name(&self, kind: Kind, attr: &str) -> bool {
        TargetPath::parse(kind, attr).is_ok_and(|t| self.has(kind, &t))
    }
}

pub fn core_urn(kind: Kind) -> &'static str {
    match kind {
        Kind::User => urn::CORE_USER,
        Kind::Group => urn::CORE_GROUP,
    }
}

/// The targets of Entra's default mapping of `kind` (the references
/// `manager` and `members` included).
pub fn default_targets(kind: Kind) -> Vec<TargetPath> {
    entra_default_rows(kind)
        .iter()
        .filter_map(|(t, _)| TargetPath::parse(kind, t).ok())
        .collect()
}

/// The targets of Entra's default mapping that the endpoint does not
/// declare.
pub fn undeclared(declared: &Declared, kind: Kind) -> Vec<String> {
    default_targets(kind)
        .into_iter()
        .filter(|t| !declared.has(kind, t))
        .map(|t| t.key())
        .collect()
}

/// A test user's values: Entra's default mapping (what /Schemas declares
/// of it), with values made from `name` (the user's userName, which
/// carries the run's prefix) and `n`. `manager` is never in a create.
pub fn user_values(declared: &Declared, user_name: &str, display: &str, n: u32) -> Vec<(TargetPath, Value)> {
    let local = user_name.split('@').next().unwrap_or(user_name);
    default_targets(Kind::User)
        .into_iter()
        .filter(|t| !t.is_manager() && declared.has(Kind::User, t))
        .filter_map(|t| {
            let v = match t.key().as_str() {
                "userName" => json!(user_name),
                "active" => json!(true),
                "displayName" => json!(display),
                "title" => json!("Validator"),
                "emails[type eq \"work\"].value" => json!(user_name),
                "preferredLanguage" => json!("en-US"),
                "name.givenName" => json!("Valid"),
                "name.familyName" => json!(format!("Ator{n}")),
                "name.formatted" => json!(format!("Valid Ator{n}")),
                "addresses[type eq \"work\"].formatted" => json!("Bldg 4"),
                "addresses[type eq \"work\"].streetAddress" => json!("1 Main St"),
                "addresses[type eq \"work\"].locality" => json!("Seattle"),
                "addresses[type eq \"work\"].region" => json!("WA"),
                "addresses[type eq \"work\"].postalCode" => json!("98101"),
                "addresses[type eq \"work\"].country" => json!("US"),
                "phoneNumbers[type eq \"work\"].value" => json!("+1 555 0100"),
                "phoneNumbers[type eq \"mobile\"].value" => json!("+1 555 0101"),
                "phoneNumbers[type eq \"fax\"].value" => json!("+1 555 0102"),
                "externalId" => json!(local),
                k if k.ends_with(":employeeNumber") => json!(format!("{}", 10000 + n)),
                k if k.ends_with(":department") => json!("R&D"),
                _ => return None,
            };
            Some((t, v))
        })
        .collect()
}

/// The new values "Replace Attributes Verbose" sends: every value of a
/// create changed, except userName, active and the references.
pub fn changed_values(values: &[(TargetPath, Value)]) -> Vec<(TargetPath, Value)> {
    values
        .iter()
        .filter(|(t, _)| {
            let k = t.key();
            k != "userName" && !t.is_active() && !t.is_reference()
        })
        .map(|(t, v)| {
            let k = t.key();
            let nv = match v {
                Value::String(s) if k.starts_with("emails") => {
                    json!(format!("changed.{s}"))
                }
                Value::String(s) if k == "preferredLanguage" => json!(if s == "en-US" { "fr-FR" } else { "en-US" }),
                Value::String(s) if k.ends_with("country") => json!(if s == "US" { "FR" } else { "US" }),
                Value::String(s) => json!(format!("{s} changed")),
                other => other.clone(),
            };
            (t.clone(), nv)
        })
        .collect()
}

/// A key of an object, compared case-insensitively.
pub fn get_ci<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    let o = obj.as_object()?;
    o.get(key)
        .or_else(|| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// Whether an element of a multi-valued attribute matches a value filter
/// (`type eq "work"`, `and`).
fn element_matches(el: &Value, f: &Filter) -> bool {
    match f {
        Filter::Compare(p, CompareOp::Eq, v) => {
            let got = get_ci(el, &p.name);
            match (got, v) {
                (Some(Value::String(a)), CompValue::String(b)) => a.eq_ignore_ascii_case(b),
                (Some(Value::Bool(a)), CompValue::Bool(b)) => a == b,
                (Some(Value::Bool(a)), CompValue::String(b)) => {
                    b.eq_ignore_ascii_case(if *a { "true" } else { "false" })
                }
                (Some(Value::Number(a)), CompValue::Number(b)) => a == b,
                _ => false,
            }
        }
        Filter::And(items) => items.iter().all(|i| element_matches(el, i)),
        _ => false,
    }
}

/// The value of a target path in a resource (`name.givenName`,
/// `emails[type eq "work"].value`, `urn:…:User:department`); keys are
/// compared case-insensitively. `None` when absent or null.
pub fn value_at(resource: &Value, target: &TargetPath) -> Option<Value> {
    let p = &target.path;
    let container = match &p.urn {
        Some(u) => get_ci(resource, u)?,
        None => resource,
    };
    let attr = get_ci(container, &p.name)?;
    let found = match (&p.filter, &p.sub) {
        (Some(f), sub) => {
            let el = attr.as_array()?.iter().find(|el| element_matches(el, f))?;
            get_ci(el, sub.as_deref().unwrap_or("value"))?.clone()
        }
        (None, Some(sub)) => get_ci(attr, sub)?.clone(),
        (None, None) => attr.clone(),
    };
    (!found.is_null()).then_some(found)
}

/// Whether a value read back equals what was sent: strings exactly,
/// booleans also as the strings "True"/"False", a manager by its `value`.
pub fn same(sent: &Value, got: &Value) -> bool {
    match (sent, got) {
        (Value::Bool(a), Value::String(b)) | (Value::String(b), Value::Bool(a)) => {
            b.eq_ignore_ascii_case(if *a { "true" } else { "false" })
        }
        (Value::String(a), Value::Object(o)) => o.get("value").and_then(Value::as_str) == Some(a.as_str()),
        _ => sent == got,
    }
}

/// What differs between the values sent and a resource read back, one
/// line per attribute.
pub fn differences(values: &[(TargetPath, Value)], resource: &Value) -> Vec<String> {
    values
        .iter()
        .filter_map(|(t, sent)| match value_at(resource, t) {
            Some(got) if same(sent, &got) => None,
            Some(got) => Some(format!("{}: sent {sent}, read back {got}", t.key())),
            None => Some(format!("{}: sent {sent}, read back nothing", t.key())),
        })
        .collect()
}

/// The parts of discovery the report shows, from the three answers.
pub fn summarise(spc: Option<&Value>, resource_types: Option<&Value>) -> Discovery {
    let mut d = Discovery::default();
    if let Some(spc) = spc.filter(|v| v.is_object()) {
        d.service_provider_config = true;
        let flag = |k: &str| {
            get_ci(spc, k)
                .and_then(|p| get_ci(p, "supported"))
                .and_then(Value::as_bool)
        };
        d.patch_supported = flag("patch");
        d.filter_supported = flag("filter");
        d.max_results = get_ci(spc, "filter")
            .and_then(|f| get_ci(f, "maxResults"))
            .and_then(Value::as_u64);
    }
    if let Some(rts) = resource_types.and_then(schema_list) {
        d.resource_types = rts
            .iter()
            .filter_map(|r| {
                get_ci(r, "name")
                    .or_else(|| get_ci(r, "id"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect();
    }
    d
}

/// A resource body with keys in a stable order (for reports).
pub fn object(pairs: &[(&str, Value)]) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert((*k).to_string(), v.clone());
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schemas_without(attr: &str) -> Value {
        let user_attrs: Vec<Value> = [
            "userName",
            "active",
            "displayName",
            "title",
            "preferredLanguage",
            "externalId",
        ]
        .iter()
        .filter(|a| **a != attr)
        .map(|a| json!({"name": a}))
        .chain([
            json!({"name": "Emails", "subAttributes": [{"name": "value"}, {"name": "type"}]}),
            json!({"name": "name", "subAttributes": [{"name": "givenName"}, {"name": "familyName"}]}),
        ])
        .collect();
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "Resources": [
            {"id": urn::CORE_USER, "attributes": user_attrs},
            {"id": urn::ENTERPRISE_USER, "attributes": [{"name": "department"}]},
        ]})
    }

    #[test]
    fn test_users_carry_what_schemas_declares_of_entras_mapping() {
        let (d, ids) = declared(&schemas_without("title")).unwrap();
        assert_eq!(ids.len(), 2);
        let v = user_values(&d, "scv-1-u1@example.com", "scv-1 User 1", 1);
        let keys: Vec<String> = v.iter().map(|(t, _)| t.key()).collect();
        assert!(keys.contains(&"userName".to_string()));
        assert!(keys.contains(&"emails[type eq \"work\"].value".to_string()));
        assert!(keys.contains(&"name.givenName".to_string()));
        assert!(!keys.contains(&"name.formatted".to_string()), "not declared");
        assert!(!keys.contains(&"title".to_string()), "not declared");
        assert!(!keys.iter().any(|k| k.ends_with(":employeeNumber")));
        assert!(keys.iter().any(|k| k.ends_with(":department")));
        let missing = undeclared(&d, Kind::User);
        assert!(missing.contains(&"title".to_string()), "{missing:?}");
        assert!(missing.iter().any(|m| m.ends_with(":manager")), "{missing:?}");
        // Without /Schemas: all of Entra's default attributes but manager.
        let all = user_values(&Declared(None), "a@b", "A", 1);
        assert_eq!(all.len(), default_targets(Kind::User).len() - 1);
    }

    #[test]
    fn values_are_read_back_by_path_case_insensitively() {
        let res = json!({"UserName": "a", "emails": [{"type": "home", "value": "h"}, {"type": "Work", "value": "w"}],
            "name": {"givenName": "G"}, (urn::ENTERPRISE_USER): {"manager": {"value": "m1"}, "department": null}});
        let t = |s: &str| TargetPath::parse(Kind::User, s).unwrap();
        assert_eq!(value_at(&res, &t("userName")), Some(json!("a")));
        assert_eq!(value_at(&res, &t("emails[type eq \"work\"].value")), Some(json!("w")));
        assert_eq!(value_at(&res, &t("name.givenName")), Some(json!("G")));
        assert_eq!(value_at(&res, &t("name.familyName")), None);
        let mgr = t(&format!("{}:manager", urn::ENTERPRISE_USER));
        assert!(same(&json!("m1"), &value_at(&res, &mgr).unwrap()));
        assert_eq!(
            value_at(&res, &t(&format!("{}:department", urn::ENTERPRISE_USER))),
            None
        );
        let sent = vec![(t("userName"), json!("a")), (t("name.givenName"), json!("X"))];
        assert_eq!(
            differences(&sent, &res),
            vec!["name.givenName: sent \"X\", read back \"G\""]
        );
        assert!(same(&json!(false), &json!("False")));
    }

    #[test]
    fn discovery_reads_flags_and_resource_types() {
        let spc = json!({"patch": {"supported": true}, "filter": {"supported": true, "maxResults": 200}});
        let rts = json!({"Resources": [{"name": "User"}, {"id": "Group"}]});
        let d = summarise(Some(&spc), Some(&rts));
        assert_eq!(d.patch_supported, Some(true));
        assert_eq!(d.max_results, Some(200));
        assert_eq!(d.resource_types, vec!["User", "Group"]);
        assert!(declared(&json!("<html>")).is_err());
    }
}
