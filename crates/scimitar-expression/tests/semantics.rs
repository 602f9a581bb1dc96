//! The decisions this implementation takes where Entra's reference is
//! silent (docs/expressions.md, "Decisions"), and the evaluation errors.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use scimitar_expression::{Env, Error, EvalError, Function, MAX_VALUE_BYTES, Value, eval, eval_json, parse};
use serde_json::{Value as Json, json};
use time::macros::datetime;

fn env_eval(expr: &str, input: &Json, domain: Option<&str>) -> Result<Value, EvalError> {
    let parsed = parse(expr).unwrap_or_else(|e| panic!("{expr}\n{e}"));
    let mut n = 0u64;
    let mut rng = move || {
        n = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
        n
    };
    let mut env = Env {
        now: datetime!(2024-02-29 13:14:15 +02:00),
        rng: &mut rng,
        default_domain: domain,
    };
    eval(&parsed, input, &mut env).map(|o| o.value)
}

fn ev(expr: &str, input: &Json) -> Result<Value, EvalError> {
    env_eval(expr, input, Some("contoso.com"))
}

fn s(t: &str) -> Value {
    Value::Str(t.into())
}

/// Expressions and what they give against `{}` or a given object.
#[test]
fn decisions() {
    let none = json!({});
    let cases: Vec<(&str, Json, Value)> = vec![
        // Append: null counts as "".
        (r#"Append([x], "b")"#, none.clone(), s("b")),
        (r#"Append("a", [x])"#, none.clone(), s("a")),
        // BitAnd: null in, null out; numeric strings and hex strings work.
        ("BitAnd([x], 7)", none.clone(), Value::Null),
        (r#"BitAnd("12", "&H4")"#, none.clone(), s("4")),
        // CBool: strings in any case, numbers, null.
        (r#"CBool("true")"#, none.clone(), Value::Bool(true)),
        (r#"CBool("FALSE")"#, none.clone(), Value::Bool(false)),
        (r#"CBool("0")"#, none.clone(), Value::Bool(false)),
        ("CBool(2)", none.clone(), Value::Bool(true)),
        ("CBool([x])", none.clone(), Value::Bool(false)),
        // CDate: null and "" give null.
        ("CDate([x])", none.clone(), Value::Null),
        ("CDate([x])", json!({"x": ""}), Value::Null),
        // The encodings: null in, null out.
        ("ConvertToBase64([x])", none.clone(), Value::Null),
        ("ConvertToUTF8Hex([x])", none.clone(), Value::Null),
        (r#"ConvertToBase64("é€")"#, none.clone(), s("6QCsIA==")),
        (r#"ConvertToUTF8Hex("é")"#, none.clone(), s("C3A9")),
        // Count of a single value is 1.
        ("Count([x])", json!({"x": "one"}), s("1")),
        // CStr: booleans as True/False; numbers as written.
        ("CStr([b])", json!({"b": true}), s("True")),
        ("CStr(-0012.50)", none.clone(), s("-0012.50")),
        ("CStr([n])", json!({"n": 12.5}), s("12.5")),
        // Dates: null in, null out.
        (r#"DateAdd("d", 1, [x])"#, none.clone(), Value::Null),
        (r#"DateDiff("d", [x], Now())"#, none.clone(), Value::Null),
        ("DateFromNum([x])", none.clone(), Value::Null),
        ("NumFromDate([x])", none.clone(), Value::Null),
        (r#"FormatDateTime([x], , "yyyy", "yyyy")"#, none.clone(), Value::Null),
        // Now is UTC and printed as Entra prints dates.
        ("Now()", none.clone(), s("2/29/2024 11:14:15 AM")),
        ("DateAdd(\"yyyy\", 1, Now())", none.clone(), s("2/28/2025 11:14:15 AM")),
        // DateDiff reads strings CDate reads; DateAdd takes a numeric string.
        (r#"DateDiff("d", "2024-01-01", "2024-03-01")"#, none.clone(), s("60")),
        (
            r#"DateAdd("d", "2", "2024-01-01")"#,
            none.clone(),
            s("1/3/2024 12:00:00 AM"),
        ),
        // FormatDateTime without a date in its format takes today's date.
        (
            r#"FormatDateTime("07:30", , "HH:mm", "yyyy-MM-dd HH:mm")"#,
            none.clone(),
            s("2024-02-29 07:30"),
        ),
        // Guid: v4 from the injected generator.
        ("Guid()", none.clone(), s("9e3779b9-7f4a-4c15-bc6e-f372fe94f82a")),
        // IgnoreFlowIfNullOrEmpty passes values through; Drop is contagious.
        ("IgnoreFlowIfNullOrEmpty([x])", json!({"x": "v"}), s("v")),
        (
            r#"Append(IgnoreFlowIfNullOrEmpty([x]), "y")"#,
            none.clone(),
            Value::Drop,
        ),
        (
            r#"IIF([a] = "1", IgnoreFlowIfNullOrEmpty([x]), "no")"#,
            json!({"a": "1"}),
            Value::Drop,
        ),
        (
            r#"IIF([a] = "1", IgnoreFlowIfNullOrEmpty([x]), "no")"#,
            json!({"a": "2"}),
            s("no"),
        ),
        (
            r#"Coalesce(IgnoreFlowIfNullOrEmpty([x]), "b")"#,
            none.clone(),
            Value::Drop,
        ),
        // IIF: a comparison with a null or empty side is false, even <>.
        (r#"IIF([c] <> "USA", "other", "usa")"#, none.clone(), s("usa")),
        (r#"IIF([c] = "", "empty", "not")"#, json!({"c": ""}), s("not")),
        // IIF: numbers compare as numbers, text as case-sensitive text.
        (r#"IIF([n] > 9, "big", "small")"#, json!({"n": "10"}), s("big")),
        (r#"IIF([n] > "9", "big", "small")"#, json!({"n": "10"}), s("big")),
        (r#"IIF([t] > "9", "after", "before")"#, json!({"t": "10a"}), s("before")),
        (
            r#"IIF([t] = "usa", "same", "differ")"#,
            json!({"t": "USA"}),
            s("differ"),
        ),
        (r#"IIF([n] = 7, "seven", "not")"#, json!({"n": 7}), s("seven")),
        (r#"IIF([n] >= 7.5, "yes", "no")"#, json!({"n": "7.50"}), s("yes")),
        (
            r#"IIF(CDate([d]) < Now(), "past", "future")"#,
            json!({"d": "2024-02-29T11:14:14Z"}),
            s("past"),
        ),
        // IIF: the superset, IsPresent and friends as conditions.
        (r#"IIF(IsPresent([c]), [c], "Other")"#, none.clone(), s("Other")),
        (r#"IIF(IsPresent([c]), [c], "Other")"#, json!({"c": "DE"}), s("DE")),
        (r#"IIF([flag], "on", "off")"#, json!({"flag": "true"}), s("on")),
        (r#"IIF([flag], "on", "off")"#, json!({"flag": true}), s("on")),
        // InStr: null in, null out; text compare by name or number.
        (r#"InStr([x], "a")"#, none.clone(), Value::Null),
        (r#"InStr("aXb", "x", 1, 1)"#, none.clone(), s("2")),
        (r#"InStr("aXb", "x", 1, "vbTextCompare")"#, none.clone(), s("2")),
        (r#"InStr("aXb", "x", , vbBinaryCompare)"#, none.clone(), s("0")),
        (r#"InStr("abc", "", 2)"#, none.clone(), s("2")),
        // IsString.
        ("IsString([x])", none.clone(), Value::Bool(false)),
        ("IsString(12)", none.clone(), Value::Bool(true)),
        ("IsString([m])", json!({"m": ["a", "b"]}), Value::Bool(false)),
        // Item: out of range and 0 give null; a single value is item 1.
        ("Item([m], 3)", json!({"m": ["a", "b"]}), Value::Null),
        ("Item([m], 0)", json!({"m": ["a", "b"]}), Value::Null),
        ("Item([m], 1)", json!({"m": "solo"}), s("solo")),
        ("Item([m], 2)", json!({"m": "solo"}), Value::Null),
        // Join: everything empty gives ""; empty values inside lists are skipped.
        (r#"Join(",", [a], "")"#, none.clone(), s("")),
        (
            r#"Join("-", [m], [a], 7)"#,
            json!({"m": ["x", "", "y"], "a": "z"}),
            s("x-y-z-7"),
        ),
        // Mid: start past the end gives "".
        ("Mid(\"abc\", 5, 2)", none.clone(), s("")),
        ("Mid([x], 1, 2)", none.clone(), s("")),
        ("Mid(\"abc\", 2, 0)", none.clone(), s("")),
        // Not: anything but True is false, so Not gives True.
        ("Not(\"yes\")", none.clone(), Value::Bool(true)),
        ("Not(\" TRUE \")", none.clone(), Value::Bool(false)),
        ("Not(IsPresent([x]))", none.clone(), Value::Bool(true)),
        // PCase with "" separators behaves as without.
        (r#"PCase("ab cd", "")"#, none.clone(), s("Ab Cd")),
        ("PCase([x])", none.clone(), Value::Null),
        // RemoveDuplicates keeps the first of each, in order.
        (
            "RemoveDuplicates([m])",
            json!({"m": ["b", "a", "b", "c", "a"]}),
            Value::Multi(vec!["b".into(), "a".into(), "c".into()]),
        ),
        ("RemoveDuplicates([m])", json!({"m": "a"}), s("a")),
        // Replace: null source gives null (modes a–d); a null oldValue or
        // pattern leaves the source as it is.
        (r#"Replace([x], "a", , , "b", , )"#, none.clone(), Value::Null),
        (r#"Replace("abc", [x], , , "b", , )"#, none.clone(), s("abc")),
        (r#"Replace("abc", "", , , "b", , )"#, none.clone(), s("abc")),
        (r#"Replace("abc", , [x], , "b", , )"#, none.clone(), s("abc")),
        (r#"Replace([x], "<u>", , , , , "<u>@x")"#, none.clone(), Value::Null),
        (
            r#"Replace([telephoneNumber], , "(?<n>\\d+)", "n", , [mobile], )"#,
            json!({"mobile": "no digits"}),
            Value::Null,
        ),
        (
            r#"Replace([telephoneNumber], , "(?<n>\\d+)", "n", , [mobile], )"#,
            none.clone(),
            Value::Null,
        ),
        // Replace: a pattern from an attribute is compiled when evaluated.
        (
            r#"Replace([v], , [p], , "-", , )"#,
            json!({"v": "a1b22", "p": "\\d+"}),
            s("a-b-"),
        ),
        // Replace: .NET features (look-around, back-references, $1).
        (
            r#"Replace([v], , "(\\w)\\1", , "<$1>", , )"#,
            json!({"v": "aabcc"}),
            s("<a>b<c>"),
        ),
        (
            r#"Replace([v], , "(?<=@)\\w+", , "example", , )"#,
            json!({"v": "jo@contoso.com"}),
            s("jo@example.com"),
        ),
        // Replace: group-span mode takes the replacement literally.
        (
            r#"Replace([v], , "(?<d>\\d+)", "d", "$1", , )"#,
            json!({"v": "a1b"}),
            s("a$1b"),
        ),
        // Split: no trimming, empty entries kept; null or "" gives null.
        (
            r#"Split([v], ",")"#,
            json!({"v": "a, b,,c"}),
            Value::Multi(vec!["a".into(), " b".into(), "".into(), "c".into()]),
        ),
        (r#"Split([v], ",")"#, json!({"v": ""}), Value::Null),
        (
            r#"Split([v], "")"#,
            json!({"v": "a,b"}),
            Value::Multi(vec!["a,b".into()]),
        ),
        // StripSpaces removes U+0020 only.
        ("StripSpaces(\"a b\tc\u{a0}d\")", none.clone(), s("ab\tc\u{a0}d")),
        // Switch: an omitted default is null; a null key matches a null source.
        (r#"Switch([x], , "a", "1")"#, none.clone(), Value::Null),
        (r#"Switch([x], "d", [y], "both null")"#, none.clone(), s("both null")),
        (r#"Switch("7", "d", 7, "seven")"#, none.clone(), s("seven")),
        // Case with cultures other than tr/az is invariant.
        (r#"ToUpper("istanbul", "en-US")"#, none.clone(), s("ISTANBUL")),
        (r#"ToLower("TITLE", "az")"#, none.clone(), s("tıtle")),
        ("ToLower([x])", none.clone(), Value::Null),
        // Word: runs of delimiters make no empty words.
        (r#"Word("a,,b", 2, ",")"#, none.clone(), s("b")),
        // Comparisons and constants as whole expressions.
        ("[a] = [b]", json!({"a": "x", "b": "x"}), Value::Bool(true)),
        ("vbTextCompare", none.clone(), s("1")),
        ("True", none.clone(), Value::Bool(true)),
        // A bare attribute, and source shapes.
        ("[IsSoftDeleted]", json!({"IsSoftDeleted": false}), Value::Bool(false)),
        ("[m]", json!({"m": []}), Value::Null),
        (
            "[m]",
            json!({"m": [null, "a", 2, true]}),
            Value::Multi(vec!["a".into(), "2".into(), "True".into()]),
        ),
        (
            "[n]",
            json!({"n": 18446744073709551615u64}),
            Value::Num(scimitar_expression::Number::Decimal("18446744073709551615".into())),
        ),
        // SelectUniqueValue skips empty rules and repeats.
        (
            r#"SelectUniqueValue([x], "a", "", "a", IgnoreFlowIfNullOrEmpty([x]), "b")"#,
            none.clone(),
            Value::Candidates(vec!["a".into(), "b".into()]),
        ),
    ];
    let mut failures = Vec::new();
    for (expr, input, want) in cases {
        match ev(expr, &input) {
            Ok(got) => {
                // Values compare by their text when the kind differs
                // (Num 7 vs "7"); exact otherwise.
                let same = got == want || (got.text().is_some() && got.text() == want.text());
                if !same {
                    failures.push(format!("{expr} {input}: got {got:?}, want {want:?}"));
                }
            }
            Err(e) => failures.push(format!("{expr} {input}: error {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Evaluation errors name the function and say what is wrong.
#[test]
fn errors() {
    let none = json!({});
    let multi = json!({"m": ["a", "b"], "r": [{"id": "1", "value": "Admin", "displayName": "Admin"}]});
    let cases: Vec<(&str, Json, &str)> = vec![
        (
            "ToLower([m])",
            multi.clone(),
            "ToLower: the first argument is multi-valued (2 values); pick one with Item() or combine them with Join()",
        ),
        (
            "Append([r], \"x\")",
            multi.clone(),
            "Append: the first argument is a list of app role assignments; use SingleAppRoleAssignment() for one role",
        ),
        (
            "Join(\",\", [r])",
            multi.clone(),
            "Join: the second argument is a list of app role assignments; use SingleAppRoleAssignment() for one role",
        ),
        (
            "[m] = \"a\"",
            multi.clone(),
            "a comparison operand is multi-valued; compare one value (Item, Join)",
        ),
        (
            "SingleAppRoleAssignment([m])",
            multi.clone(),
            "SingleAppRoleAssignment: expects [appRoleAssignments]: a list of {id, value, displayName} objects",
        ),
        (
            "BitAnd(\"x\", 1)",
            none.clone(),
            "BitAnd: the first argument must be a whole number, got \"x\"",
        ),
        (
            "BitAnd(1.5, 1)",
            none.clone(),
            "BitAnd: the first argument must be a whole number, got 1.5",
        ),
        (
            "CBool(\"maybe\")",
            none.clone(),
            "CBool: \"maybe\" is not a boolean (True or False) or a number",
        ),
        (
            "IIF(\"maybe\", 1, 2)",
            none.clone(),
            "IIF: \"maybe\" is not a boolean (True or False) or a number",
        ),
        (
            "CDate(\"someday\")",
            none.clone(),
            "CDate: the first argument is not a date CDate can read: \"someday\"",
        ),
        (
            "DateAdd(\"fortnight\", 1, Now())",
            none.clone(),
            "DateAdd: unknown interval \"fortnight\"; expected yyyy, q, m, y, d, w, ww, h, n or s",
        ),
        (
            "DateAdd(\"d\", [x], Now())",
            none.clone(),
            "DateAdd: the second argument is missing (null)",
        ),
        (
            "DateAdd(\"yyyy\", 9000, Now())",
            none.clone(),
            "DateAdd: the result is outside years 1 to 9999",
        ),
        (
            "DateFromNum(-1)",
            none.clone(),
            "DateFromNum: -1 is negative; AD times count from 1601-01-01",
        ),
        (
            "DateFromNum(9223372036854775807)",
            none.clone(),
            "DateFromNum: 9223372036854775807 is outside years 1 to 9999",
        ),
        (
            "FormatDateTime(\"2021\", , \"yyyy-MM\", \"d\")",
            none.clone(),
            "FormatDateTime: \"2021\" does not match the format \"yyyy-MM\"",
        ),
        (
            "FormatDateTime(\"2021\", \"Sideways\", \"yyyy\", \"d\")",
            none.clone(),
            "FormatDateTime: unknown DateTimeStyles value \"Sideways\"",
        ),
        (
            "InStr(\"a\", \"b\", 0)",
            none.clone(),
            "InStr: start must be at least 1, got 0",
        ),
        (
            "InStr(\"a\", \"b\", 1, 2)",
            none.clone(),
            "InStr: compare type must be vbBinaryCompare (0) or vbTextCompare (1), got 2",
        ),
        (
            "Mid(\"abc\", 0, 1)",
            none.clone(),
            "Mid: start must be at least 1, got 0",
        ),
        (
            "Mid(\"abc\", 1, -1)",
            none.clone(),
            "Mid: length must not be negative, got -1",
        ),
        (
            "Left(\"abc\", [x])",
            none.clone(),
            "Left: the second argument is missing (null)",
        ),
        (
            "RandomString(300, 0, 0, 0, 0)",
            none.clone(),
            "RandomString: length must be between 0 and 256, got 300",
        ),
        (
            "RandomString(3, 1, 1, 1, 1)",
            none.clone(),
            "RandomString: the minima add up to 4, more than the length 3",
        ),
        (
            "RandomString(3, 1, 0, 0, 0, \"0123456789\")",
            none.clone(),
            "RandomString: every one of the numbers is in the characters to avoid",
        ),
        (
            "Replace(\"abc\", , [p], , \"x\", , )",
            json!({"p": "("}),
            "Replace: invalid regular expression \"(\"",
        ),
        (
            "Replace(\"abc\", , \"(?<g>b)\", \"h\", \"x\", , )",
            none.clone(),
            "Replace: the pattern has no group named \"h\"",
        ),
        (
            "Replace(\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\", , \"^(a|a)*(?<=b)\", , \"x\", , )",
            none.clone(),
            "Replace: Error executing regex: Max limit for backtracking count exceeded",
        ),
        ("[o]", json!({"o": {"a": 1}}), "attribute [o] holds a JSON object"),
        (
            "[o]",
            json!({"o": [[1]]}),
            "attribute [o] holds an array inside an array",
        ),
        (
            "[o]",
            json!({"o": [{"value": 1}]}),
            "attribute [o] holds an app role whose 'value' is not a string: 1",
        ),
        (
            "[o]",
            json!({"o": [{"value": "a"}, "b"]}),
            "attribute [o] holds an array that mixes app role objects with other values",
        ),
    ];
    let mut failures = Vec::new();
    for (expr, input, want) in cases {
        match ev(expr, &input) {
            Ok(v) => failures.push(format!("{expr}: gave {v:?}")),
            Err(e) if e.to_string().starts_with(want) => {}
            Err(e) => failures.push(format!("{expr}\n  got:  {e}\n  want: {want}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn default_domain_must_be_configured() {
    let e = env_eval("DefaultDomain()", &json!({}), None).unwrap_err();
    assert_eq!(e.function, Some(Function::DefaultDomain));
    assert_eq!(
        e.to_string(),
        "DefaultDomain: no default domain is configured for this job"
    );
    assert_eq!(
        env_eval("DefaultDomain()", &json!({}), Some("x.org")).unwrap(),
        s("x.org")
    );
}

#[test]
fn results_are_capped() {
    // Each Replace multiplies the length by 100: the third would pass 1 MiB.
    let grow = |inner: &str| format!(r#"Replace({inner}, "a", , , "{}", , )"#, "a".repeat(100));
    let two = grow(&grow("\"aaaa\""));
    assert_eq!(ev(&two, &json!({})).unwrap().text().unwrap().len(), 40_000);
    let e = ev(&grow(&two), &json!({})).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("Replace: the result would be longer than {MAX_VALUE_BYTES} bytes")
    );
    // Encodings grow too; the check is on every result.
    let mut expr = String::from("[a]");
    for _ in 0..20 {
        expr = format!("ConvertToUTF8Hex({expr})");
    }
    let e = ev(&expr, &json!({"a": "xyz"})).unwrap_err();
    assert_eq!(e.function, Some(Function::ConvertToUtf8Hex));
}

#[test]
fn eval_json_for_the_cli() {
    let mut rng = || 0u64;
    let mut env = Env {
        now: datetime!(2024-01-01 00:00 UTC),
        rng: &mut rng,
        default_domain: None,
    };
    let user = json!({"givenName": "Zoë", "proxyAddresses": ["a", "b"], "active": true});
    assert_eq!(
        eval_json("NormalizeDiacritics([givenName])", &user, &mut env).unwrap(),
        json!("Zoe")
    );
    assert_eq!(
        eval_json("[proxyAddresses]", &user, &mut env).unwrap(),
        json!(["a", "b"])
    );
    assert_eq!(eval_json("[active]", &user, &mut env).unwrap(), json!("True"));
    assert_eq!(eval_json("Len([givenName])", &user, &mut env).unwrap(), json!("3"));
    assert_eq!(eval_json("[missing]", &user, &mut env).unwrap(), Json::Null);
    assert_eq!(
        eval_json("IgnoreFlowIfNullOrEmpty([missing])", &user, &mut env).unwrap(),
        Json::Null
    );
    assert_eq!(
        eval_json("Now()", &user, &mut env).unwrap(),
        json!("1/1/2024 12:00:00 AM")
    );
    assert!(matches!(eval_json("Foo()", &user, &mut env), Err(Error::Parse(_))));
    assert!(matches!(
        eval_json("DefaultDomain()", &user, &mut env),
        Err(Error::Eval(_))
    ));
    let e = eval_json("[a]", &json!(["not", "an", "object"]), &mut env).unwrap_err();
    assert_eq!(e.to_string(), "the source must be a JSON object, not an array");
    let e = eval_json("Left([a]", &user, &mut env).unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 1, column 9: expected ',' or ')', found end of expression"
    );
}

/// One parsed expression (with its compiled regex) serves every worker.
#[test]
fn expressions_are_shared_between_threads() {
    let expr = parse(r#"Replace([v], , "(?<d>\d+)", , "<${d}>", , )"#).unwrap();
    let results: Vec<Value> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|i| {
                let expr = &expr;
                scope.spawn(move || {
                    let mut rng = || 0u64;
                    let mut env = Env {
                        now: datetime!(2024-01-01 00:00 UTC),
                        rng: &mut rng,
                        default_domain: None,
                    };
                    eval(expr, &json!({"v": format!("a{i}b")}), &mut env).unwrap().value
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(results, (0..4).map(|i| s(&format!("a<{i}>b"))).collect::<Vec<_>>());
}

/// The deepest expressions the parser accepts evaluate on a small stack
/// (the engine may run on threads with less than the main thread's 8 MiB;
/// tokio's default is 2 MiB). Unoptimised builds use the most stack.
#[test]
fn the_deepest_expressions_fit_a_small_stack() {
    let depth = scimitar_expression::MAX_DEPTH;
    let wrap =
        |open: &str, close: &str, inner: &str| format!("{}{inner}{}", open.repeat(depth - 1), close.repeat(depth - 1));
    let exprs = [
        wrap("Not(", ")", "IsPresent([a])"),
        wrap("Append(\"x\", ", ")", "[a]"),
        wrap("IIF([a] = \"x\", ", ", \"n\")", "[a]"),
        wrap("Switch([a], \"d\", \"x\", ", ")", "[a]"),
        wrap("Replace(\"ab\", , \"a\", , ", ", , )", "[a]"),
        wrap("FormatDateTime(", ", , \"yyyy\", \"yyyy\")", "\"2021\""),
        wrap("Join(\",\", [a], ", ")", "[a]"),
        format!(
            "{}\"2021-01-01\"{}",
            "CDate(DateAdd(\"d\", 1, ".repeat((depth - 1) / 2),
            "))".repeat((depth - 1) / 2)
        ),
        format!(
            "SelectUniqueValue([a], {})",
            wrap("Coalesce([x], ", ")", "[a]")
                .replacen("Coalesce([x], ", "", 1)
                .replacen(')', "", 1)
        ),
    ];
    let handle = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(move || {
            for e in &exprs {
                let parsed = parse(e).unwrap_or_else(|err| panic!("{e}\n{err}"));
                let v = ev(e, &json!({"a": "x"})).unwrap_or_else(|err| panic!("{e}\n{err}"));
                assert!(!v.is_null(), "{e}");
                assert!(parsed.to_string().len() <= e.len());
            }
        })
        .unwrap();
    handle.join().unwrap();
}
