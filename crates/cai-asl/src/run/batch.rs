//! ItemBatcher: grouping a distributed Map's items (after ItemSelector) into child
//! inputs `{"BatchInput": …, "Items": […]}`, each within MaxItemsPerBatch items and
//! MaxInputBytesPerBatch bytes of JSON.

use serde_json::{Map, Value};

use super::limit::json_len;
use super::machine::At;
use super::{io, Halt};
use crate::context::LazyContext;
use crate::definition::{Bound, ItemBatcher};
use crate::path::Root;

/// One child execution's input and the number of items it carries.
pub(crate) type Batch = (Value, usize);

/// The batches, in item order. Without MaxInputBytesPerBatch a batch is bounded by the
/// payload quota.
pub(crate) fn group(
    at: &At<'_>,
    b: &ItemBatcher,
    effective: &Value,
    ctx: &LazyContext<'_>,
    items: Vec<Value>,
) -> Result<Vec<Batch>, Halt> {
    let payload_limit = at.ex.shared.max_payload_bytes as u64;
    let max_items = bound(&b.max_items, "MaxItemsPerBatch", effective, ctx, u64::MAX)?;
    let max_bytes = bound(
        &b.max_bytes,
        "MaxInputBytesPerBatch",
        effective,
        ctx,
        256 * 1024,
    )?
    .unwrap_or(payload_limit);
    let max_items = usize::try_from(max_items.unwrap_or(u64::MAX)).unwrap_or(usize::MAX);
    let max_bytes = usize::try_from(max_bytes).unwrap_or(usize::MAX);
    let batch_input = match &b.batch_input {
        Some(t) => Some(io::template(t, effective, ctx, "ItemBatcher.BatchInput")?),
        None => None,
    };
    // `{"BatchInput":…,"Items":[]}`: what every batch costs before its items.
    let overhead = json_len(&envelope(&batch_input, Vec::new()));
    let mut batches = Vec::new();
    let mut current: Vec<Value> = Vec::new();
    let mut size = overhead;
    for (i, item) in items.into_iter().enumerate() {
        let item_len = json_len(&item);
        if overhead + item_len > max_bytes {
            return Err(Halt::runtime(format!(
                "ItemBatcher of Map state `{}`: item {i} is {item_len} bytes, so even a batch of it alone is more than {max_bytes} bytes (MaxInputBytesPerBatch)",
                at.name
            )));
        }
        let comma = usize::from(!current.is_empty());
        if !current.is_empty()
            && (current.len() >= max_items || size + comma + item_len > max_bytes)
        {
            let n = current.len();
            batches.push((envelope(&batch_input, std::mem::take(&mut current)), n));
            size = overhead;
        }
        size += usize::from(!current.is_empty()) + item_len;
        current.push(item);
    }
    if !current.is_empty() {
        let n = current.len();
        batches.push((envelope(&batch_input, current), n));
    }
    Ok(batches)
}

fn envelope(batch_input: &Option<Value>, items: Vec<Value>) -> Value {
    let mut obj = Map::with_capacity(2);
    if let Some(bi) = batch_input {
        obj.insert("BatchInput".into(), bi.clone());
    }
    obj.insert("Items".into(), Value::Array(items));
    Value::Object(obj)
}

/// A bound's value: fixed, or read from the Map's input (a positive integer up to
/// `max`).
fn bound(
    b: &Option<Bound>,
    field: &str,
    effective: &Value,
    ctx: &LazyContext<'_>,
    max: u64,
) -> Result<Option<u64>, Halt> {
    let path = match b {
        None => return Ok(None),
        Some(Bound::Fixed(n)) => return Ok(Some(*n)),
        Some(Bound::Path(p)) => p,
    };
    let doc = match path.root() {
        Root::Input => effective,
        Root::Context => ctx.value(),
    };
    match path.get(doc).map(|v| (v, v.as_u64())) {
        Some((_, Some(n))) if (1..=max).contains(&n) => Ok(Some(n)),
        Some((v, _)) => Err(Halt::runtime(format!(
            "{field}Path `{}` selects {v}, which is not an integer from 1 to {max}",
            path.text()
        ))),
        None => Err(Halt::runtime(format!(
            "Invalid path `{}` in {field}Path: it selects nothing",
            path.text()
        ))),
    }
}
