//! Payload-field validation of bucket names and keys, naming the field: the store's rules,
//! applied before any work so a bad payload fails whole, up front.

use cai_store::StoreError;

/// A bucket name from payload field `field`.
pub fn bucket(field: &str, name: &str) -> Result<(), String> {
    cai_store::validate_bucket_name(name).map_err(|e| format!("field `{field}`: {e}"))
}

/// An object key from payload field `field`.
pub fn key(field: &str, key: &str) -> Result<(), String> {
    cai_store::validate_key(field, key).map_err(|e| e.to_string())
}

/// A key prefix (folder) from payload field `field`.
pub fn prefix(field: &str, prefix: &str) -> Result<(), String> {
    cai_store::validate_prefix(field, prefix).map_err(|e: StoreError| e.to_string())
}
