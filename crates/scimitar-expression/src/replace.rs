//! Replace: five behaviours chosen by which arguments are present (Entra's reference),
//! with .NET regex replacement syntax.
//!
//! Patterns are compiled with `fancy-regex`, because .NET patterns may use
//! look-around and back-references. A pattern without those is delegated
//! whole to `regex-automata` (the `regex` crate's engine), so ordinary
//! patterns still match in linear time; the backtracking ones are bounded
//! by a step limit and fail with an error instead of running away.

use std::ops::Range;

use fancy_regex::{Captures, Regex, RegexBuilder};

/// Argument positions: Replace(source, oldValue, regexPattern,
/// regexGroupName, replacementValue, replacementAttributeName, template).
pub(crate) const SOURCE: usize = 0;
pub(crate) const OLD: usize = 1;
pub(crate) const PATTERN: usize = 2;
pub(crate) const GROUP: usize = 3;
pub(crate) const REPLACEMENT: usize = 4;
pub(crate) const ATTRIBUTE: usize = 5;
pub(crate) const TEMPLATE: usize = 6;

/// Which of the five documented behaviours a call has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// (a) oldValue + replacementValue: every oldValue in source.
    Text,
    /// (b) oldValue + template: every oldValue in template becomes source.
    Template,
    /// (c) regexPattern + replacementValue: `Regex.Replace` with `${name}`.
    Regex,
    /// (d) + regexGroupName: each match's group span becomes replacementValue.
    GroupSpan,
    /// (e) regexPattern + regexGroupName + replacementAttributeName: source
    /// if it has a value, else the group's value in the other attribute.
    Fallback,
}

/// The mode from which arguments are present; `None` for any other
/// combination (extra arguments included: they would be silently ignored).
pub(crate) fn mode(present: &dyn Fn(usize) -> bool) -> Option<Mode> {
    let set: Vec<usize> = [OLD, PATTERN, GROUP, REPLACEMENT, ATTRIBUTE, TEMPLATE]
        .into_iter()
        .filter(|&i| present(i))
        .collect();
    match set.as_slice() {
        [OLD, REPLACEMENT] => Some(Mode::Text),
        [OLD, TEMPLATE] => Some(Mode::Template),
        [PATTERN, REPLACEMENT] => Some(Mode::Regex),
        [PATTERN, GROUP, REPLACEMENT] => Some(Mode::GroupSpan),
        [PATTERN, GROUP, ATTRIBUTE] => Some(Mode::Fallback),
        _ => None,
    }
}

/// Backtracking steps per match attempt before giving up.
const BACKTRACK_LIMIT: usize = 1_000_000;
/// Compiled program size limits: a 10,000-character expression can still
/// write `(\w{1000}){1000}`.
const SIZE_LIMIT: usize = 2 << 20;

pub(crate) fn compile(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .backtrack_limit(BACKTRACK_LIMIT)
        .delegate_size_limit(SIZE_LIMIT)
        .delegate_dfa_size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| e.to_string())
}

/// A string being built that may not grow past `max` bytes.
pub(crate) struct Capped {
    pub(crate) out: String,
    max: usize,
}

impl Capped {
    pub(crate) fn new(max: usize) -> Self {
        Capped {
            out: String::new(),
            max,
        }
    }
    pub(crate) fn push(&mut self, s: &str) -> Result<(), String> {
        if self.out.len() + s.len() > self.max {
            return Err(format!("the result would be longer than {} bytes", self.max));
        }
        self.out.push_str(s);
        Ok(())
    }
}

/// (a) and (b): every non-overlapping `old` in `haystack` becomes `new`.
pub(crate) fn replace_text(haystack: &str, old: &str, new: &str, max: usize) -> Result<String, String> {
    if old.is_empty() {
        return Err("oldValue is empty".into());
    }
    let mut out = Capped::new(max);
    let mut last = 0;
    for (at, _) in haystack.match_indices(old) {
        out.push(haystack.get(last..at).unwrap_or(""))?;
        out.push(new)?;
        last = at + old.len();
    }
    out.push(haystack.get(last..).unwrap_or(""))?;
    Ok(out.out)
}

fn slice(text: &str, r: Range<usize>) -> &str {
    text.get(r).unwrap_or("")
}

