//! Local-store behaviour: round trips, atomic writes, complete listings, prefix
//! semantics, size caps and the blocking facade.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use cai_store::{BlockingStore, Store, StoreConfig, StoreError};

fn open(dir: &std::path::Path) -> Store {
    Store::open(StoreConfig::Local {
        root: dir.join("root"),
    })
    .unwrap()
}

#[tokio::test]
async fn put_get_head_list_delete_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let b = store.bucket("cai-data").unwrap();
    assert!(!b.exists("p/a.pt").await.unwrap());
    assert!(b.head("p/a.pt").await.unwrap().is_none());
    let err = b.get("p/a.pt").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(
        err.to_string().contains("p/a.pt") && err.to_string().contains("cai-data"),
        "{err}"
    );

    b.put("p/a.pt", &b"hello"[..]).await.unwrap();
    b.put("p/b.pt", vec![1u8; 10]).await.unwrap();
    b.put("top.json", &b"{}"[..]).await.unwrap();

    // Bucket is a folder under the root.
    let on_disk = store.local_root().unwrap().join("cai-data/p/a.pt");
    assert_eq!(std::fs::read(&on_disk).unwrap(), b"hello");

    assert_eq!(b.get("p/a.pt").await.unwrap(), &b"hello"[..]);
    let head = b.head("p/b.pt").await.unwrap().unwrap();
    assert_eq!((head.key.as_str(), head.size), ("p/b.pt", 10));
    assert!(b.exists("top.json").await.unwrap());

    let all: Vec<(String, u64)> = b
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.key, e.size))
        .collect();
    assert_eq!(
        all,
        vec![
            ("p/a.pt".into(), 5),
            ("p/b.pt".into(), 10),
            ("top.json".into(), 2)
        ]
    );
    let p: Vec<String> = b
        .list("p/")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(p, vec!["p/a.pt", "p/b.pt"]);
    assert!(b.list("missing/folder").await.unwrap().is_empty());

    // Overwrite, then delete (twice: deleting a missing object succeeds).
    b.put("p/a.pt", &b"bye"[..]).await.unwrap();
    assert_eq!(b.get("p/a.pt").await.unwrap(), &b"bye"[..]);
    b.delete("p/a.pt").await.unwrap();
    b.delete("p/a.pt").await.unwrap();
    assert!(!b.exists("p/a.pt").await.unwrap());

    // Buckets are separate folders.
    let other = store.bucket("other-bucket").unwrap();
    assert!(other.list("").await.unwrap().is_empty());
    assert!(other.get("p/b.pt").await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn prefix_matches_whole_segments_only() {
    let tmp = tempfile::tempdir().unwrap();
    let b = open(tmp.path()).bucket("bkt").unwrap();
    for key in ["r/1/x", "r/1/y/z", "r/10/x", "r/1x", "r/1"] {
        // "r/1" as an object and "r/1/x" as a folder entry cannot coexist on a
        // filesystem; write the object form in another folder instead.
        let key = if key == "r/1" { "s/1" } else { key };
        b.put(key, &b"v"[..]).await.unwrap();
    }
    let keys: Vec<String> = b
        .list("r/1")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, vec!["r/1/x", "r/1/y/z"]);
    let keys: Vec<String> = b
        .list("r/1/")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, vec!["r/1/x", "r/1/y/z"]);
    // A prefix naming an object (not a folder) lists nothing, as on S3.
    assert!(b.list("s/1").await.unwrap().is_empty());
}

#[tokio::test]
async fn listing_returns_every_one_of_2500_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let b = open(tmp.path()).bucket("many").unwrap();
    for i in 0..2500 {
        b.put(&format!("parts/{:02}/p{i:05}.pt", i % 7), vec![0u8; i % 3])
            .await
            .unwrap();
    }
    let entries = b.list("parts").await.unwrap();
    assert_eq!(entries.len(), 2500);
    let mut expected: Vec<String> = (0..2500)
        .map(|i| format!("parts/{:02}/p{i:05}.pt", i % 7))
        .collect();
    expected.sort();
    let keys: Vec<String> = entries.iter().map(|e| e.key.clone()).collect();
    assert_eq!(keys, expected);
    assert_eq!(b.list("").await.unwrap().len(), 2500);
}

#[tokio::test]
async fn get_capped_refuses_large_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let b = open(tmp.path()).bucket("bkt").unwrap();
    b.put("big", vec![7u8; 4096]).await.unwrap();
    assert_eq!(b.get_capped("big", 4096).await.unwrap().len(), 4096);
    let err = b.get_capped("big", 4095).await.unwrap_err();
    match &err {
        StoreError::TooLarge { key, size, cap, .. } => {
            assert_eq!((key.as_str(), *size, *cap), ("big", 4096, 4095));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("\"big\"") && msg.contains("4096") && msg.contains("4095"),
        "{msg}"
    );
}

