//! Replays the committed fuzz corpus (and any regressions) through the fuzz entry
//! points, so `cargo test` catches panics without cargo-fuzz.

use std::path::PathBuf;

use cai_torchfile::fuzz_support::{archive_bytes, pickle_bytes};

fn files(target: &str) -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut out = Vec::new();
    for dir in [
        root.join("corpus").join(target),
        root.join("regressions").join(target),
    ] {
        if let Ok(rd) = std::fs::read_dir(&dir) {
            out.extend(
                rd.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.is_file()),
            );
        }
    }
    out
}

#[test]
fn pickle_corpus_replays_without_panic() {
    let f = files("pickle");
    assert!(f.len() >= 5, "corpus missing");
    f.iter()
        .for_each(|p| pickle_bytes(&std::fs::read(p).unwrap()));
}

#[test]
fn archive_corpus_replays_without_panic() {
    let f = files("torch_archive");
    assert!(f.len() >= 5, "corpus missing");
    f.iter()
        .for_each(|p| archive_bytes(&std::fs::read(p).unwrap()));
}