/// (c): `Regex.Replace(input, pattern, replacement)`.
pub(crate) fn replace_regex(re: &Regex, input: &str, replacement: &str, max: usize) -> Result<String, String> {
    let names = group_names(re);
    let mut out = Capped::new(max);
    let mut last = 0;
    for caps in re.captures_iter(input) {
        let caps = caps.map_err(|e| e.to_string())?;
        let Some(m) = caps.get(0) else { continue };
        out.push(slice(input, last..m.start()))?;
        expand(&caps, &names, input, replacement, &mut out)?;
        last = m.end();
    }
    out.push(slice(input, last..input.len()))?;
    Ok(out.out)
}

/// (d): in each match, the span of `group` becomes `replacement` (taken
/// literally); the rest of the match stays. A match where the group took
/// no part is left as it is.
pub(crate) fn replace_group(
    re: &Regex,
    input: &str,
    group: &str,
    replacement: &str,
    max: usize,
) -> Result<String, String> {
    check_group(re, group)?;
    let mut out = Capped::new(max);
    let mut last = 0;
    for caps in re.captures_iter(input) {
        let caps = caps.map_err(|e| e.to_string())?;
        let Some(g) = caps.name(group) else { continue };
        out.push(slice(input, last..g.start()))?;
        out.push(replacement)?;
        last = g.end();
    }
    out.push(slice(input, last..input.len()))?;
    Ok(out.out)
}

/// (e): the value of `group` in the first match in `input`; `None` when
/// nothing matches or the group took no part.
pub(crate) fn extract_group(re: &Regex, input: &str, group: &str) -> Result<Option<String>, String> {
    check_group(re, group)?;
    let caps = re.captures(input).map_err(|e| e.to_string())?;
    Ok(caps.and_then(|c| c.name(group).map(|m| m.as_str().to_string())))
}

fn check_group(re: &Regex, group: &str) -> Result<(), String> {
    if re.capture_names().flatten().any(|n| n == group) {
        Ok(())
    } else {
        Err(format!("the pattern has no group named {group:?}"))
    }
}

fn group_names(re: &Regex) -> Vec<Option<String>> {
    re.capture_names().map(|n| n.map(str::to_string)).collect()
}

