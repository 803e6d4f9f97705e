//! A Map's items: from ItemsPath (the state input) or its ItemReader (S3), then through
//! ItemSelector, then (distributed Maps) into batches.

use serde_json::Value;

use super::batch::{self, Batch};
use super::machine::At;
use super::{io, reader, Halt};
use crate::context::{LazyContext, StateCtx};
use crate::definition::MapState;
use crate::path::Root;

/// The child (or iteration) inputs with the number of items each carries.
pub(crate) fn inputs(
    at: &At<'_>,
    m: &MapState,
    effective: &Value,
    ctx: &LazyContext<'_>,
    retry_count: u32,
) -> Result<Vec<Batch>, Halt> {
    let items = match &m.item_reader {
        Some(r) => reader::read(at, r, effective, ctx)?,
        None => from_items_path(m, effective, ctx)?,
    };
    let selected = match &m.item_selector {
        Some(selector) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let item_ctx = LazyContext::new(StateCtx {
                    item: Some((i, item)),
                    ..at.ctx(retry_count)
                });
                io::template(selector, effective, &item_ctx, "ItemSelector")
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => items,
    };
    match &m.item_batcher {
        Some(b) => batch::group(at, b, effective, ctx, selected),
        None => Ok(selected.into_iter().map(|v| (v, 1)).collect()),
    }
}

fn from_items_path(
    m: &MapState,
    effective: &Value,
    ctx: &LazyContext<'_>,
) -> Result<Vec<Value>, Halt> {
    let items = match m.items_path.root() {
        Root::Input => m.items_path.get(effective),
        Root::Context => m.items_path.get(ctx.value()),
    };
    let Some(items) = items else {
        return Err(Halt::runtime(format!(
            "Invalid path `{}` in ItemsPath: it selects nothing",
            m.items_path.text()
        )));
    };
    match items {
        Value::Array(items) => Ok(items.clone()),
        _ => Err(Halt::runtime(format!(
            "ItemsPath `{}` must select an array",
            m.items_path.text()
        ))),
    }
}
