//! Values: what sources hold, what functions return, and how values go on
//! the wire.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use serde_json::json;
use time::OffsetDateTime;

use crate::ast::Number;
use crate::datetime;

/// The `type` Entra writes into every role it provisions.
pub const ROLE_TYPE: &str = "WindowsAzureActiveDirectoryRole";

/// One entry of the computed `appRoleAssignments` source attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRole {
    pub id: String,
    pub value: String,
    pub display_name: String,
}

impl AppRole {
    /// The role as POST (and the assertive PATCH `replace`) sends it:
    /// `{primary: false, type, display, value}` (Entra's reference).
    pub fn to_scim(&self) -> serde_json::Value {
        json!({
            "primary": false,
            "type": ROLE_TYPE,
            "display": self.display_name,
            "value": self.value,
        })
    }

    /// The value of a legacy-dialect PATCH `Add` of
    /// `AppRoleAssignmentsComplex`: the role as a JSON *string*
    /// `{"id":…,"value":…,"displayName":…}` (Entra's reference).
    pub fn to_legacy_patch_value(&self) -> String {
        json!({"id": self.id, "value": self.value, "displayName": self.display_name}).to_string()
    }
}

/// The role object a `SingleAppRoleAssignment` value becomes when it is
/// mapped to `roles[primary eq "True"].value`:
/// `{primary: true, type, value}` (Entra's reference).
pub fn primary_role(value: &str) -> serde_json::Value {
    json!({"primary": true, "type": ROLE_TYPE, "value": value})
}

/// A value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Absent: the attribute does not exist, or a function returned
    /// nothing. Never provisioned; never clears a target value.
    Null,
    Str(String),
    Num(Number),
    /// Written `True`/`False`.
    Bool(bool),
    /// Always UTC; written `M/d/yyyy h:mm:ss tt`.
    DateTime(OffsetDateTime),
    /// A multi-valued attribute; never empty (an empty list is `Null`).
    Multi(Vec<String>),
    AppRoles(Vec<AppRole>),
    /// IgnoreFlowIfNullOrEmpty met null or `""`: drop the target attribute
    /// from this flow; no operation is sent and the target keeps its value.
    Drop,
    /// SelectUniqueValue's rules, evaluated, in order, without empty or
    /// repeated values: the engine checks each for uniqueness in the target
    /// and takes the first free one (none free: escrow the object).
    Candidates(Vec<String>),
}

impl Value {
    /// Null, or an empty list.
    pub fn is_null(&self) -> bool {
        match self {
            Value::Null => true,
            Value::Multi(v) | Value::Candidates(v) => v.is_empty(),
            Value::AppRoles(r) => r.is_empty(),
            _ => false,
        }
    }

    /// Null or `""`: what IsNullOrEmpty, IgnoreFlowIfNullOrEmpty and IIF's
    /// "the condition check fails" treat alike.
    pub fn is_null_or_empty(&self) -> bool {
        self.is_null() || matches!(self, Value::Str(s) if s.is_empty())
    }

    /// The text of a single value: `None` for Null and for the values that
    /// are not one string (lists, roles, Drop).
    pub fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Value::Str(s) => Some(Cow::Borrowed(s)),
            Value::Num(n) => Some(Cow::Owned(n.to_string())),
            Value::Bool(b) => Some(Cow::Borrowed(bool_text(*b))),
            Value::DateTime(dt) => Some(Cow::Owned(datetime::format_entra(*dt))),
            Value::Null | Value::Multi(_) | Value::AppRoles(_) | Value::Drop | Value::Candidates(_) => None,
        }
    }

    /// The value as it goes on the wire. Expression results are strings
    /// (Entra's reference): numbers as their digits, booleans as `"True"`/`"False"`, dates
    /// as `M/d/yyyy h:mm:ss tt`; a list is an array of strings; roles are
    /// SCIM role objects (see [`AppRole::to_scim`]). `Null` and `Drop` are
    /// `null`: the engine sends neither.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null | Value::Drop => serde_json::Value::Null,
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::Num(_) | Value::Bool(_) | Value::DateTime(_) => {
                serde_json::Value::String(self.text().map(Cow::into_owned).unwrap_or_default())
            }
            Value::Multi(v) | Value::Candidates(v) => {
                serde_json::Value::Array(v.iter().cloned().map(serde_json::Value::String).collect())
            }
            Value::AppRoles(r) => serde_json::Value::Array(r.iter().map(AppRole::to_scim).collect()),
        }
    }

    /// Reads a JSON source value: string, number, boolean, null, an array
    /// of those (a multi-valued attribute; nulls in it are skipped, an empty
    /// array is Null) or an array of `{id, value, displayName}` objects
    /// (`appRoleAssignments`). Other shapes are an error: a connector must
    /// flatten them into the canonical source model.
    pub fn from_json(v: &serde_json::Value) -> Result<Value, String> {
        Ok(match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Number(n) => Value::Num(json_number(n)),
            serde_json::Value::Array(items) => {
                if items.iter().any(serde_json::Value::is_object) {
                    let roles = items
                        .iter()
                        .filter(|i| !i.is_null())
                        .map(app_role)
                        .collect::<Result<Vec<_>, _>>()?;
                    if roles.is_empty() {
                        Value::Null
                    } else {
                        Value::AppRoles(roles)
                    }
                } else {
                    let mut out = Vec::with_capacity(items.len());
                    for item in items {
                        match Value::from_json(item)? {
                            Value::Null => {}
                            scalar => match scalar.text() {
                                Some(t) => out.push(t.into_owned()),
                                None => return Err("an array inside an array".into()),
                            },
                        }
                    }
                    if out.is_empty() { Value::Null } else { Value::Multi(out) }
                }
            }
            serde_json::Value::Object(_) => {
                return Err("a JSON object (expressions read strings, numbers, booleans, arrays of them, and app role assignments)".into());
            }
        })
    }
}

