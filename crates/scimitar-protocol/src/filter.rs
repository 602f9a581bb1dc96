//! The filter grammar of RFC 7644 §3.4.2.2 and the PATCH path grammar of
//! §3.5.2, parsed by hand (recursive descent) into a small AST.
//!
//! Besides the RFC grammar it accepts what real clients send: operators and
//! keywords in any case, unquoted legacy values (`externalId eq jyoung`),
//! and a value path followed by a sub-attribute comparison
//! (`emails[type eq "work"].value eq "x"`), which is read as
//! `emails[type eq "work" and value eq "x"]`.

use std::fmt;

use crate::error::{Result, ScimError};

/// Limits that keep hostile filters cheap to reject.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_length: usize,
    pub max_depth: usize,
    pub max_terms: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_length: 16 * 1024,
            max_depth: 32,
            max_terms: 1000,
        }
    }
}

/// `[urn:]name[.sub]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AttrPath {
    pub urn: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

impl AttrPath {
    pub fn new(name: &str) -> Self {
        AttrPath {
            urn: None,
            name: name.to_string(),
            sub: None,
        }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.urn {
            write!(f, "{u}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(s) = &self.sub {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }
}

/// A comparison value (`compValue`).
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Null => f.write_str("null"),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Number(n) => write!(f, "{n}"),
            CompValue::String(s) => {
                write!(f, "{}", serde_json::Value::String(s.clone()))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Two or more operands, all of which must hold.
    And(Vec<Filter>),
    /// Two or more operands, one of which must hold.
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Present(AttrPath),
    Compare(AttrPath, CompareOp, CompValue),
    /// `attr[filter]`: some value of the multi-valued `attr` matches the
    /// inner filter, whose paths are relative to that value.
    ValuePath(AttrPath, Box<Filter>),
}

impl Filter {
    /// Number of leaf terms, for limits.
    pub fn terms(&self) -> usize {
        match self {
            Filter::And(v) | Filter::Or(v) => v.iter().map(Filter::terms).sum(),
            Filter::Not(f) | Filter::ValuePath(_, f) => f.terms(),
            Filter::Present(_) | Filter::Compare(..) => 1,
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::And(items) => {
                for (i, it) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" and ")?;
                    }
                    match it {
                        Filter::Or(_) | Filter::And(_) => write!(f, "({it})")?,
                        _ => write!(f, "{it}")?,
                    }
                }
                Ok(())
            }
            Filter::Or(items) => {
                for (i, it) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    match it {
                        Filter::Or(_) => write!(f, "({it})")?,
                        _ => write!(f, "{it}")?,
                    }
                }
                Ok(())
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::Present(p) => write!(f, "{p} pr"),
            Filter::Compare(p, op, v) => write!(f, "{p} {} {v}", op.as_str()),
            Filter::ValuePath(p, inner) => write!(f, "{p}[{inner}]"),
        }
    }
}

