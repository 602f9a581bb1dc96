//! Attribute mappings: from a source object to the target image, the
//! values the target should hold for the mapped attributes.

use scimitar_expression::{Env, Expr, Output, Value as XValue};
use scimitar_protocol::filter::{PatchPath, parse_patch_path};
use scimitar_protocol::schema::{AttrType, ResourceType, builtin_resource_types, urn};
use serde_json::{Map, Value};

use crate::model::Kind;

/// A target attribute as a mapping names it: `userName`, `name.givenName`,
/// `emails[type eq "work"].value`, `urn:…:enterprise:2.0:User:department`.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetPath {
    pub path: PatchPath,
    /// The attribute's type in the target schema (String when unknown, for
    /// attributes of a custom extension).
    pub kind: AttrType,
    /// Compared case-sensitively (the attribute is `caseExact`).
    pub case_exact: bool,
    /// A multi-valued attribute named without a filter (`emails`).
    pub multi: bool,
}

impl TargetPath {
    /// Parses and checks a target path against the SCIM schema of `kind`.
    pub fn parse(kind: Kind, text: &str) -> Result<TargetPath, String> {
        let path = parse_patch_path(text.trim())
            .map_err(|e| format!("'{text}' is not a SCIM attribute path: {}", e.detail))?;
        let rt = resource_type(kind).ok_or_else(|| format!("no SCIM schema for {}", kind.as_str()))?;
        let known_schema = path.urn.as_deref().is_none_or(|u| {
            u.eq_ignore_ascii_case(&rt.schema.id) || rt.extensions.iter().any(|(s, _)| s.id.eq_ignore_ascii_case(u))
        });
        if !known_schema {
            // A custom extension of the target: checked against its
            // /Schemas when the job runs, string-typed until then.
            return Ok(TargetPath {
                path,
                kind: AttrType::String,
                case_exact: false,
                multi: false,
            });
        }
        let r = rt
            .resolve(path.urn.as_deref(), &path.name, path.sub.as_deref())
            .ok_or_else(|| format!("'{text}' is not an attribute of a SCIM {}", kind.as_str()))?;
        if r.attr.name == "id" || r.attr.name == "meta" {
            return Err(format!("'{text}' is set by the target; it cannot be mapped"));
        }
        if path.filter.is_some() && !r.attr.multi_valued {
            return Err(format!("'{text}': only multi-valued attributes take a [filter]"));
        }
        let leaf = r.leaf();
        Ok(TargetPath {
            kind: leaf.kind,
            case_exact: leaf.case_exact || matches!(leaf.kind, AttrType::Reference),
            multi: r.attr.multi_valued && path.filter.is_none() && r.sub.is_none(),
            path,
        })
    }

    /// The canonical text, which identifies the mapping.
    pub fn key(&self) -> String {
        self.path.to_string()
    }

    /// `manager` of a User, `members` of a Group: values are source
    /// references, resolved to target ids when the referenced object is
    /// linked.
    pub fn is_reference(&self) -> bool {
        let name = self.path.name.as_str();
        (name.eq_ignore_ascii_case("manager")
            && self
                .path
                .urn
                .as_deref()
                .is_none_or(|u| u.eq_ignore_ascii_case(urn::ENTERPRISE_USER)))
            || (name.eq_ignore_ascii_case("members") && self.path.urn.is_none())
    }

    pub fn is_manager(&self) -> bool {
        self.is_reference() && self.path.name.eq_ignore_ascii_case("manager")
    }

    pub fn is_members(&self) -> bool {
        self.is_reference() && self.path.name.eq_ignore_ascii_case("members")
    }

    /// Whether this is the target's `active` attribute.
    pub fn is_active(&self) -> bool {
        self.path.urn.is_none() && self.path.name.eq_ignore_ascii_case("active") && self.path.sub.is_none()
    }
}

/// The built-in resource type of a kind (with the enterprise extension).
pub fn resource_type(kind: Kind) -> Option<&'static ResourceType> {
    static RTS: std::sync::OnceLock<Vec<ResourceType>> = std::sync::OnceLock::new();
    RTS.get_or_init(builtin_resource_types)
        .iter()
        .find(|rt| rt.name == kind.as_str())
}

/// Where a mapping's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum MappingSource {
    /// A source attribute, copied.
    Direct(String),
    Constant(String),
    Expression(Box<Expr>),
    /// Leaves the target alone; only the default is written on create.
    None,
}

/// When a mapping applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Apply {
    Always,
    /// Only when the object is created (Graph `ObjectAddOnly`).
    CreateOnly,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub target: TargetPath,
    pub source: MappingSource,
    /// Used when the value is null, on create only.
    pub default: Option<String>,
    pub apply: Apply,
    /// Matching precedence (1 first); `None`: not a matching attribute.
    pub matching: Option<u32>,
    /// The value is a source reference (`manager`, `members`).
    pub reference: bool,
}

/// Whether the image is for a create or an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Update,
}

/// One value of the target image.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageValue {
    /// A value to hold, typed for the target attribute.
    Value(Value),
    /// A source reference, resolved to a target id later.
    Reference(String),
    /// SelectUniqueValue's candidates: the first one free in the target.
    Candidates(Vec<String>),
}

