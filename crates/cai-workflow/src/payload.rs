//! The state machine's input, as users already write it for the original CAI, plus cai's own
//! optional fields. Users' payloads are sloppy (numbers as strings, extra fields), so parsing is
//! lenient where the meaning is clear and strict, with the field named, everywhere else.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::order::FileOrder;
use crate::settings::{Architecture, RetryPolicy, RunSettings, DEFAULT_MEMORY_MB};

/// The original's weights key under `<bucket>/<S3_object_name>/`.
pub const DEFAULT_MODEL_TAIL: &str =
    "Fine_Tune_Model/Mixed_Inception_z_VITAE_Base_Img_Full_New_Full.pt";

/// Most ranks a payload may ask for: 10x the original's 1 TB run over 100 MB partitions,
/// 2.5x the same terabyte over 25 MB partitions. Every count in a payload is bounded like
/// this, so no payload can make Initialize allocate without limit.
pub const MAX_WORLD_SIZE: u64 = 100_000;
/// Most partition files a payload may ask for (`file_limit`).
pub const MAX_FILE_LIMIT: u64 = 10_000_000;
/// Largest inference batch.
pub const MAX_BATCH_SIZE: u64 = 1 << 16;

/// A parsed, validated payload: everything Initialize needs, checked before any work.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    /// Bucket holding the model folder (`bucket`).
    pub bucket: String,
    /// Use at most this many partition files (`file_limit`); all when absent.
    pub file_limit: Option<u64>,
    /// Inference batch size (`batch_size`).
    pub batch_size: u64,
    /// `object_type`, passed through to every rank as `S3_OBJECT_TYPE`.
    pub object_type: String,
    /// `S3_object_name`: the model folder in `bucket`.
    pub s3_object_name: String,
    /// `script`, passed through as `SCRIPT` (informational).
    pub script: String,
    /// Key prefix of this run's results in `data_bucket` (`result_path`).
    pub result_path: String,
    /// Bucket with the partitions and the results (`data_bucket`).
    pub data_bucket: String,
    /// Key prefix (folder) of the partition files (`data_prefix`).
    pub data_prefix: String,
    /// Number of ranks (`world_size`); defaults to the number of files.
    pub world_size: Option<u64>,
    /// Everything run-wide that is cai's own (model, limits, retry, order...).
    pub settings: RunSettings,
    /// Fields nobody here knows: kept so a payload round-trips, otherwise ignored.
    pub extra: BTreeMap<String, Value>,
}

/// Why a payload was refused; always names the field (or the JSON position).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PayloadError {
    /// The text is not JSON.
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line of the first error.
        line: usize,
        /// 1-based column of the first error.
        column: usize,
        /// serde_json's description.
        message: String,
    },
    /// The top level is not an object.
    #[error("the payload must be a JSON object, found {0}")]
    NotObject(&'static str),
    /// A required field is absent.
    #[error("field `{field}` is missing: expected {expected}")]
    Missing {
        /// The field.
        field: &'static str,
        /// What it should hold.
        expected: &'static str,
    },
    /// A field is present with a wrong type or value.
    #[error("field `{field}`: expected {expected}, found {found}")]
    Invalid {
        /// The field (dotted for nested fields, e.g. `retry.max_attempts`).
        field: String,
        /// What it should hold.
        expected: String,
        /// What it holds, as JSON.
        found: String,
    },
}

impl Payload {
    /// Parses payload text, reporting malformed JSON by line and column.
    pub fn parse(text: &str) -> Result<Payload, PayloadError> {
        let value: Value = serde_json::from_str(text).map_err(|e| PayloadError::Syntax {
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        })?;
        Payload::from_value(&value)
    }