/// A PATCH path: `attrPath [ "[" valFilter "]" ] [ "." subAttr ]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub urn: Option<String>,
    pub name: String,
    pub filter: Option<Filter>,
    pub sub: Option<String>,
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.urn {
            write!(f, "{u}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(flt) = &self.filter {
            write!(f, "[{flt}]")?;
        }
        if let Some(s) = &self.sub {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

/// Parses a filter expression with the default limits.
pub fn parse_filter(input: &str) -> Result<Filter> {
    parse_filter_with(input, Limits::default())
}

pub fn parse_filter_with(input: &str, limits: Limits) -> Result<Filter> {
    if input.len() > limits.max_length {
        return Err(ScimError::too_many(format!(
            "filter is {} bytes long; the maximum is {}",
            input.len(),
            limits.max_length
        )));
    }
    let mut p = Parser {
        src: input,
        pos: 0,
        depth: 0,
        limits,
    };
    p.skip_ws();
    if p.at_end() {
        return Err(ScimError::invalid_filter("the filter is empty"));
    }
    let f = p.or_expr(false)?;
    p.skip_ws();
    if !p.at_end() {
        return Err(p.err("unexpected input"));
    }
    if f.terms() > limits.max_terms {
        return Err(ScimError::too_many(format!(
            "filter has {} terms; the maximum is {}",
            f.terms(),
            limits.max_terms
        )));
    }
    Ok(f)
}

/// Parses a PATCH operation's `path`.
pub fn parse_patch_path(input: &str) -> Result<PatchPath> {
    let limits = Limits::default();
    let mut p = Parser {
        src: input,
        pos: 0,
        depth: 0,
        limits,
    };
    p.skip_ws();
    let (urn, name, sub) = p.attr_path().map_err(to_path_error)?;
    let mut path = PatchPath {
        urn,
        name,
        filter: None,
        sub,
    };
    if p.peek() == Some('[') {
        if path.sub.is_some() {
            return Err(ScimError::invalid_path(format!("invalid path '{input}'")));
        }
        p.pos += 1;
        p.enter().map_err(to_path_error)?;
        let inner = p.or_expr(true).map_err(to_path_error)?;
        p.skip_ws();
        if p.peek() != Some(']') {
            return Err(ScimError::invalid_path(format!("missing ']' in path '{input}'")));
        }
        p.pos += 1;
        path.filter = Some(inner);
        if p.peek() == Some('.') {
            p.pos += 1;
            let sub = p.name_token();
            if !valid_name(sub) {
                return Err(ScimError::invalid_path(format!(
                    "missing or invalid sub-attribute in path '{input}'"
                )));
            }
            path.sub = Some(sub.to_string());
        }
    }
    p.skip_ws();
    if !p.at_end() {
        return Err(ScimError::invalid_path(format!("invalid path '{input}'")));
    }
    Ok(path)
}

fn to_path_error(e: ScimError) -> ScimError {
    ScimError {
        scim_type: Some(crate::error::ScimType::InvalidPath),
        ..e
    }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
    limits: Limits,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }
    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }
    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }
    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
    }
    fn err(&self, what: &str) -> ScimError {
        let near: String = self.rest().chars().take(20).collect();
        if near.is_empty() {
            ScimError::invalid_filter(format!("{what} at end of filter"))
        } else {
            ScimError::invalid_filter(format!("{what} at position {}: '{near}'", self.pos))
        }
    }
    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(ScimError::too_many(format!(
                "filter is nested more than {} levels deep",
                self.limits.max_depth
            )));
        }
        Ok(())
    }
    /// A keyword (`and`, `or`, `not`) followed by a delimiter.
    fn keyword(&mut self, kw: &str) -> bool {
        let rest = self.rest();
        if rest.len() >= kw.len() && rest.is_char_boundary(kw.len()) && rest[..kw.len()].eq_ignore_ascii_case(kw) {
            let after = rest[kw.len()..].chars().next();
            let delimited = match after {
                None => false,
                Some(c) => c.is_whitespace() || c == '(',
            };
            if delimited {
                self.pos += kw.len();
                return true;
            }
        }
        false
    }
    fn or_expr(&mut self, in_brackets: bool) -> Result<Filter> {
        let mut items = vec![self.and_expr(in_brackets)?];
        loop {
            let save = self.pos;
            self.skip_ws();
            if self.keyword("or") {
                self.skip_ws();
                items.push(self.and_expr(in_brackets)?);
            } else {
                self.pos = save;
                break;
            }
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Filter::Or(items)
        })
    }
    fn and_expr(&mut self, in_brackets: bool) -> Result<Filter> {
        let mut items = vec![self.unary(in_brackets)?];
        loop {
            let save = self.pos;
            self.skip_ws();
            if self.keyword("and") {
                self.skip_ws();
                items.push(self.unary(in_brackets)?);
            } else {
                self.pos = save;
                break;
            }
        }
        // Flatten nested ANDs produced by parentheses? No: keep the tree as
        // written so that Display round-trips.
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Filter::And(items)
        })
    }
    fn unary(&mut self, in_brackets: bool) -> Result<Filter> {
        self.skip_ws();
        let save = self.pos;
        if self.keyword("not") {
            self.skip_ws();
            if self.peek() == Some('(') {
                let inner = self.group(in_brackets)?;
                return Ok(Filter::Not(Box::new(inner)));
            }
            // `not` is also a valid ATTRNAME (`not pr`, `not eq "x"`); the
            // keyword always takes a parenthesised filter.
            self.pos = save;
        }
        if self.peek() == Some('(') {
            return self.group(in_brackets);
        }
        self.attr_expr(in_brackets)
    }
    fn group(&mut self, in_brackets: bool) -> Result<Filter> {
        self.pos += 1; // '('
        self.enter()?;
        self.skip_ws();
        let inner = self.or_expr(in_brackets)?;
        self.skip_ws();
        if self.peek() != Some(')') {
            return Err(self.err("expected ')'"));
        }
        self.pos += 1;
        self.depth -= 1;
        Ok(inner)
    }
    fn name_token(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$' | ':' | '.') {
                self.pos += 1;
            } else {
                break;
            }
        }
        &self.src[start..self.pos]
    }
    /// `[URI ":"] ATTRNAME *1subAttr`
    fn attr_path(&mut self) -> Result<(Option<String>, String, Option<String>)> {
        let start = self.pos;
        let tok = self.name_token();
        if tok.is_empty() {
            return Err(self.err("expected an attribute name"));
        }
        split_attr_path(tok).ok_or_else(|| {
            let near: String = self.src[start..].chars().take(20).collect();
            ScimError::invalid_filter(format!("invalid attribute path '{near}'"))
        })
    }
    fn attr_expr(&mut self, in_brackets: bool) -> Result<Filter> {
        let (urn, name, sub) = self.attr_path()?;
        let path = AttrPath { urn, name, sub };
        if self.peek() == Some('[') {
            if in_brackets {
                return Err(self.err("value paths cannot be nested"));
            }
            if path.sub.is_some() {
                return Err(self.err("a value path cannot follow a sub-attribute"));
            }
            self.pos += 1;
            self.enter()?;
            let inner = self.or_expr(true)?;
            self.skip_ws();
            if self.peek() != Some(']') {
                return Err(self.err("expected ']'"));
            }
            self.pos += 1;
            self.depth -= 1;
            // Tolerated extension: `emails[type eq "work"].value eq "x"`.
            if self.peek() == Some('.') {
                self.pos += 1;
                let sub = self.name_token();
                if !valid_name(sub) {
                    return Err(self.err("expected a sub-attribute name"));
                }
                let sub_path = AttrPath::new(sub);
                let cmp = self.comparison(sub_path)?;
                // Display writes an `and`/`or` inner filter in parentheses,
                // `emails[(a or b) and value eq "x"]`, one level deeper than
                // the input: that form must be within the limit too, or the
                // filter would not parse back (found by fuzzing).
                if matches!(inner, Filter::And(_) | Filter::Or(_)) {
                    self.enter()?;
                    self.enter()?;
                    self.depth -= 2;
                }
                return Ok(Filter::ValuePath(path, Box::new(Filter::And(vec![inner, cmp]))));
            }
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        self.comparison(path)
    }
    fn comparison(&mut self, path: AttrPath) -> Result<Filter> {
        if !matches!(self.peek(), Some(c) if c.is_whitespace()) {
            return Err(self.err("expected an operator"));
        }
        self.skip_ws();
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphabetic()) {
            self.pos += 1;
        }
        let word = &self.src[start..self.pos];
        if word.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(path));
        }
        let Some(op) = CompareOp::parse(word) else {
            self.pos = start;
            return Err(self.err("expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr)"));
        };
        if !matches!(self.peek(), Some(c) if c.is_whitespace()) {
            return Err(self.err("expected a value"));
        }
        self.skip_ws();
        let value = self.comp_value()?;
        Ok(Filter::Compare(path, op, value))
    }
    fn comp_value(&mut self) -> Result<CompValue> {
        match self.peek() {
            Some('"') => self.string().map(CompValue::String),
            None => Err(self.err("expected a value")),
            Some(_) => {
                // A bare word: true/false/null/number, or an unquoted legacy
                // string value (ends at whitespace, ')' or ']').
                let start = self.pos;
                while let Some(c) = self.peek() {
                    if c.is_whitespace() || c == ')' || c == ']' {
                        break;
                    }
                    self.pos += c.len_utf8();
                }
                let word = &self.src[start..self.pos];
                if word.is_empty() {
                    return Err(self.err("expected a value"));
                }
                if word.eq_ignore_ascii_case("true") {
                    return Ok(CompValue::Bool(true));
                }
                if word.eq_ignore_ascii_case("false") {
                    return Ok(CompValue::Bool(false));
                }
                if word.eq_ignore_ascii_case("null") {
                    return Ok(CompValue::Null);
                }
                if word.starts_with(|c: char| c == '-' || c.is_ascii_digit())
                    && let Some(n) = parse_number(word)
                {
                    return Ok(CompValue::Number(n));
                }
                if word.contains('"') {
                    self.pos = start;
                    return Err(self.err("invalid value"));
                }
                Ok(CompValue::String(word.to_string()))
            }
        }
    }
    /// A JSON string literal, with JSON escapes.
    fn string(&mut self) -> Result<String> {
        let start = self.pos;
        self.pos += 1;
        let mut escaped = false;
        loop {
            let Some(c) = self.peek() else {
                self.pos = start;
                return Err(self.err("unterminated string"));
            };
            self.pos += c.len_utf8();
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                break;
            }
        }
        let lit = &self.src[start..self.pos];
        let value = serde_json::from_str::<String>(lit)
            .map_err(|_| ScimError::invalid_filter(format!("invalid string literal at position {start}")))?;
        // Stored values never hold NUL (see resource.rs); neither do filters.
        if value.contains('\0') {
            return Err(ScimError::invalid_filter(
                "filter values must not contain NUL characters",
            ));
        }
        Ok(value)
    }
}

