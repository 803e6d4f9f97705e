//! Finding named tensors in a state dict or a pickled module tree, and reading plain
//! attributes of pickled modules by dotted path.

use crate::value::{Object, TensorRef, Value};

/// Keys that hold the real weights in training checkpoints.
const CHECKPOINT_KEYS: [&str; 3] = ["state_dict", "model_state_dict", "model"];

/// Every tensor with its dotted name, in `state_dict()` order.
///
/// Handles a state dict (dict/`OrderedDict` name -> tensor, nested dicts joined with
/// dots), a pickled `nn.Module` tree (`_parameters`, `_buffers`, then `_modules`,
/// skipping `None`; `nn.DataParallel` yields the usual `module.` prefix), and a
/// checkpoint dict with a `state_dict`/`model_state_dict`/`model` entry.
pub fn named_tensors(root: &Value) -> Vec<(String, TensorRef)> {
    let mut out = Vec::new();
    if let Value::Dict(_) = root {
        if let Some(inner) = CHECKPOINT_KEYS.iter().find_map(|k| root.get(k)) {
            if matches!(inner, Value::Dict(_) | Value::Object(_)) {
                collect(inner, "", &mut out, 0);
                return out;
            }
        }
    }
    collect(root, "", &mut out, 0);
    out
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

fn key_name(k: &Value) -> Option<String> {
    match k {
        Value::Str(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn collect(v: &Value, prefix: &str, out: &mut Vec<(String, TensorRef)>, depth: usize) {
    if depth > 64 {
        return;
    }
    match v {
        Value::Tensor(t) => out.push((prefix.to_owned(), t.clone())),
        Value::Dict(pairs) => {
            for (k, v) in pairs {
                if let Some(name) = key_name(k) {
                    collect(v, &join(prefix, &name), out, depth + 1);
                }
            }
        }
        Value::Tuple(items) | Value::List(items) => {
            for (i, v) in items.iter().enumerate() {
                collect(v, &join(prefix, &i.to_string()), out, depth + 1);
            }
        }
        Value::Object(o) if is_module(o) => {
            for group in ["_parameters", "_buffers"] {
                if let Some(Value::Dict(pairs)) = o.attr(group) {
                    for (k, v) in pairs {
                        if let (Some(name), Value::Tensor(t)) = (key_name(k), v) {
                            out.push((join(prefix, &name), t.clone()));
                        }
                    }
                }
            }
            if let Some(Value::Dict(pairs)) = o.attr("_modules") {
                for (k, v) in pairs {
                    if let Some(name) = key_name(k) {
                        collect(v, &join(prefix, &name), out, depth + 1);
                    }
                }
            }
        }
        _ => {}
    }
}

/// True for an inert object whose state looks like an `nn.Module`.
fn is_module(o: &Object) -> bool {
    o.attr("_parameters").is_some() || o.attr("_modules").is_some()
}

/// Follows a dotted path (`module.blocks.0.attn.num_heads`) through submodules,
/// attributes, dict keys and sequence indices; used to read hyper-parameters such as
/// `num_heads` from a pickled model.
pub fn lookup<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = root;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        cur = step(cur, part)?;
    }
    Some(cur)
}

fn step<'a>(v: &'a Value, part: &str) -> Option<&'a Value> {
    match v {
        Value::Object(o) => ["_modules", "_parameters", "_buffers"]
            .iter()
            .find_map(|g| o.attr(g).and_then(|d| d.get(part)))
            .or_else(|| o.attr(part)),
        Value::Dict(_) => v.get(part),
        Value::Tuple(items) | Value::List(items) => items.get(part.parse::<usize>().ok()?),
        _ => None,
    }
}
