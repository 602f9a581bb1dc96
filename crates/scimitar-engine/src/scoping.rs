//! Scoping filters (Entra's): a filter's clauses are ANDed, several filters
//! are ORed; comparisons are case-sensitive; every clause is false on a
//! null or empty value except `IS NULL`; the ordering operators compare
//! integers only.

use fancy_regex::Regex;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    NotEquals,
    IsTrue,
    IsFalse,
    IsNull,
    IsNotNull,
    RegexMatch,
    NotRegexMatch,
    GreaterThan,
    GreaterThanOrEquals,
    Includes,
    EndsWith,
    /// `&`: the attribute's value occurs in the clause's value.
    In,
    /// `!&`: it does not.
    NotIn,
}

impl Operator {
    /// The names a job file may use (case and `_`/space do not matter).
    pub const NAMES: &'static [&'static str] = &[
        "EQUALS",
        "NOT EQUALS",
        "IS TRUE",
        "IS FALSE",
        "IS NULL",
        "IS NOT NULL",
        "REGEX MATCH",
        "NOT REGEX MATCH",
        "Greater_Than",
        "Greater_Than_OR_EQUALS",
        "Includes",
        "ENDS_WITH",
        "&",
        "!&",
    ];

    /// The operator's name as Entra's portal (and [`Operator::NAMES`])
    /// writes it.
    pub fn name(self) -> &'static str {
        match self {
            Operator::Equals => "EQUALS",
            Operator::NotEquals => "NOT EQUALS",
            Operator::IsTrue => "IS TRUE",
            Operator::IsFalse => "IS FALSE",
            Operator::IsNull => "IS NULL",
            Operator::IsNotNull => "IS NOT NULL",
            Operator::RegexMatch => "REGEX MATCH",
            Operator::NotRegexMatch => "NOT REGEX MATCH",
            Operator::GreaterThan => "Greater_Than",
            Operator::GreaterThanOrEquals => "Greater_Than_OR_EQUALS",
            Operator::Includes => "Includes",
            Operator::EndsWith => "ENDS_WITH",
            Operator::In => "&",
            Operator::NotIn => "!&",
        }
    }

    pub fn parse(s: &str) -> Option<Operator> {
        let norm: String = s
            .trim()
            .chars()
            .map(|c| if c == '_' { ' ' } else { c.to_ascii_uppercase() })
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        Some(match norm.as_str() {
            "EQUALS" => Operator::Equals,
            "NOT EQUALS" => Operator::NotEquals,
            "IS TRUE" => Operator::IsTrue,
            "IS FALSE" => Operator::IsFalse,
            "IS NULL" => Operator::IsNull,
            "IS NOT NULL" => Operator::IsNotNull,
            "REGEX MATCH" => Operator::RegexMatch,
            "NOT REGEX MATCH" => Operator::NotRegexMatch,
            "GREATER THAN" => Operator::GreaterThan,
            "GREATER THAN OR EQUALS" => Operator::GreaterThanOrEquals,
            "INCLUDES" => Operator::Includes,
            "ENDS WITH" => Operator::EndsWith,
            "&" => Operator::In,
            "!&" => Operator::NotIn,
            _ => return None,
        })
    }
}

/// One condition on a source attribute.
#[derive(Debug, Clone)]
pub struct Clause {
    pub attribute: String,
    pub operator: Operator,
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for Clause {
    fn eq(&self, other: &Self) -> bool {
        (&self.attribute, self.operator, &self.value) == (&other.attribute, other.operator, &other.value)
    }
}

impl Clause {
    pub fn new(attribute: String, operator: Operator, value: String) -> Result<Clause, String> {
        let regex = match operator {
            Operator::RegexMatch | Operator::NotRegexMatch => {
                Some(Regex::new(&value).map_err(|e| format!("'{value}' is not a regular expression: {e}"))?)
            }
            Operator::GreaterThan | Operator::GreaterThanOrEquals => {
                value
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| format!("'{value}' is not an integer; Greater_Than compares integers"))?;
                None
            }
            _ => None,
        };
        Ok(Clause {
            attribute,
            operator,
            value,
            regex,
        })
    }