/// A JSON number. Integers keep their exact value; other numbers are read
/// with Rust's correctly rounded `f64` parser (serde_json's default parser
/// may be off by one ulp, which would break the Display/parse round trip).
fn parse_number(word: &str) -> Option<serde_json::Number> {
    let serde_json::Value::Number(n) = serde_json::from_str::<serde_json::Value>(word).ok()? else {
        return None;
    };
    if n.is_f64() {
        return word.parse::<f64>().ok().and_then(serde_json::Number::from_f64);
    }
    Some(n)
}

/// Splits `urn:...:name.sub` / `name.sub` into its parts. The URN is
/// everything up to the last colon.
pub(crate) fn split_attr_path(tok: &str) -> Option<(Option<String>, String, Option<String>)> {
    let (urn, rest) = match tok.rfind(':') {
        Some(i) => (Some(&tok[..i]), &tok[i + 1..]),
        None => (None, tok),
    };
    if let Some(u) = urn
        && !u.to_ascii_lowercase().starts_with("urn:")
    {
        return None;
    }
    let mut parts = rest.splitn(2, '.');
    let name = parts.next().filter(|n| valid_name(n))?;
    let sub = match parts.next() {
        Some(s) if valid_name(s) => Some(s.to_string()),
        Some(_) => return None,
        None => None,
    };
    Some((urn.map(str::to_string), name.to_string(), sub))
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '$' || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
}
