//! Replays the committed `partition` fuzz corpus (and regressions) through the fuzz
//! entry point, so `cargo test` catches panics without cargo-fuzz.

use std::path::PathBuf;

use cai_data::fuzz_support::partition_bytes;

#[test]
fn partition_corpus_replays_without_panic() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut n = 0;
    for dir in [
        root.join("corpus/partition"),
        root.join("regressions/partition"),
    ] {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if e.path().is_file() {
                partition_bytes(&std::fs::read(e.path()).unwrap());
                n += 1;
            }
        }
    }
    assert!(n >= 4, "corpus missing");
}