/// A computed target attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageEntry {
    pub target: TargetPath,
    pub value: ImageValue,
    /// Logs show `[Redact]`.
    pub redacted: bool,
}

/// What the target should hold, in mapping order. Attributes whose value is
/// null are absent: nulls are never provisioned.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Image {
    pub entries: Vec<ImageEntry>,
}

impl Image {
    pub fn get(&self, key: &str) -> Option<&ImageEntry> {
        self.entries.iter().find(|e| e.target.key() == key)
    }

    /// The value of a plain (non-reference) target, as text.
    pub fn text(&self, key: &str) -> Option<String> {
        match &self.get(key)?.value {
            ImageValue::Value(Value::String(s)) => Some(s.clone()),
            ImageValue::Value(v) if !v.is_null() => Some(v.to_string()),
            _ => None,
        }
    }
}

/// An expression failed for this object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mapping of '{target}': {message}")]
pub struct MappingError {
    pub target: String,
    pub message: String,
}

/// The source an expression reads: the object's attributes (names matched
/// exactly, then case-insensitively, as directories do) and the computed
/// `IsSoftDeleted`.
pub struct ObjectSource<'a> {
    pub attrs: &'a Map<String, Value>,
    pub soft_deleted: bool,
}

impl scimitar_expression::Source for ObjectSource<'_> {
    fn get(&self, name: &str) -> Result<Option<XValue>, scimitar_expression::SourceError> {
        if name == "IsSoftDeleted" {
            return Ok(Some(XValue::Bool(self.soft_deleted)));
        }
        let v = self.attrs.get(name).or_else(|| {
            self.attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        });
        match v {
            None => Ok(None),
            Some(v) => XValue::from_json(v)
                .map(Some)
                .map_err(|reason| scimitar_expression::SourceError {
                    attribute: name.to_string(),
                    reason,
                }),
        }
    }
}

/// Computes the target image of an object.
pub fn image(
    mappings: &[Mapping],
    source: &ObjectSource<'_>,
    mode: Mode,
    env: &mut Env<'_>,
) -> Result<Image, MappingError> {
    let mut entries = Vec::with_capacity(mappings.len());
    for m in mappings {
        if m.apply == Apply::CreateOnly && mode == Mode::Update {
            continue;
        }
        let err = |message: String| MappingError {
            target: m.target.key(),
            message,
        };
        let out = match &m.source {
            MappingSource::Direct(attr) => {
                let v = scimitar_expression::Source::get(source, attr).map_err(|e| err(e.to_string()))?;
                Output {
                    value: v.unwrap_or(XValue::Null),
                    redacted: false,
                }
            }
            MappingSource::Constant(c) => Output {
                value: XValue::Str(c.clone()),
                redacted: false,
            },
            MappingSource::Expression(e) => {
                scimitar_expression::eval(e, source, env).map_err(|e| err(e.to_string()))?
            }
            MappingSource::None => Output {
                value: XValue::Null,
                redacted: false,
            },
        };
        if matches!(out.value, XValue::Drop) {
            continue;
        }
        let value = match out.value {
            XValue::Candidates(c) => ImageValue::Candidates(c),
            v if v.is_null_or_empty() => match (&m.default, mode) {
                (Some(d), Mode::Create) => ImageValue::Value(typed(&m.target, XValue::Str(d.clone())).map_err(err)?),
                _ => continue,
            },
            v if m.reference => match v.text() {
                Some(t) => ImageValue::Reference(t.into_owned()),
                None => continue,
            },
            v => ImageValue::Value(typed(&m.target, v).map_err(err)?),
        };
        entries.push(ImageEntry {
            target: m.target.clone(),
            value,
            redacted: out.redacted,
        });
    }
    Ok(Image { entries })
}

/// An expression's value as the target attribute's type wants it.
fn typed(target: &TargetPath, v: XValue) -> Result<Value, String> {
    if target.multi {
        return Ok(match v {
            XValue::Multi(items) => Value::Array(items.into_iter().map(Value::String).collect()),
            XValue::AppRoles(_) => v.to_json(),
            other => Value::Array(
                other
                    .text()
                    .map(|t| Value::String(t.into_owned()))
                    .into_iter()
                    .collect(),
            ),
        });
    }
    let text = match &v {
        XValue::Multi(items) => items.first().cloned(),
        other => other.text().map(|t| t.into_owned()),
    };
    let Some(text) = text else {
        return Ok(Value::Null);
    };
    Ok(match target.kind {
        AttrType::Boolean => match (&v, text.to_ascii_lowercase().as_str()) {
            (XValue::Bool(b), _) => Value::Bool(*b),
            (_, "true" | "1" | "yes") => Value::Bool(true),
            (_, "false" | "0" | "no") => Value::Bool(false),
            _ => return Err(format!("'{text}' is not a boolean (True or False)")),
        },
        AttrType::Integer => match text.trim().parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => return Err(format!("'{text}' is not an integer")),
        },
        _ => Value::String(text),
    })
}
