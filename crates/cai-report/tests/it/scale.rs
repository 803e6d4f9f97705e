//! A 10,000-rank run (the original's largest runs had 10,240 Lambdas): the report loads,
//! draws and lays it out in seconds, and the page stays a few MB.

use std::time::Instant;

use cai_report::{build, load_run};
use cai_store::{BlockingStore, StoreConfig};

use crate::page::{assert_well_formed, keep, options};
use crate::support::SynthRun;

#[test]
fn ten_thousand_ranks_render_in_seconds_and_stay_small() {
    // CAI_REPORT_SCALE_DIR keeps the folder (to time the release binary on it).
    let kept = std::env::var_os("CAI_REPORT_SCALE_DIR").map(std::path::PathBuf::from);
    let temp = tempfile::tempdir().unwrap();
    let root = kept.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let ranks = 10_000;
    SynthRun {
        ranks,
        samples: 32,
        slots: None,
        retried: vec![17, 4242],
        failed: vec![9000],
        s3: true,
        ..SynthRun::default()
    }
    .write(
        &root,
        "cosmicai-data",
        "result-partition-100MB/total1000GB/1",
    );
    let store = BlockingStore::open(StoreConfig::Local { root }).unwrap();

    let t = Instant::now();
    let run = load_run(
        &store,
        "cosmicai-data",
        "result-partition-100MB/total1000GB/1",
    )
    .unwrap();
    let loaded = t.elapsed();
    assert_eq!(run.ranks.len(), ranks as usize - 1);
    assert_eq!(
        run.accuracy.as_ref().unwrap().metrics.count,
        (ranks - 1) * 32
    );
    let report = build(&[run], &options()).unwrap();
    let total = t.elapsed();
    keep("ten-thousand", &report);
    assert_well_formed(&report);
    let mb = report.html.len() as f64 / 1e6;
    eprintln!(
        "10,000 ranks: loaded in {:.2} s, figures and page in {:.2} s more, {mb:.2} MB",
        loaded.as_secs_f64(),
        (total - loaded).as_secs_f64()
    );
    for (_, f) in &report.figures {
        eprintln!("  {}: {:.0} kB", f.id, f.svg.len() as f64 / 1e3);
    }
    assert!(mb < 3.0, "page is {mb:.2} MB");
    // Generous for a loaded 2-core CI machine in the testing profile; release takes ~1 s.
    assert!(total.as_secs_f64() < 60.0, "took {total:?}");
    let timeline = &report
        .figures
        .iter()
        .find(|f| f.1.id == "timeline")
        .unwrap()
        .1;
    assert!(
        timeline.caption.contains("to a row"),
        "{}",
        timeline.caption
    );
}
