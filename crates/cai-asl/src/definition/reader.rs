//! Parsing a distributed Map's ItemReader: where its items come from in S3 and how
//! they are decoded.

use serde_json::Value;

use super::fields::Fields;
use crate::path::Path;
use crate::template::Template;
use crate::DefinitionError;

/// Step Functions' ceiling on ReaderConfig.MaxItems.
const MAX_ITEMS_LIMIT: u64 = 100_000_000;

/// The S3 API an ItemReader calls, with how a getObject body is decoded.
#[derive(Debug, Clone)]
pub(crate) enum ReaderSource {
    /// `arn:aws:states:::s3:getObject`: one object holding the items.
    GetObject(InputFormat),
    /// `arn:aws:states:::s3:listObjectsV2`: one item per object.
    ListObjects,
}

#[derive(Debug, Clone)]
pub(crate) enum InputFormat {
    /// A JSON array; each element is an item.
    Json,
    /// One JSON value per non-empty line.
    Jsonl,
    /// Delimited text; each row is an object of header → string.
    Csv {
        /// `None`: the first row holds the headers.
        headers: Option<Vec<String>>,
        delimiter: u8,
    },
}

/// MaxItems / MaxItemsPath.
#[derive(Debug, Clone)]
pub(crate) enum MaxItems {
    Fixed(u64),
    Path(Path),
}

#[derive(Debug, Clone)]
pub(crate) struct ItemReader {
    pub source: ReaderSource,
    /// Evaluates to `{"Bucket", "Key"}` or `{"Bucket", "Prefix"}`.
    pub parameters: Template,
    pub max_items: Option<MaxItems>,
}

pub(super) fn item_reader(f: &Fields<'_>) -> Result<ItemReader, DefinitionError> {
    let rf = Fields::new(
        f.path(),
        "ItemReader",
        f.get("ItemReader").expect("present"),
    )?;
    rf.check_allowed(
        "an ItemReader",
        &["Resource", "Parameters", "ReaderConfig", "Comment"],
    )?;
    let resource = rf.req_str("Resource")?;
    let get = match resource {
        "arn:aws:states:::s3:getObject" => true,
        "arn:aws:states:::s3:listObjectsV2" => false,
        _ => {
            return Err(rf.unsupported(
                "Resource",
                format!("`{resource}` is not implemented; use arn:aws:states:::s3:getObject or arn:aws:states:::s3:listObjectsV2"),
            ))
        }
    };
    let parameters = parameters(&rf, get)?;
    let config = match rf.get("ReaderConfig") {
        Some(v) => Some(Fields::new(rf.path(), &rf.name("ReaderConfig"), v)?),
        None => None,
    };
    if let Some(cf) = &config {
        for (field, why) in [
            (
                "ItemsPointer",
                "selecting the items inside a JSON object is not implemented; store a JSON array",
            ),
            ("Transformation", "LOAD_AND_FLATTEN is not implemented"),
            ("ManifestType", "manifest input is not implemented"),
        ] {
            if cf.has(field) {
                return Err(cf.unsupported(field, why));
            }
        }
        cf.check_allowed(
            "a ReaderConfig",
            &[
                "InputType",
                "CSVHeaderLocation",
                "CSVHeaders",
                "CSVDelimiter",
                "MaxItems",
                "MaxItemsPath",
            ],
        )?;
    }
    let source = if get {
        let Some(cf) = &config else {
            return Err(rf.invalid(
                "ReaderConfig",
                "is required with s3:getObject (it names the InputType)",
            ));
        };
        ReaderSource::GetObject(input_format(cf)?)
    } else {
        if let Some(cf) = &config {
            for field in [
                "InputType",
                "CSVHeaderLocation",
                "CSVHeaders",
                "CSVDelimiter",
            ] {
                if cf.has(field) {
                    return Err(cf.invalid(field, "only applies to s3:getObject"));
                }
            }
        }
        ReaderSource::ListObjects
    };
    let max_items = match &config {
        Some(cf) => max_items(cf)?,
        None => None,
    };
    Ok(ItemReader {
        source,
        parameters,
        max_items,
    })
}

