//! Every Bucket method refuses traversal keys, and local stores refuse symlinks that
//! lead outside the root.

use std::os::unix::fs::symlink;

use cai_store::{BlockingStore, Store, StoreConfig, StoreError};

const HOSTILE: &[&str] = &[
    "../x",
    "a/../../x",
    "/etc/passwd",
    "a\\..\\b",
    "a\0b",
    "./a",
    "a//b",
    "..",
];

fn open(dir: &std::path::Path) -> Store {
    Store::open(StoreConfig::Local {
        root: dir.join("root"),
    })
    .unwrap()
}

fn assert_invalid<T: std::fmt::Debug>(what: &str, key: &str, r: Result<T, StoreError>) {
    match r {
        Err(StoreError::InvalidKey { .. }) => {}
        other => panic!("{what}({key:?}) should be refused as an invalid key, got {other:?}"),
    }
}

#[tokio::test]
async fn async_methods_refuse_traversal_keys() {
    let tmp = tempfile::tempdir().unwrap();
    // A victim file right next to the root, reachable by "../" if validation failed.
    std::fs::write(tmp.path().join("x"), b"secret").unwrap();
    let store = open(tmp.path());
    let b = store.bucket("bkt").unwrap();
    b.put("ok", &b"fine"[..]).await.unwrap();
    let dest = tmp.path().join("dl");
    for &key in HOSTILE {
        assert_invalid("get", key, b.get(key).await);
        assert_invalid("get_capped", key, b.get_capped(key, 10).await);
        assert_invalid("put", key, b.put(key, &b"pwned"[..]).await);
        assert_invalid("head", key, b.head(key).await);
        assert_invalid("exists", key, b.exists(key).await);
        assert_invalid("local_path", key, b.local_path(key));
        assert_invalid(
            "download_to_file",
            key,
            b.download_to_file(key, &dest).await,
        );
        assert_invalid("delete", key, b.delete(key).await);
        assert_invalid("list", key, b.list(key).await);
    }
    assert_eq!(std::fs::read(tmp.path().join("x")).unwrap(), b"secret");
    assert!(!dest.exists());
    assert!(!tmp.path().join("pwned").exists());
}

#[test]
fn blocking_methods_refuse_traversal_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let store = BlockingStore::new(open(tmp.path())).unwrap();
    let b = store.bucket("bkt").unwrap();
    let dest = tmp.path().join("dl");
    for &key in HOSTILE {
        assert_invalid("get", key, b.get(key));
        assert_invalid("get_capped", key, b.get_capped(key, 10));
        assert_invalid("put", key, b.put(key, &b"pwned"[..]));
        assert_invalid("head", key, b.head(key));
        assert_invalid("exists", key, b.exists(key));
        assert_invalid("local_path", key, b.local_path(key));
        assert_invalid("download_to_file", key, b.download_to_file(key, &dest));
        assert_invalid("delete", key, b.delete(key));
        assert_invalid("list", key, b.list(key));
    }
}

#[test]
fn bad_bucket_names_are_refused_by_store() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    for name in ["..", ".", "a/b", "../etc", "UPPER", "x"] {
        let err = store.bucket(name).unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidBucket { .. }),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(&format!("{name:?}")));
    }
}

fn assert_outside<T: std::fmt::Debug>(what: &str, r: Result<T, StoreError>) {
    match r {
        Err(StoreError::OutsideRoot { .. }) => {}
        other => panic!("{what} through an escaping symlink should be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn symlinks_escaping_the_root_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), b"secret").unwrap();
    let store = open(tmp.path());
    let b = store.bucket("bkt").unwrap();
    b.put("data/real.pt", &b"real"[..]).await.unwrap();
    let bdir = store.local_root().unwrap().join("bkt");

    // A partition "file" that is a symlink to /etc/passwd, and a folder symlinked outside.
    symlink("/etc/passwd", bdir.join("data/passwd.pt")).unwrap();
    symlink(&outside, bdir.join("evil")).unwrap();
    let dest = tmp.path().join("dl");

    for key in ["data/passwd.pt", "evil/secret.txt"] {
        assert_outside("local_path", b.local_path(key));
        assert_outside("get", b.get(key).await);
        assert_outside("head", b.head(key).await);
        assert_outside("exists", b.exists(key).await);
        assert_outside("download_to_file", b.download_to_file(key, &dest).await);
        assert_outside("put", b.put(key, &b"pwned"[..]).await);
        assert_outside("delete", b.delete(key).await);
    }
    // Writing a new file through the escaping folder is refused too.
    assert_outside("put new", b.put("evil/new.txt", &b"pwned"[..]).await);
    assert_outside("list folder", b.list("evil").await);
    assert!(!outside.join("new.txt").exists());
    assert_eq!(
        std::fs::read(outside.join("secret.txt")).unwrap(),
        b"secret"
    );
    assert!(!dest.exists());

    // Listing the whole bucket leaves the escaping entries out.
    let keys: Vec<String> = b
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, vec!["data/real.pt".to_string()]);

    // A symlink that stays inside the root is fine.
    symlink(bdir.join("data/real.pt"), bdir.join("data/alias.pt")).unwrap();
    assert_eq!(b.get("data/alias.pt").await.unwrap(), &b"real"[..]);
    let p = b.local_path("data/alias.pt").unwrap().unwrap();
    assert!(p.starts_with(store.local_root().unwrap()));
}

#[tokio::test]
async fn bucket_folder_symlinked_outside_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("k"), b"secret").unwrap();
    let store = open(tmp.path());
    symlink(&outside, store.local_root().unwrap().join("evil-bucket")).unwrap();
    let b = store.bucket("evil-bucket").unwrap();
    assert_outside("get", b.get("k").await);
    assert_outside("put", b.put("k2", &b"x"[..]).await);
    assert!(b.list("").await.unwrap().is_empty());
    assert!(!outside.join("k2").exists());
}
