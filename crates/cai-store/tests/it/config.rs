//! `--store` parsing, display round trip and S3 settings resolution (no network).

use std::collections::HashMap;
use std::path::PathBuf;

use cai_store::{S3Settings, StoreConfig};

#[test]
fn parses_the_three_forms() {
    assert_eq!(
        "./cai-store".parse::<StoreConfig>().unwrap(),
        StoreConfig::Local {
            root: PathBuf::from("./cai-store")
        }
    );
    assert_eq!(
        StoreConfig::default(),
        StoreConfig::Local {
            root: PathBuf::from("./cai-store")
        }
    );
    assert_eq!(
        "/data/store".parse::<StoreConfig>().unwrap(),
        StoreConfig::Local {
            root: "/data/store".into()
        }
    );
    assert_eq!("s3".parse::<StoreConfig>().unwrap(), StoreConfig::S3Buckets);
    assert_eq!(
        "s3://".parse::<StoreConfig>().unwrap(),
        StoreConfig::S3Buckets
    );
    assert_eq!(
        "s3://my-bucket".parse::<StoreConfig>().unwrap(),
        StoreConfig::S3Root {
            bucket: "my-bucket".into(),
            prefix: String::new()
        }
    );
    assert_eq!(
        "s3://my-bucket/".parse::<StoreConfig>().unwrap(),
        StoreConfig::S3Root {
            bucket: "my-bucket".into(),
            prefix: String::new()
        }
    );
    assert_eq!(
        "s3://my-bucket/runs/cai/".parse::<StoreConfig>().unwrap(),
        StoreConfig::S3Root {
            bucket: "my-bucket".into(),
            prefix: "runs/cai".into()
        }
    );
}

#[test]
fn refuses_bad_forms() {
    for bad in [
        "",
        "s3://Bad_Bucket",
        "s3://ab",
        "s3://bucket/../x",
        "s3://bucket//x",
        "s3://bucket/a\\b",
    ] {
        let err = bad.parse::<StoreConfig>().expect_err(bad);
        assert!(err.to_string().contains("invalid store"), "{err}");
    }
}

#[test]
fn display_round_trips() {
    let configs = [
        StoreConfig::default(),
        StoreConfig::Local {
            root: "/abs/path with space".into(),
        },
        StoreConfig::Local {
            root: "./s3".into(),
        },
        StoreConfig::Local {
            root: "./s3://x".into(),
        },
        StoreConfig::S3Buckets,
        StoreConfig::S3Root {
            bucket: "bkt".into(),
            prefix: String::new(),
        },
        StoreConfig::S3Root {
            bucket: "bkt.x-1".into(),
            prefix: "a/b".into(),
        },
    ];
    for c in configs {
        let s = c.to_string();
        let back: StoreConfig = s.parse().unwrap();
        assert_eq!(back, c, "{s}");
    }
    assert_eq!(
        StoreConfig::S3Root {
            bucket: "bkt".into(),
            prefix: "a".into()
        }
        .to_string(),
        "s3://bkt/a"
    );
    // A local root spelled like an S3 form is written with "./" so it stays local
    // (the same directory, spelled "./s3").
    for root in ["s3", "s3://looks-like-s3"] {
        let c = StoreConfig::Local { root: root.into() };
        let back: StoreConfig = c.to_string().parse().unwrap();
        assert_eq!(
            back,
            StoreConfig::Local {
                root: format!("./{root}").into()
            }
        );
    }
}

fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

#[test]
fn s3_settings_precedence() {
    let s = S3Settings::from_lookup(lookup(&[]));
    assert_eq!(s, S3Settings::default());
    assert!(!s.allow_http());

    let s = S3Settings::from_lookup(lookup(&[
        ("AWS_ENDPOINT_URL", "https://generic.example"),
        ("AWS_ENDPOINT_URL_S3", "http://minio:9000"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
        ("AWS_REGION", "us-west-2"),
    ]));
    assert_eq!(s.endpoint.as_deref(), Some("http://minio:9000"));
    assert_eq!(s.region.as_deref(), Some("us-west-2"));
    assert!(s.allow_http());

    let s = S3Settings::from_lookup(lookup(&[
        ("AWS_ENDPOINT_URL", "https://generic.example"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
    ]));
    assert_eq!(s.endpoint.as_deref(), Some("https://generic.example"));
    assert_eq!(s.region.as_deref(), Some("eu-west-1"));
    assert!(!s.allow_http());
}
