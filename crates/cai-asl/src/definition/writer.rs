//! Parsing a distributed Map's ResultWriter: where the child executions' results are
//! exported instead of being returned in the state output.

use serde_json::Value;

use super::fields::Fields;
use crate::template::Template;
use crate::DefinitionError;

#[derive(Debug, Clone)]
pub(crate) struct ResultWriter {
    /// Evaluates to `{"Bucket", "Prefix"}`.
    pub parameters: Template,
}

pub(super) fn result_writer(f: &Fields<'_>) -> Result<ResultWriter, DefinitionError> {
    let wf = Fields::new(
        f.path(),
        "ResultWriter",
        f.get("ResultWriter").expect("present"),
    )?;
    if wf.has("WriterConfig") {
        return Err(wf.unsupported(
            "WriterConfig",
            "output types and transformations are not implemented; results are written as AWS does without WriterConfig",
        ));
    }
    wf.check_allowed("a ResultWriter", &["Resource", "Parameters", "Comment"])?;
    let resource = wf.req_str("Resource")?;
    if resource != "arn:aws:states:::s3:putObject" {
        return Err(wf.invalid(
            "Resource",
            format!(
                "`{resource}` is not a ResultWriter resource; use arn:aws:states:::s3:putObject"
            ),
        ));
    }
    let Some(Value::Object(obj)) = wf.get("Parameters") else {
        return Err(wf.invalid("Parameters", "is required and must be a JSON object"));
    };
    for key in obj.keys() {
        let name = key.strip_suffix(".$").unwrap_or(key);
        if !["Bucket", "Prefix"].contains(&name) {
            return Err(wf.invalid(
                &format!("Parameters.{key}"),
                "is not a ResultWriter parameter (Bucket, Prefix)",
            ));
        }
    }
    if !obj.contains_key("Bucket") && !obj.contains_key("Bucket.$") {
        return Err(wf.invalid("Parameters.Bucket", "is required"));
    }
    Ok(ResultWriter {
        parameters: wf.template("Parameters", true)?.expect("present"),
    })
}
