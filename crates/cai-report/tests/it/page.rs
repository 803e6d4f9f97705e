//! Structure of the page for single runs: every figure present with labelled axes, the
//! untrained banner, skipped figures with their reason, failures, and nothing external.

use cai_report::{build, load_run, Options, Report};
use cai_store::{BlockingStore, StoreConfig};

use crate::support::{external_references, SynthRun};

pub fn options() -> Options {
    Options {
        title: "test report".into(),
        generated: "2025-11-30 10:00 UTC".into(),
        version: "0.1.0".into(),
    }
}

/// Writes `run` into a fresh store and renders it; with CAI_REPORT_KEEP=DIR the page is
/// also saved as DIR/<name>.html, to look at.
pub fn render(name: &str, run: &SynthRun) -> (tempfile::TempDir, Report) {
    let dir = tempfile::tempdir().unwrap();
    run.write(dir.path(), "cosmicai-data", "result-partition-100MB/1GB/1");
    let store = BlockingStore::open(StoreConfig::Local {
        root: dir.path().to_path_buf(),
    })
    .unwrap();
    let data = load_run(&store, "cosmicai-data", "result-partition-100MB/1GB/1").unwrap();
    let report = build(&[data], &options()).unwrap();
    keep(name, &report);
    (dir, report)
}

/// Saves the page under CAI_REPORT_KEEP, when set.
pub fn keep(name: &str, report: &Report) {
    if let Some(dir) = std::env::var_os("CAI_REPORT_KEEP") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.html")), &report.html).unwrap();
    }
}

/// Ids of the figures drawn, in page order.
pub fn ids(r: &Report) -> Vec<&str> {
    r.figures.iter().map(|(_, f)| f.id.as_str()).collect()
}

/// Checks that hold for every page.
pub fn assert_well_formed(r: &Report) {
    let html = &r.html;
    assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..100]);
    assert!(html.trim_end().ends_with("</html>"));
    let ext = external_references(html);
    assert!(ext.is_empty(), "external references: {ext:?}");
    for bad in ["NaN", "inf<", ">inf", "undefined"] {
        assert!(!html.contains(bad), "page contains {bad:?}");
    }
    assert_eq!(
        html.matches("<figure").count(),
        r.figures.len(),
        "every figure drawn is on the page"
    );
    for (_, f) in &r.figures {
        assert!(f.svg.contains("<svg"), "{}", f.id);
        // Every figure has a rotated y-axis title and horizontal text (x title, ticks).
        // (The cost figure's y axis is its labelled categories.)
        assert!(
            f.svg.contains("rotate(270") || f.id == "cost",
            "{}: no y-axis title",
            f.id
        );
        assert!(
            f.svg.matches("<text").count() >= 6,
            "{}: too little text",
            f.id
        );
        assert!(
            html.contains(&format!("-{}\">", f.id)),
            "{} not anchored on the page",
            f.id
        );
    }
}

#[test]
fn trained_run_has_every_figure_labelled_and_nothing_external() {
    let (_dir, r) = render("trained", &SynthRun::default());
    assert_well_formed(&r);
    assert_eq!(
        ids(&r),
        [
            "accuracy-density",
            "accuracy-dz",
            "timeline",
            "ranks",
            "cost"
        ]
    );
    let html = &r.html;
    assert!(!html.contains("UNTRAINED"), "no banner for trained weights");
    for label in [
        "Spectroscopic redshift",
        "Predicted redshift",
        "Samples per cell",
        "Δz = (z",
        "Samples per bin",
        "Time since the execution started (s)",
        "Worker slot",
        "Inference rate (samples/s)",
        "Peak memory (MB)",
        "Projected cost (US$)",
        "σ<tspan",
        "World size</th>",
    ] {
        assert!(html.contains(label), "page lacks {label:?}");
    }
    // Summarize's exact metrics are what the box shows.
    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            _dir.path()
                .join("cosmicai-data/result-partition-100MB/1GB/1/summary.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let n = summary["accuracy"]["count"].as_u64().unwrap();
    assert_eq!(n, 12 * 400);
    assert!(html.contains("N = 4,800"), "metrics box shows N");
}

#[test]
fn untrained_run_has_the_banner_and_warned_accuracy_figures() {
    let (_dir, r) = render(
        "untrained",
        &SynthRun {
            untrained: true,
            ..SynthRun::default()
        },
    );
    assert_well_formed(&r);
    assert!(r.html.contains("class=\"banner\""));
    assert!(r
        .html
        .contains("UNTRAINED WEIGHTS: the accuracy figures are meaningless"));
    for (_, f) in r
        .figures
        .iter()
        .filter(|(_, f)| f.id.starts_with("accuracy"))
    {
        assert!(
            f.svg.contains("UNTRAINED"),
            "{} is not labelled untrained",
            f.id
        );
    }
    assert!(r.html.contains("untrained: seeded random weights"));
}

#[test]
fn predictions_without_truth_skip_the_accuracy_figures_saying_why() {
    let (_dir, r) = render(
        "no-truth",
        &SynthRun {
            truth: false,
            ..SynthRun::default()
        },
    );
    assert_well_formed(&r);
    assert_eq!(ids(&r), ["timeline", "ranks", "cost"]);
    assert!(r.html.contains("(not drawn)"));
    assert!(
        r.html.contains("carry no true (spectroscopic) redshifts"),
        "note says why"
    );
}

#[test]
fn retries_and_failures_show_per_rank_on_aws() {
    let (_dir, r) = render(
        "aws-failures",
        &SynthRun {
            slots: None,
            retried: vec![2, 5],
            failed: vec![7],
            s3: true,
            ..SynthRun::default()
        },
    );
    assert_well_formed(&r);
    assert_eq!(
        ids(&r),
        [
            "accuracy-density",
            "accuracy-dz",
            "timeline",
            "ranks",
            "s3",
            "cost"
        ]
    );
    let timeline = &r.figures.iter().find(|f| f.1.id == "timeline").unwrap().1;
    for want in [
        "failed, retried",
        "failed for good",
        "rank 7",
        "Initialize",
        "Summarize",
    ] {
        assert!(timeline.svg.contains(want), "timeline lacks {want:?}");
    }
    assert!(r.html.contains("<h3>Failed ranks</h3>"));
    assert!(r.html.contains("SIGKILL"));
    assert!(r.html.contains("s3_num_requests"));
}

#[test]
fn without_start_offsets_the_timeline_says_how_it_was_laid_out() {
    let (_dir, r) = render(
        "no-offsets",
        &SynthRun {
            offsets: false,
            ..SynthRun::default()
        },
    );
    assert_well_formed(&r);
    let t = &r.figures.iter().find(|f| f.1.id == "timeline").unwrap().1;
    assert!(t.caption.contains("laid end to end"), "{}", t.caption);
}

#[test]
fn metrics_are_computed_when_the_summary_has_none() {
    let (_dir, r) = render(
        "computed-metrics",
        &SynthRun {
            summary_accuracy: false,
            ..SynthRun::default()
        },
    );
    assert_well_formed(&r);
    assert!(r.html.contains("N = 4,800"));
}
