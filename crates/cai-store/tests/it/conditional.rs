//! Conditional writes on a local store: create-if-absent, replace and delete only the version
//! read, and of many processes' threads racing for one key exactly one wins each round.

use cai_store::{BlockingStore, StoreConfig};

fn open(dir: &std::path::Path) -> BlockingStore {
    BlockingStore::open(StoreConfig::Local {
        root: dir.join("root"),
    })
    .unwrap()
}

#[test]
fn replace_and_delete_only_the_version_read() {
    let tmp = tempfile::tempdir().unwrap();
    let b = open(tmp.path()).bucket("cai-data").unwrap();
    assert!(b.put_if_absent("r/lease.json", &b"one"[..]).unwrap());
    assert!(!b.put_if_absent("r/lease.json", &b"two"[..]).unwrap());
    let (bytes, tag1) = b.get_versioned("r/lease.json", 1024).unwrap();
    assert_eq!(bytes, &b"one"[..]);
    let tag1 = tag1.expect("local objects have an entity tag");
    assert_eq!(
        b.head("r/lease.json").unwrap().unwrap().e_tag,
        Some(tag1.clone())
    );

    assert!(b
        .put_if_unchanged("r/lease.json", &b"three"[..], &tag1)
        .unwrap());
    // The old version is gone: neither a second replace nor a delete by it succeeds.
    assert!(!b
        .put_if_unchanged("r/lease.json", &b"four"[..], &tag1)
        .unwrap());
    assert!(!b.delete_if_unchanged("r/lease.json", &tag1).unwrap());
    let (bytes, tag3) = b.get_versioned("r/lease.json", 1024).unwrap();
    assert_eq!(bytes, &b"three"[..]);
    assert!(b
        .delete_if_unchanged("r/lease.json", &tag3.unwrap())
        .unwrap());
    assert!(!b.exists("r/lease.json").unwrap());
    // Replacing what is not there fails; deleting it is done already.
    assert!(!b
        .put_if_unchanged("r/lease.json", &b"five"[..], &tag1)
        .unwrap());
    assert!(b.delete_if_unchanged("r/lease.json", &tag1).unwrap());
}

#[test]
fn of_racing_replacers_of_one_version_exactly_one_wins() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let b = store.bucket("cai-data").unwrap();
    for round in 0..5 {
        b.put("k/v", format!("round {round}").into_bytes()).unwrap();
        let (_, tag) = b.get_versioned("k/v", 64).unwrap();
        let tag = tag.unwrap();
        let wins: usize = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|i| {
                    let (b, tag) = (b.clone(), tag.clone());
                    s.spawn(move || {
                        b.put_if_unchanged("k/v", format!("writer {i}").into_bytes(), &tag)
                            .unwrap()
                    })
                })
                .collect();
            hs.into_iter().map(|h| usize::from(h.join().unwrap())).sum()
        });
        assert_eq!(wins, 1, "round {round}");
    }
}
