//! Helpers for the `cai run` integration tests: a temporary store with tiny synthetic
//! partitions, payloads, running the workflow, and the "every planned sample exactly once"
//! check read straight from the Parquet predictions.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use arrow::array::{Array, Float32Array, StringArray, UInt64Array};
use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{json, Value};

/// The bucket holding partitions, weights and results.
pub const BUCKET: &str = "cosmicai-data";
/// Key prefix of the partitions.
pub const PREFIX: &str = "parts";
/// The fixture model's key in the store (small, so runs take well under a second a rank).
pub const MODEL_KEY: &str = "models/small-vitae.safetensors";
/// Bytes per sample of a synthetic partition.
const SAMPLE_BYTES: f64 = 20_524.0;
const MIB: f64 = 1_048_576.0;

/// The 10 keys of the original's `<rank>.json`.
pub const ORIGINAL_KEYS: [&str; 10] = [
    "total_cpu_time (seconds)",
    "total_cpu_memory (MB)",
    "execution_time (seconds/batch)",
    "num_batches",
    "batch_size",
    "device",
    "throughput_bps",
    "sample_persec",
    "result_path",
    "data_path",
];

/// What one `cai` invocation did.
#[derive(Debug)]
pub struct Out {
    /// Exit status (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Out {
    /// Panics with the whole output unless the exit status is `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit status {} (want {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// Runs the built `cai` with `args` and optional extra environment.
pub fn cai(args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cai"));
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env_remove("CAI_FAULT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run cai");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// MiB holding `samples` synthetic samples.
fn mb_for(samples: usize) -> f64 {
    samples as f64 * SAMPLE_BYTES / MIB
}

/// Writes `files` synthetic partitions `1.pt..` of `per_file` samples each into `out`.
pub fn synth_into(out: &Path, files: usize, per_file: usize, seed: u64) {
    let total = format!("{:.9}", mb_for(files * per_file));
    // floor() in synth: a hair over keeps exactly `per_file` samples a file.
    let part = format!("{:.9}", mb_for(per_file) * 1.0005);
    let seed = seed.to_string();
    let o = cai(
        &[
            "data",
            "synth",
            "--out",
            out.to_str().unwrap(),
            "--total-mb",
            &total,
            "--partition-mb",
            &part,
            "--seed",
            &seed,
            "-q",
        ],
        &[],
    );
    o.expect_code(0);
    for k in 1..=files {
        let p = out.join(format!("{k}.pt"));
        let n = cai_data::Partition::open(&p).unwrap().len();
        assert_eq!(n, per_file, "{}", p.display());
    }
    assert!(!out.join(format!("{}.pt", files + 1)).exists());
}

/// Every file below `dir` (relative paths), sorted; empty when `dir` is missing.
pub fn walk(dir: &Path) -> BTreeSet<PathBuf> {
    fn go(root: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                go(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = BTreeSet::new();
    go(dir, dir, &mut out);
    out
}

/// Reads a JSON file, naming it on failure.
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One prediction row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Partition key.
    pub file: String,
    /// Row within the partition.
    pub row: u64,
    /// Prediction.
    pub z_pred: f32,
    /// Label, when the partition has one.
    pub z_true: Option<f32>,
}

/// Reads a predictions Parquet file with the arrow reader, checking its schema.
pub fn read_predictions(path: &Path) -> Vec<Row> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let schema = builder.schema().clone();
    let types: Vec<(String, DataType, bool)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone(), f.is_nullable()))
        .collect();
    assert_eq!(
        types,
        [
            ("file".to_string(), DataType::Utf8, false),
            ("row".to_string(), DataType::UInt64, false),
            ("z_pred".to_string(), DataType::Float32, false),
            ("z_true".to_string(), DataType::Float32, true),
        ],
        "{}",
        path.display()
    );
    let mut rows = Vec::new();
    for batch in builder.build().unwrap() {
        let batch = batch.unwrap();
        let col = |i: usize| batch.column(i).clone();
        let (f, r, z, t) = (col(0), col(1), col(2), col(3));
        let f = f.as_any().downcast_ref::<StringArray>().unwrap();
        let r = r.as_any().downcast_ref::<UInt64Array>().unwrap();
        let z = z.as_any().downcast_ref::<Float32Array>().unwrap();
        let t = t.as_any().downcast_ref::<Float32Array>().unwrap();
        for i in 0..batch.num_rows() {
            rows.push(Row {
                file: f.value(i).to_string(),
                row: r.value(i),
                z_pred: z.value(i),
                z_true: (!t.is_null(i)).then(|| t.value(i)),
            });
        }
    }
    rows
}

/// The DATA_PATH of a plan rank as a list of keys.
pub fn data_path_keys(v: &Value) -> Vec<String> {
    match v {
        Value::Null => Vec::new(),
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|k| k.as_str().unwrap().to_string()).collect(),
        other => panic!("DATA_PATH {other}"),
    }
}

