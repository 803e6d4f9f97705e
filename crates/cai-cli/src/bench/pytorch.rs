//! `--compare-pytorch`: hands the exact same weights and inputs to `bench/pytorch_ref.py` and
//! reads back the one JSON object it prints per run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};
use cai_model::weights::load_raw;
use cai_model::{AstroMaeConfig, WeightSource};
use safetensors::tensor::{Dtype, TensorView};

/// Writes the weights `source` resolves to (including seeded ones) as safetensors, with the
/// attention head count in the metadata since shapes cannot carry it.
pub fn export_weights(source: &WeightSource, dest: &Path) -> Result<()> {
    let raw = load_raw(source).with_context(|| format!("--model {source}: cannot load weights"))?;
    let heads = raw
        .num_heads
        .unwrap_or_else(|| AstroMaeConfig::infer(&raw).num_heads);
    let bytes: Vec<(&String, Vec<u8>, &[usize])> = raw
        .tensors
        .iter()
        .map(|(name, t)| {
            let b = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            (name, b, t.shape.as_slice())
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(name, b, shape)| {
            TensorView::new(Dtype::F32, shape.to_vec(), b)
                .map(|v| (name.to_string(), v))
                .map_err(|e| anyhow!("tensor {name}: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let meta = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        ("num_heads".to_string(), heads.to_string()),
    ]);
    safetensors::serialize_to_file(views, Some(meta), dest)
        .with_context(|| format!("writing exported weights {}", dest.display()))
}

/// Finds the reference script: the flag, then `$CAI_BENCH_DIR`, then `./bench`, then the
/// source tree relative to the executable (`target/<profile>/cai` -> `../../bench`).
pub fn locate_script(flag: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = flag {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        bail!(
            "--pytorch-script {}: no such file (--compare-pytorch needs bench/pytorch_ref.py and a Python with torch)",
            p.display()
        );
    }
    let mut tried = Vec::new();
    if let Some(dir) = std::env::var_os("CAI_BENCH_DIR") {
        tried.push(PathBuf::from(dir).join("pytorch_ref.py"));
    }
    tried.push(PathBuf::from("bench/pytorch_ref.py"));
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            tried.push(dir.join("../../bench/pytorch_ref.py"));
        }
    }
    if let Some(found) = tried.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    bail!(
        "--compare-pytorch needs the PyTorch reference script bench/pytorch_ref.py (and a Python with torch); not found at: {}; pass --pytorch-script",
        list.join(", ")
    )
}

/// How to run the reference script once.
pub struct Reference<'a> {
    /// Python interpreter.
    pub python: &'a str,
    /// `pytorch_ref.py`.
    pub script: &'a Path,
    /// Exported safetensors weights.
    pub weights: &'a Path,
    /// Partition files (the temporary one for synthetic data).
    pub inputs: &'a [PathBuf],
    /// Samples per batch.
    pub batch_size: usize,
    /// Threads.
    pub threads: usize,
    /// Folder kept for the whole comparison (the ONNX export is made once, in it).
    pub workdir: &'a Path,
}

impl Reference<'_> {
    /// Runs one warm-up plus one timed pass of `engine` (see `bench/engines.py`) in a fresh
    /// Python process; returns its JSON.
    pub fn run_once(&self, engine: &str) -> Result<serde_json::Value> {
        self.run(
            &["--mode", "bench", "--engine", engine, "--repeats", "1"],
            true,
        )
    }

    /// The machine's single-core sgemm GFLOP/s on 1088x192x768 (PyTorch's BLAS).
    pub fn sgemm(&self) -> Result<serde_json::Value> {
        self.run(&["--mode", "sgemm"], false)
    }

    fn run(&self, mode: &[&str], with_inputs: bool) -> Result<serde_json::Value> {
        let t0_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut cmd = Command::new(self.python);
        cmd.arg(self.script)
            .args(["--threads", &self.threads.to_string()])
            .args(mode)
            .arg("--workdir")
            .arg(self.workdir);
        if with_inputs {
            cmd.arg("--weights")
                .arg(self.weights)
                .arg("--input")
                .args(self.inputs)
                .args(["--batch-size", &self.batch_size.to_string()]);
        }
        let out = cmd
            .env("CAI_T0_NS", t0_ns.to_string())
            .output()
            .with_context(|| {
                format!(
                    "--python {}: cannot run {} (--compare-pytorch needs Python with torch)",
                    self.python,
                    self.script.display()
                )
            })?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = err.lines().rev().take(8).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "{} failed ({}); --compare-pytorch needs Python with torch, numpy and safetensors:\n{}",
                self.script.display(),
                out.status,
                tail.join("\n")
            );
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('{'))
            .ok_or_else(|| anyhow!("{}: printed no JSON object", self.script.display()))?;
        serde_json::from_str(line)
            .with_context(|| format!("{}: unreadable JSON output", self.script.display()))
    }
}

/// A numeric field of the script's JSON, NaN when absent.
pub fn field(v: &serde_json::Value, key: &str) -> f64 {
    v.get(key).and_then(|x| x.as_f64()).unwrap_or(f64::NAN)
}
