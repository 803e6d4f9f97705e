//! Writes result folders shaped exactly like cai's (rank results, Parquet predictions through
//! cai-data's writer, combined_data.json, summary.json with the execution record, plan.json)
//! without running any rank: how the tests get a 10,000-rank run, a run with failures and
//! retries, or a "trained" run whose predictions look like a real model's.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use cai_data::{PredictionMeta, PredictionWriter};
use cai_workflow::cost::{performance_row, InvocationStat};
use cai_workflow::plan::make_plan;
use cai_workflow::rank::DataPath;
use cai_workflow::result::{FileCount, PredictionsRef, RankResult, S3Timing, Timings};
use cai_workflow::settings::Architecture;
use cai_workflow::summary::{
    AccuracyReport, ExecutionRecord, FailedRank, RankCounts, Summary, Totals,
};
use cai_workflow::Payload;

/// Deterministic numbers (splitmix64).
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-12);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// What to write.
#[derive(Debug, Clone)]
pub struct SynthRun {
    /// Ranks (one partition each).
    pub ranks: u64,
    /// Samples per rank.
    pub samples: usize,
    /// Partitions carry true redshifts.
    pub truth: bool,
    /// Seeded weights (predictions random) rather than a "trained" model.
    pub untrained: bool,
    /// The execution record has start offsets; `Some(k)`: k local worker slots, `None`:
    /// one container per invocation (AWS).
    pub slots: Option<u64>,
    /// Record start offsets in the execution record.
    pub offsets: bool,
    /// Ranks whose first attempt fails and second succeeds.
    pub retried: Vec<u64>,
    /// Ranks that fail both attempts.
    pub failed: Vec<u64>,
    /// Ranks record S3 timing keys.
    pub s3: bool,
    /// Distinct predictions files written through cai-data's writer; ranks beyond reuse
    /// them (copies), so 10,000 ranks cost 10,000 copies, not 10,000 fsyncs.
    pub distinct_predictions: usize,
    /// Partition prefix.
    pub data_prefix: String,
    /// Samples per second of a rank's inference.
    pub rate: f64,
    /// Include `summary.accuracy` (Summarize's exact metrics).
    pub summary_accuracy: bool,
    /// Seed.
    pub seed: u64,
}

impl Default for SynthRun {
    fn default() -> Self {
        SynthRun {
            ranks: 12,
            samples: 400,
            truth: true,
            untrained: false,
            slots: Some(2),
            offsets: true,
            retried: vec![],
            failed: vec![],
            s3: false,
            distinct_predictions: 64,
            data_prefix: "100MB".into(),
            rate: 210.0,
            summary_accuracy: true,
            seed: 7,
        }
    }
}

/// A true redshift: skewed low, 0 to about 0.6, as the SDSS set.
fn true_z(rng: &mut Rng) -> f64 {
    (0.02 + 0.5 * rng.unit().powf(1.7) + 0.02 * rng.normal()).clamp(0.001, 0.65)
}

/// A prediction: a trained model's spread (σ_NMAD ~ 0.012, ~1.5 % outliers) or noise.
fn pred_z(rng: &mut Rng, z: f64, untrained: bool) -> f64 {
    if untrained {
        return 0.12 + 0.03 * rng.normal();
    }
    if rng.unit() < 0.015 {
        return 0.6 * rng.unit();
    }
    z + (0.003 + 0.012 * rng.normal()) * (1.0 + z)
}

const BUCKET_MODEL: &str = "models/astromae.safetensors";
const PARTITION_BYTES: u64 = 104_857_600;

/// Metrics as Summarize computes them (exact median).
fn exact_metrics(pairs: &[(f64, f64)]) -> AccuracyReport {
    let n = pairs.len() as f64;
    let dz: Vec<f64> = pairs.iter().map(|(p, t)| (p - t) / (1.0 + t)).collect();
    let mean_t = pairs.iter().map(|p| p.1).sum::<f64>() / n;
    let ss_tot: f64 = pairs.iter().map(|p| (p.1 - mean_t).powi(2)).sum();
    let ss_res: f64 = pairs.iter().map(|(p, t)| (p - t).powi(2)).sum();
    let med = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let m = med(dz.clone());
    AccuracyReport {
        count: pairs.len() as u64,
        mae: pairs.iter().map(|(p, t)| (p - t).abs()).sum::<f64>() / n,
        mse: ss_res / n,
        bias: dz.iter().sum::<f64>() / n,
        nmad: 1.48 * med(dz.iter().map(|d| (d - m).abs()).collect()),
        r2: 1.0 - ss_res / ss_tot,
        outlier_fraction: dz.iter().filter(|d| d.abs() > 0.15).count() as f64 / n,
    }
}

