//! A parsed expression: the tree plus what was prepared while parsing.

use std::collections::HashMap;
use std::fmt;

use crate::ast::{Function, Node};

/// A parsed, checked expression. Cheap to share between threads; evaluate
/// it with [`crate::eval`] once per source object.
#[derive(Clone)]
pub struct Expr {
    root: Node,
    /// Replace patterns that were string literals, compiled once at parse
    /// time: a job evaluates the same expression for every object.
    regexes: HashMap<String, fancy_regex::Regex>,
}

impl Expr {
    pub(crate) fn new(root: Node, regexes: HashMap<String, fancy_regex::Regex>) -> Self {
        Expr { root, regexes }
    }

    /// The syntax tree.
    pub fn root(&self) -> &Node {
        &self.root
    }

    /// Every `[attribute]` the expression reads, in order of first
    /// appearance, without repeats: validate a job's mappings against the
    /// source schema with it.
    pub fn attributes(&self) -> Vec<&str> {
        self.root.attributes()
    }

    /// Every function used, by canonical name, in order of first appearance.
    pub fn functions(&self) -> Vec<&str> {
        self.root.functions().into_iter().map(Function::name).collect()
    }

    /// The function the whole expression is a call of, if it is one: the
    /// engine reads the role dialect from it
    /// (`AssertiveAppRoleAssignmentsComplex` replaces, `AppRoleAssignmentsComplex`
    /// only adds).
    pub fn top_function(&self) -> Option<Function> {
        match &self.root {
            Node::Call(c) => Some(c.function),
            _ => None,
        }
    }

    /// True when the expression is `SelectUniqueValue(…)`: its value is a
    /// list of candidates for the engine to try in the target.
    pub fn is_select_unique(&self) -> bool {
        self.top_function() == Some(Function::SelectUniqueValue)
    }

    pub(crate) fn regex(&self, pattern: &str) -> Option<&fancy_regex::Regex> {
        self.regexes.get(pattern)
    }
}

/// Two expressions are equal when their trees are (the compiled patterns
/// follow from the tree).
impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.root == other.root
    }
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Expr").field(&self.root).finish()
    }
}

/// The canonical text; `parse(&e.to_string()) == Ok(e)`.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.root.fmt(f)
    }
}
