//! The parser: what it accepts, where and how it reports what it does not,
//! and the Display round trip over generated trees.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use proptest::prelude::*;
use scimitar_expression::{Call, CmpOp, Constant, Function, Limits, MAX_DEPTH, Node, Number, parse, parse_with};

/// (input, line, column, full message after the position)
const BAD: &[(&str, usize, usize, &str)] = &[
    ("", 1, 1, "expected an expression, found end of expression"),
    ("   \n ", 2, 2, "expected an expression, found end of expression"),
    (
        r#"Append([a], "b"#,
        1,
        13,
        "expected '\"' to close this string, found end of expression",
    ),
    (
        r#"Append([a], "b""#,
        1,
        16,
        "expected ',' or ')', found end of expression",
    ),
    (r#"Append([a] "b")"#, 1, 12, "expected ',' or ')', found '\"'"),
    (
        r#"Join(",", [a]) ]"#,
        1,
        16,
        "expected end of expression or a comparison operator, found ']'",
    ),
    ("[a] = [b] = [c]", 1, 11, "expected end of expression, found '='"),
    (
        "Left([a], 2) x",
        1,
        14,
        "expected end of expression or a comparison operator, found 'x'",
    ),
    (
        "Append([a, \"b\")",
        1,
        8,
        "expected ']' to close this attribute name, found end of expression",
    ),
    ("Len([])", 1, 6, "expected an attribute name, found ']'"),
    ("Left([a], 1.)", 1, 13, "expected a digit after '.', found ')'"),
    ("Left([a], -x)", 1, 12, "expected a digit, found 'x'"),
    ("BitAnd(&HZ, 1)", 1, 10, "expected a hex digit, found 'Z'"),
    (
        "BitAnd(&Q, 1)",
        1,
        9,
        "expected 'H' (a hex literal such as &HF7), found 'Q'",
    ),
    (
        "BitAnd(&H8000000000000000, 1)",
        1,
        8,
        "the hex literal &H8000000000000000 is too large (the maximum is &H7FFFFFFFFFFFFFFF)",
    ),
    (
        "Left(;)",
        1,
        6,
        "expected an expression (a function call, an [attribute], a \"string\" or a number), found ';'",
    ),
    (
        "Now(",
        1,
        5,
        "expected an expression (a function call, an [attribute], a \"string\" or a number), found end of expression",
    ),
    (
        "Left",
        1,
        5,
        "expected '(' after the function name Left, found end of expression",
    ),
    (
        "Join(\",\", givenName)",
        1,
        11,
        "unknown name 'givenName': expected a function call, vbTextCompare, vbBinaryCompare, True or False (attributes go in [brackets], strings in \"quotes\")",
    ),
    ("Left(\"abc\")", 1, 1, "Left takes 2 arguments, found 1"),
    ("Now(1)", 1, 1, "Now takes 0 arguments, found 1"),
    ("InStr(\"a\")", 1, 1, "InStr takes 2 to 4 arguments, found 1"),
    (
        "Append(\"a\", Left(\"b\", 1, 2, 3))",
        1,
        13,
        "Left takes 2 arguments, found 4",
    ),
    (
        "SelectUniqueValue([a])",
        1,
        1,
        "SelectUniqueValue takes at least 2 arguments, found 1",
    ),
    (
        "Switch([a], \"d\", \"k\")",
        1,
        1,
        "Switch takes a source, a default and key/value pairs (an even number of arguments), found 3",
    ),
    (
        "Replace([a], \"x\", , , , , )",
        1,
        1,
        "Replace needs one of: oldValue + replacementValue; oldValue + template; regexPattern + replacementValue; regexPattern + regexGroupName + replacementValue; regexPattern + regexGroupName + replacementAttributeName (and no other arguments)",
    ),
    (
        "Replace([a], \"x\", \"y\", , \"z\", , )",
        1,
        1,
        "Replace needs one of: oldValue + replacementValue; oldValue + template; regexPattern + replacementValue; regexPattern + regexGroupName + replacementValue; regexPattern + regexGroupName + replacementAttributeName (and no other arguments)",
    ),
    (
        "Append(SelectUniqueValue(\"a\", \"b\"), \"c\")",
        1,
        8,
        "SelectUniqueValue must be the whole expression; it cannot be nested or compared",
    ),
    (
        "SelectUniqueValue(\"a\", \"b\") = \"a\"",
        1,
        1,
        "SelectUniqueValue must be the whole expression; it cannot be nested or compared",
    ),
    (
        "IIF(IgnoreFlowIfNullOrEmpty([a]) = \"x\", \"a\", \"b\")",
        1,
        5,
        "IgnoreFlowIfNullOrEmpty cannot be used in an IIF condition; wrap the whole IIF in it instead",
    ),
    (
        "IIF(Len(IgnoreFlowIfNullOrEmpty([a])) > 1, \"a\", \"b\")",
        1,
        9,
        "IgnoreFlowIfNullOrEmpty cannot be used in an IIF condition; wrap the whole IIF in it instead",
    ),
    // Positions count lines and characters, not bytes.
    (
        "Switch([a],\n  \"x\",\n  \"é€\" \"z\")",
        3,
        8,
        "expected ',' or ')', found '\"'",
    ),
    (
        "Left(\"é€\", 1) é",
        1,
        15,
        "expected end of expression or a comparison operator, found 'é'",
    ),
    (
        "Join(\",\",\t[a],\r\n\u{7})",
        2,
        1,
        "expected an expression (a function call, an [attribute], a \"string\" or a number), found '\\u{7}'",
    ),
];

#[test]
fn bad_inputs_are_reported_where_they_are() {
    let mut failures = Vec::new();
    for &(input, line, column, message) in BAD {
        match parse(input) {
            Ok(e) => failures.push(format!("{input:?} parsed as {e:?}")),
            Err(e) => {
                let want = format!("line {line}, column {column}: {message}");
                if e.to_string() != want || e.line != line || e.column != column || e.message != message {
                    failures.push(format!("{input:?}\n  got:  {e}\n  want: {want}"));
                }
                // The offset is a byte offset that agrees with line/column.
                let before = &input[..e.offset];
                assert_eq!(before.matches('\n').count() + 1, e.line, "{input:?}");
                let line_start = before.rfind('\n').map_or(0, |i| i + 1);
                assert_eq!(before[line_start..].chars().count() + 1, e.column, "{input:?}");
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_briefs_example_message() {
    let e = parse(r#"Left([a], 2"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 1, column 12: expected ',' or ')', found end of expression"
    );
    assert_eq!(
        (e.offset, e.expected.as_str(), e.found.as_str()),
        (11, "',' or ')'", "end of expression")
    );
}

#[test]
fn unknown_functions_list_the_known_ones() {
    let e = parse("Append([a], Foo([b]))").unwrap_err();
    assert_eq!((e.line, e.column), (1, 13));
    assert!(
        e.message
            .starts_with("unknown function 'Foo'; known: Append, AppRoleAssignmentsComplex, "),
        "{e}"
    );
    assert!(e.message.ends_with("ToLower, ToUpper, Word"), "{e}");
    assert_eq!(e.found, "'Foo'");
    for f in Function::ALL {
        assert!(e.message.contains(f.name()), "{}", f.name());
    }
}

#[test]
fn invalid_regex_literals_are_parse_errors() {
    let e = parse(r#"Replace([a], , "(?<x>", , "", , )"#).unwrap_err();
    assert_eq!((e.line, e.column), (1, 16));
    assert!(e.message.starts_with("invalid regular expression:"), "{e}");
    // A pattern that is not a literal is compiled when evaluated.
    assert!(parse(r#"Replace([a], , [pattern], , "", , )"#).is_ok());
}

#[test]
fn depth_limit() {
    let nested = |n: usize| format!("{}[a]{}", "Not(".repeat(n), ")".repeat(n));
    assert!(parse(&nested(MAX_DEPTH)).is_ok());
    let e = parse(&nested(MAX_DEPTH + 1)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "line 1, column {}: expressions may nest at most 64 calls deep",
            MAX_DEPTH * 4 + 1
        )
    );
    // Far deeper than the stack could take, rejected just as cheaply.
    let e = parse(&nested(100_000)).unwrap_err();
    assert!(e.message.contains("the expression is"), "{e}");
    let e = parse_with(
        &nested(100_000),
        Limits {
            max_chars: usize::MAX,
            max_depth: 64,
        },
    )
    .unwrap_err();
    assert!(e.message.contains("nest at most 64"), "{e}");
}

#[test]
fn accepted_forms() {
    // Function names and identifiers in any case; canonical when shown.
    let e = parse(r#"switch([companyName], "External", "Company A", "A")"#).unwrap();
    assert_eq!(e.to_string(), r#"Switch([companyName], "External", "Company A", "A")"#);
    let e = parse("instr(\"a\", \"A\", 1, VBTEXTCOMPARE)").unwrap();
    assert_eq!(e.to_string(), r#"InStr("a", "A", 1, vbTextCompare)"#);
    // Hex, negative and decimal numbers; True/False.
    let e = parse("IIF(True, BitAnd(&hff, -1), 42568.75)").unwrap();
    assert_eq!(e.to_string(), "IIF(True, BitAnd(255, -1), 42568.75)");
    // Attribute names take any character but ']'.
    let e = parse("[extension_0a1b_x y.z(1)]").unwrap();
    assert_eq!(e.attributes(), ["extension_0a1b_x y.z(1)"]);
    // Backslash escapes only '"' and '\'; other backslashes are kept.
    let e = parse(r#""a\"b\\c\d""#).unwrap();
    assert_eq!(e.root(), &Node::Str(r#"a"b\c\d"#.into()));
    assert_eq!(e.to_string(), r#""a\"b\\c\\d""#);
    // So a string cannot end in a lone backslash.
    assert!(parse(r#""a\""#).is_err());
    // Comparison operators with calls on both sides, any spacing.
    for (text, op) in [
        ("=", CmpOp::Eq),
        ("<>", CmpOp::Ne),
        (">", CmpOp::Gt),
        (">=", CmpOp::Ge),
        ("<", CmpOp::Lt),
        ("<=", CmpOp::Le),
    ] {
        let e = parse(&format!("CBool(Len([a]){text}Len([b]))")).unwrap();
        let Node::Call(Call { args, .. }) = e.root() else {
            panic!()
        };
        assert!(matches!(&args[0], Some(Node::Compare(_, o, _)) if *o == op), "{text}");
    }
    // Omitted arguments anywhere, including trailing ones.
    let e = parse(r#"Replace([mail], "@contoso.com", , ,"", ,)"#).unwrap();
    let Node::Call(c) = e.root() else { panic!() };
    assert_eq!(c.args.len(), 7);
    assert_eq!(c.args.iter().filter(|a| a.is_none()).count(), 4);
    // Zero arguments, with or without spaces.
    assert_eq!(parse("Guid( )").unwrap().to_string(), "Guid()");
}

#[test]
fn attributes_and_functions_are_listed_once_in_order() {
    let e = parse(r#"IIF([country]="USA", Join(" ", [givenName], [country]), ToUpper([surname]))"#).unwrap();
    assert_eq!(e.attributes(), ["country", "givenName", "surname"]);
    assert_eq!(e.functions(), ["IIF", "Join", "ToUpper"]);
    assert!(!e.is_select_unique());
    let e = parse(r#"SelectUniqueValue(Join("@", [a], "x"), Join("@", [b], "x"))"#).unwrap();
    assert!(e.is_select_unique());
    assert_eq!(e.functions(), ["SelectUniqueValue", "Join"]);
    let e = parse("[IsSoftDeleted]").unwrap();
    assert_eq!(e.attributes(), ["IsSoftDeleted"]);
    assert!(e.functions().is_empty());
    assert_eq!(e.top_function(), None);
}

// ---- the round trip over generated trees --------------------------------

fn leaf() -> impl Strategy<Value = Node> {
    prop_oneof![
        "[^\\]]{1,12}".prop_map(Node::Attribute),
        any::<String>().prop_map(Node::Str),
        "[\"\\\\a-z ]{0,8}".prop_map(Node::Str),
        any::<i64>().prop_map(|i| Node::Num(Number::Int(i))),
        "-?[0-9]{1,6}\\.[0-9]{1,6}".prop_map(|t| Node::Num(Number::Decimal(t))),
        "-?[1-9][0-9]{19,24}".prop_map(|t| Node::Num(Number::Decimal(t))),
        prop::sample::select(Constant::ALL.to_vec()).prop_map(Node::Const),
    ]
}

/// The functions that may appear anywhere: SelectUniqueValue only at the
/// top, IgnoreFlowIfNullOrEmpty never inside an IIF condition, Replace
/// with one of its argument patterns (generated separately).
fn free_functions() -> Vec<Function> {
    Function::ALL
        .iter()
        .copied()
        .filter(|f| {
            !matches!(
                f,
                Function::SelectUniqueValue | Function::IgnoreFlowIfNullOrEmpty | Function::Replace
            )
        })
        .collect()
}

fn call(inner: BoxedStrategy<Node>) -> impl Strategy<Value = Node> {
    prop::sample::select(free_functions())
        .prop_flat_map(|f| {
            let (min, max) = f.arity();
            let max = max.unwrap_or(min + 3).min(min + 3);
            (Just(f), min..=max)
        })
        .prop_flat_map(move |(f, n)| {
            let n = if f == Function::Switch && n % 2 == 1 { n + 1 } else { n };
            prop::collection::vec(prop::option::weighted(0.8, inner.clone()), n).prop_map(move |mut args| {
                // `F()` is a call without arguments: one omitted argument
                // cannot be written.
                if let [only @ None] = args.as_mut_slice() {
                    *only = Some(Node::Str(String::new()));
                }
                Node::Call(Call { function: f, args })
            })
        })
}

fn replace_call(inner: BoxedStrategy<Node>) -> impl Strategy<Value = Node> {
    const MODES: [&[usize]; 5] = [&[1, 4], &[1, 6], &[2, 4], &[2, 3, 4], &[2, 3, 5]];
    let pattern = prop_oneof![
        prop::sample::select(vec!["[a-z]+", "(?<g>\\d+)", "\\s", "(?<n>^x)", "(\\w)\\1", "a(?=b)"])
            .prop_map(|p| Node::Str(p.to_string())),
        "[a-z]{1,5}".prop_map(Node::Attribute),
    ];
    (
        prop::sample::select(MODES.to_vec()),
        inner.clone(),
        pattern,
        prop::collection::vec(inner, 7),
    )
        .prop_map(|(mode, source, pattern, others)| {
            let mut args: Vec<Option<Node>> = others.into_iter().map(Some).collect();
            for (i, a) in args.iter_mut().enumerate() {
                if i == 0 {
                    *a = Some(source.clone());
                } else if i == 2 && mode.contains(&2) {
                    *a = Some(pattern.clone());
                } else if !mode.contains(&i) {
                    *a = None;
                }
            }
            Node::Call(Call {
                function: Function::Replace,
                args,
            })
        })
}

fn node() -> impl Strategy<Value = Node> {
    leaf().prop_recursive(5, 64, 6, |inner| {
        let inner = inner.boxed();
        let operand = inner
            .clone()
            .prop_filter("operands are not comparisons", |n| !matches!(n, Node::Compare(..)));
        prop_oneof![
            4 => call(inner.clone()),
            1 => (operand.clone(), prop::sample::select(CmpOp::ALL.to_vec()), operand)
                .prop_map(|(l, op, r)| Node::Compare(Box::new(l), op, Box::new(r))),
            1 => replace_call(inner),
        ]
    })
}

fn root() -> impl Strategy<Value = Node> {
    prop_oneof![
        6 => node(),
        1 => node().prop_map(|n| Node::Call(Call { function: Function::IgnoreFlowIfNullOrEmpty, args: vec![Some(n)] })),
        1 => prop::collection::vec(node().prop_filter("candidates", |n| !matches!(n, Node::Compare(..))), 2..5)
            .prop_map(|rules| Node::Call(Call { function: Function::SelectUniqueValue, args: rules.into_iter().map(Some).collect() })),
    ]
}

/// Display may be longer than the text it came from (escapes, hex as
/// decimal): the length limit is not what the round trip is about.
const RELAXED: Limits = Limits {
    max_chars: usize::MAX,
    max_depth: MAX_DEPTH,
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn display_round_trips(tree in root()) {
        let text = tree.to_string();
        let parsed = parse_with(&text, RELAXED).map_err(|e| TestCaseError::fail(format!("{text}\n{e}")))?;
        prop_assert_eq!(parsed.root(), &tree, "{}", text);
        let again = parse_with(&parsed.to_string(), RELAXED).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(again, parsed);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,60}|[\\[\\]\"(),=<>&H0-9a-zA-Z\\\\ -]{0,60}") {
        if let Ok(e) = parse(&text) {
            prop_assert_eq!(parse_with(&e.to_string(), RELAXED).ok(), Some(e));
        }
    }
}
