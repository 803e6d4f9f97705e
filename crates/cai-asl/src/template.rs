//! Payload templates (Parameters, ItemSelector, ResultSelector): JSON whose `name.$`
//! fields are replaced by the value a path selects.

use serde_json::{Map, Value};

use crate::context::LazyContext;
use crate::path::{Path, Root};

/// A compiled payload template.
#[derive(Debug, Clone)]
pub(crate) enum Template {
    /// A subtree without any `.$` field, copied as is.
    Literal(Value),
    Object(Vec<(String, Template)>),
    Array(Vec<Template>),
    /// The value of a `name.$` field.
    Path(Path),
}

/// Why a template was refused: the sub-field (e.g. `a.b.$`), the message, and whether
/// it is a feature the interpreter lacks (as opposed to invalid ASL).
pub(crate) struct TemplateError {
    pub field: String,
    pub message: String,
    pub unsupported: bool,
}

impl Template {
    /// Compiles `v`; `field` is the template's field name, used in errors.
    pub(crate) fn compile(v: &Value, field: &str) -> Result<Template, TemplateError> {
        if !has_path_fields(v) {
            return Ok(Template::Literal(v.clone()));
        }
        match v {
            Value::Object(obj) => {
                let mut out: Vec<(String, Template)> = Vec::with_capacity(obj.len());
                for (key, value) in obj {
                    let sub = format!("{field}.{key}");
                    let (name, node) = match key.strip_suffix(".$") {
                        Some(name) => (name.to_string(), compile_path(value, &sub)?),
                        None => (key.clone(), Template::compile(value, &sub)?),
                    };
                    if out.iter().any(|(k, _)| *k == name) {
                        return Err(TemplateError {
                            field: sub,
                            message: format!("produces the field `{name}` twice"),
                            unsupported: false,
                        });
                    }
                    out.push((name, node));
                }
                Ok(Template::Object(out))
            }
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| Template::compile(item, &format!("{field}[{i}]")))
                .collect::<Result<_, _>>()
                .map(Template::Array),
            _ => Ok(Template::Literal(v.clone())),
        }
    }

    /// Builds the payload; a path selecting nothing is an error (States.Runtime).
    pub(crate) fn eval(&self, input: &Value, ctx: &LazyContext<'_>) -> Result<Value, String> {
        Ok(match self {
            Template::Literal(v) => v.clone(),
            Template::Object(fields) => {
                let mut obj = Map::new();
                for (name, node) in fields {
                    let value = node.eval(input, ctx).map_err(|e| match node {
                        Template::Path(p) => format!(
                            "The JSONPath `{}` specified for the field `{name}.$` could not be found in the {}",
                            p.text(),
                            e
                        ),
                        _ => e,
                    })?;
                    obj.insert(name.clone(), value);
                }
                Value::Object(obj)
            }
            Template::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|t| t.eval(input, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            Template::Path(p) => {
                let (doc, what) = match p.root() {
                    Root::Input => (input, "input"),
                    Root::Context => (ctx.value(), "context object"),
                };
                p.get(doc).cloned().ok_or_else(|| what.to_string())?
            }
        })
    }
}

fn has_path_fields(v: &Value) -> bool {
    match v {
        Value::Object(obj) => obj
            .iter()
            .any(|(k, v)| k.ends_with(".$") || has_path_fields(v)),
        Value::Array(items) => items.iter().any(has_path_fields),
        _ => false,
    }
}

fn compile_path(value: &Value, field: &str) -> Result<Template, TemplateError> {
    let err = |message: String, unsupported| TemplateError {
        field: field.to_string(),
        message,
        unsupported,
    };
    let Some(text) = value.as_str() else {
        return Err(err(
            "the value of a field ending in `.$` must be a path string".into(),
            false,
        ));
    };
    if text.starts_with("States.") {
        return Err(err(
            format!("`{text}` is an intrinsic function; use a plain path or compute the value in a Task"),
            true,
        ));
    }
    Path::parse(text).map(Template::Path).map_err(|m| {
        let unsupported = m.contains("does not support");
        err(m, unsupported)
    })
}
