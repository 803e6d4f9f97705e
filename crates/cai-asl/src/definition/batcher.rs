//! Parsing a distributed Map's ItemBatcher: how items are grouped into child
//! executions.

use super::fields::Fields;
use crate::path::Path;
use crate::template::Template;
use crate::DefinitionError;

/// The payload limit, which also caps MaxInputBytesPerBatch.
pub(crate) const MAX_BATCH_BYTES: u64 = 256 * 1024;

/// A batch bound: a number in the definition or a path into the Map's input.
#[derive(Debug, Clone)]
pub(crate) enum Bound {
    Fixed(u64),
    Path(Path),
}

#[derive(Debug, Clone)]
pub(crate) struct ItemBatcher {
    pub max_items: Option<Bound>,
    pub max_bytes: Option<Bound>,
    /// `BatchInput`, evaluated once per Map run against the Map's effective input.
    pub batch_input: Option<Template>,
}

pub(super) fn item_batcher(f: &Fields<'_>) -> Result<ItemBatcher, DefinitionError> {
    let bf = Fields::new(
        f.path(),
        "ItemBatcher",
        f.get("ItemBatcher").expect("present"),
    )?;
    bf.check_allowed(
        "an ItemBatcher",
        &[
            "MaxItemsPerBatch",
            "MaxItemsPerBatchPath",
            "MaxInputBytesPerBatch",
            "MaxInputBytesPerBatchPath",
            "BatchInput",
            "Comment",
        ],
    )?;
    let max_items = bound(&bf, "MaxItemsPerBatch", u64::MAX)?;
    let max_bytes = bound(&bf, "MaxInputBytesPerBatch", MAX_BATCH_BYTES)?;
    let batch_input = bf.template("BatchInput", true)?;
    if max_items.is_none() && max_bytes.is_none() && batch_input.is_none() {
        return Err(bf.invalid(
            "MaxItemsPerBatch",
            "an ItemBatcher needs MaxItemsPerBatch, MaxInputBytesPerBatch (or their *Path forms) or BatchInput",
        ));
    }
    Ok(ItemBatcher {
        max_items,
        max_bytes,
        batch_input,
    })
}

/// `field` as a positive integer up to `max`, or `field`Path as a reference path.
fn bound(bf: &Fields<'_>, field: &str, max: u64) -> Result<Option<Bound>, DefinitionError> {
    let path_field = format!("{field}Path");
    match (bf.has(field), bf.has(&path_field)) {
        (true, true) => Err(bf.invalid(&path_field, format!("cannot be combined with {field}"))),
        (true, false) => match bf.uint(field, 1)? {
            Some(n) if n <= max => Ok(Some(Bound::Fixed(n))),
            _ => Err(bf.invalid(field, format!("must be an integer from 1 to {max}"))),
        },
        (false, true) => Ok(bf.opt_path(&path_field, true)?.map(Bound::Path)),
        (false, false) => Ok(None),
    }
}
