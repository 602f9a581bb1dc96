//! The syntax tree of an expression, its canonical text (`Display`) and the
//! table of known functions.

use std::fmt;

/// A number literal, or a number computed by a function.
///
/// Integers that fit in an `i64` are kept as integers. Everything else (a
/// decimal such as `42568.75`, or an integer too large for `i64`) is kept as
/// its exact text, because `Len(42568.75)` counts the characters as written
/// and no function does decimal arithmetic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Number {
    Int(i64),
    Decimal(String),
}

impl Number {
    /// Reads the literal grammar `-?DIGIT+(.DIGIT+)?`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Number> {
        let digits = text.strip_prefix('-').unwrap_or(text);
        let (int, frac) = match digits.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (digits, None),
        };
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(int) || frac.is_some_and(|f| !all_digits(f)) {
            return None;
        }
        if frac.is_none()
            && let Ok(i) = text.parse::<i64>()
        {
            return Some(Number::Int(i));
        }
        Some(Number::Decimal(text.to_string()))
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Number::Int(i) => Some(*i),
            Number::Decimal(_) => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Number::Int(i) => Some(*i as f64),
            Number::Decimal(t) => t.parse().ok(),
        }
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Int(i) => write!(f, "{i}"),
            Number::Decimal(t) => f.write_str(t),
        }
    }
}

/// The bare identifiers the language knows besides function names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Constant {
    /// `vbBinaryCompare` (VBA value 0): case-sensitive `InStr`.
    VbBinaryCompare,
    /// `vbTextCompare` (VBA value 1): case-insensitive `InStr`.
    VbTextCompare,
    True,
    False,
}

impl Constant {
    pub const ALL: [Constant; 4] = [
        Constant::VbBinaryCompare,
        Constant::VbTextCompare,
        Constant::True,
        Constant::False,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Constant::VbBinaryCompare => "vbBinaryCompare",
            Constant::VbTextCompare => "vbTextCompare",
            Constant::True => "True",
            Constant::False => "False",
        }
    }

    /// Case-insensitive, as VBA identifiers are.
    pub fn from_name(name: &str) -> Option<Constant> {
        Constant::ALL.into_iter().find(|c| c.name().eq_ignore_ascii_case(name))
    }
}

/// The six comparison operators of IIF conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    pub const ALL: [CmpOp; 6] = [CmpOp::Eq, CmpOp::Ne, CmpOp::Gt, CmpOp::Ge, CmpOp::Lt, CmpOp::Le];

    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
        }
    }
}

macro_rules! functions {
    ($($variant:ident = $name:literal, $min:expr, $max:expr;)*) => {
        /// Every function of the language.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Function {
            $($variant,)*
        }

        impl Function {
            pub const ALL: &'static [Function] = &[$(Function::$variant,)*];

            /// The name as the Entra reference spells it.
            pub fn name(self) -> &'static str {
                match self {
                    $(Function::$variant => $name,)*
                }
            }

            /// The number of arguments: at least `.0`, at most `.1` (`None`:
            /// no upper bound).
            pub fn arity(self) -> (usize, Option<usize>) {
                match self {
                    $(Function::$variant => ($min, $max),)*
                }
            }
        }
    };
}

functions! {
    Append = "Append", 2, Some(2);
    AppRoleAssignmentsComplex = "AppRoleAssignmentsComplex", 1, Some(1);
    AssertiveAppRoleAssignmentsComplex = "AssertiveAppRoleAssignmentsComplex", 1, Some(1);
    BitAnd = "BitAnd", 2, Some(2);
    CBool = "CBool", 1, Some(1);
    CDate = "CDate", 1, Some(1);
    Coalesce = "Coalesce", 1, None;
    ConvertToBase64 = "ConvertToBase64", 1, Some(1);
    ConvertToUtf8Hex = "ConvertToUTF8Hex", 1, Some(1);
    Count = "Count", 1, Some(1);
    CStr = "CStr", 1, Some(1);
    DateAdd = "DateAdd", 3, Some(3);
    DateDiff = "DateDiff", 3, Some(3);
    DateFromNum = "DateFromNum", 1, Some(1);
    DefaultDomain = "DefaultDomain", 0, Some(0);
    FormatDateTime = "FormatDateTime", 4, Some(4);
    Guid = "Guid", 0, Some(0);
    IgnoreFlowIfNullOrEmpty = "IgnoreFlowIfNullOrEmpty", 1, Some(1);
    Iif = "IIF", 3, Some(3);
    InStr = "InStr", 2, Some(4);
    IsNull = "IsNull", 1, Some(1);
    IsNullOrEmpty = "IsNullOrEmpty", 1, Some(1);
    IsPresent = "IsPresent", 1, Some(1);
    IsString = "IsString", 1, Some(1);
    Item = "Item", 2, Some(2);
    Join = "Join", 1, None;
    Left = "Left", 2, Some(2);
    Len = "Len", 1, Some(1);
    Mid = "Mid", 3, Some(3);
    NormalizeDiacritics = "NormalizeDiacritics", 1, Some(1);
    Not = "Not", 1, Some(1);
    Now = "Now", 0, Some(0);
    NumFromDate = "NumFromDate", 1, Some(1);
    PCase = "PCase", 1, Some(2);
    RandomString = "RandomString", 5, Some(6);
    Redact = "Redact", 1, Some(1);
    RemoveDuplicates = "RemoveDuplicates", 1, Some(1);
    Replace = "Replace", 5, Some(7);
    SelectUniqueValue = "SelectUniqueValue", 2, None;
    SingleAppRoleAssignment = "SingleAppRoleAssignment", 1, Some(1);
    Split = "Split", 2, Some(2);
    StripSpaces = "StripSpaces", 1, Some(1);
    Switch = "Switch", 2, None;
    ToLower = "ToLower", 1, Some(2);
    ToUpper = "ToUpper", 1, Some(2);
    Word = "Word", 3, Some(3);
}

