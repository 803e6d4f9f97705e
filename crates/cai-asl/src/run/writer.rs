//! ResultWriter: exporting a distributed Map's child-execution results to S3 the way
//! Step Functions lays them out, under `<Prefix>/<map run id>/`:
//! `SUCCEEDED_0.json` and `FAILED_0.json` (JSON arrays of child-execution records,
//! written only when non-empty) and `manifest.json` listing them. The Map's result is
//! then `{"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}` instead of the array.

use serde_json::{json, Map, Value};

use super::machine::At;
use super::{io, Halt};
use crate::context::LazyContext;
use crate::definition::ResultWriter;
use crate::error::error_names;
use crate::s3::S3Access;
use crate::TaskFailure;

/// Where the results go, resolved before any child starts so a bad configuration
/// fails the Map without running it.
pub(crate) struct Target<'a> {
    s3: &'a dyn S3Access,
    bucket: String,
    prefix: String,
}

fn failure(at: &At<'_>, cause: String) -> Halt {
    Halt::Failed(TaskFailure::new(
        error_names::RESULT_WRITER_FAILED,
        format!("ResultWriter of Map state `{}`: {cause}", at.name),
    ))
}

/// Evaluates the Parameters and checks that S3 access is configured.
pub(crate) fn target<'a>(
    at: &At<'a>,
    w: &ResultWriter,
    effective: &Value,
    ctx: &LazyContext<'_>,
) -> Result<Target<'a>, Halt> {
    let params = io::template(&w.parameters, effective, ctx, "ResultWriter.Parameters")?;
    let param = |name: &str| -> Result<String, Halt> {
        match params.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            None => Ok(String::new()),
            Some(other) => Err(failure(
                at,
                format!("Parameters.{name} must be a string, not {other}"),
            )),
        }
    };
    let bucket = param("Bucket")?;
    let prefix = param("Prefix")?;
    let Some(s3) = at.ex.shared.s3 else {
        return Err(failure(
            at,
            format!(
                "cannot write to bucket `{bucket}`: no S3 access is configured (ExecOptions::s3)"
            ),
        ));
    };
    Ok(Target { s3, bucket, prefix })
}

/// A child execution's record, as Step Functions writes it in the result files.
pub(crate) struct Record {
    pub succeeded: bool,
    pub value: Value,
}

/// Writes the result files and the manifest; returns the Map's result. Records are
/// serialized as they come, so only the files' text is held, not every record.
pub(crate) fn write(
    at: &At<'_>,
    t: &Target<'_>,
    map_run_arn: &str,
    map_run_id: &str,
    records: impl Iterator<Item = Record>,
) -> Result<Value, Halt> {
    let base = match t.prefix.trim_end_matches('/') {
        "" => map_run_id.to_string(),
        p => format!("{p}/{map_run_id}"),
    };
    let mut succeeded = JsonArray::default();
    let mut failed = JsonArray::default();
    for r in records {
        match r.succeeded {
            true => succeeded.push(&r.value),
            false => failed.push(&r.value),
        }
    }
    let mut files = Map::new();
    for (status, list) in [
        ("FAILED", failed),
        ("PENDING", JsonArray::default()),
        ("SUCCEEDED", succeeded),
    ] {
        let mut entries = Vec::new();
        if let Some(body) = list.finish() {
            let key = format!("{base}/{status}_0.json");
            let size = body.len();
            put(at, t, &key, body)?;
            entries.push(json!({"Key": key, "Size": size}));
        }
        files.insert(status.to_string(), Value::Array(entries));
    }
    let manifest_key = format!("{base}/manifest.json");
    let manifest = json!({
        "DestinationBucket": t.bucket,
        "MapRunArn": map_run_arn,
        "ResultFiles": files,
    });
    put(
        at,
        t,
        &manifest_key,
        serde_json::to_vec(&manifest).expect("JSON values serialize"),
    )?;
    Ok(json!({
        "MapRunArn": map_run_arn,
        "ResultWriterDetails": {"Bucket": t.bucket, "Key": manifest_key},
    }))
}

/// The text of a JSON array, built one element at a time.
#[derive(Default)]
struct JsonArray(Vec<u8>);

impl JsonArray {
    fn push(&mut self, v: &Value) {
        self.0.push(if self.0.is_empty() { b'[' } else { b',' });
        serde_json::to_writer(&mut self.0, v).expect("JSON values serialize");
    }

    /// The array's text, or `None` if it has no elements.
    fn finish(mut self) -> Option<Vec<u8>> {
        if self.0.is_empty() {
            return None;
        }
        self.0.push(b']');
        Some(self.0)
    }
}

fn put(at: &At<'_>, t: &Target<'_>, key: &str, body: Vec<u8>) -> Result<(), Halt> {
    t.s3.put_object(&t.bucket, key, body)
        .map_err(|e| failure(at, format!("writing s3://{}/{key}: {e}", t.bucket)))
}
