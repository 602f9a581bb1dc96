//! Reads the workspace's own source as text, for the tidy tests in
//! `tests/tidy.rs` (in the manner of rust-analyzer's): each test enforces an
//! invariant that ARCHITECTURE.md states, so that the document stays true.

use std::path::{Path, PathBuf};

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Every `.rs` file below `dir`, sorted.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A string literal of a Rust source file: its text (escapes resolved
/// enough for searching: `\` line continuations joined) and its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Literal {
    pub line: usize,
    pub text: String,
}

/// The string literals of Rust source (plain, byte and raw strings),
/// skipping comments and character literals. Approximate by design: it
/// only has to find SQL in the store crates, and is tested on the cases
/// that occur there.
pub fn string_literals(src: &str) -> Vec<Literal> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0usize, 1usize);
    let at = |i: usize| chars.get(i).copied();
    while let Some(c) = at(i) {
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            '/' if at(i + 1) == Some('/') => {
                while at(i).is_some_and(|c| c != '\n') {
                    i += 1;
                }
            }
            '/' if at(i + 1) == Some('*') => {
                i += 2;
                while let Some(c) = at(i) {
                    if c == '*' && at(i + 1) == Some('/') {
                        i += 2;
                        break;
                    }
                    if c == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
            // A character literal (`'"'`, `b'"'`, `'\''`), not a lifetime.
            '\'' if at(i + 2) == Some('\'') || (at(i + 1) == Some('\\') && at(i + 3) == Some('\'')) => {
                i += if at(i + 1) == Some('\\') { 4 } else { 3 };
            }
            'r' if matches!(at(i + 1), Some('"' | '#')) && !ident_before(&chars, i) => {
                let mut j = i + 1;
                let mut hashes = 0;
                while at(j) == Some('#') {
                    hashes += 1;
                    j += 1;
                }
                if at(j) != Some('"') {
                    i += 1;
                    continue;
                }
                j += 1;
                let start_line = line;
                let mut text = String::new();
                while let Some(c) = at(j) {
                    if c == '"' && (1..=hashes).all(|k| at(j + k) == Some('#')) {
                        j += 1 + hashes;
                        break;
                    }
                    if c == '\n' {
                        line += 1;
                    }
                    text.push(c);
                    j += 1;
                }
                out.push(Literal { line: start_line, text });
                i = j;
            }
            '"' => {
                let start_line = line;
                let mut text = String::new();
                let mut j = i + 1;
                while let Some(c) = at(j) {
                    match c {
                        '\\' => {
                            match at(j + 1) {
                                // A line continuation: skip the newline and indentation.
                                Some('\n') => {
                                    line += 1;
                                    j += 2;
                                    while at(j).is_some_and(char::is_whitespace) {
                                        if at(j) == Some('\n') {
                                            line += 1;
                                        }
                                        j += 1;
                                    }
                                    continue;
                                }
                                Some(e) => text.push(e),
                                None => {}
                            }
                            j += 2;
                        }
                        '"' => {
                            j += 1;
                            break;
                        }
                        c => {
                            if c == '\n' {
                                line += 1;
                            }
                            text.push(c);
                            j += 1;
                        }
                    }
                }
                out.push(Literal { line: start_line, text });
                i = j;
            }
            _ => i += 1,
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i.checked_sub(1)
        .and_then(|p| chars.get(p))
        .is_some_and(|c| c.is_alphanumeric() || *c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_plain_raw_and_continued_literals_but_not_comments_or_chars() {
        let src = r####"
// "not me"
/* "nor me" */
let a = "SELECT 1 \
         FROM t";
let b = r#"raw "quoted""#;
let c = b'"'; let d = '\'';
let e = "esc \"q\" done";
fn f<'a>(x: &'a str) -> &'a str { "after lifetime" }
"####;
        let lits: Vec<String> = string_literals(src).into_iter().map(|l| l.text).collect();
        assert_eq!(
            lits,
            ["SELECT 1 FROM t", "raw \"quoted\"", "esc \"q\" done", "after lifetime"]
        );
        assert_eq!(string_literals("\n\nlet x = \"y\";")[0].line, 3);
    }
}
