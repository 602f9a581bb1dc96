//! Evaluation of a parsed expression against one source object.
//!
//! Rules that hold for every function:
//! - Arguments are evaluated left to right; IIF, Switch, Coalesce and
//!   SelectUniqueValue evaluate only what they need.
//! - An omitted argument is Null (Replace and FormatDateTime also look at
//!   which arguments are present).
//! - `Drop` (from IgnoreFlowIfNullOrEmpty) is contagious: a function that
//!   receives it as an evaluated argument returns `Drop`, so the attribute
//!   is dropped from the flow wherever the wrapper sits.
//! - A list (multi-valued attribute) or app role list where one string is
//!   expected is an error that names the function, never a silent pick.
//! - Every string a function builds is limited to [`MAX_VALUE_BYTES`].

use std::borrow::Cow;
use std::cmp::Ordering;

use base64::Engine as _;
use time::{OffsetDateTime, UtcOffset};

use crate::ast::{Call, CmpOp, Constant, Function, Node, Number};
use crate::datetime;
use crate::expr::Expr;
use crate::replace::{self, Mode};
use crate::text;
use crate::value::{AppRole, Output, Source, Value};

/// The largest string (or list, all values together) a function may
/// build: Replace and the encodings multiply lengths, and nesting them
/// would otherwise grow without bound.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// What an evaluation may use besides the source object. Nothing else
/// (no clock, no randomness, no I/O) is touched.
pub struct Env<'a> {
    /// What `Now()` returns (converted to UTC); also the default date of
    /// FormatDateTime formats without one.
    pub now: OffsetDateTime,
    /// 64 random bits per call, for `Guid()` and `RandomString()`.
    pub rng: &'a mut dyn FnMut() -> u64,
    /// What `DefaultDomain()` returns: the job's default domain.
    pub default_domain: Option<&'a str>,
}

/// Why an evaluation failed. Never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", function.map(|f| format!("{}: ", f.name())).unwrap_or_default())]
pub struct EvalError {
    /// The function that failed; `None` for reading the source.
    pub function: Option<Function>,
    pub message: String,
}

/// Evaluates `expr` against one source object.
pub fn eval(expr: &Expr, source: &dyn Source, env: &mut Env<'_>) -> Result<Output, EvalError> {
    let mut ev = Evaluator {
        expr,
        source,
        env,
        redacted: false,
    };
    let value = ev.node(expr.root())?;
    Ok(Output {
        value,
        redacted: ev.redacted,
    })
}

struct Evaluator<'x, 'e, 'a> {
    expr: &'x Expr,
    source: &'x dyn Source,
    env: &'e mut Env<'a>,
    redacted: bool,
}

fn err(f: Function, message: impl Into<String>) -> EvalError {
    EvalError {
        function: Some(f),
        message: message.into(),
    }
}

fn ordinal(i: usize) -> &'static str {
    match i {
        0 => "the first argument",
        1 => "the second argument",
        2 => "the third argument",
        3 => "the fourth argument",
        4 => "the fifth argument",
        5 => "the sixth argument",
        6 => "the seventh argument",
        _ => "an argument",
    }
}

/// The text of one value, `None` for Null; lists and roles are errors.
fn text_of(f: Function, i: usize, v: &Value) -> Result<Option<String>, EvalError> {
    match v {
        Value::Null => Ok(None),
        Value::Multi(items) if items.is_empty() => Ok(None),
        Value::Multi(items) => Err(err(
            f,
            format!(
                "{} is multi-valued ({} values); pick one with Item() or combine them with Join()",
                ordinal(i),
                items.len()
            ),
        )),
        Value::AppRoles(_) => Err(err(
            f,
            format!(
                "{} is a list of app role assignments; use SingleAppRoleAssignment() for one role",
                ordinal(i)
            ),
        )),
        Value::Drop | Value::Candidates(_) => Err(err(f, format!("{} has no value", ordinal(i)))),
        _ => Ok(v.text().map(Cow::into_owned)),
    }
}

/// An integer argument: a number literal, a whole-number string (`"7"`,
/// or VB hex `"&HF"`), `None` for Null.
fn int_of(f: Function, i: usize, v: &Value) -> Result<Option<i64>, EvalError> {
    if let Value::Num(n) = v {
        return match n.as_i64() {
            Some(i) => Ok(Some(i)),
            None => Err(err(f, format!("{} must be a whole number, got {n}", ordinal(i)))),
        };
    }
    let Some(t) = text_of(f, i, v)? else {
        return Ok(None);
    };
    parse_int(&t)
        .map(Some)
        .ok_or_else(|| err(f, format!("{} must be a whole number, got {t:?}", ordinal(i))))
}

