//! The original CAI's result folders (combined_data.json with its own keys only): drawn as
//! far as they allow, alone and beside a cai run.

use cai_report::{build, load_run, Origin};
use cai_store::{BlockingStore, StoreConfig};

use crate::page::{assert_well_formed, ids, keep, options};
use crate::support::{original_fixtures, SynthRun};

fn store(root: &std::path::Path) -> BlockingStore {
    BlockingStore::open(StoreConfig::Local {
        root: root.to_path_buf(),
    })
    .unwrap()
}

#[test]
fn an_original_run_draws_throughput_and_says_what_is_missing() {
    let s = store(&original_fixtures());
    let run = load_run(&s, "cosmicai-data", "result-partition-100MB/1GB/1").unwrap();
    assert_eq!(run.origin, Origin::Original);
    assert_eq!(run.ranks.len(), 11);
    assert_eq!(run.partition(), "100MB");
    assert!(run.accuracy.is_none());
    let r = build(&[run], &options()).unwrap();
    assert_well_formed(&r);
    assert_eq!(ids(&r), ["ranks"]);
    for why in [
        "discards its predictions",
        "records no invocation times",
        "records no billed durations",
        "not a peak",
    ] {
        assert!(r.html.contains(why), "page does not say {why:?}");
    }
    assert!(!r.html.contains("UNTRAINED"));
}

#[test]
fn the_original_s3_keys_are_drawn() {
    let s = store(&original_fixtures());
    let run = load_run(&s, "cosmicai-data", "result-partition-25MB/2GB/1").unwrap();
    assert!(run.ranks.iter().all(|r| r.s3.is_some()));
    let r = build(&[run], &options()).unwrap();
    assert_eq!(ids(&r), ["ranks", "s3"]);
}

#[test]
fn original_runs_beside_cai_runs_make_the_scaling_figures() {
    let dir = tempfile::tempdir().unwrap();
    // The fixtures, copied so a cai run can sit in the same store.
    copy_dir(&original_fixtures(), dir.path());
    for (i, ranks) in [6u64, 12, 24].into_iter().enumerate() {
        SynthRun {
            ranks,
            samples: 50,
            seed: i as u64,
            ..SynthRun::default()
        }
        .write(dir.path(), "cosmicai-data", &format!("cai/100MB/{ranks}"));
    }
    let s = store(dir.path());
    let mut runs = Vec::new();
    for rp in [
        "result-partition-100MB/1GB/1",
        "result-partition-100MB/1GB/2",
        "result-partition-100MB/2GB/1",
        "result-partition-100MB/4GB/1",
        "result-partition-25MB/1GB/1",
        "result-partition-25MB/2GB/1",
        "cai/100MB/6",
        "cai/100MB/12",
        "cai/100MB/24",
    ] {
        runs.push(load_run(&s, "cosmicai-data", rp).unwrap());
    }
    let r = build(&runs, &options()).unwrap();
    keep("compared", &r);
    assert_well_formed(&r);
    let stems: Vec<&str> = r.figures.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(&stems[..2], ["scaling-data-size", "scaling-world-size"]);
    assert!(stems.contains(&"run7-accuracy-density"), "{stems:?}");
    let scaling = &r.figures[0].1.svg;
    for series in [
        "partition 100MB",
        "partition 25MB (original)",
        "partition 100MB (original)",
    ] {
        assert!(scaling.contains(series), "scaling figure lacks {series:?}");
    }
    assert!(r.html.contains("Runs compared"));
    assert!(r.html.contains("href=\"#run-9\""));
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}
