//! Parsing Choice rules with errors naming `Choices[i]…` fields.

use serde_json::Value;

use super::{Branch, Cmp, Kind, Op, Operand, PatternPart, Rule, TypeTest};
use crate::definition::fields::Fields;
use crate::timestamp;
use crate::DefinitionError;

const CMPS: [(&str, Cmp); 5] = [
    ("Equals", Cmp::Eq),
    ("LessThan", Cmp::Lt),
    ("GreaterThan", Cmp::Gt),
    ("LessThanEquals", Cmp::Le),
    ("GreaterThanEquals", Cmp::Ge),
];

const TESTS: [(&str, TypeTest); 6] = [
    ("IsNull", TypeTest::Null),
    ("IsPresent", TypeTest::Present),
    ("IsNumeric", TypeTest::Numeric),
    ("IsString", TypeTest::String),
    ("IsBoolean", TypeTest::Boolean),
    ("IsTimestamp", TypeTest::Timestamp),
];

/// Recognises a comparison operator name: (kind, cmp, is *Path variant).
fn comparison(name: &str) -> Option<(Kind, Cmp, bool)> {
    let (name, by_path) = match name.strip_suffix("Path") {
        Some(n) => (n, true),
        None => (name, false),
    };
    if name == "BooleanEquals" {
        return Some((Kind::Boolean, Cmp::Eq, by_path));
    }
    for (prefix, kind) in [
        ("String", Kind::String),
        ("Numeric", Kind::Numeric),
        ("Timestamp", Kind::Timestamp),
    ] {
        if let Some(rest) = name.strip_prefix(prefix) {
            if let Some((_, cmp)) = CMPS.iter().find(|(s, _)| *s == rest) {
                return Some((kind, *cmp, by_path));
            }
        }
    }
    None
}

fn is_operator(name: &str) -> bool {
    comparison(name).is_some()
        || name == "StringMatches"
        || TESTS.iter().any(|(n, _)| *n == name)
        || matches!(name, "And" | "Or" | "Not")
}

/// Parses `Choices[index]`, a top-level rule that must carry `Next`.
pub(crate) fn parse_branch(path: &str, index: usize, v: &Value) -> Result<Branch, DefinitionError> {
    let name = format!("Choices[{index}]");
    let f = Fields::new(path, &name, v)?;
    let rule = parse_rule(&f)?;
    let next = f.req_str("Next")?.to_string();
    Ok(Branch { rule, next })
}

fn parse_rule(f: &Fields<'_>) -> Result<Rule, DefinitionError> {
    let obj = f.get_object();
    let ops: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| is_operator(k))
        .collect();
    for key in obj.keys() {
        if !is_operator(key) && !matches!(key.as_str(), "Variable" | "Next" | "Comment") {
            return Err(match key.as_str() {
                "Condition" => f.unsupported(
                    key,
                    "JSONata is not implemented; use Variable and a comparison operator",
                ),
                "Assign" => f.unsupported(key, "workflow variables are not implemented"),
                _ => f.invalid(key, "is not a Choice rule field or comparison operator"),
            });
        }
    }
    let op = match ops.as_slice() {
        [op] => *op,
        [] => {
            return Err(f.invalid(
                "(rule)",
                "needs exactly one comparison operator, or And/Or/Not",
            ))
        }
        [_, second, ..] => {
            return Err(f.invalid(second, "a rule may hold only one comparison operator"))
        }
    };
    let value = f.get(op).expect("operator key present");
    match op {
        "And" | "Or" | "Not" => {
            if f.has("Variable") {
                return Err(f.invalid("Variable", format!("is not allowed next to `{op}`")));
            }
            let nested = |i: Option<usize>, v: &Value| -> Result<Rule, DefinitionError> {
                let name = match i {
                    Some(i) => f.name(&format!("{op}[{i}]")),
                    None => f.name(op),
                };
                let inner = Fields::new(f.path(), &name, v)?;
                if inner.has("Next") {
                    return Err(inner.invalid("Next", "is only allowed on top-level Choices rules"));
                }
                parse_rule(&inner)
            };
            if op == "Not" {
                return Ok(Rule::Not(Box::new(nested(None, value)?)));
            }
            let Some(items) = value.as_array().filter(|a| !a.is_empty()) else {
                return Err(f.invalid(op, "must be a non-empty array of rules"));
            };
            let rules = items
                .iter()
                .enumerate()
                .map(|(i, v)| nested(Some(i), v))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if op == "And" {
                Rule::And(rules)
            } else {
                Rule::Or(rules)
            })
        }
        _ => {
            let variable = match f.str("Variable")? {
                Some(text) => f.path_str("Variable", text, true)?,
                None => return Err(f.invalid("Variable", "is required with a comparison operator")),
            };
            Ok(Rule::Test {
                variable,
                op: parse_op(f, op, value)?,
            })
        }
    }
}

fn parse_op(f: &Fields<'_>, op: &str, value: &Value) -> Result<Op, DefinitionError> {
    if let Some((_, test)) = TESTS.iter().find(|(n, _)| *n == op) {
        let want = value
            .as_bool()
            .ok_or_else(|| f.invalid(op, "must be true or false"))?;
        return Ok(Op::Is(*test, want));
    }
    if op == "StringMatches" {
        let text = value
            .as_str()
            .ok_or_else(|| f.invalid(op, "must be a string pattern"))?;
        return Ok(Op::Matches(pattern(text)));
    }
    let (kind, cmp, by_path) = comparison(op).expect("checked by is_operator");
    if by_path {
        let text = value
            .as_str()
            .ok_or_else(|| f.invalid(op, "must be a path string"))?;
        return Ok(Op::Compare(
            kind,
            cmp,
            Operand::Path(f.path_str(op, text, true)?),
        ));
    }
    let ok = match kind {
        Kind::String => value.is_string(),
        Kind::Numeric => value.is_number(),
        Kind::Boolean => value.is_boolean(),
        Kind::Timestamp => value.as_str().and_then(timestamp::parse).is_some(),
    };
    if !ok {
        let wanted = match kind {
            Kind::String => "a string",
            Kind::Numeric => "a number",
            Kind::Boolean => "true or false",
            Kind::Timestamp => "an RFC 3339 timestamp string such as 2024-01-31T12:00:00Z",
        };
        return Err(f.invalid(op, format!("must be {wanted}")));
    }
    Ok(Op::Compare(kind, cmp, Operand::Literal(value.clone())))
}

/// Splits a StringMatches pattern: `*` is a wildcard, `\*` a literal star and `\\` a
/// literal backslash.
pub(super) fn pattern(text: &str) -> Vec<PatternPart> {
    let mut parts = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped) => parts.push(PatternPart::Literal(escaped)),
                None => parts.push(PatternPart::Literal('\\')),
            },
            '*' => parts.push(PatternPart::Star),
            c => parts.push(PatternPart::Literal(c)),
        }
    }
    parts
}
