//! Running an ItemReader: evaluating its Parameters, calling S3 and decoding what comes
//! back. Every problem fails the Map with `States.ItemReaderFailed` naming the bucket,
//! the key (or prefix) and what went wrong.

use serde_json::{json, Map, Value};

use super::machine::At;
use super::{decode, io, Halt};
use crate::context::LazyContext;
use crate::definition::{InputFormat, ItemReader, MaxItems, ReaderSource};
use crate::error::error_names;
use crate::path::Root;
use crate::s3::S3Access;
use crate::TaskFailure;

/// The items the reader yields, at most MaxItems of them.
pub(crate) fn read(
    at: &At<'_>,
    r: &ItemReader,
    effective: &Value,
    ctx: &LazyContext<'_>,
) -> Result<Vec<Value>, Halt> {
    let fail = |cause: String| {
        Halt::Failed(TaskFailure::new(
            error_names::ITEM_READER_FAILED,
            format!("ItemReader of Map state `{}`: {cause}", at.name),
        ))
    };
    let params = io::template(&r.parameters, effective, ctx, "ItemReader.Parameters")?;
    let param = |name: &str| -> Result<String, Halt> {
        match params.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            None => Ok(String::new()),
            Some(other) => Err(fail(format!(
                "Parameters.{name} must be a string, not {other}"
            ))),
        }
    };
    let bucket = param("Bucket")?;
    let max = max_items(r, effective, ctx).map_err(fail)?;
    let Some(s3) = at.ex.shared.s3 else {
        return Err(fail(format!(
            "cannot read from bucket `{bucket}`: no S3 access is configured (ExecOptions::s3)"
        )));
    };
    match &r.source {
        ReaderSource::GetObject(format) => {
            let key = param("Key")?;
            get_object(at, s3, &bucket, &key, format, max)
                .map_err(|e| fail(format!("reading s3://{bucket}/{key}: {e}")))
        }
        ReaderSource::ListObjects => {
            let prefix = param("Prefix")?;
            list_objects(s3, &bucket, &prefix, max)
                .map_err(|e| fail(format!("listing s3://{bucket}/{prefix}: {e}")))
        }
    }
}

/// MaxItems or the value of MaxItemsPath; `None` (or 0) reads every item.
fn max_items(
    r: &ItemReader,
    effective: &Value,
    ctx: &LazyContext<'_>,
) -> Result<Option<usize>, String> {
    let n = match &r.max_items {
        None => return Ok(None),
        Some(MaxItems::Fixed(n)) => *n,
        Some(MaxItems::Path(p)) => {
            let doc = match p.root() {
                Root::Input => effective,
                Root::Context => ctx.value(),
            };
            match p.get(doc) {
                Some(v) => v.as_u64().ok_or_else(|| {
                    format!(
                        "MaxItemsPath `{}` selects {v}, which is not a non-negative integer",
                        p.text()
                    )
                })?,
                None => {
                    return Err(format!(
                        "MaxItemsPath `{}` selects nothing in the state input",
                        p.text()
                    ))
                }
            }
        }
    };
    Ok((n > 0).then(|| usize::try_from(n).unwrap_or(usize::MAX)))
}

fn get_object(
    at: &At<'_>,
    s3: &dyn S3Access,
    bucket: &str,
    key: &str,
    format: &InputFormat,
    max: Option<usize>,
) -> Result<Vec<Value>, String> {
    let limit = at.ex.shared.item_reader_max_bytes;
    let body = s3
        .get_object(bucket, key, limit)
        .map_err(|e| e.to_string())?;
    if body.len() as u64 > limit {
        return Err(format!(
            "the object is {} bytes, more than the {limit} bytes the interpreter reads",
            body.len()
        ));
    }
    let text =
        std::str::from_utf8(&body).map_err(|e| format!("the object is not UTF-8 text ({e})"))?;
    // Editors and spreadsheet exports often start UTF-8 files with a byte order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match format {
        InputFormat::Json => decode::json(text, max),
        InputFormat::Jsonl => decode::jsonl(text, max),
        InputFormat::Csv { headers, delimiter } => {
            decode::csv(text, headers.as_deref(), *delimiter, max)
        }
    }
}

/// One item per object, shaped as Step Functions passes them to children.
fn list_objects(
    s3: &dyn S3Access,
    bucket: &str,
    prefix: &str,
    max: Option<usize>,
) -> Result<Vec<Value>, String> {
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = s3
            .list_objects_v2(bucket, prefix, token.as_deref())
            .map_err(|e| e.to_string())?;
        for o in page.objects {
            if max.is_some_and(|m| items.len() >= m) {
                return Ok(items);
            }
            let mut item = Map::with_capacity(5);
            item.insert("Etag".into(), json!(o.etag));
            item.insert("Key".into(), json!(o.key));
            item.insert("LastModified".into(), json!(o.last_modified));
            item.insert("Size".into(), json!(o.size));
            item.insert("StorageClass".into(), json!(o.storage_class));
            items.push(Value::Object(item));
        }
        match page.next_continuation_token {
            Some(next) if max.is_none_or(|m| items.len() < m) => {
                if token.as_deref() == Some(next.as_str()) {
                    return Err(format!("S3 returned the continuation token `{next}` twice"));
                }
                token = Some(next);
            }
            _ => return Ok(items),
        }
    }
}
