//! A hand-written recursive-descent parser for the grammar of
//! `provisioning-engine.md` §1.1:
//!
//! ```text
//! expr       := operand ( cmp_op operand )?
//! cmp_op     := "=" | "<>" | ">=" | "<=" | ">" | "<"
//! operand    := call | attribute | string | number | hex | ident
//! call       := IDENT ws? "(" ( arg ( "," arg )* )? ")"
//! arg        := ws? expr? ws?                  // nothing at all = omitted
//! attribute  := "[" 1*(any char but "]") "]"
//! string     := '"' *( "\\" | "\"" | any char but '"' ) '"'   // "\x" keeps both chars
//! number     := "-"? DIGIT+ ( "." DIGIT+ )?
//! hex        := "&H" HEXDIGIT+
//! ident      := vbTextCompare | vbBinaryCompare | True | False
//! ```
//!
//! Function names and identifiers match case-insensitively; attribute names
//! exactly. Besides the grammar it checks what can be known without data:
//! argument counts, the five argument patterns of Replace, regex literals,
//! SelectUniqueValue only as the whole expression, and no
//! IgnoreFlowIfNullOrEmpty inside an IIF condition.

use std::collections::HashMap;
use std::fmt;

use crate::ast::{Call, CmpOp, Constant, Function, Node, Number};
use crate::expr::Expr;
use crate::replace;

/// Limits that keep hostile input cheap to reject.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// In characters. Entra's limit is 10,000.
    pub max_chars: usize,
    /// Nested calls; bounds the recursion of both the parser and `eval`.
    pub max_depth: usize,
}

/// Entra's length limit; the expression depth of its longest documented
/// example is 6.
pub const MAX_CHARS: usize = 10_000;
pub const MAX_DEPTH: usize = 64;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_chars: MAX_CHARS,
            max_depth: MAX_DEPTH,
        }
    }
}

