//! Choice state: every operator family, And/Or/Not, Default and NoChoiceMatched.

use crate::common;

use cai_asl::error_names;
use common::*;
use serde_json::{json, Value};

/// Runs a Choice with a single rule; returns "yes" when it matched, "no" otherwise.
fn decide(rule: Value, input: Value) -> Result<&'static str, cai_asl::TaskFailure> {
    let mut rule = rule;
    rule["Next"] = json!("Yes");
    let e = run(
        json!({"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [rule], "Default": "No"},
            "Yes": {"Type": "Pass", "Result": "yes", "End": true},
            "No": {"Type": "Pass", "Result": "no", "End": true}
        }}),
        input,
        &FakeInvoker::new(),
    );
    match e.output {
        Some(v) if v == "yes" => Ok("yes"),
        Some(_) => Ok("no"),
        None => Err(e.error.unwrap()),
    }
}

fn check(op: &str, operand: Value, value: Value, expect: bool) {
    let got = decide(
        json!({"Variable": "$.v", op: operand}),
        json!({"v": value, "other": operand}),
    );
    assert_eq!(got.unwrap() == "yes", expect, "{op} {operand} on {value}");
    // The *Path twin compares with another field of the input.
    if op != "StringMatches" && !op.starts_with("Is") {
        let op_path = format!("{op}Path");
        let got = decide(
            json!({"Variable": "$.v", op_path.clone(): "$.other"}),
            json!({"v": value, "other": operand}),
        );
        assert_eq!(
            got.unwrap() == "yes",
            expect,
            "{op_path} {operand} on {value}"
        );
    }
}

#[test]
fn string_comparisons() {
    check("StringEquals", json!("abc"), json!("abc"), true);
    check("StringEquals", json!("abc"), json!("abd"), false);
    check("StringEquals", json!("1"), json!(1), false);
    check("StringLessThan", json!("b"), json!("a"), true);
    check("StringLessThan", json!("b"), json!("b"), false);
    check("StringGreaterThan", json!("b"), json!("c"), true);
    check("StringGreaterThan", json!("b"), json!("a"), false);
    check("StringLessThanEquals", json!("b"), json!("b"), true);
    check("StringLessThanEquals", json!("b"), json!("c"), false);
    check("StringGreaterThanEquals", json!("b"), json!("b"), true);
    check("StringGreaterThanEquals", json!("b"), json!("a"), false);
}

#[test]
fn string_matches_wildcards_and_escapes() {
    check(
        "StringMatches",
        json!("rank-*.json"),
        json!("rank-12.json"),
        true,
    );
    check(
        "StringMatches",
        json!("rank-*.json"),
        json!("rank-12.txt"),
        false,
    );
    check("StringMatches", json!("*"), json!(""), true);
    check("StringMatches", json!(r"a\*"), json!("a*"), true);
    check("StringMatches", json!(r"a\*"), json!("ab"), false);
    check("StringMatches", json!("*"), json!(5), false);
}

#[test]
fn numeric_comparisons() {
    check("NumericEquals", json!(3), json!(3.0), true);
    check("NumericEquals", json!(3), json!(4), false);
    check("NumericEquals", json!(3), json!("3"), false);
    check("NumericLessThan", json!(3), json!(2.5), true);
    check("NumericLessThan", json!(3), json!(3), false);
    check("NumericGreaterThan", json!(3), json!(-1), false);
    check("NumericGreaterThan", json!(3), json!(10), true);
    check("NumericLessThanEquals", json!(3), json!(3), true);
    check("NumericLessThanEquals", json!(3), json!(3.01), false);
    check("NumericGreaterThanEquals", json!(-2), json!(-2), true);
    check("NumericGreaterThanEquals", json!(-2), json!(-3), false);
    check(
        "NumericEquals",
        json!(9007199254740993u64),
        json!(9007199254740993u64),
        true,
    );
    check(
        "NumericEquals",
        json!(9007199254740993u64),
        json!(9007199254740992u64),
        false,
    );
}

#[test]
fn boolean_comparisons() {
    check("BooleanEquals", json!(true), json!(true), true);
    check("BooleanEquals", json!(true), json!(false), false);
    check("BooleanEquals", json!(false), json!("false"), false);
}

#[test]
fn timestamp_comparisons() {
    let t = json!("2024-05-01T12:00:00Z");
    check(
        "TimestampEquals",
        t.clone(),
        json!("2024-05-01T14:00:00+02:00"),
        true,
    );
    check(
        "TimestampEquals",
        t.clone(),
        json!("2024-05-01T12:00:00.001Z"),
        false,
    );
    check(
        "TimestampLessThan",
        t.clone(),
        json!("2024-05-01T11:59:59Z"),
        true,
    );
    check(
        "TimestampLessThan",
        t.clone(),
        json!("2024-05-01T12:00:00Z"),
        false,
    );
    check(
        "TimestampGreaterThan",
        t.clone(),
        json!("2025-01-01T00:00:00Z"),
        true,
    );
    check(
        "TimestampGreaterThan",
        t.clone(),
        json!("2020-01-01T00:00:00Z"),
        false,
    );
    check(
        "TimestampLessThanEquals",
        t.clone(),
        json!("2024-05-01T12:00:00Z"),
        true,
    );
    check(
        "TimestampGreaterThanEquals",
        t.clone(),
        json!("2024-05-01T11:00:00Z"),
        false,
    );
    // Not a timestamp: every comparison is false.
    check(
        "TimestampEquals",
        t.clone(),
        json!("2024-05-01 12:00:00"),
        false,
    );
    check("TimestampLessThan", t, json!(12), false);
}

