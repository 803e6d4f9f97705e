//! Key, prefix and bucket-name validation: the pure entry points of the security boundary.

use cai_store::{join_key, validate_bucket_name, validate_key, validate_prefix, StoreError};

const HOSTILE: &[&str] = &[
    "../x",
    "a/../../x",
    "/etc/passwd",
    "a\\..\\b",
    "a\0b",
    "./a",
    "a/./b",
    "..",
    ".",
    "a//b",
    "a/\nb",
    "a\tb",
    "a\u{7f}b",
    "part.pt#1",
    "dir#12/x",
];

#[test]
fn validate_key_refuses_hostile_keys_and_names_the_field() {
    for key in HOSTILE.iter().copied().chain(["", "a/"]) {
        let err = validate_key("data_prefix", key).expect_err(key);
        let msg = err.to_string();
        assert!(msg.contains("data_prefix"), "{msg}");
        assert!(msg.contains(&format!("{key:?}")), "{msg}");
        assert!(msg.contains("expected"), "{msg}");
        assert!(matches!(err, StoreError::InvalidKey { .. }));
    }
}

#[test]
fn validate_prefix_refuses_hostile_prefixes() {
    for key in HOSTILE.iter().copied().chain(["/", "a//"]) {
        let err = validate_prefix("result_path", key).expect_err(key);
        assert!(err.to_string().contains("result_path"), "{err}");
    }
}

#[test]
fn length_limit_is_1024_bytes() {
    let ok = "a".repeat(1024);
    let long = "a".repeat(1025);
    validate_key("k", &ok).unwrap();
    let err = validate_key("k", &long).unwrap_err();
    assert!(err.to_string().contains("1025 bytes"), "{err}");
    validate_prefix("p", &ok).unwrap();
    assert!(validate_prefix("p", &long).is_err());
}

#[test]
fn ordinary_keys_and_prefixes_pass() {
    for key in [
        "a",
        "data/part-0001.pt",
        "m/model.v2.safetensors",
        "a b/c-d_e",
        "x#y",
        "..a/b..",
        "é/ü",
    ] {
        validate_key("k", key).unwrap();
        validate_prefix("p", key).unwrap();
    }
    validate_prefix("p", "").unwrap();
    validate_prefix("p", "a/b/").unwrap();
}

#[test]
fn join_key_uses_one_slash() {
    assert_eq!(join_key("", "x"), "x");
    assert_eq!(join_key("a/b", "x"), "a/b/x");
    assert_eq!(join_key("a/b/", "x"), "a/b/x");
    assert_eq!(join_key("a", "y/z"), "a/y/z");
}

#[test]
fn bucket_names_follow_s3_rules() {
    for ok in ["abc", "cai-data", "my.bucket-1", "0ab", &"a".repeat(63)] {
        validate_bucket_name(ok).unwrap();
    }
    for bad in [
        "ab",
        &"a".repeat(64),
        "Abc",
        "a_b",
        "-ab",
        "ab-",
        ".ab",
        "a..b",
        "a/b",
        "..",
        "...",
        "a b",
        "192.168.1.1",
        "",
    ] {
        let err = validate_bucket_name(bad).expect_err(bad);
        let msg = err.to_string();
        assert!(msg.contains(&format!("{bad:?}")), "{msg}");
        assert!(msg.contains("3-63"), "{msg}");
    }
}
