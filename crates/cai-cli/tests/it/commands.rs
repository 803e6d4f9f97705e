//! `cai bench`, `cai data` and flag/input errors.

use crate::common;

use common::{cai, entries, fixture};

#[test]
fn bench_json_has_required_keys() {
    let (ok, stdout, stderr) = cai([
        "bench",
        "--model",
        fixture("model/small-vitae.safetensors").to_str().unwrap(),
        "--synthetic",
        "16",
        "--batch-size",
        "8",
        "--repeats",
        "1",
        "--threads",
        "2",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    let num = |k: &str| v[k].as_f64().unwrap_or_else(|| panic!("{k} missing: {v}"));
    assert!(num("samples_per_sec") > 0.0);
    assert!(num("cpu_ms_per_sample") > 0.0);
    assert!(num("peak_rss_mb") > 1.0 && num("peak_rss_mb") < 4096.0);
    assert!(num("first_prediction_ms") > 0.0);
    assert!(num("first_prediction_ms") >= num("model_load_ms"));
    assert_eq!(v["batch_size"], 8);
    assert_eq!(v["threads"], 2);
    assert_eq!(v["samples"], 16);
    assert_eq!(v["per_pass_samples_per_sec"].as_array().unwrap().len(), 1);
    assert_eq!(v["model"]["parameters"], 378_377);
    assert_eq!(v["model"]["untrained"], false);
    assert!(v["cpu"]["model"].is_string());
    assert!(v["cpu"]["avx2"].is_boolean() && v["cpu"]["avx512f"].is_boolean());
    assert!(v.get("pytorch").is_none());
}

#[test]
fn bench_compare_pytorch_without_script_fails_clearly() {
    let (ok, _, stderr) = cai([
        "bench",
        "--model",
        fixture("model/small-vitae.safetensors").to_str().unwrap(),
        "--synthetic",
        "4",
        "--compare-pytorch",
        "--pytorch-script",
        "/nonexistent/pytorch_ref.py",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("/nonexistent/pytorch_ref.py") && stderr.contains("torch"),
        "{stderr}"
    );
}

#[test]
fn data_synth_split_convert_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let synth = dir.path().join("synth");
    let (ok, stdout, stderr) = cai([
        "data",
        "synth",
        "--out",
        synth.to_str().unwrap(),
        "--total-mb",
        "0.5",
        "--partition-mb",
        "0.25",
        "--seed",
        "3",
    ]);
    assert!(ok, "{stderr}");
    // 0.25 MiB holds 12 samples of 20.5 KiB; 0.5 MiB is 26 samples.
    assert!(stdout.contains("wrote 3 file(s), 26 samples"), "{stdout}");
    assert_eq!(entries(&synth), vec!["1.pt", "2.pt", "3.pt"]);
    let first = cai_data::Partition::open(&synth.join("1.pt")).unwrap();
    let rows = first.len();

    let split = dir.path().join("split");
    let (ok, stdout, stderr) = cai([
        "data",
        "split",
        synth.join("1.pt").to_str().unwrap(),
        "--out",
        split.to_str().unwrap(),
        "--partition-mb",
        "0.1",
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains(&format!("{rows} samples")), "{stdout}");
    let parts = entries(&split);
    assert!(parts.len() >= 2, "{parts:?}");

    let st = dir.path().join("one.safetensors");
    let (ok, stdout, stderr) = cai([
        "data",
        "convert",
        split.join("1.pt").to_str().unwrap(),
        st.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("wrote 1 file(s)"), "{stdout}");
    let back = dir.path().join("back.pt");
    let (ok, _, stderr) = cai([
        "data",
        "convert",
        st.to_str().unwrap(),
        back.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");

    let read = |p: &std::path::Path| {
        let part = cai_data::Partition::open(p).unwrap();
        let mut b = cai_data::Batch::default();
        part.read_batch(0..part.len(), &mut b).unwrap();
        b
    };
    let original = read(&split.join("1.pt"));
    assert_eq!(read(&st), original);
    assert_eq!(read(&back), original);
    let whole = read(&synth.join("1.pt"));
    assert_eq!(original.images[..], whole.images[..original.images.len()]);
}

#[test]
fn bad_flags_and_inputs_are_explained() {
    let model = fixture("model/small-vitae.safetensors");
    let input = fixture("partitions/small-p4.pt");
    let (m, i) = (model.to_str().unwrap(), input.to_str().unwrap());
    let cases: &[(&[&str], &[&str])] = &[
        (
            &[
                "predict", "--model", "seed:abc", "--input", i, "--output", "x.csv",
            ],
            &["seed:abc", "seed:N"],
        ),
        (
            &[
                "predict",
                "--model",
                m,
                "--input",
                "/no/such.pt",
                "--output",
                "x.csv",
            ],
            &["/no/such.pt", "No such file"],
        ),
        (
            &[
                "predict",
                "--model",
                "/no/model.safetensors",
                "--input",
                i,
                "--output",
                "x.csv",
            ],
            &["--model", "/no/model.safetensors"],
        ),
        (
            &[
                "predict", "--model", m, "--input", i, "--output", "out.json",
            ],
            &["--output", "out.json", ".csv or .parquet"],
        ),
        (
            &[
                "predict",
                "--model",
                m,
                "--input",
                i,
                "--output",
                "x.csv",
                "--batch-size",
                "0",
            ],
            &["--batch-size", "positive"],
        ),
        (
            &["bench", "--model", m, "--synthetic", "4", "--input", i],
            &["--synthetic", "--input"],
        ),
        (
            &["data", "convert", i, "/tmp/out.txt"],
            &["out.txt", ".safetensors"],
        ),
    ];
    for (args, needles) in cases {
        let (ok, _, stderr) = cai(*args);
        assert!(!ok, "{args:?} succeeded");
        for n in *needles {
            assert!(stderr.contains(n), "{args:?}: {n:?} not in {stderr}");
        }
    }
    assert!(!std::path::Path::new("x.csv").exists());
}

#[test]
fn help_documents_every_flag() {
    for cmd in [
        &["predict"][..],
        &["bench"],
        &["data", "synth"],
        &["data", "split"],
    ] {
        let mut args = cmd.to_vec();
        args.push("-h");
        let (ok, stdout, _) = cai(&args);
        assert!(ok);
        let options: Vec<&str> = stdout
            .lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with('-'))
            .collect();
        assert!(options.len() >= 3, "{stdout}");
        for line in options {
            let doc = line.split_once("  ").map(|(_, d)| d.trim());
            assert!(
                doc.is_some_and(|d| !d.is_empty()),
                "{cmd:?}: undocumented {line}"
            );
        }
    }
}