pub(crate) fn bool_text(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

fn json_number(n: &serde_json::Number) -> Number {
    match n.as_i64() {
        Some(i) => Number::Int(i),
        None => Number::Decimal(n.to_string()),
    }
}

fn app_role(v: &serde_json::Value) -> Result<AppRole, String> {
    let serde_json::Value::Object(o) = v else {
        return Err("an array that mixes app role objects with other values".into());
    };
    let field = |k: &str| -> Result<String, String> {
        match o.get(k) {
            None | Some(serde_json::Value::Null) => Ok(String::new()),
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(format!("an app role whose '{k}' is not a string: {other}")),
        }
    };
    Ok(AppRole {
        id: field("id")?,
        value: field("value")?,
        display_name: field("displayName")?,
    })
}

/// The result of evaluating an expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub value: Value,
    /// `Redact()` was applied: the value goes to the target unchanged, but
    /// logs must show `[Redact]` instead of it.
    pub redacted: bool,
}

impl Output {
    /// What a provisioning log shows for this value.
    pub fn log_json(&self) -> serde_json::Value {
        if self.redacted {
            serde_json::Value::String("[Redact]".into())
        } else {
            self.value.to_json()
        }
    }
}

/// A source value that cannot be represented.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("attribute [{attribute}] holds {reason}")]
pub struct SourceError {
    pub attribute: String,
    pub reason: String,
}

/// The source object an expression reads its `[attributes]` from.
///
/// Sources should hold `Null`, `Str`, `Num`, `Bool`, `DateTime`, `Multi`
/// and `AppRoles` only; `Drop` and `Candidates` are results, and `eval`
/// refuses them as inputs.
pub trait Source {
    /// `Ok(None)` (or `Ok(Some(Value::Null))`) when the object has no such
    /// attribute. Names match exactly.
    fn get(&self, name: &str) -> Result<Option<Value>, SourceError>;
}

impl<S: Source + ?Sized> Source for &S {
    fn get(&self, name: &str) -> Result<Option<Value>, SourceError> {
        (**self).get(name)
    }
}

impl Source for serde_json::Map<String, serde_json::Value> {
    fn get(&self, name: &str) -> Result<Option<Value>, SourceError> {
        match serde_json::Map::get(self, name) {
            None => Ok(None),
            Some(v) => Value::from_json(v).map(Some).map_err(|reason| SourceError {
                attribute: name.to_string(),
                reason,
            }),
        }
    }
}

/// A JSON object; anything else has no attributes.
impl Source for serde_json::Value {
    fn get(&self, name: &str) -> Result<Option<Value>, SourceError> {
        match self {
            serde_json::Value::Object(m) => Source::get(m, name),
            _ => Ok(None),
        }
    }
}

impl Source for HashMap<String, Value> {
    fn get(&self, name: &str) -> Result<Option<Value>, SourceError> {
        Ok(HashMap::get(self, name).cloned())
    }
}

impl Source for BTreeMap<String, Value> {
    fn get(&self, name: &str) -> Result<Option<Value>, SourceError> {
        Ok(BTreeMap::get(self, name).cloned())
    }
}