    /// Validates an already-parsed payload (the Initialize handler's event).
    pub fn from_value(value: &Value) -> Result<Payload, PayloadError> {
        let obj = value
            .as_object()
            .ok_or_else(|| PayloadError::NotObject(json_kind(value)))?;
        let mut f = Fields::new(obj);
        let model = f.opt_string("model")?;
        let bucket = f.bucket("bucket")?;
        let s3_object_name = match &model {
            Some(_) => f.opt_string("S3_object_name")?.unwrap_or_default(),
            None => f.string(
                "S3_object_name",
                "the model folder in `bucket`, e.g. \"Anomaly Detection\"",
            )?,
        };
        if !s3_object_name.is_empty() {
            check_key("S3_object_name", &s3_object_name)?;
        }
        let payload = Payload {
            file_limit: f.opt_count_in("file_limit", 1, MAX_FILE_LIMIT)?,
            batch_size: f.count("batch_size", 1, MAX_BATCH_SIZE)?,
            object_type: f
                .opt_string("object_type")?
                .unwrap_or_else(|| "folder".into()),
            script: f.opt_string("script")?.unwrap_or_default(),
            result_path: f.key("result_path")?,
            data_bucket: f.bucket("data_bucket")?,
            data_prefix: f.prefix("data_prefix")?,
            world_size: f.opt_count_in("world_size", 1, MAX_WORLD_SIZE)?,
            settings: RunSettings {
                model: match model {
                    Some(m) => crate::settings::ModelLocation::parse("model", &m)?,
                    None => crate::settings::ModelLocation::Store {
                        bucket: bucket.clone(),
                        key: format!("{s3_object_name}/{DEFAULT_MODEL_TAIL}"),
                    },
                },
                memory_mb: f
                    .opt_count_in("memory_mb", 128, 10_240)?
                    .unwrap_or(DEFAULT_MEMORY_MB),
                timeout_seconds: f.opt_count_in("timeout_seconds", 1, 900)?.unwrap_or(900),
                max_concurrency: f.opt_count_in("max_concurrency", 0, 10_000)?.unwrap_or(0),
                retry: f.retry("retry")?,
                tolerated_failure_count: f.opt_count_in(
                    "tolerated_failure_count",
                    0,
                    MAX_WORLD_SIZE,
                )?,
                tolerated_failure_percentage: f.opt_percentage("tolerated_failure_percentage")?,
                file_order: f.file_order("file_order")?,
                architecture: f.architecture("architecture")?,
                precision: f.precision("precision")?,
                resume: false,
                run_id: String::new(),
            },
            s3_object_name,
            bucket,
            extra: BTreeMap::new(),
        };
        Ok(Payload {
            extra: f.leftovers(),
            ..payload
        })
    }

    /// The payload as JSON in the original's field names, with cai's fields and the unknown
    /// ones kept, so what Initialize records is what the user meant.
    pub fn to_value(&self) -> Value {
        let mut m: Map<String, Value> = self.extra.clone().into_iter().collect();
        let s = &self.settings;
        m.insert("bucket".into(), self.bucket.clone().into());
        if let Some(n) = self.file_limit {
            m.insert("file_limit".into(), n.into());
        }
        m.insert("batch_size".into(), self.batch_size.into());
        m.insert("object_type".into(), self.object_type.clone().into());
        m.insert("S3_object_name".into(), self.s3_object_name.clone().into());
        m.insert("script".into(), self.script.clone().into());
        m.insert("result_path".into(), self.result_path.clone().into());
        m.insert("data_bucket".into(), self.data_bucket.clone().into());
        m.insert("data_prefix".into(), self.data_prefix.clone().into());
        if let Some(n) = self.world_size {
            m.insert("world_size".into(), n.into());
        }
        m.insert("model".into(), s.model.to_string().into());
        m.insert("memory_mb".into(), s.memory_mb.into());
        m.insert("timeout_seconds".into(), s.timeout_seconds.into());
        m.insert("max_concurrency".into(), s.max_concurrency.into());
        m.insert(
            "retry".into(),
            serde_json::to_value(&s.retry).unwrap_or(Value::Null),
        );
        if let Some(n) = s.tolerated_failure_count {
            m.insert("tolerated_failure_count".into(), n.into());
        }
        if let Some(p) = s.tolerated_failure_percentage {
            m.insert("tolerated_failure_percentage".into(), p.into());
        }
        m.insert("file_order".into(), s.file_order.as_str().into());
        m.insert("architecture".into(), s.architecture.as_str().into());
        m.insert("precision".into(), s.precision.to_string().into());
        Value::Object(m)
    }
}