impl SynthRun {
    /// Writes the run under `<store>/<bucket>/<result_path>/`; returns that folder.
    pub fn write(&self, store: &Path, bucket: &str, result_path: &str) -> PathBuf {
        let dir = store.join(bucket).join(result_path);
        std::fs::create_dir_all(dir.join("predictions")).unwrap();
        let mut rng = Rng::new(self.seed);
        let model = if self.untrained {
            "seed:0".to_string()
        } else {
            format!("{bucket}/{BUCKET_MODEL}")
        };
        let files: Vec<String> = (1..=self.ranks)
            .map(|k| format!("{}/{k}.pt", self.data_prefix))
            .collect();
        let payload = Payload::parse(
            &serde_json::json!({
                "bucket": bucket, "S3_object_name": "Anomaly Detection", "batch_size": 512,
                "result_path": result_path, "data_bucket": bucket,
                "data_prefix": self.data_prefix, "model": model,
                "world_size": self.ranks, "memory_mb": 2048
            })
            .to_string(),
        )
        .unwrap();
        let plan = make_plan(&payload, &files).unwrap();
        std::fs::write(
            dir.join("plan.json"),
            serde_json::to_vec_pretty(&plan).unwrap(),
        )
        .unwrap();

        // Predictions: a few distinct files through the writer, copied for the rest.
        let mut pairs: Vec<(f64, f64)> = Vec::new();
        let distinct = self.distinct_predictions.max(1).min(self.ranks as usize);
        let meta = PredictionMeta {
            model: model.clone(),
            untrained: self.untrained,
        };
        let mut per_file: Vec<Vec<(f64, f64)>> = Vec::new();
        for (k, file) in files.iter().enumerate().take(distinct) {
            let path = dir.join(format!("predictions/template-{k}.parquet"));
            let mut w = PredictionWriter::create(&path, &meta, self.truth).unwrap();
            let mut zt = Vec::with_capacity(self.samples);
            let mut zp = Vec::with_capacity(self.samples);
            let mut these = Vec::new();
            for _ in 0..self.samples {
                let t = true_z(&mut rng);
                let p = pred_z(&mut rng, t, self.untrained);
                zt.push(t as f32);
                zp.push(p as f32);
                these.push((p as f32 as f64, t as f32 as f64));
            }
            w.write_batch(file, 0, &zp, self.truth.then_some(&zt[..]))
                .unwrap();
            w.finish().unwrap();
            per_file.push(these);
        }

        // Ranks, invocations and results.
        let mut invocations = vec![InvocationStat {
            handler: "init".into(),
            rank: None,
            attempt: 1,
            outcome: "ok".into(),
            wall_seconds: 0.35,
            billed_ms: 350,
            cpu_seconds: 0.05,
            peak_rss_mb: 17.0,
            started_seconds: self.offsets.then_some(0.0),
            worker: self.slots.map(|_| 0),
            cold: Some(true),
        }];
        let slots = self.slots.unwrap_or(self.ranks).max(1) as usize;
        let mut free = vec![0.45f64; slots];
        let mut results = Vec::new();
        let mut failed = Vec::new();
        let mut samples_total = 0u64;
        for r in 0..self.ranks {
            let fails = if self.failed.contains(&r) {
                2
            } else if self.retried.contains(&r) {
                1
            } else {
                0
            };
            let rate = self.rate * (1.0 + 0.06 * rng.normal()).max(0.5);
            let inference = self.samples as f64 / rate;
            let timings = Timings {
                model_load: 0.25 + 0.05 * rng.unit(),
                fetch: 0.3 + 0.3 * rng.unit(),
                inference,
                write: 0.04 + 0.02 * rng.unit(),
                model_cached: false,
            };
            let wall = timings.model_load + timings.fetch + inference + timings.write + 0.02;
            for attempt in 1..=(fails + 1).min(2) {
                let ok = attempt > fails;
                let slot = (0..slots)
                    .min_by(|&a, &b| free[a].total_cmp(&free[b]))
                    .unwrap();
                let start = free[slot] + if attempt > 1 { 1.0 } else { 0.0 };
                let w = if ok { wall } else { 0.4 * wall };
                free[slot] = start + w + 0.01;
                invocations.push(InvocationStat {
                    handler: "infer".into(),
                    rank: Some(r),
                    attempt: attempt as u32,
                    outcome: if ok {
                        "ok".into()
                    } else {
                        "Runtime.ExitError".into()
                    },
                    wall_seconds: w,
                    billed_ms: (w * 1000.0).ceil() as u64,
                    cpu_seconds: w * 0.97,
                    peak_rss_mb: 119.0 + 6.0 * rng.unit(),
                    started_seconds: self.offsets.then_some(start),
                    worker: self.slots.map(|_| slot as u64),
                    cold: Some(attempt == 1),
                });
                if !ok && attempt == 2 {
                    failed.push(FailedRank {
                        rank: r,
                        data_path: DataPath::One(files[r as usize].clone()),
                        error: "Runtime.ExitError".into(),
                        cause: "process exited with signal 9 (SIGKILL)".into(),
                        attempts: 2,
                    });
                    invocations.push(InvocationStat {
                        handler: "failure".into(),
                        rank: Some(r),
                        attempt: 1,
                        outcome: "ok".into(),
                        wall_seconds: 0.05,
                        billed_ms: 50,
                        cpu_seconds: 0.01,
                        peak_rss_mb: 15.0,
                        started_seconds: self.offsets.then_some(free[slot]),
                        worker: self.slots.map(|_| slot as u64),
                        cold: Some(false),
                    });
                    free[slot] += 0.06;
                }
            }
            if fails >= 2 {
                continue;
            }
            let k = r as usize % distinct;
            let key = format!("{result_path}/predictions/{r}.parquet");
            std::fs::copy(
                dir.join(format!("predictions/template-{k}.parquet")),
                store.join(bucket).join(&key),
            )
            .unwrap();
            pairs.extend_from_slice(&per_file[k]);
            samples_total += self.samples as u64;
            let bits = self.samples as u64 * (5 * 32 * 32 * 32 + 5 * 64);
            let started_at =
                1_764_500_000.0 + invocations.last().unwrap().started_seconds.unwrap_or(0.0);
            let s3 = if self.s3 {
                let n = 3 + (r % 3);
                let total = 0.4 + 0.3 * rng.unit();
                S3Timing {
                    s3_num_requests: n,
                    s3_total_time: total,
                    s3_avg_time: total / n as f64,
                    s3_min_time: 0.02,
                    s3_max_time: total * 0.6,
                    s3_first_request_time: started_at + 0.01,
                    s3_last_response_time: started_at + wall - 0.01,
                }
            } else {
                S3Timing::default()
            };
            results.push(RankResult {
                total_cpu_time: inference * 0.98,
                total_cpu_memory: 121.0,
                execution_time: inference / (self.samples as f64 / 512.0).ceil(),
                num_batches: (self.samples as u64).div_ceil(512),
                batch_size: 512,
                device: "cpu".into(),
                throughput_bps: bits as f64 / inference,
                sample_persec: rate,
                result_path: result_path.into(),
                data_path: DataPath::One(files[r as usize].clone()),
                rank: r,
                world_size: self.ranks,
                samples: self.samples as u64,
                bits,
                files: vec![FileCount {
                    key: files[r as usize].clone(),
                    samples: self.samples as u64,
                    bytes: PARTITION_BYTES,
                    modified_ms: 1_764_400_000_000,
                }],
                wall_seconds: wall,
                timings,
                peak_rss_mb: invocations.last().unwrap().peak_rss_mb,
                threads: 1,
                precision: Default::default(),
                slurm_job_id: None,
                slurm_array_job_id: None,
                slurm_array_task_id: None,
                slurm_node: None,
                attempts: fails + 1,
                model: model.clone(),
                untrained: self.untrained,
                predictions: PredictionsRef {
                    bucket: bucket.into(),
                    key,
                    format: "parquet".into(),
                    rows: self.samples as u64,
                    with_truth: self.truth,
                },
                errors: if fails > 0 {
                    vec!["attempt 1: Runtime.ExitError".into()]
                } else {
                    vec![]
                },
                run_id: "synth".into(),
                cai_version: "0.1.0".into(),
                started_unix: if self.offsets { started_at } else { 0.0 },
                s3,
            });
        }
        for k in 0..distinct {
            std::fs::remove_file(dir.join(format!("predictions/template-{k}.parquet"))).unwrap();
        }
        let end = free.iter().copied().fold(0.0, f64::max) + 0.05;
        invocations.push(InvocationStat {
            handler: "summarize".into(),
            rank: None,
            attempt: 1,
            outcome: "ok".into(),
            wall_seconds: 0.3,
            billed_ms: 300,
            cpu_seconds: 0.2,
            peak_rss_mb: 19.0,
            started_seconds: self.offsets.then_some(end),
            worker: self.slots.map(|_| 0),
            cold: Some(false),
        });
        let duration = end + 0.35;
        let transitions = self.ranks + 5;
        let perf = performance_row(
            self.ranks,
            &self.data_prefix,
            &invocations,
            2048,
            Architecture::X86_64,
            transitions,
        );
        for r in &results {
            std::fs::write(
                dir.join(format!("{}.json", r.rank)),
                serde_json::to_vec_pretty(r).unwrap(),
            )
            .unwrap();
        }
        std::fs::write(
            dir.join("combined_data.json"),
            serde_json::to_vec_pretty(&results).unwrap(),
        )
        .unwrap();
        let summary = Summary {
            run_id: "synth".into(),
            status: if failed.is_empty() {
                "succeeded"
            } else {
                "partial"
            }
            .into(),
            data_bucket: bucket.into(),
            result_path: result_path.into(),
            ranks: RankCounts {
                planned: self.ranks,
                empty: 0,
                succeeded: results.len() as u64,
                resumed: 0,
                failed: failed.len() as u64,
            },
            totals: Totals {
                samples: samples_total,
                planned_files: self.ranks * self.samples as u64,
                bits: results.iter().map(|r| r.bits).sum(),
                inference_seconds: results.iter().map(|r| r.timings.inference).sum(),
                rank_wall_seconds: results.iter().map(|r| r.wall_seconds).sum(),
                cpu_seconds: results.iter().map(|r| r.total_cpu_time).sum(),
                max_peak_rss_mb: results.iter().map(|r| r.peak_rss_mb).fold(0.0, f64::max),
                samples_per_inference_second: results.iter().map(|r| r.sample_persec).sum(),
            },
            accuracy: (self.truth && self.summary_accuracy && !pairs.is_empty())
                .then(|| exact_metrics(&pairs)),
            untrained: self.untrained,
            precision: Default::default(),
            failed_ranks: failed,
            map_error: None,
            execution: Some(ExecutionRecord {
                name: "cai-synth".into(),
                status: "SUCCEEDED".into(),
                error: None,
                cause: None,
                state_transitions: transitions,
                start: "2025-11-30T10:00:00.000Z".into(),
                end: "2025-11-30T10:05:00.000Z".into(),
                duration_seconds: duration,
                invocations,
                largest_state_bytes: Some(800),
                throttled: Some(0),
                cluster: None,
            }),
            performance: vec![perf],
        };
        std::fs::write(
            dir.join("summary.json"),
            serde_json::to_vec_pretty(&summary).unwrap(),
        )
        .unwrap();
        dir
    }
}

/// The store folder of the original CAI's result fixtures.
pub fn original_fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/report/original")
}

/// Every URL-looking reference in `html` that would load something: `src=`/`href=` other
/// than in-page anchors, `url(`, `@import`, and any `http(s)://`.
pub fn external_references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    let lower = html.to_ascii_lowercase();
    for pat in [
        "http://", "https://", "url(", "@import", "src=", "//cdn", "<script", "<link",
    ] {
        let mut from = 0;
        while let Some(i) = lower[from..].find(pat) {
            let at = from + i;
            found.push(html[at..(at + 60).min(html.len())].to_string());
            from = at + pat.len();
        }
    }
    let mut from = 0;
    while let Some(i) = lower[from..].find("href=\"") {
        let at = from + i + 6;
        if !lower[at..].starts_with('#') {
            found.push(html[at - 6..(at + 40).min(html.len())].to_string());
        }
        from = at;
    }
    found
}
