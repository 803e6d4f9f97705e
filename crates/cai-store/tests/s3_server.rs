//! The S3 backend against a real S3 protocol peer: s3s-fs (SigV4-checking) that
//! `scripts/stand-ins.sh start` runs on 127.0.0.1. Kept alone in its own test binary
//! because it sets process environment variables.

use cai_store::{BlockingStore, StoreConfig};

fn var(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var_os("CI").is_some() => {
            panic!(
                "{name} is not set: run the tests through ./scripts/test.sh, which starts s3s-fs"
            )
        }
        _ => {
            eprintln!("skipped: {name} is not set (./scripts/test.sh starts s3s-fs)");
            None
        }
    }
}

#[test]
fn s3_store_round_trips_through_a_sigv4_server() {
    let (Some(endpoint), Some(root), Some(key), Some(secret)) = (
        var("CAI_TEST_S3_ENDPOINT"),
        var("CAI_TEST_S3_ROOT"),
        var("CAI_TEST_S3_ACCESS_KEY"),
        var("CAI_TEST_S3_SECRET_KEY"),
    ) else {
        return;
    };
    // Edition 2021: set_var is safe; this binary has a single test, so no races.
    std::env::set_var("AWS_ENDPOINT_URL_S3", &endpoint);
    std::env::set_var("AWS_ACCESS_KEY_ID", &key);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", &secret);
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    let bucket_name = format!("store-test-{}", std::process::id());
    std::fs::create_dir_all(std::path::Path::new(&root).join(&bucket_name)).unwrap();

    let store = BlockingStore::open(StoreConfig::S3Buckets).unwrap();
    let b = store.bucket(&bucket_name).unwrap();
    b.put("runs/a b/x.json", b"{\"v\":1}".to_vec()).unwrap();
    assert_eq!(&b.get("runs/a b/x.json").unwrap()[..], b"{\"v\":1}");
    let head = b.head("runs/a b/x.json").unwrap().expect("exists");
    assert_eq!(head.size, 7);
    assert!(b.head("runs/none.json").unwrap().is_none());
    assert!(b.get("runs/none.json").unwrap_err().is_not_found());
    assert!(b.get_capped("runs/a b/x.json", 3).is_err(), "over the cap");

    // More keys than one ListObjectsV2 page (1,000): the listing must be complete, and a
    // folder prefix must not match its siblings (`part` vs `parts`).
    for i in 0..1_050 {
        b.put(&format!("parts/{i:04}.pt"), vec![1u8]).unwrap();
    }
    b.put("partsx/0.pt", vec![1u8]).unwrap();
    let listed = b.list("parts").unwrap();
    assert_eq!(listed.len(), 1_050);
    assert!(listed.iter().all(|e| e.key.starts_with("parts/")));

    b.delete("runs/a b/x.json").unwrap();
    assert!(!b.exists("runs/a b/x.json").unwrap());

    // A root inside one bucket maps payload buckets to folders there.
    let rooted = BlockingStore::open(format!("s3://{bucket_name}/root").parse().unwrap()).unwrap();
    rooted
        .bucket("data")
        .unwrap()
        .put("k.txt", b"hi".to_vec())
        .unwrap();
    assert_eq!(&b.get("root/data/k.txt").unwrap()[..], b"hi");

    // Conditional writes, what a run's lease is made of: create only if absent (`If-None-Match:
    // *`), replace and delete only the version read (`If-Match` on the ETag).
    assert!(b.put_if_absent("runs/lease.json", b"one".to_vec()).unwrap());
    assert!(!b.put_if_absent("runs/lease.json", b"two".to_vec()).unwrap());
    let (bytes, tag) = b.get_versioned("runs/lease.json", 1024).unwrap();
    assert_eq!(&bytes[..], b"one");
    let tag = tag.expect("S3 reports an ETag");
    assert!(b
        .put_if_unchanged("runs/lease.json", b"three".to_vec(), &tag)
        .unwrap());
    assert!(!b
        .put_if_unchanged("runs/lease.json", b"four".to_vec(), &tag)
        .unwrap());
    assert!(!b.delete_if_unchanged("runs/lease.json", &tag).unwrap());
    let (bytes, now) = b.get_versioned("runs/lease.json", 1024).unwrap();
    assert_eq!(&bytes[..], b"three");
    assert!(b
        .delete_if_unchanged("runs/lease.json", &now.unwrap())
        .unwrap());
    assert!(!b.exists("runs/lease.json").unwrap());
    assert!(!b
        .put_if_unchanged("runs/lease.json", b"five".to_vec(), &tag)
        .unwrap());

    // The server checks signatures: a wrong secret is refused, naming the bucket and key.
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "wrong");
    let bad = BlockingStore::open(StoreConfig::S3Buckets).unwrap();
    let e = bad
        .bucket(&bucket_name)
        .unwrap()
        .get("parts/0000.pt")
        .unwrap_err();
    assert!(!e.is_not_found(), "{e}");
    let text = e.to_string();
    assert!(
        text.contains(&bucket_name) || text.contains("parts/0000.pt"),
        "{text}"
    );
}