/// .NET substitutions: `$$`, `${name}` / `${number}`, `$number` (the
/// longest run of digits that names a group), `$&` (the match), `` $` ``
/// and `$'` (the text before/after it), `$+` (the last group) and `$_`
/// (the whole input). Anything else, including a group that does not
/// exist, is literal, as in .NET.
fn expand(
    caps: &Captures<'_, str>,
    names: &[Option<String>],
    input: &str,
    replacement: &str,
    out: &mut Capped,
) -> Result<(), String> {
    let group_text = |i: usize| caps.get(i).map_or("", |m| m.as_str());
    let whole = caps.get(0).map_or(0..0, |m| m.start()..m.end());
    let mut rest = replacement;
    while let Some(at) = rest.find('$') {
        out.push(slice(rest, 0..at))?;
        let after = slice(rest, at + 1..rest.len());
        let mut chars = after.chars();
        let (text, used): (&str, usize) = match chars.next() {
            Some('$') => ("$", 1),
            Some('&') => (group_text(0), 1),
            Some('`') => (slice(input, 0..whole.start), 1),
            Some('\'') => (slice(input, whole.end..input.len()), 1),
            Some('_') => (input, 1),
            // .NET's LastGroup: the highest-numbered group (the match itself
            // when there are none).
            Some('+') => (names.len().checked_sub(1).map_or("", group_text), 1),
            Some('{') => match after.find('}') {
                Some(close) => {
                    let name = slice(after, 1..close);
                    let index = match name.parse::<usize>() {
                        Ok(i) if i < names.len() => Some(i),
                        _ => names.iter().position(|n| n.as_deref() == Some(name)),
                    };
                    match index {
                        Some(i) if !name.is_empty() => (group_text(i), close + 1),
                        _ => ("$", 0),
                    }
                }
                None => ("$", 0),
            },
            Some(d) if d.is_ascii_digit() => {
                let run = after.bytes().take_while(u8::is_ascii_digit).count();
                // The longest prefix of the digits that is a group number.
                let found = (1..=run).rev().find_map(|len| {
                    slice(after, 0..len)
                        .parse::<usize>()
                        .ok()
                        .filter(|&i| i < names.len())
                        .map(|i| (i, len))
                });
                match found {
                    Some((i, len)) => (group_text(i), len),
                    None => ("$", 0),
                }
            }
            _ => ("$", 0),
        };
        out.push(text)?;
        rest = slice(after, used..after.len());
    }
    out.push(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(p: &str) -> Regex {
        compile(p).unwrap()
    }

    #[test]
    fn modes_follow_the_present_arguments() {
        let m = |ids: &[usize]| mode(&|i| ids.contains(&i));
        assert_eq!(m(&[OLD, REPLACEMENT]), Some(Mode::Text));
        assert_eq!(m(&[OLD, TEMPLATE]), Some(Mode::Template));
        assert_eq!(m(&[PATTERN, REPLACEMENT]), Some(Mode::Regex));
        assert_eq!(m(&[PATTERN, GROUP, REPLACEMENT]), Some(Mode::GroupSpan));
        assert_eq!(m(&[PATTERN, GROUP, ATTRIBUTE]), Some(Mode::Fallback));
        assert_eq!(m(&[OLD, REPLACEMENT, TEMPLATE]), None);
        assert_eq!(m(&[OLD, PATTERN, REPLACEMENT]), None);
        assert_eq!(m(&[PATTERN]), None);
        assert_eq!(m(&[]), None);
        assert_eq!(m(&[SOURCE, PATTERN, GROUP, REPLACEMENT, ATTRIBUTE]), None);
    }

    #[test]
    fn dotnet_substitutions() {
        let r = re(r"(?<user>\w+)@(\w+)");
        let run = |rep: &str| replace_regex(&r, "x jo@ex y", rep, 1 << 20).unwrap();
        assert_eq!(run("${user}"), "x jo y");
        assert_eq!(run("$1|$2"), "x jo|ex y");
        assert_eq!(run("$2$1"), "x exjo y");
        assert_eq!(run("$12"), "x jo2 y"); // group 12 does not exist: group 1, then "2"
        assert_eq!(run("$$1"), "x $1 y");
        assert_eq!(run("[$&]"), "x [jo@ex] y");
        assert_eq!(run("$`"), "x x  y");
        assert_eq!(run("$'"), "x  y y");
        assert_eq!(run("$_"), "x x jo@ex y y");
        assert_eq!(run("$+"), "x ex y");
        assert_eq!(run("${nope}$9$x$"), "x ${nope}$9$x$ y");
        assert_eq!(run("${}"), "x ${} y");
    }

    #[test]
    fn dotnet_features_that_need_backtracking() {
        assert_eq!(replace_regex(&re(r"(\w)\1"), "aabbc", "_", 100).unwrap(), "__c");
        assert_eq!(replace_regex(&re(r"\d(?=px)"), "1px 2em", "N", 100).unwrap(), "Npx 2em");
        assert_eq!(replace_regex(&re(r"(?<!\+)\d"), "+1 2", "N", 100).unwrap(), "+1 N");
    }

    #[test]
    fn runaway_backtracking_is_an_error() {
        // Exponential in the input for a backtracking engine.
        let r = re(r"^(a|a)*(?<=b)");
        assert!(replace_regex(&r, &"a".repeat(40), "", 1 << 20).is_err());
    }

    #[test]
    fn output_is_capped() {
        assert!(replace_text("aaaa", "a", "bbbb", 10).is_err());
        assert_eq!(replace_text("aaaa", "a", "bb", 8).unwrap(), "bbbbbbbb");
        assert!(replace_regex(&re(""), "abc", "xxxx", 10).is_err());
        assert!(replace_text("abc", "", "x", 10).is_err());
    }

    #[test]
    fn group_span_and_fallback() {
        let r = re(r"(?<n>^\d*)");
        assert_eq!(
            replace_group(&r, "545 Tremont", "n", "888", 100).unwrap(),
            "888 Tremont"
        );
        assert!(replace_group(&r, "545", "missing", "888", 100).is_err());
        let p = re(r"\+(?<isd>\d* )(?<num>\d{10})");
        assert_eq!(
            extract_group(&p, "+91 8887779999", "num").unwrap().as_deref(),
            Some("8887779999")
        );
        assert_eq!(extract_group(&p, "none", "num").unwrap(), None);
    }
}
