//! Microsoft Entra ID's attribute-mapping expression language:
//! `Join("@", NormalizeDiacritics([givenName]), DefaultDomain())` and the
//! other functions of Entra's reference, parsed into a tree and evaluated
//! against one source object at a time.
//!
//! Pure: no I/O, no clock and no randomness of its own. `Now()`, `Guid()`,
//! `RandomString()` and `DefaultDomain()` take what they need from an
//! [`Env`].
//!
//! ```
//! use scimitar_expression::{Env, Value, eval, parse};
//! use serde_json::json;
//!
//! let expr = parse(r#"Join("@", ToLower([mailNickname]), DefaultDomain())"#).unwrap();
//! assert_eq!(expr.attributes(), ["mailNickname"]);
//! let user = json!({"mailNickname": "JDoe"});
//! let mut rng = || 4u64; // chosen by fair dice roll
//! let mut env = Env { now: time::OffsetDateTime::UNIX_EPOCH, rng: &mut rng, default_domain: Some("contoso.com") };
//! let out = eval(&expr, &user, &mut env).unwrap();
//! assert_eq!(out.value, Value::Str("jdoe@contoso.com".into()));
//! ```
//!
//! See `docs/expressions.md` for the grammar, every function, and where
//! this implementation decides what Entra's documentation leaves open.

#![forbid(unsafe_code)]
// Input is untrusted (the fuzzer says so too): no panicking shortcuts.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used, clippy::expect_used)
)]

pub mod ast;
mod datetime;
mod eval;
mod expr;
mod parser;
mod replace;
mod text;
mod value;

pub use ast::{Call, CmpOp, Constant, Function, Node, Number};
pub use datetime::{format_entra, parse_date};
pub use eval::{Env, EvalError, MAX_VALUE_BYTES, eval};
pub use expr::Expr;
pub use parser::{Limits, MAX_CHARS, MAX_DEPTH, ParseError, parse, parse_with};
pub use text::{MAX_RANDOM_LENGTH, SPECIAL_CHARACTERS};
pub use value::{AppRole, Output, ROLE_TYPE, Source, SourceError, Value, primary_role};

/// Either failure of [`eval_json`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error("{0}")]
    Eval(#[from] EvalError),
    #[error("the source must be a JSON object, not {0}")]
    NotAnObject(&'static str),
}

/// Parses `text` and evaluates it against a JSON object, giving the value
/// as it would go on the wire ([`Value::to_json`]: Null and Drop are both
/// `null`; use [`parse`] and [`eval`] to tell them apart or to see
/// `redacted`). For `scimitar expression eval 'EXPR' --object FILE`.
pub fn eval_json(text: &str, object: &serde_json::Value, env: &mut Env<'_>) -> Result<serde_json::Value, Error> {
    let expr = parse(text)?;
    let serde_json::Value::Object(map) = object else {
        let kind = match object {
            serde_json::Value::Null => "null",
            serde_json::Value::Bool(_) => "a boolean",
            serde_json::Value::Number(_) => "a number",
            serde_json::Value::String(_) => "a string",
            serde_json::Value::Array(_) => "an array",
            serde_json::Value::Object(_) => "an object",
        };
        return Err(Error::NotAnObject(kind));
    };
    Ok(eval(&expr, map, env)?.value.to_json())
}