/// `(attempt, outcome)` of every inference invocation of `rank`, by attempt.
pub fn infer_invocations(summary: &Value, rank: u64) -> Vec<(u64, String)> {
    let mut v: Vec<(u64, String)> = summary["execution"]["invocations"]
        .as_array()
        .expect("summary.execution.invocations")
        .iter()
        .filter(|i| i["handler"] == "infer" && i["rank"] == rank)
        .map(|i| {
            (
                i["attempt"].as_u64().unwrap(),
                i["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// The failed rank `rank` in summary.failed_ranks.
pub fn failed_rank(summary: &Value, rank: u64) -> Value {
    summary["failed_ranks"]
        .as_array()
        .expect("summary.failed_ranks")
        .iter()
        .find(|f| f["rank"] == rank)
        .unwrap_or_else(|| {
            panic!(
                "rank {rank} not in failed_ranks: {}",
                summary["failed_ranks"]
            )
        })
        .clone()
}

/// A temporary store with synthetic partitions and the fixture model.
pub struct Env {
    /// Holds `store/`, `scratch/` and the payload files.
    pub dir: tempfile::TempDir,
}

impl Env {
    /// `files` partitions of `per_file` samples under `cosmicai-data/parts/`, plus the
    /// fixture model at [`MODEL_KEY`].
    pub fn new(files: usize, per_file: usize) -> Env {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(env.scratch()).unwrap();
        synth_into(&env.bucket().join(PREFIX), files, per_file, 7);
        let model = env.bucket().join(MODEL_KEY);
        std::fs::create_dir_all(model.parent().unwrap()).unwrap();
        std::fs::copy(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../fixtures/model/small-vitae.safetensors"),
            &model,
        )
        .unwrap();
        env
    }

    /// The store root (`--store`).
    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// Scratch for the handlers (CAI_SCRATCH).
    pub fn scratch(&self) -> PathBuf {
        self.dir.path().join("scratch")
    }

    /// The data bucket's folder.
    pub fn bucket(&self) -> PathBuf {
        self.store().join(BUCKET)
    }

    /// A partition file by number.
    pub fn partition(&self, n: usize) -> PathBuf {
        self.bucket().join(PREFIX).join(format!("{n}.pt"))
    }

    /// The results folder of a result path.
    pub fn results(&self, result_path: &str) -> PathBuf {
        self.bucket().join(result_path)
    }

    /// A payload in the original's shape plus `extra` (cai's fields, or overrides).
    pub fn payload(&self, result_path: &str, extra: Value) -> Value {
        let mut p = json!({
            "bucket": BUCKET,
            "batch_size": 4,
            "object_type": "folder",
            "S3_object_name": "Anomaly Detection",
            "script": "/tmp/Anomaly Detection/Inference/inference.py",
            "result_path": result_path,
            "data_bucket": BUCKET,
            "data_prefix": PREFIX,
            "model": format!("{BUCKET}/{MODEL_KEY}"),
            "retry": {"max_attempts": 2, "interval_seconds": 1, "jitter": "NONE"},
        });
        for (k, v) in extra.as_object().expect("extra is an object") {
            if v.is_null() {
                p.as_object_mut().unwrap().remove(k);
            } else {
                p[k] = v.clone();
            }
        }
        p
    }

    /// Writes `text` as a payload file (outside the store) and returns its path.
    pub fn payload_file(&self, text: &str) -> PathBuf {
        let path = self.dir.path().join("payload.json");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `cai run` of a payload file with two invocations at a time, one thread each.
    pub fn run_file(&self, payload: &Path, extra: &[&str], fault: Option<&str>) -> Out {
        let store = self.store();
        let scratch = self.scratch();
        let mut args = vec![
            "run",
            payload.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
            "--concurrency",
            "2",
            "--threads",
            "1",
            "-q",
        ];
        args.extend_from_slice(extra);
        let mut env = vec![("CAI_SCRATCH", scratch.to_str().unwrap())];
        if let Some(f) = fault {
            env.push(("CAI_FAULT", f));
        }
        cai(&args, &env)
    }

    /// `cai run` of a payload value.
    pub fn run(&self, payload: &Value, extra: &[&str], fault: Option<&str>) -> Out {
        let path = self.payload_file(&serde_json::to_string_pretty(payload).unwrap());
        self.run_file(&path, extra, fault)
    }

    /// `<result_path>/<name>` parsed.
    pub fn json(&self, result_path: &str, name: &str) -> Value {
        read_json(&self.results(result_path).join(name))
    }

    /// Samples in a stored partition key.
    pub fn rows_of(&self, key: &str) -> u64 {
        cai_data::Partition::open(&self.bucket().join(key))
            .unwrap_or_else(|e| panic!("{key}: {e}"))
            .len() as u64
    }

    /// Checks that the run under `result_path` succeeded and predicted every planned
    /// sample exactly once: the (file, row) pairs across all `predictions/<rank>.parquet`
    /// are exactly the rows of the planned partition files, each rank predicted only its own
    /// files, and summary.json, combined_data.json and the per-rank results agree on the
    /// counts. Returns the predictions keyed by (file, row).
    pub fn assert_every_sample_once(&self, result_path: &str) -> BTreeMap<(String, u64), f32> {
        let res = self.results(result_path);
        let plan = self.json(result_path, "plan.json");
        let summary = self.json(result_path, "summary.json");
        let combined = self.json(result_path, "combined_data.json");

        let mut expected: BTreeSet<(String, u64)> = BTreeSet::new();
        let files: Vec<String> = plan["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect();
        for key in &files {
            for r in 0..self.rows_of(key) {
                expected.insert((key.clone(), r));
            }
        }
        assert!(!expected.is_empty());

        let mut seen: BTreeMap<(String, u64), (u64, f32)> = BTreeMap::new();
        let mut with_data = Vec::new();
        // The plan keeps files and world size; the rank payloads are the Map's items.
        assert!(plan.get("ranks").is_none(), "plan.json lists no ranks");
        let items = self.json(result_path, "items.json");
        let items = items.as_array().expect("items.json is a JSON array");
        assert_eq!(Some(items.len() as u64), plan["world_size"].as_u64());
        for rp in items {
            let rank: u64 = rp["RANK"].as_str().unwrap().parse().unwrap();
            let keys = data_path_keys(&rp["DATA_PATH"]);
            if keys.is_empty() {
                continue;
            }
            with_data.push(rank);
            let rows = read_predictions(&res.join(format!("predictions/{rank}.parquet")));
            for r in &rows {
                assert!(
                    keys.contains(&r.file),
                    "rank {rank} predicted {} which is not in its DATA_PATH {keys:?}",
                    r.file
                );
                assert!(r.z_pred.is_finite(), "rank {rank}: {r:?}");
                assert!(r.z_true.is_some(), "synthetic data is labelled: {r:?}");
                if let Some((other, _)) = seen.insert((r.file.clone(), r.row), (rank, r.z_pred)) {
                    panic!(
                        "{} row {} predicted twice (ranks {other} and {rank})",
                        r.file, r.row
                    );
                }
            }
            let result = self.json(result_path, &format!("{rank}.json"));
            let own: u64 = keys.iter().map(|k| self.rows_of(k)).sum();
            assert_eq!(rows.len() as u64, own, "rank {rank}: rows of its files");
            assert_eq!(result["samples"], own, "rank {rank}: {result}");
            assert_eq!(result["predictions"]["rows"], own, "rank {rank}: {result}");
            assert_eq!(result["rank"], rank);
            assert_eq!(result["data_path"], rp["DATA_PATH"], "rank {rank}");
        }
        let got: BTreeSet<(String, u64)> = seen.keys().cloned().collect();
        let missing: Vec<_> = expected.difference(&got).take(5).collect();
        let extra: Vec<_> = got.difference(&expected).take(5).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "missing {missing:?}, unplanned {extra:?}"
        );

        // Only the ranks with data have a predictions file; nothing half-written is left.
        let want_files: BTreeSet<PathBuf> = with_data
            .iter()
            .map(|r| PathBuf::from(format!("{r}.parquet")))
            .collect();
        assert_eq!(walk(&res.join("predictions")), want_files);
        for f in walk(&res) {
            assert!(
                !f.to_string_lossy().contains('#'),
                "staging file left behind: {}",
                f.display()
            );
        }

        let total = expected.len() as u64;
        assert_eq!(summary["status"], "succeeded", "{summary}");
        assert_eq!(summary["totals"]["samples"], total, "{}", summary["totals"]);
        assert_eq!(summary["ranks"]["failed"], 0);
        assert_eq!(
            summary["ranks"]["succeeded"],
            with_data.len() as u64,
            "{}",
            summary["ranks"]
        );
        assert_eq!(
            summary["failed_ranks"].as_array().map(Vec::len),
            Some(0),
            "{}",
            summary["failed_ranks"]
        );
        assert_eq!(summary["accuracy"]["count"], total);
        let combined = combined.as_array().expect("combined_data.json is an array");
        let ranks: Vec<u64> = combined
            .iter()
            .map(|r| r["rank"].as_u64().unwrap())
            .collect();
        assert_eq!(
            ranks, with_data,
            "combined_data.json: one entry per rank, in order"
        );
        let sum: u64 = combined
            .iter()
            .map(|r| r["samples"].as_u64().unwrap())
            .sum();
        assert_eq!(sum, total);
        seen.into_iter().map(|(k, (_, z))| (k, z)).collect()
    }
}