/// serde_json appends " at line L column C"; the error reports those separately.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// A JSON value's kind, for "found ..." in messages.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn invalid(field: &str, expected: impl Into<String>, found: &Value) -> PayloadError {
    let mut shown = found.to_string();
    if shown.len() > 80 {
        shown.truncate(77);
        shown.push_str("...");
    }
    PayloadError::Invalid {
        field: field.to_string(),
        expected: expected.into(),
        found: shown,
    }
}

fn check_key(field: &str, key: &str) -> Result<(), PayloadError> {
    crate::keys::key(field, key).map_err(|e| PayloadError::Invalid {
        field: field.into(),
        expected: "a safe object key".into(),
        found: e,
    })
}

/// Reads fields off the payload object, remembering which were consumed so the rest can be
/// kept as `extra`.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    used: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    fn new(obj: &'a Map<String, Value>) -> Self {
        Fields {
            obj,
            used: Vec::new(),
        }
    }

    fn get(&mut self, field: &'static str) -> Option<&'a Value> {
        self.used.push(field);
        match self.obj.get(field) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    fn leftovers(&self) -> BTreeMap<String, Value> {
        self.obj
            .iter()
            .filter(|(k, _)| !self.used.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn opt_string(&mut self, field: &'static str) -> Result<Option<String>, PayloadError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(invalid(field, "a string", v)),
        }
    }

    fn string(
        &mut self,
        field: &'static str,
        expected: &'static str,
    ) -> Result<String, PayloadError> {
        match self.opt_string(field)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            Some(s) => Err(invalid(field, expected, &Value::String(s))),
            None => Err(PayloadError::Missing { field, expected }),
        }
    }

    fn bucket(&mut self, field: &'static str) -> Result<String, PayloadError> {
        let name = self.string(field, "a bucket name, e.g. \"cosmicai-data\"")?;
        crate::keys::bucket(field, &name).map_err(|e| PayloadError::Invalid {
            field: field.into(),
            expected: "a valid bucket name (3-63 lowercase letters, digits, '.' or '-')".into(),
            found: e,
        })?;
        Ok(name)
    }

    fn key(&mut self, field: &'static str) -> Result<String, PayloadError> {
        let key = self.string(
            field,
            "an object key prefix, e.g. \"result-partition-100MB/1GB/1\"",
        )?;
        let key = key.trim_end_matches('/').to_string();
        check_key(field, &key)?;
        Ok(key)
    }

    fn prefix(&mut self, field: &'static str) -> Result<String, PayloadError> {
        let prefix = match self.get(field) {
            None => {
                return Err(PayloadError::Missing {
                    field,
                    expected: "the key prefix (folder) of the partition files, e.g. \"100MB\"",
                })
            }
            Some(Value::String(s)) => s.trim_end_matches('/').to_string(),
            Some(v) => return Err(invalid(field, "a string", v)),
        };
        crate::keys::prefix(field, &prefix).map_err(|e| PayloadError::Invalid {
            field: field.into(),
            expected: "a safe key prefix".into(),
            found: e,
        })?;
        Ok(prefix)
    }

    /// A whole number given as a number or a string ("11"), in `min..=max`.
    fn opt_count_in(
        &mut self,
        field: &'static str,
        min: u64,
        max: u64,
    ) -> Result<Option<u64>, PayloadError> {
        let Some(v) = self.get(field) else {
            return Ok(None);
        };
        let expected = if max == u64::MAX {
            format!("a whole number >= {min} (a number or a string of digits)")
        } else {
            format!("a whole number from {min} to {max} (a number or a string of digits)")
        };
        let n = match v {
            Value::Number(n) => n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 9.0e15)
                    .map(|f| f as u64)
            }),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(invalid(field, expected, v)),
        }
    }

    fn count(&mut self, field: &'static str, min: u64, max: u64) -> Result<u64, PayloadError> {
        match self.opt_count_in(field, min, max)? {
            Some(n) => Ok(n),
            None => Err(PayloadError::Missing {
                field,
                expected: "a whole number, e.g. 512",
            }),
        }
    }

    fn opt_percentage(&mut self, field: &'static str) -> Result<Option<f64>, PayloadError> {
        let Some(v) = self.get(field) else {
            return Ok(None);
        };
        let p = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match p {
            Some(p) if (0.0..=100.0).contains(&p) => Ok(Some(p)),
            _ => Err(invalid(field, "a percentage from 0 to 100", v)),
        }
    }

    fn file_order(&mut self, field: &'static str) -> Result<FileOrder, PayloadError> {
        match self.get(field) {
            None => Ok(FileOrder::Natural),
            Some(Value::String(s)) => s.parse().map_err(|_| {
                invalid(
                    field,
                    "\"natural\" or \"lexicographic\"",
                    &Value::String(s.clone()),
                )
            }),
            Some(v) => Err(invalid(field, "\"natural\" or \"lexicographic\"", v)),
        }
    }

    fn architecture(&mut self, field: &'static str) -> Result<Architecture, PayloadError> {
        match self.get(field) {
            None => Ok(Architecture::X86_64),
            Some(Value::String(s)) => s
                .parse()
                .map_err(|_| invalid(field, "\"x86_64\" or \"arm64\"", &Value::String(s.clone()))),
            Some(v) => Err(invalid(field, "\"x86_64\" or \"arm64\"", v)),
        }
    }

    fn precision(&mut self, field: &'static str) -> Result<cai_model::Precision, PayloadError> {
        match self.get(field) {
            None => Ok(cai_model::Precision::Fp32),
            Some(Value::String(s)) => s.parse().map_err(|_| {
                invalid(
                    field,
                    "\"fp32\", \"bf16\" or \"int8\"",
                    &Value::String(s.clone()),
                )
            }),
            Some(v) => Err(invalid(field, "\"fp32\", \"bf16\" or \"int8\"", v)),
        }
    }

    fn retry(&mut self, field: &'static str) -> Result<RetryPolicy, PayloadError> {
        let Some(v) = self.get(field) else {
            return Ok(RetryPolicy::default());
        };
        let Value::Object(obj) = v else {
            return Err(invalid(field, "an object such as {\"max_attempts\": 2}", v));
        };
        let mut r = Fields::new(obj);
        let d = RetryPolicy::default();
        let named = |e: PayloadError| match e {
            PayloadError::Invalid {
                field: f,
                expected,
                found,
            } => PayloadError::Invalid {
                field: format!("retry.{f}"),
                expected,
                found,
            },
            other => other,
        };
        let policy = RetryPolicy {
            max_attempts: r
                .opt_count_in("max_attempts", 0, 99)
                .map_err(named)?
                .unwrap_or(d.max_attempts),
            interval_seconds: r
                .opt_count_in("interval_seconds", 1, 99_999_999)
                .map_err(named)?
                .unwrap_or(d.interval_seconds),
            backoff_rate: match r.get("backoff_rate") {
                None => d.backoff_rate,
                Some(v) => match v
                    .as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                {
                    Some(b) if b >= 1.0 && b.is_finite() => b,
                    _ => return Err(invalid("retry.backoff_rate", "a number >= 1.0", v)),
                },
            },
            max_delay_seconds: r
                .opt_count_in("max_delay_seconds", 1, 31_622_400)
                .map_err(named)?
                .or(d.max_delay_seconds),
            jitter: match r.get("jitter") {
                None => d.jitter,
                Some(Value::String(s)) if s.eq_ignore_ascii_case("full") => true,
                Some(Value::String(s)) if s.eq_ignore_ascii_case("none") => false,
                Some(Value::Bool(b)) => *b,
                Some(v) => return Err(invalid("retry.jitter", "\"FULL\" or \"NONE\"", v)),
            },
        };
        if let Some((k, _)) = r.leftovers().into_iter().next() {
            return Err(invalid(
                &format!("retry.{k}"),
                "one of max_attempts, interval_seconds, backoff_rate, max_delay_seconds, jitter",
                &Value::String(k.clone()),
            ));
        }
        Ok(policy)
    }
}