    /// Whether the clause holds for these attributes.
    pub fn holds(&self, attrs: &Map<String, Value>) -> bool {
        let value = attribute_text(attrs, &self.attribute);
        let present = value.as_deref().is_some_and(|v| !v.is_empty());
        if self.operator == Operator::IsNull {
            return !present;
        }
        let Some(v) = value.filter(|v| !v.is_empty()) else {
            return false;
        };
        match self.operator {
            Operator::Equals => v == self.value,
            Operator::NotEquals => v != self.value,
            Operator::IsTrue => v.eq_ignore_ascii_case("true"),
            Operator::IsFalse => v.eq_ignore_ascii_case("false"),
            Operator::IsNull => false,
            Operator::IsNotNull => true,
            Operator::RegexMatch => self.regex.as_ref().is_some_and(|r| r.is_match(&v).unwrap_or(false)),
            Operator::NotRegexMatch => self.regex.as_ref().is_some_and(|r| !r.is_match(&v).unwrap_or(true)),
            Operator::GreaterThan | Operator::GreaterThanOrEquals => {
                match (v.trim().parse::<i64>(), self.value.trim().parse::<i64>()) {
                    (Ok(a), Ok(b)) if self.operator == Operator::GreaterThan => a > b,
                    (Ok(a), Ok(b)) => a >= b,
                    _ => false,
                }
            }
            Operator::Includes => v.contains(&self.value),
            Operator::EndsWith => v.ends_with(&self.value),
            Operator::In => self.value.contains(&v),
            Operator::NotIn => !self.value.contains(&v),
        }
    }
}

/// The clauses of one filter, all of which must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopingFilter {
    pub clauses: Vec<Clause>,
}

/// Whether an object passes the filters: no filters, or every clause of
/// any one of them.
pub fn in_scope(filters: &[ScopingFilter], attrs: &Map<String, Value>) -> bool {
    filters.is_empty() || filters.iter().any(|f| f.clauses.iter().all(|c| c.holds(attrs)))
}

/// The single value of an attribute as text (booleans `true`/`false`,
/// numbers as written); multi-valued attributes are not filterable.
fn attribute_text(attrs: &Map<String, Value>, name: &str) -> Option<String> {
    let v = attrs
        .get(name)
        .or_else(|| attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))?;
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(a) if a.len() == 1 => a.first().and_then(|x| x.as_str()).map(str::to_string),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn every_operator_on_a_table() {
        let a = attrs(json!({"dept": "42", "title": "Senior Engineer", "level": "7", "flag": true, "empty": ""}));
        let cases: &[(&str, &str, &str, bool)] = &[
            ("dept", "EQUALS", "42", true),
            ("dept", "EQUALS", "4", false),
            ("title", "EQUALS", "senior engineer", false), // case-sensitive
            ("dept", "NOT EQUALS", "41", true),
            ("missing", "NOT EQUALS", "41", false), // false on null
            ("flag", "IS TRUE", "", true),
            ("flag", "IS FALSE", "", false),
            ("missing", "IS NULL", "", true),
            ("empty", "IS NULL", "", true),
            ("dept", "IS NULL", "", false),
            ("dept", "IS NOT NULL", "", true),
            ("empty", "IS NOT NULL", "", false),
            ("title", "REGEX MATCH", "^Senior", true),
            ("title", "REGEX MATCH", "^senior", false),
            ("title", "NOT REGEX MATCH", "^Junior", true),
            ("missing", "NOT REGEX MATCH", "^Junior", false),
            ("level", "Greater_Than", "6", true),
            ("level", "Greater_Than", "7", false),
            ("level", "greater_than_or_equals", "7", true),
            ("title", "Greater_Than", "1", false), // not an integer
            ("title", "Includes", "Engine", true),
            ("title", "Includes", "engine", false),
            ("title", "ENDS_WITH", "Engineer", true),
            ("dept", "&", "41,42,43", true),
            ("dept", "!&", "41,43", true),
            ("missing", "!&", "41,43", false),
        ];
        for (attr, op, value, expected) in cases {
            let op = Operator::parse(op).unwrap_or_else(|| panic!("operator {op}"));
            let c = Clause::new(attr.to_string(), op, value.to_string()).unwrap();
            assert_eq!(c.holds(&a), *expected, "{attr} {op:?} {value}");
        }
    }

    #[test]
    fn filters_are_ored_and_clauses_anded() {
        let a = attrs(json!({"dept": "42", "country": "DE"}));
        let f = |clauses: &[(&str, &str)]| ScopingFilter {
            clauses: clauses
                .iter()
                .map(|(k, v)| Clause::new(k.to_string(), Operator::Equals, v.to_string()).unwrap())
                .collect(),
        };
        assert!(in_scope(&[], &a));
        assert!(in_scope(&[f(&[("dept", "42"), ("country", "DE")])], &a));
        assert!(!in_scope(&[f(&[("dept", "42"), ("country", "FR")])], &a));
        assert!(in_scope(&[f(&[("country", "FR")]), f(&[("dept", "42")])], &a));
        assert!(Operator::parse("LIKE").is_none());
        assert!(Clause::new("x".into(), Operator::RegexMatch, "(".into()).is_err());
        assert!(Clause::new("x".into(), Operator::GreaterThan, "ten".into()).is_err());
    }
}
