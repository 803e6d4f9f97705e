//! Input/output processing shared by the state types: InputPath/OutputPath,
//! payload templates and ResultPath.

use serde_json::{Map, Value};

use super::Halt;
use crate::context::LazyContext;
use crate::definition::{ResultPath, Select};
use crate::template::Template;

/// Applies an InputPath or OutputPath; `field` names it in the error.
pub(crate) fn select(sel: &Select, doc: &Value, field: &str) -> Result<Value, Halt> {
    match sel {
        Select::Empty => Ok(Value::Object(Map::new())),
        Select::Path(p) => p
            .get(doc)
            .cloned()
            .ok_or_else(|| not_found(field, p.text())),
    }
}

/// Like [`select`] but consumes `doc`, avoiding a copy for the default `$`.
pub(crate) fn select_owned(sel: &Select, doc: Value, field: &str) -> Result<Value, Halt> {
    match sel {
        Select::Path(p) if p.is_root() => Ok(doc),
        _ => select(sel, &doc, field),
    }
}

fn not_found(field: &str, path: &str) -> Halt {
    Halt::runtime(format!(
        "Invalid path `{path}` in {field}: it selects nothing in the state's data"
    ))
}

/// Builds a payload from a template; a path selecting nothing is States.Runtime.
pub(crate) fn template(
    t: &Template,
    input: &Value,
    ctx: &LazyContext<'_>,
    field: &str,
) -> Result<Value, Halt> {
    t.eval(input, ctx)
        .map_err(|e| Halt::runtime(format!("{field}: {e}")))
}

/// Combines the raw state input with a result according to ResultPath.
pub(crate) fn apply_result_path(rp: &ResultPath, raw: Value, result: Value) -> Result<Value, Halt> {
    match rp {
        None => Ok(raw),
        Some(p) => p.set(raw, result).map_err(Halt::runtime),
    }
}