/// Why an expression does not parse, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset into the text.
    pub offset: usize,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// What the parser wanted at `offset`, e.g. `',' or ')'`.
    pub expected: String,
    /// What it found there, e.g. `end of expression`, `'x'`, `3 arguments`.
    pub found: String,
    /// The whole explanation (`expected …, found …`, or a sentence for the
    /// checks that are not about one missing token).
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses an expression with the default limits (10,000 characters, 64
/// nested calls).
pub fn parse(text: &str) -> Result<Expr, ParseError> {
    parse_with(text, Limits::default())
}

pub fn parse_with(text: &str, limits: Limits) -> Result<Expr, ParseError> {
    let mut p = Parser {
        src: text,
        pos: 0,
        depth: 0,
        limits,
        iif_condition: 0,
        select_unique: Vec::new(),
        regexes: HashMap::new(),
    };
    if let Some((offset, _)) = text.char_indices().nth(limits.max_chars) {
        let count = text.chars().count();
        return Err(p.error_msg(
            offset,
            format!("at most {} characters", limits.max_chars),
            format!("{count} characters"),
            format!(
                "the expression is {count} characters long; the maximum is {}",
                limits.max_chars
            ),
        ));
    }
    p.skip_ws();
    let start = p.pos;
    if p.at_end() {
        return Err(p.expected(p.pos, "an expression"));
    }
    let root = p.expr()?;
    p.skip_ws();
    if !p.at_end() {
        let what = if matches!(root, Node::Compare(..)) {
            "end of expression"
        } else {
            "end of expression or a comparison operator"
        };
        return Err(p.expected(p.pos, what));
    }
    // SelectUniqueValue yields candidates for the engine to try in the
    // target, so it only makes sense as the whole expression [Doc].
    for &at in &p.select_unique {
        if at != start || !matches!(&root, Node::Call(c) if c.function == Function::SelectUniqueValue) {
            return Err(p.error_msg(
                at,
                "SelectUniqueValue as the whole expression".into(),
                "a nested SelectUniqueValue".into(),
                "SelectUniqueValue must be the whole expression; it cannot be nested or compared".into(),
            ));
        }
    }
    Ok(Expr::new(root, p.regexes))
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
    limits: Limits,
    /// > 0 while parsing the condition of an IIF.
    iif_condition: usize,
    /// Offsets of every SelectUniqueValue call.
    select_unique: Vec<usize>,
    /// Replace patterns given as string literals, compiled once here.
    regexes: HashMap<String, fancy_regex::Regex>,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self, c: char) {
        self.pos += c.len_utf8();
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if !c.is_whitespace() {
                break;
            }
            self.bump(c);
        }
    }

    /// Line and column (both 1-based, column in characters) of `offset`.
    fn position(&self, offset: usize) -> (usize, usize) {
        let before = self.src.get(..offset).unwrap_or(self.src);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        (line, column)
    }

    fn error_msg(&self, offset: usize, expected: String, found: String, message: String) -> ParseError {
        let (line, column) = self.position(offset);
        ParseError {
            offset,
            line,
            column,
            expected,
            found,
            message,
        }
    }

    /// `expected X, found <what is at offset>`.
    fn expected(&self, offset: usize, expected: &str) -> ParseError {
        let found = self.describe(offset);
        let message = format!("expected {expected}, found {found}");
        self.error_msg(offset, expected.to_string(), found, message)
    }

    /// A short description of the text at `offset`: a whole word, a string
    /// or number start, or one character.
    fn describe(&self, offset: usize) -> String {
        let rest = self.src.get(offset..).unwrap_or("");
        let Some(c) = rest.chars().next() else {
            return "end of expression".into();
        };
        if is_ident_start(c) || c.is_ascii_digit() {
            let word: String = rest
                .chars()
                .take_while(|&c| is_ident_char(c) || c == '.')
                .take(30)
                .collect();
            return format!("'{word}'");
        }
        if c.is_whitespace() || c.is_control() {
            return format!("{:?}", c);
        }
        format!("'{c}'")
    }

    fn expr(&mut self) -> Result<Node, ParseError> {
        let left = self.operand()?;
        let save = self.pos;
        self.skip_ws();
        let Some(op) = self.cmp_op() else {
            self.pos = save;
            return Ok(left);
        };
        self.skip_ws();
        let right = self.operand()?;
        Ok(Node::Compare(Box::new(left), op, Box::new(right)))
    }

    fn cmp_op(&mut self) -> Option<CmpOp> {
        let rest = self.rest();
        // Two-character operators first, so that `<=` is not read as `<`.
        let (op, len) = if rest.starts_with("<>") {
            (CmpOp::Ne, 2)
        } else if rest.starts_with(">=") {
            (CmpOp::Ge, 2)
        } else if rest.starts_with("<=") {
            (CmpOp::Le, 2)
        } else if rest.starts_with('=') {
            (CmpOp::Eq, 1)
        } else if rest.starts_with('>') {
            (CmpOp::Gt, 1)
        } else if rest.starts_with('<') {
            (CmpOp::Lt, 1)
        } else {
            return None;
        };
        self.pos += len;
        Some(op)
    }

    fn operand(&mut self) -> Result<Node, ParseError> {
        match self.peek() {
            Some('[') => self.attribute(),
            Some('"') => self.string().map(Node::Str),
            Some('&') => self.hex(),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number(),
            Some(c) if is_ident_start(c) => self.ident_or_call(),
            _ => Err(self.expected(
                self.pos,
                "an expression (a function call, an [attribute], a \"string\" or a number)",
            )),
        }
    }

    fn attribute(&mut self) -> Result<Node, ParseError> {
        let open = self.pos;
        self.pos += 1; // '['
        let rest = self.rest();
        let Some(len) = rest.find(']') else {
            let found = "end of expression".to_string();
            return Err(self.error_msg(
                open,
                "']'".into(),
                found.clone(),
                format!("expected ']' to close this attribute name, found {found}"),
            ));
        };
        if len == 0 {
            return Err(self.expected(self.pos, "an attribute name"));
        }
        let name = rest.get(..len).unwrap_or("").to_string();
        self.pos += len + 1;
        Ok(Node::Attribute(name))
    }

    /// A string literal: `\\` and `\"` are escapes; a backslash before any
    /// other character is kept with it, so regex patterns such as `"\d"`
    /// work as written (the doc only defines the two escapes).
    fn string(&mut self) -> Result<String, ParseError> {
        let open = self.pos;
        self.pos += 1; // '"'
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                let found = "end of expression".to_string();
                return Err(self.error_msg(
                    open,
                    "'\"'".into(),
                    found.clone(),
                    format!("expected '\"' to close this string, found {found}"),
                ));
            };
            self.bump(c);
            match c {
                '"' => return Ok(out),
                '\\' => match self.peek() {
                    Some(e @ ('"' | '\\')) => {
                        self.bump(e);
                        out.push(e);
                    }
                    _ => out.push('\\'),
                },
                _ => out.push(c),
            }
        }
    }

    fn number(&mut self) -> Result<Node, ParseError> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
            return Err(self.expected(self.pos, "a digit"));
        }
        self.digits();
        if self.peek() == Some('.') {
            self.pos += 1;
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.expected(self.pos, "a digit after '.'"));
            }
            self.digits();
        }
        let text = self.src.get(start..self.pos).unwrap_or("");
        match Number::parse(text) {
            Some(n) => Ok(Node::Num(n)),
            None => Err(self.expected(start, "a number")),
        }
    }

    fn digits(&mut self) {
        while let Some(c) = self.peek() {
            if !c.is_ascii_digit() {
                break;
            }
            self.bump(c);
        }
    }

    /// `&HF7`: VB's hex literal. Kept as its (non-negative) value.
    fn hex(&mut self) -> Result<Node, ParseError> {
        let start = self.pos;
        self.pos += 1; // '&'
        if !matches!(self.peek(), Some('H' | 'h')) {
            return Err(self.expected(self.pos, "'H' (a hex literal such as &HF7)"));
        }
        self.pos += 1;
        let digits_start = self.pos;
        while let Some(c) = self.peek() {
            if !c.is_ascii_hexdigit() {
                break;
            }
            self.bump(c);
        }
        let digits = self.src.get(digits_start..self.pos).unwrap_or("");
        if digits.is_empty() {
            return Err(self.expected(self.pos, "a hex digit"));
        }
        match i64::from_str_radix(digits, 16) {
            Ok(v) => Ok(Node::Num(Number::Int(v))),
            Err(_) => Err(self.error_msg(
                start,
                "a hex literal of at most 7FFFFFFFFFFFFFFF".into(),
                format!("&H{digits}"),
                format!("the hex literal &H{digits} is too large (the maximum is &H7FFFFFFFFFFFFFFF)"),
            )),
        }
    }

    fn ident_or_call(&mut self) -> Result<Node, ParseError> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !is_ident_char(c) {
                break;
            }
            self.bump(c);
        }
        let name = self.src.get(start..self.pos).unwrap_or("");
        let after_name = self.pos;
        self.skip_ws();
        if self.peek() == Some('(') {
            return self.call(name, start);
        }
        self.pos = after_name;
        if let Some(c) = Constant::from_name(name) {
            return Ok(Node::Const(c));
        }
        if let Some(f) = Function::from_name(name) {
            return Err(self.expected(self.pos, &format!("'(' after the function name {}", f.name())));
        }
        Err(self.error_msg(
            start,
            "a function call, vbTextCompare, vbBinaryCompare, True or False".into(),
            format!("'{name}'"),
            format!(
                "unknown name '{name}': expected a function call, vbTextCompare, vbBinaryCompare, True or False (attributes go in [brackets], strings in \"quotes\")"
            ),
        ))
    }

    fn call(&mut self, name: &str, start: usize) -> Result<Node, ParseError> {
        let Some(function) = Function::from_name(name) else {
            let known: Vec<&str> = Function::ALL.iter().map(|f| f.name()).collect();
            return Err(self.error_msg(
                start,
                "a known function".into(),
                format!("'{name}'"),
                format!("unknown function '{name}'; known: {}", known.join(", ")),
            ));
        };
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(self.error_msg(
                start,
                format!("at most {} nested calls", self.limits.max_depth),
                format!("more than {}", self.limits.max_depth),
                format!("expressions may nest at most {} calls deep", self.limits.max_depth),
            ));
        }
        match function {
            Function::SelectUniqueValue => self.select_unique.push(start),
            Function::IgnoreFlowIfNullOrEmpty if self.iif_condition > 0 => {
                return Err(self.error_msg(
                    start,
                    "a condition".into(),
                    "IgnoreFlowIfNullOrEmpty".into(),
                    "IgnoreFlowIfNullOrEmpty cannot be used in an IIF condition; wrap the whole IIF in it instead"
                        .into(),
                ));
            }
            _ => {}
        }
        self.pos += 1; // '('
        let mut args: Vec<Option<Node>> = Vec::new();
        let mut arg_offsets: Vec<usize> = Vec::new();
        self.skip_ws();
        if self.peek() == Some(')') {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                arg_offsets.push(self.pos);
                if matches!(self.peek(), Some(',' | ')')) {
                    args.push(None);
                } else {
                    // IIF's first argument is a condition, and so is all
                    // of what is nested in it.
                    let condition = function == Function::Iif && args.is_empty();
                    let saved = self.iif_condition;
                    self.iif_condition = if condition { saved + 1 } else { saved };
                    let arg = self.expr();
                    self.iif_condition = saved;
                    args.push(Some(arg?));
                }
                self.skip_ws();
                match self.peek() {
                    Some(',') => self.pos += 1,
                    Some(')') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.expected(self.pos, "',' or ')'")),
                }
            }
        }
        self.depth -= 1;
        let call = Call { function, args };
        self.check_arity(&call, start)?;
        if function == Function::Replace {
            self.check_replace(&call, start, &arg_offsets)?;
        }
        Ok(Node::Call(call))
    }

    fn check_arity(&self, call: &Call, start: usize) -> Result<(), ParseError> {
        let n = call.args.len();
        let f = call.function;
        let (min, max) = f.arity();
        let plural = |k: usize| if k == 1 { "argument" } else { "arguments" };
        let wanted = match max {
            Some(max) if max == min => format!("{min} {}", plural(min)),
            Some(max) => format!("{min} to {max} arguments"),
            None => format!("at least {min} {}", plural(min)),
        };
        let too_few = n < min;
        let too_many = max.is_some_and(|m| n > m);
        if too_few || too_many {
            return Err(self.error_msg(
                start,
                wanted.clone(),
                format!("{n} {}", plural(n)),
                format!("{} takes {wanted}, found {n}", f.name()),
            ));
        }
        if f == Function::Switch && !n.is_multiple_of(2) {
            return Err(self.error_msg(
                start,
                "an even number of arguments".into(),
                format!("{n} arguments"),
                format!(
                    "Switch takes a source, a default and key/value pairs (an even number of arguments), found {n}"
                ),
            ));
        }
        Ok(())
    }

    /// Replace's mode is chosen by which arguments are present (Entra's reference); a
    /// combination that is none of the five is refused here rather than
    /// on every object.
    fn check_replace(&mut self, call: &Call, start: usize, offsets: &[usize]) -> Result<(), ParseError> {
        let present = |i: usize| call.arg(i).is_some();
        if replace::mode(&present).is_none() {
            return Err(self.error_msg(
                start,
                "a Replace argument pattern".into(),
                "arguments".into(),
                "Replace needs one of: oldValue + replacementValue; oldValue + template; regexPattern + replacementValue; regexPattern + regexGroupName + replacementValue; regexPattern + regexGroupName + replacementAttributeName (and no other arguments)".into(),
            ));
        }
        if let Some(Node::Str(pattern)) = call.arg(replace::PATTERN)
            && !self.regexes.contains_key(pattern)
        {
            let offset = offsets.get(replace::PATTERN).copied().unwrap_or(start);
            match replace::compile(pattern) {
                Ok(re) => {
                    self.regexes.insert(pattern.clone(), re);
                }
                Err(e) => {
                    return Err(self.error_msg(
                        offset,
                        "a regular expression".into(),
                        format!("{pattern:?}"),
                        format!("invalid regular expression: {e}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}
