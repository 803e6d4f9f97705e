//! Choice rules: parsing the `Choices` array and evaluating a rule against a state's
//! effective input.

mod parse;

use std::cmp::Ordering;

use serde_json::{Number, Value};

use crate::context::LazyContext;
use crate::path::{Path, Root};
use crate::timestamp;

pub(crate) use parse::parse_branch;

/// A top-level rule and the state it leads to.
#[derive(Debug, Clone)]
pub(crate) struct Branch {
    pub rule: Rule,
    pub next: String,
}

/// A boolean expression over the input.
#[derive(Debug, Clone)]
pub(crate) enum Rule {
    And(Vec<Rule>),
    Or(Vec<Rule>),
    Not(Box<Rule>),
    Test { variable: Path, op: Op },
}

/// The five comparison flavours shared by strings, numbers and timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Lt,
    Gt,
    Le,
    Ge,
}

impl Cmp {
    fn holds(self, o: Ordering) -> bool {
        match self {
            Cmp::Eq => o == Ordering::Equal,
            Cmp::Lt => o == Ordering::Less,
            Cmp::Gt => o == Ordering::Greater,
            Cmp::Le => o != Ordering::Greater,
            Cmp::Ge => o != Ordering::Less,
        }
    }
}

/// The right-hand side: a literal or, for `*Path` operators, another path.
#[derive(Debug, Clone)]
pub(crate) enum Operand {
    Literal(Value),
    Path(Path),
}

/// Which kind of values a comparison applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    Numeric,
    Timestamp,
    Boolean,
}

/// Type tests (`IsNull`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeTest {
    Null,
    Present,
    Numeric,
    String,
    Boolean,
    Timestamp,
}

/// One data-test operator.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Compare(Kind, Cmp, Operand),
    Matches(Vec<PatternPart>),
    Is(TypeTest, bool),
}

/// A piece of a StringMatches pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatternPart {
    Literal(char),
    Star,
}

fn lookup<'v>(p: &Path, input: &'v Value, ctx: &'v LazyContext<'_>) -> Option<&'v Value> {
    match p.root() {
        Root::Input => p.get(input),
        Root::Context => p.get(ctx.value()),
    }
}

fn missing(p: &Path) -> String {
    format!(
        "Invalid path `{}`: the Choice state's condition path references an undefined value",
        p.text()
    )
}

impl Rule {
    /// Evaluates the rule; a path that selects nothing (outside `IsPresent`) is an
    /// error, as in Step Functions (States.Runtime).
    pub(crate) fn eval(&self, input: &Value, ctx: &LazyContext<'_>) -> Result<bool, String> {
        match self {
            Rule::And(rules) => {
                for r in rules {
                    if !r.eval(input, ctx)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Rule::Or(rules) => {
                for r in rules {
                    if r.eval(input, ctx)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Rule::Not(r) => Ok(!r.eval(input, ctx)?),
            Rule::Test { variable, op } => {
                let value = lookup(variable, input, ctx);
                if let Op::Is(TypeTest::Present, want) = op {
                    return Ok(value.is_some() == *want);
                }
                let value = value.ok_or_else(|| missing(variable))?;
                match op {
                    Op::Is(test, want) => Ok(type_test(*test, value) == *want),
                    Op::Matches(pattern) => Ok(value
                        .as_str()
                        .is_some_and(|s| glob(pattern, &s.chars().collect::<Vec<_>>()))),
                    Op::Compare(kind, cmp, operand) => {
                        let rhs = match operand {
                            Operand::Literal(v) => v,
                            Operand::Path(p) => lookup(p, input, ctx).ok_or_else(|| missing(p))?,
                        };
                        Ok(compare(*kind, value, rhs).is_some_and(|o| cmp.holds(o)))
                    }
                }
            }
        }
    }
}

fn type_test(test: TypeTest, v: &Value) -> bool {
    match test {
        TypeTest::Null => v.is_null(),
        TypeTest::Present => true,
        TypeTest::Numeric => v.is_number(),
        TypeTest::String => v.is_string(),
        TypeTest::Boolean => v.is_boolean(),
        TypeTest::Timestamp => v.as_str().and_then(timestamp::parse).is_some(),
    }
}

/// Orders two values of `kind`; `None` when either is of another type (so every
/// comparison is false, as in Step Functions).
fn compare(kind: Kind, a: &Value, b: &Value) -> Option<Ordering> {
    match kind {
        Kind::String => Some(a.as_str()?.cmp(b.as_str()?)),
        Kind::Boolean => Some(if a.as_bool()? == b.as_bool()? {
            Ordering::Equal
        } else {
            Ordering::Less
        }),
        Kind::Timestamp => {
            Some(timestamp::parse(a.as_str()?)?.cmp(&timestamp::parse(b.as_str()?)?))
        }
        Kind::Numeric => compare_numbers(a.as_number()?, b.as_number()?),
    }
}

fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

fn glob(pattern: &[PatternPart], s: &[char]) -> bool {
    // Iterative wildcard matching with backtracking to the last star.
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        match pattern.get(p) {
            Some(PatternPart::Literal(c)) if *c == s[i] => {
                p += 1;
                i += 1;
            }
            Some(PatternPart::Star) => {
                star = Some((p, i));
                p += 1;
            }
            _ => match star {
                Some((sp, si)) => {
                    p = sp + 1;
                    i = si + 1;
                    star = Some((sp, si + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|part| *part == PatternPart::Star)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str) -> Vec<PatternPart> {
        parse::pattern(s)
    }

    #[test]
    fn glob_matches_stars_and_escapes() {
        let m = |p: &str, s: &str| glob(&pat(p), &s.chars().collect::<Vec<_>>());
        assert!(m("log-*.txt", "log-2024.txt"));
        assert!(m("*", ""));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b", "aXc"));
        assert!(m(r"a\*b", "a*b"));
        assert!(!m(r"a\*b", "aXb"));
        assert!(m(r"a\\b", r"a\b"));
    }
}
