//! Reference paths (`$.a.b`, `$['a b']`, `$.a[0]`, `$$.Execution.Id`): the only
//! JSONPath forms the interpreter accepts, because they select at most one value.

use serde_json::{Map, Value};

/// Which document a path reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Root {
    /// `$`: the state's input (or whatever document the field applies to).
    Input,
    /// `$$`: the context object.
    Context,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Field(String),
    Index(usize),
}

/// A parsed reference path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Path {
    root: Root,
    segments: Vec<Segment>,
    text: String,
}

impl Path {
    /// Parses a reference path, refusing JSONPath features that may select several
    /// values (wildcards, filters, slices, unions, recursive descent).
    pub(crate) fn parse(text: &str) -> Result<Path, String> {
        let (root, rest) = if let Some(rest) = text.strip_prefix("$$") {
            (Root::Context, rest)
        } else if let Some(rest) = text.strip_prefix('$') {
            (Root::Input, rest)
        } else {
            return Err(format!("`{text}` is not a path: it must start with `$`"));
        };
        let unsupported = |what: &str| {
            format!("`{text}` uses {what}, which the local interpreter does not support; use a reference path like `$.a.b` or `$.a[0]`")
        };
        let chars: Vec<char> = rest.chars().collect();
        let mut segments = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '.' => {
                    i += 1;
                    if chars.get(i) == Some(&'.') {
                        return Err(unsupported("recursive descent `..`"));
                    }
                    let start = i;
                    while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                        i += 1;
                    }
                    let name: String = chars[start..i].iter().collect();
                    if name.is_empty() {
                        return Err(format!("`{text}` has an empty field name"));
                    }
                    if name == "*" {
                        return Err(unsupported("the wildcard `*`"));
                    }
                    if name.contains(['*', '?', '@', '(', ')', ',', ':', '\'', '"', ']']) {
                        return Err(unsupported("JSONPath expression syntax"));
                    }
                    segments.push(Segment::Field(name));
                }
                '[' => {
                    i += 1;
                    match chars.get(i) {
                        Some(&quote @ ('\'' | '"')) => {
                            i += 1;
                            let mut name = String::new();
                            loop {
                                match chars.get(i) {
                                    None => {
                                        return Err(format!(
                                            "`{text}` has an unterminated quoted name"
                                        ))
                                    }
                                    Some('\\') => {
                                        let escaped = chars.get(i + 1).ok_or_else(|| {
                                            format!("`{text}` has an unterminated quoted name")
                                        })?;
                                        name.push(*escaped);
                                        i += 2;
                                    }
                                    Some(&c) if c == quote => {
                                        i += 1;
                                        break;
                                    }
                                    Some(&c) => {
                                        name.push(c);
                                        i += 1;
                                    }
                                }
                            }
                            if chars.get(i) != Some(&']') {
                                return Err(unsupported("a bracket expression with several names"));
                            }
                            i += 1;
                            segments.push(Segment::Field(name));
                        }
                        _ => {
                            let start = i;
                            while i < chars.len() && chars[i] != ']' {
                                i += 1;
                            }
                            if i == chars.len() {
                                return Err(format!("`{text}` has an unterminated `[`"));
                            }
                            let inner: String = chars[start..i].iter().collect();
                            i += 1;
                            let inner = inner.trim();
                            if !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit()) {
                                let index = inner.parse().map_err(|_| {
                                    format!("`{text}` has an index that is too large")
                                })?;
                                segments.push(Segment::Index(index));
                            } else if inner == "*" {
                                return Err(unsupported("the wildcard `[*]`"));
                            } else if inner.starts_with('?') {
                                return Err(unsupported("a filter expression"));
                            } else if inner.contains(':') {
                                return Err(unsupported("an array slice"));
                            } else if inner.contains(',') {
                                return Err(unsupported("a union"));
                            } else {
                                return Err(unsupported(&format!("the subscript `[{inner}]`")));
                            }
                        }
                    }
                }
                c => return Err(format!("`{text}` has an unexpected `{c}`")),
            }
        }
        Ok(Path {
            root,
            segments,
            text: text.to_string(),
        })
    }

    /// The document this path reads.
    pub(crate) fn root(&self) -> Root {
        self.root
    }

    /// The path as written, for error messages.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// True for `$` (or `$$`) alone.
    pub(crate) fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// The value the path selects in `doc`, or `None` when it selects nothing.
    pub(crate) fn get<'v>(&self, doc: &'v Value) -> Option<&'v Value> {
        let mut cur = doc;
        for seg in &self.segments {
            cur = match seg {
                Segment::Field(name) => cur.as_object()?.get(name)?,
                Segment::Index(i) => cur.as_array()?.get(*i)?,
            };
        }
        Some(cur)
    }

    /// Places `value` at this path inside `doc` (ResultPath semantics): missing fields
    /// along the way become objects; a non-object (or an array without that index)
    /// where a field must go is an error.
    pub(crate) fn set(&self, mut doc: Value, value: Value) -> Result<Value, String> {
        if self.segments.is_empty() {
            return Ok(value);
        }
        self.set_in(&mut doc, 0, value)?;
        Ok(doc)
    }

    fn set_in(&self, target: &mut Value, depth: usize, value: Value) -> Result<(), String> {
        let last = depth + 1 == self.segments.len();
        let slot = match &self.segments[depth] {
            Segment::Field(name) => {
                let Some(obj) = target.as_object_mut() else {
                    return Err(self.set_error(depth, "an object"));
                };
                if last {
                    obj.insert(name.clone(), value);
                    return Ok(());
                }
                obj.entry(name.clone())
                    .or_insert_with(|| Value::Object(Map::new()))
            }
            Segment::Index(i) => {
                let Some(slot) = target.as_array_mut().and_then(|a| a.get_mut(*i)) else {
                    return Err(self.set_error(depth, &format!("an array with an element {i}")));
                };
                if last {
                    *slot = value;
                    return Ok(());
                }
                slot
            }
        };
        self.set_in(slot, depth + 1, value)
    }

    fn set_error(&self, depth: usize, wanted: &str) -> String {
        let prefix = Path {
            root: self.root,
            segments: self.segments[..depth].to_vec(),
            text: String::new(),
        };
        format!(
            "Unable to apply ResultPath `{}` to the input: `{}` is not {wanted}",
            self.text,
            prefix.render()
        )
    }

    fn render(&self) -> String {
        let mut s = String::from(match self.root {
            Root::Input => "$",
            Root::Context => "$$",
        });
        for seg in &self.segments {
            match seg {
                Segment::Field(n) => {
                    s.push('.');
                    s.push_str(n);
                }
                Segment::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_reads_reference_paths() {
        let doc = json!({"a": {"b c": [1, {"d": 2}]}});
        assert_eq!(Path::parse("$").unwrap().get(&doc), Some(&doc));
        let p = Path::parse("$.a['b c'][1].d").unwrap();
        assert_eq!(p.get(&doc), Some(&json!(2)));
        assert_eq!(Path::parse("$.a.x").unwrap().get(&doc), None);
        assert_eq!(Path::parse("$$.State").unwrap().root(), Root::Context);
    }

    #[test]
    fn refuses_multi_value_jsonpath() {
        for bad in [
            "$..a",
            "$.a[*]",
            "$.a[?(@.x)]",
            "$.a[0:2]",
            "$.a[0,1]",
            "$.*",
            "a",
            "$a",
        ] {
            assert!(Path::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn set_creates_objects_and_rejects_non_objects() {
        let p = Path::parse("$.a.b").unwrap();
        assert_eq!(p.set(json!({}), json!(1)).unwrap(), json!({"a": {"b": 1}}));
        let err = p.set(json!({"a": 3}), json!(1)).unwrap_err();
        assert!(err.contains("`$.a` is not an object"), "{err}");
        assert!(p.set(json!("s"), json!(1)).is_err());
    }
}