#[test]
fn type_tests() {
    let cases = [
        ("IsNull", json!(null), json!(1)),
        ("IsNumeric", json!(1.5), json!("1.5")),
        ("IsString", json!("s"), json!(1)),
        ("IsBoolean", json!(false), json!(0)),
        (
            "IsTimestamp",
            json!("2024-05-01T12:00:00Z"),
            json!("2024-05-01"),
        ),
    ];
    for (op, yes, no) in cases {
        check(op, json!(true), yes.clone(), true);
        check(op, json!(true), no.clone(), false);
        check(op, json!(false), no, true);
        check(op, json!(false), yes, false);
    }
    // IsPresent is the one test that tolerates a missing path.
    assert_eq!(
        decide(
            json!({"Variable": "$.v", "IsPresent": true}),
            json!({"v": null})
        )
        .unwrap(),
        "yes"
    );
    assert_eq!(
        decide(json!({"Variable": "$.v", "IsPresent": true}), json!({})).unwrap(),
        "no"
    );
    assert_eq!(
        decide(json!({"Variable": "$.v", "IsPresent": false}), json!({})).unwrap(),
        "yes"
    );
}

#[test]
fn missing_variable_is_a_runtime_error() {
    let err = decide(
        json!({"Variable": "$.nope", "StringEquals": "x"}),
        json!({}),
    )
    .unwrap_err();
    assert_eq!(err.error, error_names::RUNTIME);
    let err = decide(
        json!({"Variable": "$.v", "NumericEqualsPath": "$.nope"}),
        json!({"v": 1}),
    )
    .unwrap_err();
    assert_eq!(err.error, error_names::RUNTIME);
    let err = decide(json!({"Variable": "$.nope", "IsNull": true}), json!({})).unwrap_err();
    assert_eq!(err.error, error_names::RUNTIME);
}

#[test]
fn and_or_not() {
    let a = json!({"Variable": "$.a", "NumericGreaterThan": 1});
    let b = json!({"Variable": "$.b", "StringEquals": "x"});
    let input = |a: i64, b: &str| json!({"a": a, "b": b});
    assert_eq!(
        decide(json!({"And": [a, b]}), input(2, "x")).unwrap(),
        "yes"
    );
    assert_eq!(decide(json!({"And": [a, b]}), input(2, "y")).unwrap(), "no");
    assert_eq!(decide(json!({"Or": [a, b]}), input(0, "x")).unwrap(), "yes");
    assert_eq!(decide(json!({"Or": [a, b]}), input(0, "y")).unwrap(), "no");
    assert_eq!(decide(json!({"Not": a}), input(0, "y")).unwrap(), "yes");
    assert_eq!(decide(json!({"Not": a}), input(5, "y")).unwrap(), "no");
    let nested = json!({"And": [{"Not": {"Or": [a, b]}}, {"Variable": "$.b", "IsString": true}]});
    assert_eq!(decide(nested.clone(), input(0, "y")).unwrap(), "yes");
    assert_eq!(decide(nested, input(0, "x")).unwrap(), "no");
}

#[test]
fn context_variables_and_first_match_wins() {
    let e = run(
        json!({"StartAt": "C", "States": {
            "C": {"Type": "Choice", "InputPath": "$.in", "OutputPath": "$.keep", "Choices": [
                {"Variable": "$$.State.Name", "StringEquals": "Other", "Next": "A"},
                {"Variable": "$.n", "NumericGreaterThan": 0, "Next": "B"},
                {"Variable": "$.n", "NumericGreaterThan": -1, "Next": "A"}
            ]},
            "A": {"Type": "Pass", "Result": "A", "ResultPath": "$.went", "End": true},
            "B": {"Type": "Pass", "Result": "B", "ResultPath": "$.went", "End": true}
        }}),
        json!({"in": {"n": 5, "keep": {"k": 1}}}),
        &FakeInvoker::new(),
    );
    assert_eq!(output(&e), json!({"k": 1, "went": "B"}));
    assert_eq!(e.transitions, 2);
}

#[test]
fn default_and_no_choice_matched() {
    let rule = json!({"Variable": "$.v", "BooleanEquals": true, "Next": "Yes"});
    let states = |default: bool| {
        let mut c = json!({"Type": "Choice", "Choices": [rule.clone()]});
        if default {
            c["Default"] = json!("No");
        }
        let mut s = json!({"C": c, "Yes": {"Type": "Succeed"}});
        if default {
            s["No"] = json!({"Type": "Pass", "Result": "default", "End": true});
        }
        json!({"StartAt": "C", "States": s})
    };
    let inv = FakeInvoker::new();
    assert_eq!(
        output(&run(states(true), json!({"v": false}), &inv)),
        json!("default")
    );
    let err = error(&run(states(false), json!({"v": false}), &inv));
    assert_eq!(err.error, error_names::NO_CHOICE_MATCHED);
    assert_eq!(
        output(&run(states(false), json!({"v": true}), &inv)),
        json!({"v": true})
    );
}
