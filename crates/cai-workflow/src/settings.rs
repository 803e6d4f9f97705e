//! Run-wide settings that are cai's own (the original has none of them): where the model is,
//! the per-invocation limits, the retry policy, failure tolerance and file order. They travel
//! from Initialize to every rank beside the original's per-rank payload, never inside it, so
//! that payload stays exactly the original's.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::order::FileOrder;
use crate::payload::PayloadError;

/// Memory per invocation when the payload does not say: our inference peaks near 250 MB, and
/// Lambda gives a full vCPU from 1,769 MB, so 2 GB buys the CPU, not the memory.
pub const DEFAULT_MEMORY_MB: u64 = 2048;

/// Where the weights come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum ModelLocation {
    /// An object in the store (the original's `<bucket>/<S3_object_name>/Fine_Tune_Model/...pt`).
    Store {
        /// Bucket holding the weights.
        bucket: String,
        /// Key of the weights file.
        key: String,
    },
    /// Seeded random weights of the published architecture: for demos and tests, flagged
    /// untrained in every output.
    Seed(u64),
}

impl ModelLocation {
    /// Parses `seed:N` or `BUCKET/KEY` (an `s3://` prefix is allowed), naming `field` on error.
    pub fn parse(field: &str, s: &str) -> Result<Self, PayloadError> {
        let bad = |expected: &str| PayloadError::Invalid {
            field: field.to_string(),
            expected: expected.to_string(),
            found: serde_json::Value::String(s.to_string()).to_string(),
        };
        if let Some(n) = s.strip_prefix("seed:") {
            return n
                .trim()
                .parse()
                .map(ModelLocation::Seed)
                .map_err(|_| bad("seed:N with N a whole number"));
        }
        let rest = s.strip_prefix("s3://").unwrap_or(s);
        let (bucket, key) = rest
            .split_once('/')
            .ok_or_else(|| bad("\"seed:N\" or \"BUCKET/KEY\" of a weights file in the store"))?;
        crate::keys::bucket(field, bucket)
            .map_err(|e| bad(&format!("a valid bucket name ({e})")))?;
        crate::keys::key(field, key).map_err(|e| bad(&format!("a safe object key ({e})")))?;
        Ok(ModelLocation::Store {
            bucket: bucket.into(),
            key: key.into(),
        })
    }

    /// True for seeded random weights.
    pub fn is_seed(&self) -> bool {
        matches!(self, ModelLocation::Seed(_))
    }
}

impl fmt::Display for ModelLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelLocation::Store { bucket, key } => write!(f, "{bucket}/{key}"),
            ModelLocation::Seed(n) => write!(f, "seed:{n}"),
        }
    }
}

impl From<ModelLocation> for String {
    fn from(m: ModelLocation) -> String {
        m.to_string()
    }
}

impl TryFrom<String> for ModelLocation {
    type Error = PayloadError;
    fn try_from(s: String) -> Result<Self, PayloadError> {
        ModelLocation::parse("model", &s)
    }
}

/// Lambda's two architectures; only the price differs for the projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Architecture {
    /// Intel/AMD: $0.0000166667 per GB-s.
    #[default]
    #[serde(rename = "x86_64")]
    X86_64,
    /// Graviton: $0.0000133334 per GB-s.
    #[serde(rename = "arm64")]
    Arm64,
}

impl Architecture {
    /// The name Lambda uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64",
            Architecture::Arm64 => "arm64",
        }
    }
}

impl FromStr for Architecture {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "x86_64" | "x86" | "amd64" => Ok(Architecture::X86_64),
            "arm64" | "aarch64" => Ok(Architecture::Arm64),
            _ => Err(format!(
                "unknown architecture {s:?}: expected x86_64 or arm64"
            )),
        }
    }
}

/// The inference Task's retry policy, written into the definition's Retry field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Retries after the first attempt (ASL MaxAttempts); 0 disables retry.
    pub max_attempts: u64,
    /// Delay before the first retry (ASL IntervalSeconds).
    pub interval_seconds: u64,
    /// Multiplier per retry (ASL BackoffRate).
    pub backoff_rate: f64,
    /// Cap on any one delay (ASL MaxDelaySeconds).
    pub max_delay_seconds: Option<u64>,
    /// Full jitter (ASL JitterStrategy FULL), so many failed ranks do not retry in lockstep.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 2,
            interval_seconds: 1,
            backoff_rate: 2.0,
            max_delay_seconds: Some(30),
            jitter: true,
        }
    }
}

/// Everything run-wide of cai's own, as carried in Initialize's output under `run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// The weights.
    pub model: ModelLocation,
    /// Memory per invocation (MB): enforced locally, configured on Lambda, billed in the cost.
    pub memory_mb: u64,
    /// Per-invocation timeout; past it the invocation fails with States.Timeout.
    pub timeout_seconds: u64,
    /// The Map's MaxConcurrency (0: as many as the engine can run).
    pub max_concurrency: u64,
    /// Retry policy of the inference Task.
    pub retry: RetryPolicy,
    /// Ranks allowed to fail before the Map fails (ToleratedFailureCount).
    pub tolerated_failure_count: Option<u64>,
    /// Share of ranks allowed to fail (ToleratedFailurePercentage).
    pub tolerated_failure_percentage: Option<f64>,
    /// Partition file order.
    pub file_order: FileOrder,
    /// Lambda architecture priced in the cost projection.
    pub architecture: Architecture,
    /// Arithmetic of the model's matrix products (`fp32` unless the payload says `bf16` or
    /// `int8`); recorded in every output.
    #[serde(default)]
    pub precision: cai_model::Precision,
    /// Keep ranks that already have a valid result instead of recomputing them.
    #[serde(default)]
    pub resume: bool,
    /// Unique per execution (set by Initialize); results carry it so Summarize can tell this
    /// run's results from an earlier run's under the same result path.
    #[serde(default)]
    pub run_id: String,
}