impl Function {
    /// Case-insensitive: the Entra reference itself writes `switch(…)`.
    pub fn from_name(name: &str) -> Option<Function> {
        Function::ALL
            .iter()
            .copied()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A node of the syntax tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `[name]`: the source object's attribute, matched by exact name.
    Attribute(String),
    /// `"text"`, with its escapes resolved.
    Str(String),
    /// `42`, `-10`, `42568.75`, or `&HF7` (stored as its value).
    Num(Number),
    /// `vbTextCompare`, `vbBinaryCompare`, `True`, `False`.
    Const(Constant),
    Call(Call),
    /// `left op right`; neither side is itself a comparison.
    Compare(Box<Node>, CmpOp, Box<Node>),
}

/// `Name(arg, …)`. `None` is an omitted argument (`Switch([a], , "x", "y")`),
/// which is not the same as `""`: Replace and FormatDateTime choose their
/// behaviour from which arguments are present.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub function: Function,
    pub args: Vec<Option<Node>>,
}

impl Call {
    /// The argument at `i` if present (neither omitted nor past the end).
    pub fn arg(&self, i: usize) -> Option<&Node> {
        self.args.get(i).and_then(Option::as_ref)
    }
}

impl Node {
    /// Every attribute name, in order of first appearance, without repeats.
    pub fn attributes(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.walk(&mut |n| {
            if let Node::Attribute(a) = n
                && !out.contains(&a.as_str())
            {
                out.push(a.as_str());
            }
        });
        out
    }

    /// Every function used, in order of first appearance, without repeats.
    pub fn functions(&self) -> Vec<Function> {
        let mut out = Vec::new();
        self.walk(&mut |n| {
            if let Node::Call(c) = n
                && !out.contains(&c.function)
            {
                out.push(c.function);
            }
        });
        out
    }

    /// Pre-order traversal.
    pub fn walk<'a>(&'a self, visit: &mut dyn FnMut(&'a Node)) {
        visit(self);
        match self {
            Node::Call(c) => {
                for a in c.args.iter().flatten() {
                    a.walk(visit);
                }
            }
            Node::Compare(l, _, r) => {
                l.walk(visit);
                r.walk(visit);
            }
            Node::Attribute(_) | Node::Str(_) | Node::Num(_) | Node::Const(_) => {}
        }
    }
}

/// Writes `s` as a string literal: only `\` and `"` need escaping.
pub(crate) fn write_string_literal(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        if c == '"' || c == '\\' {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    f.write_char('"')
}

/// Canonical text: canonical function names, `, ` between arguments, one
/// space around comparison operators, hex literals as decimal. Parsing it
/// gives the same tree.
impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Attribute(a) => write!(f, "[{a}]"),
            Node::Str(s) => write_string_literal(f, s),
            Node::Num(n) => write!(f, "{n}"),
            Node::Const(c) => f.write_str(c.name()),
            Node::Call(c) => {
                write!(f, "{}(", c.function.name())?;
                for (i, a) in c.args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if let Some(a) = a {
                        write!(f, "{a}")?;
                    }
                }
                f.write_str(")")
            }
            Node::Compare(l, op, r) => write!(f, "{l} {} {r}", op.as_str()),
        }
    }
}
