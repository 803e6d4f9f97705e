//! Opening S3 stores from AWS environment variables, with no network I/O. Kept alone in
//! its own test binary because it sets process environment variables.

use cai_store::{BlockingStore, Store, StoreConfig, StoreError};

#[test]
fn s3_stores_build_from_env_without_network() {
    // Edition 2021: set_var is safe; this binary has a single test, so no races.
    std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "secret");
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::set_var("AWS_ENDPOINT_URL", "http://127.0.0.1:9");

    let store = Store::open("s3".parse().unwrap()).unwrap();
    assert!(store.local_root().is_none());
    let bucket = store.bucket("payload-bucket").unwrap();
    assert_eq!(bucket.name(), "payload-bucket");
    assert!(bucket.local_path("a/b.pt").unwrap().is_none());
    assert!(matches!(
        store.bucket("Bad_Name"),
        Err(StoreError::InvalidBucket { .. })
    ));

    let store = Store::open("s3://root-bucket/runs".parse().unwrap()).unwrap();
    assert_eq!(
        store.config(),
        &StoreConfig::S3Root {
            bucket: "root-bucket".into(),
            prefix: "runs".into()
        }
    );
    store.bucket("payload-bucket").unwrap();

    // Key validation happens before any request, so these fail fast without network.
    let blocking = BlockingStore::new(store).unwrap();
    let b = blocking.bucket("payload-bucket").unwrap();
    for key in ["../x", "/etc/passwd", "a\0b"] {
        assert!(
            matches!(b.get(key), Err(StoreError::InvalidKey { .. })),
            "{key}"
        );
        assert!(
            matches!(b.put(key, &b"x"[..]), Err(StoreError::InvalidKey { .. })),
            "{key}"
        );
    }
}