fn parse_int(t: &str) -> Option<i64> {
    let t = t.trim();
    if let Some(hex) = t.strip_prefix("&H").or_else(|| t.strip_prefix("&h")) {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        return i64::from_str_radix(hex, 16).ok();
    }
    Number::parse(t).and_then(|n| n.as_i64())
}

/// A required integer argument.
fn req_int(f: Function, i: usize, v: &Value) -> Result<i64, EvalError> {
    int_of(f, i, v)?.ok_or_else(|| err(f, format!("{} is missing (null)", ordinal(i))))
}

/// A date argument: a DateTime, or a string CDate can read. Null and `""`
/// are `None`.
fn date_of(f: Function, i: usize, v: &Value) -> Result<Option<OffsetDateTime>, EvalError> {
    if let Value::DateTime(dt) = v {
        return Ok(Some(*dt));
    }
    let Some(t) = text_of(f, i, v)? else {
        return Ok(None);
    };
    if t.trim().is_empty() {
        return Ok(None);
    }
    datetime::parse_date(&t)
        .map(Some)
        .ok_or_else(|| err(f, format!("{} is not a date CDate can read: {t:?}", ordinal(i))))
}

/// "True"/"False" in any case, numbers (non-zero is true), booleans. Null
/// and `""` are false.
fn truth(f: Function, v: &Value) -> Result<bool, EvalError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Num(n) => Ok(n.as_f64().is_some_and(|x| x != 0.0)),
        _ if v.is_null_or_empty() => Ok(false),
        _ => {
            let t = text_of(f, 0, v)?.unwrap_or_default();
            if t.eq_ignore_ascii_case("true") {
                Ok(true)
            } else if t.eq_ignore_ascii_case("false") {
                Ok(false)
            } else if let Some(n) = Number::parse(t.trim()) {
                Ok(n.as_f64().is_some_and(|x| x != 0.0))
            } else {
                Err(err(f, format!("{t:?} is not a boolean (True or False) or a number")))
            }
        }
    }
}

fn check_size(f: Function, v: Value) -> Result<Value, EvalError> {
    let size = match &v {
        Value::Str(s) => s.len(),
        Value::Multi(items) | Value::Candidates(items) => items.iter().map(String::len).sum(),
        _ => 0,
    };
    if size > MAX_VALUE_BYTES {
        return Err(err(f, format!("the result is longer than {MAX_VALUE_BYTES} bytes")));
    }
    Ok(v)
}

fn str_value(s: String) -> Value {
    Value::Str(s)
}

fn int_value(i: i64) -> Value {
    Value::Num(Number::Int(i))
}

/// A comparison of IIF (or CBool): false when either side is null or
/// empty (Entra: "the condition check fails"); dates compare as dates;
/// numbers (both sides numeric text) as numbers; anything else as
/// case-sensitive ordinal text.
fn compare(left: &Value, op: CmpOp, right: &Value) -> Result<bool, String> {
    if left.is_null_or_empty() || right.is_null_or_empty() {
        return Ok(false);
    }
    let ord = match (left, right) {
        (Value::DateTime(a), Value::DateTime(b)) => a.cmp(b),
        _ => {
            let side = |v: &Value| -> Result<String, String> {
                match v {
                    Value::Multi(_) | Value::AppRoles(_) => {
                        Err("a comparison operand is multi-valued; compare one value (Item, Join)".into())
                    }
                    _ => Ok(v.text().map(Cow::into_owned).unwrap_or_default()),
                }
            };
            let (a, b) = (side(left)?, side(right)?);
            match (Number::parse(&a), Number::parse(&b)) {
                (Some(Number::Int(x)), Some(Number::Int(y))) => x.cmp(&y),
                (Some(x), Some(y)) => {
                    let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                    x.partial_cmp(&y).unwrap_or(Ordering::Equal)
                }
                _ => a.cmp(&b),
            }
        }
    };
    Ok(match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
    })
}