/// Parameters: an object naming the bucket and the key (getObject) or the prefix
/// (listObjectsV2); `.$` fields read the Map's input like any template.
fn parameters(rf: &Fields<'_>, get: bool) -> Result<Template, DefinitionError> {
    let Some(Value::Object(obj)) = rf.get("Parameters") else {
        return Err(rf.invalid("Parameters", "is required and must be a JSON object"));
    };
    let allowed: &[&str] = if get {
        &["Bucket", "Key"]
    } else {
        &["Bucket", "Prefix"]
    };
    for key in obj.keys() {
        let name = key.strip_suffix(".$").unwrap_or(key);
        if allowed.contains(&name) {
            continue;
        }
        let field = format!("Parameters.{key}");
        return Err(match name {
            "VersionId" => rf.unsupported(&field, "object versions are not implemented"),
            _ if get => rf.invalid(&field, "is not a parameter of s3:getObject (Bucket, Key)"),
            _ => rf.unsupported(
                &field,
                "only Bucket and Prefix are implemented for s3:listObjectsV2",
            ),
        });
    }
    let required: &[&str] = if get { &["Bucket", "Key"] } else { &["Bucket"] };
    for name in required {
        if !obj.contains_key(*name) && !obj.contains_key(&format!("{name}.$")) {
            return Err(rf.invalid(&format!("Parameters.{name}"), "is required"));
        }
    }
    Ok(rf.template("Parameters", true)?.expect("present"))
}

fn input_format(cf: &Fields<'_>) -> Result<InputFormat, DefinitionError> {
    let ty = cf.req_str("InputType")?;
    let csv = ty == "CSV";
    if !csv {
        for field in ["CSVHeaderLocation", "CSVHeaders", "CSVDelimiter"] {
            if cf.has(field) {
                return Err(cf.invalid(field, "only applies to InputType CSV"));
            }
        }
    }
    Ok(match ty {
        "JSON" => InputFormat::Json,
        "JSONL" => InputFormat::Jsonl,
        "CSV" => InputFormat::Csv {
            headers: csv_headers(cf)?,
            delimiter: delimiter(cf)?,
        },
        "PARQUET" | "MANIFEST" => {
            return Err(cf.unsupported(
                "InputType",
                format!("{ty} is not implemented; use JSON, JSONL or CSV"),
            ))
        }
        _ => {
            return Err(cf.invalid(
                "InputType",
                "must be \"JSON\", \"JSONL\", \"CSV\", \"PARQUET\" or \"MANIFEST\"",
            ))
        }
    })
}

/// `None` for FIRST_ROW (the default), the given names for GIVEN.
fn csv_headers(cf: &Fields<'_>) -> Result<Option<Vec<String>>, DefinitionError> {
    let given = match cf.str("CSVHeaderLocation")? {
        None | Some("FIRST_ROW") => false,
        Some("GIVEN") => true,
        Some(_) => {
            return Err(cf.invalid("CSVHeaderLocation", "must be \"FIRST_ROW\" or \"GIVEN\""))
        }
    };
    match (given, cf.get("CSVHeaders")) {
        (false, None) => Ok(None),
        (false, Some(_)) => Err(cf.invalid(
            "CSVHeaders",
            "only applies with \"CSVHeaderLocation\": \"GIVEN\"",
        )),
        (true, None) => Err(cf.invalid(
            "CSVHeaders",
            "is required with \"CSVHeaderLocation\": \"GIVEN\"",
        )),
        (true, Some(v)) => {
            let names: Option<Vec<String>> = v
                .as_array()
                .filter(|a| !a.is_empty())
                .and_then(|a| a.iter().map(|h| h.as_str().map(str::to_string)).collect());
            let Some(names) = names else {
                return Err(cf.invalid("CSVHeaders", "must be a non-empty array of strings"));
            };
            if let Some(dup) = names
                .iter()
                .enumerate()
                .find(|(i, n)| names[..*i].contains(n))
            {
                return Err(cf.invalid("CSVHeaders", format!("names `{}` twice", dup.1)));
            }
            Ok(Some(names))
        }
    }
}

fn delimiter(cf: &Fields<'_>) -> Result<u8, DefinitionError> {
    Ok(match cf.str("CSVDelimiter")? {
        None | Some("COMMA") => b',',
        Some("PIPE") => b'|',
        Some("SEMICOLON") => b';',
        Some("SPACE") => b' ',
        Some("TAB") => b'\t',
        Some(_) => {
            return Err(cf.invalid(
                "CSVDelimiter",
                "must be \"COMMA\", \"PIPE\", \"SEMICOLON\", \"SPACE\" or \"TAB\"",
            ))
        }
    })
}

fn max_items(cf: &Fields<'_>) -> Result<Option<MaxItems>, DefinitionError> {
    match (cf.has("MaxItems"), cf.has("MaxItemsPath")) {
        (true, true) => Err(cf.invalid("MaxItemsPath", "cannot be combined with MaxItems")),
        (true, false) => match cf.uint("MaxItems", 0)? {
            Some(n) if n <= MAX_ITEMS_LIMIT => Ok(Some(MaxItems::Fixed(n))),
            _ => Err(cf.invalid(
                "MaxItems",
                format!("must be an integer from 0 to {MAX_ITEMS_LIMIT}"),
            )),
        },
        (false, true) => Ok(cf.opt_path("MaxItemsPath", true)?.map(MaxItems::Path)),
        (false, false) => Ok(None),
    }
}
