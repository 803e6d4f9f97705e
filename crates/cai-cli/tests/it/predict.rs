//! `cai predict` end to end on the fixture model and partitions.

use crate::common;

use common::{cai, entries, fixture};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const MODEL: &str = "model/small-vitae.safetensors";

fn expected(partition: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(fixture("model/expected.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["predictions"]["small-vitae.safetensors"][partition]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn csv_rows_match_pytorch_and_report_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pred.csv");
    let p2 = fixture("partitions/small-p2.pt");
    let st = fixture("partitions/small.safetensors");
    let (ok, stdout, stderr) = cai([
        "predict".as_ref(),
        "--model".as_ref(),
        fixture(MODEL).as_os_str(),
        "--input".as_ref(),
        p2.as_os_str(),
        st.as_os_str(),
        "--output".as_ref(),
        out.as_os_str(),
        "--batch-size".as_ref(),
        "7".as_ref(),
        "--threads".as_ref(),
        "2".as_ref(),
    ]);
    assert!(ok, "{stderr}");
    for key in ["MAE", "MSE", "Bias", "NMAD", "R^2", "outliers"] {
        assert!(stdout.contains(key), "missing {key}: {stdout}");
    }
    assert!(stdout.contains("44 samples from 2 files"), "{stdout}");
    assert!(!stderr.contains("UNTRAINED"), "{stderr}");

    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("file,row,z_pred,z_true"));
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), 24 + 20);
    let want: Vec<f64> = expected("small-p2.pt")
        .into_iter()
        .chain(expected("small.safetensors"))
        .collect();
    for (i, (row, want)) in rows.iter().zip(&want).enumerate() {
        let (file, idx) = if i < 24 { (&p2, i) } else { (&st, i - 24) };
        assert_eq!(row[0], file.display().to_string());
        assert_eq!(row[1], idx.to_string());
        let got: f64 = row[2].parse().unwrap();
        assert!(
            (got - want).abs() <= 1e-4 * want.abs().max(1.0),
            "row {i}: {got} vs {want}"
        );
        let z: f64 = row[3].parse().unwrap();
        assert!((0.0..=0.5).contains(&z));
    }
    assert_eq!(entries(dir.path()), vec!["pred.csv"]);
}

#[test]
fn parquet_untrained_seed_model_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    // A two-sample partition keeps the full-size seeded model fast.
    let part = dir.path().join("two.safetensors");
    let (ok, _, stderr) = cai([
        "data".as_ref(),
        "synth".as_ref(),
        "--out".as_ref(),
        dir.path().join("synth").as_os_str(),
        "--total-mb".as_ref(),
        "0.04".as_ref(),
        "--partition-mb".as_ref(),
        "1".as_ref(),
        "--format".as_ref(),
        "safetensors".as_ref(),
    ]);
    assert!(ok, "{stderr}");
    std::fs::rename(dir.path().join("synth/1.safetensors"), &part).unwrap();
    let out = dir.path().join("pred.parquet");
    let (ok, stdout, stderr) = cai([
        "predict".as_ref(),
        "--model".as_ref(),
        "seed:7".as_ref(),
        "--input".as_ref(),
        part.as_os_str(),
        "--output".as_ref(),
        out.as_os_str(),
        "--quiet".as_ref(),
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(
        stderr.matches("UNTRAINED MODEL (seed:7)").count(),
        2,
        "{stderr}"
    );
    assert!(stdout.contains("MAE"), "{stdout}");

    let reader =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&out).unwrap()).unwrap();
    let kv = reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .cloned()
        .unwrap();
    let get = |k: &str| kv.iter().find(|e| e.key == k).and_then(|e| e.value.clone());
    assert_eq!(get("cai.untrained").as_deref(), Some("true"));
    assert_eq!(get("cai.model").as_deref(), Some("seed:7"));
    let names: Vec<String> = reader
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["file", "row", "z_pred", "z_true"]);
    let rows: usize = reader.build().unwrap().map(|b| b.unwrap().num_rows()).sum();
    assert!((1..=3).contains(&rows), "{rows}");
}

#[test]
fn corrupt_input_names_file_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pt");
    let good = std::fs::read(fixture("partitions/small-p2.pt")).unwrap();
    std::fs::write(&bad, &good[..good.len() / 2]).unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    for name in ["pred.csv", "pred.parquet"] {
        let out = out_dir.join(name);
        let (ok, _, stderr) = cai([
            "predict".as_ref(),
            "--model".as_ref(),
            fixture(MODEL).as_os_str(),
            "--input".as_ref(),
            fixture("partitions/small-p4.pt").as_os_str(),
            bad.as_os_str(),
            "--output".as_ref(),
            out.as_os_str(),
        ]);
        assert!(!ok);
        assert!(stderr.contains("bad.pt"), "{stderr}");
        assert!(entries(&out_dir).is_empty(), "{:?}", entries(&out_dir));
    }
}

/// Writes a `rows`-sample safetensors partition with the given sample shape.
fn write_partition(path: &std::path::Path, rows: usize, shape: [usize; 3], redshifts: bool) {
    let mut w = cai_data::PartitionWriter::create(
        path,
        cai_data::Format::Safetensors,
        rows,
        shape,
        5,
        redshifts,
    )
    .unwrap();
    w.write_f32(&vec![0.5; rows * shape.iter().product::<usize>()])
        .unwrap();
    w.write_f64(&vec![18.0; rows * 5]).unwrap();
    if redshifts {
        w.write_f32(&vec![0.1; rows]).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn unlabelled_files_leave_z_true_empty() {
    let dir = tempfile::tempdir().unwrap();
    let nolabel = dir.path().join("nolabel.safetensors");
    write_partition(&nolabel, 3, [5, 32, 32], false);
    let out = dir.path().join("p.csv");
    let (ok, stdout, stderr) = cai([
        "predict".as_ref(),
        "--model".as_ref(),
        fixture(MODEL).as_os_str(),
        "--input".as_ref(),
        nolabel.as_os_str(),
        fixture("partitions/small-p4.pt").as_os_str(),
        "--output".as_ref(),
        out.as_os_str(),
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("accuracy over 20 labelled samples"),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 3 + 20);
    assert!(lines[1].ends_with(','), "{}", lines[1]);
    assert!(!lines[4].ends_with(','), "{}", lines[4]);
}

#[test]
fn shape_mismatch_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small16.safetensors");
    write_partition(&small, 2, [5, 16, 16], true);
    let (ok, _, stderr) = cai([
        "predict".as_ref(),
        "--model".as_ref(),
        fixture(MODEL).as_os_str(),
        "--input".as_ref(),
        small.as_os_str(),
        "--output".as_ref(),
        dir.path().join("p.csv").as_os_str(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("small16.safetensors") && stderr.contains("model expects"),
        "{stderr}"
    );
    assert_eq!(entries(dir.path()), vec!["small16.safetensors"]);
}