impl Evaluator<'_, '_, '_> {
    fn node(&mut self, node: &Node) -> Result<Value, EvalError> {
        match node {
            Node::Attribute(name) => self.attribute(name),
            Node::Str(s) => Ok(Value::Str(s.clone())),
            Node::Num(n) => Ok(Value::Num(n.clone())),
            Node::Const(c) => Ok(match c {
                Constant::VbBinaryCompare => int_value(0),
                Constant::VbTextCompare => int_value(1),
                Constant::True => Value::Bool(true),
                Constant::False => Value::Bool(false),
            }),
            Node::Compare(l, op, r) => {
                let l = self.node(l)?;
                let r = self.node(r)?;
                if l == Value::Drop || r == Value::Drop {
                    return Ok(Value::Drop);
                }
                compare(&l, *op, &r).map(Value::Bool).map_err(|message| EvalError {
                    function: None,
                    message,
                })
            }
            Node::Call(c) => self.call(c),
        }
    }

    fn attribute(&mut self, name: &str) -> Result<Value, EvalError> {
        let v = self.source.get(name).map_err(|e| EvalError {
            function: None,
            message: e.to_string(),
        })?;
        match v {
            None => Ok(Value::Null),
            Some(Value::Drop | Value::Candidates(_)) => Err(EvalError {
                function: None,
                message: format!("attribute [{name}] holds a computed result, not a source value"),
            }),
            Some(v) if v.is_null() => Ok(Value::Null),
            Some(v) => Ok(v),
        }
    }

    fn arg(&mut self, call: &Call, i: usize) -> Result<Value, EvalError> {
        match call.arg(i) {
            Some(n) => self.node(n),
            None => Ok(Value::Null),
        }
    }

    fn call(&mut self, call: &Call) -> Result<Value, EvalError> {
        let f = call.function;
        // The functions that do not evaluate all their arguments first.
        match f {
            Function::Iif => {
                let cond = self.arg(call, 0)?;
                if cond == Value::Drop {
                    return Ok(Value::Drop);
                }
                return if truth(f, &cond)? {
                    self.arg(call, 1)
                } else {
                    self.arg(call, 2)
                };
            }
            Function::Switch => return self.switch(call),
            Function::Coalesce => {
                for i in 0..call.args.len() {
                    let v = self.arg(call, i)?;
                    if !v.is_null() {
                        return Ok(v);
                    }
                }
                return Ok(Value::Null);
            }
            Function::SelectUniqueValue => return self.select_unique(call),
            Function::Redact => {
                self.redacted = true;
                return self.arg(call, 0);
            }
            _ => {}
        }
        let mut args = Vec::with_capacity(call.args.len());
        for i in 0..call.args.len() {
            let v = self.arg(call, i)?;
            if v == Value::Drop {
                return Ok(Value::Drop);
            }
            args.push(v);
        }
        let value = self.apply(call, &args)?;
        check_size(f, value)
    }

    /// Switch(source, default, key1, value1, …): the value of the first key
    /// equal (case-sensitive) to source. Null or `""` source matches a `""`
    /// key (as does a Null key). Evaluated afresh every time: it never
    /// yields Null just because its input did not change (Entra's bug).
    fn switch(&mut self, call: &Call) -> Result<Value, EvalError> {
        let f = Function::Switch;
        let source = self.arg(call, 0)?;
        if source == Value::Drop {
            return Ok(Value::Drop);
        }
        let source = text_of(f, 0, &source)?.unwrap_or_default();
        let mut k = 2;
        while k + 1 < call.args.len() {
            let key = self.arg(call, k)?;
            if key == Value::Drop {
                return Ok(Value::Drop);
            }
            if text_of(f, k, &key)?.unwrap_or_default() == source {
                return self.arg(call, k + 1);
            }
            k += 2;
        }
        self.arg(call, 1)
    }

    /// Every rule's value, in order; rules that give null, `""` or Drop
    /// offer no candidate, and a repeated value is offered once.
    fn select_unique(&mut self, call: &Call) -> Result<Value, EvalError> {
        let f = Function::SelectUniqueValue;
        let mut out: Vec<String> = Vec::new();
        for i in 0..call.args.len() {
            let v = self.arg(call, i)?;
            if v == Value::Drop {
                continue;
            }
            if let Some(t) = text_of(f, i, &v)?
                && !t.is_empty()
                && !out.contains(&t)
            {
                out.push(t);
            }
        }
        check_size(f, Value::Candidates(out))
    }

    fn apply(&mut self, call: &Call, args: &[Value]) -> Result<Value, EvalError> {
        let f = call.function;
        let null = Value::Null;
        let a = |i: usize| args.get(i).unwrap_or(&null);
        let text = |i: usize| text_of(f, i, a(i));
        let wrap = |r: Result<Value, String>| r.map_err(|m| err(f, m));
        Ok(match f {
            Function::Append => {
                let mut s = text(0)?.unwrap_or_default();
                s.push_str(&text(1)?.unwrap_or_default());
                Value::Str(s)
            }
            Function::AppRoleAssignmentsComplex => match roles(f, a(0))? {
                Some(r) => Value::AppRoles(r),
                None => Value::Null,
            },
            // Assertive replaces the whole list, so no roles is an empty
            // list (which removes the target's roles), not "no value".
            Function::AssertiveAppRoleAssignmentsComplex => Value::AppRoles(roles(f, a(0))?.unwrap_or_default()),
            Function::SingleAppRoleAssignment => match roles(f, a(0))? {
                Some(r) => r.into_iter().next().map_or(Value::Null, |r| Value::Str(r.value)),
                None => Value::Null,
            },
            Function::BitAnd => match (int_of(f, 0, a(0))?, int_of(f, 1, a(1))?) {
                (Some(x), Some(y)) => int_value(x & y),
                _ => Value::Null,
            },
            Function::CBool => Value::Bool(truth(f, a(0))?),
            Function::CDate => match date_of(f, 0, a(0))? {
                Some(dt) => Value::DateTime(dt),
                None => Value::Null,
            },
            Function::ConvertToBase64 => match text(0)? {
                Some(s) => {
                    let bytes: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
                    str_value(base64::engine::general_purpose::STANDARD.encode(bytes))
                }
                None => Value::Null,
            },
            Function::ConvertToUtf8Hex => match text(0)? {
                Some(s) => str_value(s.bytes().map(|b| format!("{b:02X}")).collect()),
                None => Value::Null,
            },
            Function::Count => int_value(match a(0) {
                Value::Null => 0,
                Value::Multi(v) => v.len() as i64,
                Value::AppRoles(r) => r.len() as i64,
                _ => 1,
            }),
            Function::CStr => match text(0)? {
                Some(s) => Value::Str(s),
                None => Value::Null,
            },
            Function::DateAdd => {
                let interval = text(0)?.ok_or_else(|| err(f, "the interval is missing (null)"))?;
                let n = req_int(f, 1, a(1))?;
                match date_of(f, 2, a(2))? {
                    Some(dt) => wrap(datetime::date_add(&interval, n, dt).map(Value::DateTime))?,
                    None => Value::Null,
                }
            }
            Function::DateDiff => {
                let interval = text(0)?.ok_or_else(|| err(f, "the interval is missing (null)"))?;
                match (date_of(f, 1, a(1))?, date_of(f, 2, a(2))?) {
                    (Some(d1), Some(d2)) => wrap(datetime::date_diff(&interval, d1, d2).map(int_value))?,
                    _ => Value::Null,
                }
            }
            Function::DateFromNum => match int_of(f, 0, a(0))? {
                Some(t) => wrap(datetime::from_ticks(t).map(Value::DateTime))?,
                None => Value::Null,
            },
            Function::NumFromDate => match date_of(f, 0, a(0))? {
                Some(dt) => wrap(datetime::to_ticks(dt).map(int_value))?,
                None => Value::Null,
            },
            Function::DefaultDomain => match self.env.default_domain {
                Some(d) if !d.is_empty() => Value::Str(d.to_string()),
                _ => return Err(err(f, "no default domain is configured for this job")),
            },
            Function::FormatDateTime => {
                let Some(src) = text(0)?.filter(|s| !s.trim().is_empty()) else {
                    return Ok(Value::Null);
                };
                let styles = text(1)?;
                let input = text(2)?.ok_or_else(|| err(f, "the input format is missing (null)"))?;
                let output = text(3)?.ok_or_else(|| err(f, "the output format is missing (null)"))?;
                wrap(datetime::format_date_time(&src, styles.as_deref(), &input, &output, self.env.now).map(str_value))?
            }
            Function::Guid => str_value(text::guid(self.env.rng)),
            Function::IgnoreFlowIfNullOrEmpty => {
                if a(0).is_null_or_empty() {
                    Value::Drop
                } else {
                    a(0).clone()
                }
            }
            Function::InStr => {
                let (Some(hay), Some(needle)) = (text(0)?, text(1)?) else {
                    return Ok(Value::Null);
                };
                let start = int_of(f, 2, a(2))?.unwrap_or(1);
                let Ok(start) = usize::try_from(start) else {
                    return Err(err(f, format!("start must be at least 1, got {start}")));
                };
                if start == 0 {
                    return Err(err(f, "start must be at least 1, got 0"));
                }
                let text_compare = compare_mode(f, a(3))?;
                int_value(text::instr(&hay, &needle, start, text_compare) as i64)
            }
            Function::IsNull => Value::Bool(a(0).is_null()),
            Function::IsNullOrEmpty => Value::Bool(a(0).is_null_or_empty()),
            Function::IsPresent => Value::Bool(!a(0).is_null_or_empty()),
            Function::IsString => Value::Bool(a(0).text().is_some()),
            Function::Item => {
                let index = req_int(f, 1, a(1))?;
                let Some(i) = usize::try_from(index).ok().and_then(|i| i.checked_sub(1)) else {
                    return Ok(Value::Null);
                };
                match a(0) {
                    Value::Multi(v) => v.get(i).cloned().map_or(Value::Null, Value::Str),
                    Value::AppRoles(r) => r.get(i).map_or(Value::Null, |r| Value::Str(r.value.clone())),
                    Value::Null => Value::Null,
                    v if i == 0 => text_of(f, 0, v)?.map_or(Value::Null, Value::Str),
                    _ => Value::Null,
                }
            }
            Function::Join => {
                let sep = text(0)?.unwrap_or_default();
                let mut parts: Vec<String> = Vec::new();
                for (i, v) in args.iter().enumerate().skip(1) {
                    match v {
                        Value::Multi(items) => parts.extend(items.iter().filter(|s| !s.is_empty()).cloned()),
                        _ => {
                            if let Some(t) = text_of(f, i, v)?.filter(|t| !t.is_empty()) {
                                parts.push(t);
                            }
                        }
                    }
                }
                let size = parts.iter().map(String::len).sum::<usize>() + sep.len() * parts.len();
                if size > MAX_VALUE_BYTES {
                    return Err(err(f, format!("the result is longer than {MAX_VALUE_BYTES} bytes")));
                }
                Value::Str(parts.join(&sep))
            }
            Function::Left => {
                let s = text(0)?.unwrap_or_default();
                let n = req_int(f, 1, a(1))?;
                Value::Str(match usize::try_from(n) {
                    Err(_) => s,
                    Ok(n) => s.chars().take(n).collect(),
                })
            }
            Function::Len => int_value(text(0)?.map_or(0, |s| s.chars().count() as i64)),
            Function::Mid => {
                let s = text(0)?.unwrap_or_default();
                let start = req_int(f, 1, a(1))?;
                let len = req_int(f, 2, a(2))?;
                if start < 1 {
                    return Err(err(f, format!("start must be at least 1, got {start}")));
                }
                if len < 0 {
                    return Err(err(f, format!("length must not be negative, got {len}")));
                }
                let skip = usize::try_from(start - 1).unwrap_or(usize::MAX);
                let take = usize::try_from(len).unwrap_or(usize::MAX);
                Value::Str(s.chars().skip(skip).take(take).collect())
            }
            Function::NormalizeDiacritics => {
                text(0)?.map_or(Value::Null, |s| str_value(text::normalize_diacritics(&s)))
            }
            Function::Not => {
                let is_true = match a(0) {
                    Value::Bool(b) => *b,
                    Value::Str(s) => s.trim().eq_ignore_ascii_case("true"),
                    _ => false,
                };
                Value::Bool(!is_true)
            }
            Function::Now => match self.env.now.checked_to_offset(UtcOffset::UTC) {
                Some(now) => wrap(datetime::check_range(now).map(Value::DateTime))?,
                None => return Err(err(f, "the clock is out of range")),
            },
            Function::PCase => match text(0)? {
                Some(s) => {
                    let seps = text(1)?.filter(|s| !s.is_empty());
                    str_value(text::pcase(&s, seps.as_deref()))
                }
                None => Value::Null,
            },
            Function::RandomString => {
                let length = req_int(f, 0, a(0))?;
                let mut minima = [0i64; 4];
                for (k, m) in minima.iter_mut().enumerate() {
                    *m = req_int(f, k + 1, a(k + 1))?;
                }
                let avoid = text(5)?.unwrap_or_default();
                wrap(text::random_string(length, minima, &avoid, self.env.rng).map(str_value))?
            }
            Function::RemoveDuplicates => match a(0) {
                Value::Multi(items) => {
                    let mut out: Vec<String> = Vec::with_capacity(items.len());
                    for s in items {
                        if !out.contains(s) {
                            out.push(s.clone());
                        }
                    }
                    Value::Multi(out)
                }
                Value::AppRoles(r) => {
                    let mut out: Vec<AppRole> = Vec::with_capacity(r.len());
                    for role in r {
                        if !out.contains(role) {
                            out.push(role.clone());
                        }
                    }
                    Value::AppRoles(out)
                }
                v => v.clone(),
            },
            Function::Replace => self.replace(call, args)?,
            Function::Split => match text(0)?.filter(|s| !s.is_empty()) {
                Some(s) => {
                    let delim = text(1)?.unwrap_or_default();
                    if delim.is_empty() {
                        Value::Multi(vec![s])
                    } else {
                        Value::Multi(s.split(delim.as_str()).map(str::to_string).collect())
                    }
                }
                None => Value::Null,
            },
            Function::StripSpaces => text(0)?.map_or(Value::Null, |s| str_value(s.replace(' ', ""))),
            Function::ToLower | Function::ToUpper => match text(0)? {
                Some(s) => {
                    let culture = text(1)?;
                    str_value(if f == Function::ToLower {
                        text::to_lower(&s, culture.as_deref())
                    } else {
                        text::to_upper(&s, culture.as_deref())
                    })
                }
                None => Value::Null,
            },
            Function::Word => {
                let s = text(0)?.unwrap_or_default();
                let n = req_int(f, 1, a(1))?;
                let delims = text(2)?.unwrap_or_default();
                Value::Str(text::word(&s, n, &delims))
            }
            // Handled in `call` before the arguments are evaluated.
            Function::Iif | Function::Switch | Function::Coalesce | Function::SelectUniqueValue | Function::Redact => {
                Value::Null
            }
        })
    }

    fn replace(&mut self, call: &Call, args: &[Value]) -> Result<Value, EvalError> {
        let f = Function::Replace;
        let null = Value::Null;
        let a = |i: usize| args.get(i).unwrap_or(&null);
        let text = |i: usize| text_of(f, i, a(i));
        let wrap = |r: Result<String, String>| r.map(Value::Str).map_err(|m| err(f, m));
        let present = |i: usize| call.arg(i).is_some();
        // The parser has refused every other combination.
        let Some(mode) = replace::mode(&present) else {
            return Err(err(
                f,
                "this combination of arguments is not one of Replace's five forms",
            ));
        };
        let source = text(replace::SOURCE)?;
        match mode {
            Mode::Text => {
                let Some(src) = source else { return Ok(Value::Null) };
                let Some(old) = text(replace::OLD)?.filter(|o| !o.is_empty()) else {
                    return Ok(Value::Str(src));
                };
                let new = text(replace::REPLACEMENT)?.unwrap_or_default();
                wrap(replace::replace_text(&src, &old, &new, MAX_VALUE_BYTES))
            }
            Mode::Template => {
                let Some(src) = source else { return Ok(Value::Null) };
                let Some(template) = text(replace::TEMPLATE)? else {
                    return Ok(Value::Null);
                };
                let Some(old) = text(replace::OLD)?.filter(|o| !o.is_empty()) else {
                    return Ok(Value::Str(template));
                };
                wrap(replace::replace_text(&template, &old, &src, MAX_VALUE_BYTES))
            }
            Mode::Regex | Mode::GroupSpan => {
                let Some(src) = source else { return Ok(Value::Null) };
                let re = self.regex(text(replace::PATTERN)?)?;
                let Some(re) = re.as_deref() else {
                    return Ok(Value::Str(src));
                };
                let new = text(replace::REPLACEMENT)?.unwrap_or_default();
                if mode == Mode::Regex {
                    wrap(replace::replace_regex(re, &src, &new, MAX_VALUE_BYTES))
                } else {
                    let group = text(replace::GROUP)?.unwrap_or_default();
                    wrap(replace::replace_group(re, &src, &group, &new, MAX_VALUE_BYTES))
                }
            }
            Mode::Fallback => {
                if let Some(src) = source.filter(|s| !s.is_empty()) {
                    return Ok(Value::Str(src));
                }
                let Some(other) = text(replace::ATTRIBUTE)? else {
                    return Ok(Value::Null);
                };
                let re = self.regex(text(replace::PATTERN)?)?;
                let Some(re) = re.as_deref() else {
                    return Ok(Value::Null);
                };
                let group = text(replace::GROUP)?.unwrap_or_default();
                match replace::extract_group(re, &other, &group) {
                    Ok(Some(v)) => Ok(Value::Str(v)),
                    Ok(None) => Ok(Value::Null),
                    Err(m) => Err(err(f, m)),
                }
            }
        }
    }

    /// The compiled pattern: from the parse-time cache for literals,
    /// compiled now for computed ones. `None` when the pattern is null.
    fn regex(&self, pattern: Option<String>) -> Result<Option<Cow<'_, fancy_regex::Regex>>, EvalError> {
        let Some(p) = pattern else { return Ok(None) };
        if let Some(re) = self.expr.regex(&p) {
            return Ok(Some(Cow::Borrowed(re)));
        }
        replace::compile(&p)
            .map(|re| Some(Cow::Owned(re)))
            .map_err(|m| err(Function::Replace, format!("invalid regular expression {p:?}: {m}")))
    }
}