#[tokio::test]
async fn download_to_file_and_local_path() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let b = store.bucket("bkt").unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    b.put("parts/p0.pt", data.clone()).await.unwrap();
    let dest = tmp.path().join("p0.pt");
    assert_eq!(
        b.download_to_file("parts/p0.pt", &dest).await.unwrap(),
        data.len() as u64
    );
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    let err = b
        .download_to_file("parts/missing.pt", &tmp.path().join("m"))
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");

    let p = b.local_path("parts/p0.pt").unwrap().unwrap();
    assert!(p.starts_with(store.local_root().unwrap()));
    assert_eq!(std::fs::read(&p).unwrap(), data);
    assert!(b.local_path("parts/missing.pt").unwrap_err().is_not_found());
    assert!(b.local_path("parts").unwrap_err().is_not_found());
}

/// A reader looping on `get` while a writer keeps rewriting a 5 MB object must only
/// ever see one complete version, and no staging file may be left or listed.
#[test]
fn put_is_atomic_for_concurrent_readers() {
    const SIZE: usize = 5 * 1024 * 1024;
    const VERSIONS: u8 = 20;
    let tmp = tempfile::tempdir().unwrap();
    let store = BlockingStore::new(open(tmp.path())).unwrap();
    let b = store.bucket("atomic").unwrap();
    b.put("obj.bin", vec![0u8; SIZE]).unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (b, done, reads) = (b.clone(), done.clone(), reads.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Acquire) {
                    let got = b.get("obj.bin").unwrap();
                    assert_eq!(got.len(), SIZE, "partial object seen");
                    let first = got[0];
                    assert!(got.iter().all(|&x| x == first), "mixed object seen");
                    let listed = b.list("").unwrap();
                    assert_eq!(listed.len(), 1, "staging file listed: {listed:?}");
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for v in 1..=VERSIONS {
        b.put("obj.bin", vec![v; SIZE]).unwrap();
    }
    // Let the readers observe the final version at least once more.
    let before = reads.load(Ordering::Relaxed);
    // (Stop waiting if a reader died: its join below reports why.)
    while reads.load(Ordering::Relaxed) < before + 2 && !readers.iter().any(|r| r.is_finished()) {
        std::thread::yield_now();
    }
    done.store(true, Ordering::Release);
    for r in readers {
        r.join().unwrap();
    }
    assert!(reads.load(Ordering::Relaxed) >= 2);
    assert_eq!(b.get("obj.bin").unwrap()[0], VERSIONS);
    let dir = store.store().local_root().unwrap().join("atomic");
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["obj.bin".to_string()],
        "staging files left behind"
    );
}

#[test]
fn staging_files_are_hidden_from_listing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = BlockingStore::new(open(tmp.path())).unwrap();
    let b = store.bucket("bkt").unwrap();
    b.put("a.pt", &b"a"[..]).unwrap();
    b.put("k#x", &b"b"[..]).unwrap();
    // Simulate writes interrupted mid-way (the local backend stages as `<key>#<n>`).
    let dir = store.store().local_root().unwrap().join("bkt");
    std::fs::write(dir.join("a.pt#1"), b"half").unwrap();
    std::fs::write(dir.join("k#x#2"), b"half").unwrap();
    let keys: Vec<String> = b.list("").unwrap().into_iter().map(|e| e.key).collect();
    assert_eq!(keys, vec!["a.pt", "k#x"]);
}

#[test]
fn blocking_facade_works_off_runtime_and_refuses_inside_one() {
    let tmp = tempfile::tempdir().unwrap();
    let store = BlockingStore::open(StoreConfig::Local {
        root: tmp.path().join("root"),
    })
    .unwrap();
    let b = store.bucket("bkt").unwrap();
    // From plain threads (no runtime) it just works.
    std::thread::scope(|s| {
        for t in 0..4 {
            let b = b.clone();
            s.spawn(move || {
                let key = format!("t{t}");
                b.put(&key, vec![t as u8; 3]).unwrap();
                assert_eq!(b.get(&key).unwrap(), vec![t as u8; 3]);
            });
        }
    });
    assert_eq!(b.list("").unwrap().len(), 4);

    // From inside an async context it refuses instead of panicking, and dropping the
    // last handle there does not panic either.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async move {
        let err = b.get("t0").unwrap_err();
        assert!(matches!(err, StoreError::Blocking(_)), "{err}");
        drop(b);
        drop(store);
    });
}

#[test]
fn handles_are_send_sync_and_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<Store>();
    check::<cai_store::Bucket>();
    check::<BlockingStore>();
    check::<cai_store::BlockingBucket>();
    check::<StoreConfig>();
}
