//! The per-rank payload, key for key and type for type the original's, because users'
//! inference scripts and logs expect exactly this shape.

use serde::{Deserialize, Serialize};

/// DATA_PATH: one key (a string) when a rank gets one file, a list for several, null for none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DataPath {
    /// One partition key.
    One(String),
    /// Several partition keys, concatenated in order.
    Many(Vec<String>),
    /// No data: more ranks than files.
    None,
}

impl DataPath {
    /// The keys, in order.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            DataPath::One(k) => vec![k.as_str()],
            DataPath::Many(ks) => ks.iter().map(String::as_str).collect(),
            DataPath::None => Vec::new(),
        }
    }

    /// True when the rank has nothing to do.
    pub fn is_empty(&self) -> bool {
        self.keys().is_empty()
    }
}

/// One rank's payload, as the original's Initialize emits it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RankPayload {
    /// Bucket of the model folder.
    #[serde(rename = "S3_BUCKET")]
    pub s3_bucket: String,
    /// Model folder in that bucket.
    #[serde(rename = "S3_OBJECT_NAME")]
    pub s3_object_name: String,
    /// The original's script path (informational).
    #[serde(rename = "SCRIPT")]
    pub script: String,
    /// The original's object type (informational).
    #[serde(rename = "S3_OBJECT_TYPE")]
    pub s3_object_type: String,
    /// Number of ranks, as a string.
    #[serde(rename = "WORLD_SIZE")]
    pub world_size: String,
    /// This rank, as a string.
    #[serde(rename = "RANK")]
    pub rank: String,
    /// Bucket with the partitions and results.
    #[serde(rename = "DATA_BUCKET")]
    pub data_bucket: String,
    /// Partition prefix.
    #[serde(rename = "DATA_PREFIX")]
    pub data_prefix: String,
    /// This rank's partition keys.
    #[serde(rename = "DATA_PATH")]
    pub data_path: DataPath,
    /// Result prefix.
    #[serde(rename = "RESULT_PATH")]
    pub result_path: String,
    /// Batch size, a number.
    #[serde(rename = "BATCH_SIZE")]
    pub batch_size: u64,
}

impl RankPayload {
    /// RANK as a number, naming the field when it is not one.
    pub fn rank_number(&self) -> Result<u64, String> {
        self.rank.trim().parse().map_err(|_| {
            format!(
                "field `RANK`: expected a whole number as a string, found {:?}",
                self.rank
            )
        })
    }
}