/// InStr's compare type: vbBinaryCompare (0, the default) or
/// vbTextCompare (1), as a constant, a number or the name as text.
fn compare_mode(f: Function, v: &Value) -> Result<bool, EvalError> {
    match v {
        Value::Null => Ok(false),
        Value::Num(n) => match n.as_i64() {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            _ => Err(err(
                f,
                format!("compare type must be vbBinaryCompare (0) or vbTextCompare (1), got {n}"),
            )),
        },
        _ => {
            let t = text_of(f, 3, v)?.unwrap_or_default();
            match t.trim() {
                "" | "0" => Ok(false),
                "1" => Ok(true),
                t if t.eq_ignore_ascii_case("vbBinaryCompare") => Ok(false),
                t if t.eq_ignore_ascii_case("vbTextCompare") => Ok(true),
                t => Err(err(
                    f,
                    format!("compare type must be vbBinaryCompare or vbTextCompare, got {t:?}"),
                )),
            }
        }
    }
}

/// The app role assignments of the role functions' argument; `None` for
/// Null.
fn roles(f: Function, v: &Value) -> Result<Option<Vec<AppRole>>, EvalError> {
    match v {
        Value::Null => Ok(None),
        Value::AppRoles(r) if r.is_empty() => Ok(None),
        Value::AppRoles(r) => Ok(Some(r.clone())),
        _ => Err(err(
            f,
            "expects [appRoleAssignments]: a list of {id, value, displayName} objects",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons() {
        let s = |t: &str| Value::Str(t.into());
        let yes = |l: &Value, op, r: &Value| compare(l, op, r).unwrap();
        assert!(yes(&s("10"), CmpOp::Gt, &s("9")));
        assert!(!yes(&s("10"), CmpOp::Lt, &s("9.5")));
        assert!(yes(&s("b"), CmpOp::Gt, &s("a")));
        assert!(yes(&s("B"), CmpOp::Lt, &s("a")));
        assert!(yes(&s("007"), CmpOp::Eq, &int_value(7)));
        assert!(!yes(&s("x"), CmpOp::Ne, &Value::Null));
        assert!(!yes(&s(""), CmpOp::Ne, &s("x")));
        assert!(!yes(&s(""), CmpOp::Eq, &s("")));
        assert!(yes(&Value::Bool(true), CmpOp::Eq, &s("True")));
        assert!(yes(&s("a"), CmpOp::Le, &s("a")) && yes(&s("a"), CmpOp::Ge, &s("a")));
        assert!(compare(&Value::Multi(vec!["a".into()]), CmpOp::Eq, &s("a")).is_err());
    }

    #[test]
    fn integers_from_text() {
        assert_eq!(parse_int("7"), Some(7));
        assert_eq!(parse_int(" -7 "), Some(-7));
        assert_eq!(parse_int("&HF7"), Some(247));
        assert_eq!(parse_int("&H"), None);
        assert_eq!(parse_int("7.5"), None);
        assert_eq!(parse_int("x"), None);
    }
}
