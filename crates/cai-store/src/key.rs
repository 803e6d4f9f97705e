//! Validation of bucket names, keys and prefixes that come from untrusted payloads.

use crate::StoreError;

/// Longest key accepted, in bytes (the S3 limit), so no payload can build absurd paths.
pub const MAX_KEY_BYTES: usize = 1024;

const KEY_EXPECTED: &str =
    "a relative key like 'dir/file.pt': 1-1024 bytes, '/'-separated non-empty segments, \
     no leading '/', no '.' or '..' segments, no backslash or control characters, \
     no segment ending in '#<digits>' (reserved for atomic-write staging files)";

const PREFIX_EXPECTED: &str =
    "a relative folder prefix like 'dir/sub' or 'dir/sub/' (empty for the bucket root): \
     up to 1024 bytes, '/'-separated non-empty segments, no leading '/', no '.' or '..' segments, \
     no backslash or control characters, no segment ending in '#<digits>'";

fn key_error(field: &str, key: &str, reason: String, expected: &'static str) -> StoreError {
    StoreError::InvalidKey {
        field: field.to_string(),
        key: key.to_string(),
        reason,
        expected,
    }
}

/// Checks one `/`-separated key body; shared by keys and prefixes.
fn check_segments(
    field: &str,
    original: &str,
    body: &str,
    expected: &'static str,
) -> Result<(), StoreError> {
    if original.len() > MAX_KEY_BYTES {
        return Err(key_error(
            field,
            original,
            format!("it is {} bytes long, over {MAX_KEY_BYTES}", original.len()),
            expected,
        ));
    }
    if original.starts_with('/') {
        return Err(key_error(
            field,
            original,
            "it is absolute (starts with '/')".into(),
            expected,
        ));
    }
    if let Some(c) = original.chars().find(|c| *c == '\\' || c.is_control()) {
        let what = if c == '\\' {
            "a backslash".to_string()
        } else {
            format!("control character {:?}", c)
        };
        return Err(key_error(
            field,
            original,
            format!("it contains {what}"),
            expected,
        ));
    }
    for segment in body.split('/') {
        match segment {
            "" => {
                return Err(key_error(
                    field,
                    original,
                    "it has an empty segment ('//' or a trailing '/')".into(),
                    expected,
                ))
            }
            "." | ".." => {
                return Err(key_error(
                    field,
                    original,
                    format!("it has a '{segment}' segment"),
                    expected,
                ))
            }
            s if is_staging_name(s) => {
                return Err(key_error(
                    field,
                    original,
                    format!(
                        "segment {s:?} ends in '#<digits>', which is reserved for staging files"
                    ),
                    expected,
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// True for names like `part.pt#3`: the local backend stages atomic writes under
/// `<name>#<n>`, so such names are never valid keys and are hidden from listings.
pub(crate) fn is_staging_name(segment: &str) -> bool {
    match segment.rsplit_once('#') {
        Some((_, digits)) => !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

/// Refuses any object key that could escape or confuse the store: empty, absolute,
/// `.`/`..` or empty segments, backslashes, NUL/control characters, over 1024 bytes.
/// `field` names the payload field (e.g. `data_prefix`) so the error points at it.
pub fn validate_key(field: &str, key: &str) -> Result<(), StoreError> {
    if key.is_empty() {
        return Err(key_error(field, key, "it is empty".into(), KEY_EXPECTED));
    }
    check_segments(field, key, key, KEY_EXPECTED)
}

/// Like [`validate_key`] for a folder prefix: also accepts the empty string (the
/// bucket root) and one trailing `/`.
pub fn validate_prefix(field: &str, prefix: &str) -> Result<(), StoreError> {
    if prefix.is_empty() {
        return Ok(());
    }
    let body = prefix.strip_suffix('/').unwrap_or(prefix);
    if body.is_empty() {
        return Err(key_error(
            field,
            prefix,
            "it is absolute (starts with '/')".into(),
            PREFIX_EXPECTED,
        ));
    }
    check_segments(field, prefix, body, PREFIX_EXPECTED)
}

/// Joins a folder prefix (empty, or with or without a trailing `/`) and a name with
/// exactly one `/`, so callers never build `a//b` by hand. The result is not
/// validated; every [`crate::Bucket`] method validates the keys it is given.
pub fn join_key(prefix: &str, name: &str) -> String {
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

/// Checks an S3 bucket name (3-63 characters of lowercase letters, digits, `.` and `-`,
/// starting and ending with a letter or digit, no `..`, not an IP address), so the
/// same payload works locally and on S3 and can never name a path like `..`.
pub fn validate_bucket_name(name: &str) -> Result<(), StoreError> {
    let fail = |reason: &str| {
        Err(StoreError::InvalidBucket {
            bucket: name.to_string(),
            reason: reason.to_string(),
        })
    };
    if name.len() < 3 || name.len() > 63 {
        return fail(&format!("it is {} characters long", name.len()));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
    {
        return fail(&format!("it contains {c:?}"));
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return fail("it does not start and end with a letter or digit");
    }
    if name.contains("..") {
        return fail("it contains '..'");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return fail("it is formatted as an IP address");
    }
    Ok(())
}
