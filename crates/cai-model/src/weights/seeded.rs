//! Seeded random weights (`seed:N`): the whole pipeline runs with nothing downloaded.
//!
//! The values follow PyTorch's default initialisation scales (uniform ±1/√fan_in for linear
//! and conv layers, unit LayerNorm, sin-cos position table) with batch-norm statistics
//! perturbed away from identity, so every code path, folding included, is exercised and
//! outputs are non-degenerate. Predictions from them mean nothing, and every output that
//! shows them says so.

use super::spec::expected_tensors;
use super::{RawTensor, RawWeights};
use crate::config::AstroMaeConfig;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Generates weights for `cfg` deterministically from `seed`.
pub fn seeded_weights(cfg: &AstroMaeConfig, seed: u64) -> RawWeights {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = RawWeights {
        num_heads: Some(cfg.num_heads),
        origin: format!("seed:{seed}"),
        untrained: true,
        ..Default::default()
    };
    let specs = expected_tensors(cfg);
    // Fan-in of every multi-axis tensor, so a bias can look up its weight's in one step.
    let fan_ins: std::collections::HashMap<String, usize> = specs
        .iter()
        .filter(|s| s.shape.len() > 1)
        .map(|s| (s.name.clone(), s.shape[1..].iter().product()))
        .collect();
    for spec in specs {
        let n: usize = spec.shape.iter().product();
        let name = spec.name.as_str();
        let data: Vec<f32> = if name == "pos_embed" {
            sincos_pos_embed(cfg.embed_dim, cfg.img_size / cfg.patch_size)
        } else if name.ends_with("running_var") {
            (0..n).map(|_| rng.random_range(0.5..1.5)).collect()
        } else if name.ends_with("running_mean") {
            (0..n).map(|_| rng.random_range(-0.1..0.1)).collect()
        } else if is_norm_weight(name) {
            (0..n).map(|_| rng.random_range(0.8..1.2)).collect()
        } else if is_norm_bias(name) {
            (0..n).map(|_| rng.random_range(-0.1..0.1)).collect()
        } else if name == "cls_token" {
            (0..n).map(|_| rng.random_range(-0.02..0.02)).collect()
        } else {
            // Weights and biases of linear/conv layers: fan-in is every axis but the first.
            let fan_in = match spec.shape.len() {
                1 => fan_in_of_bias(&fan_ins, cfg, name),
                _ => spec.shape[1..].iter().product::<usize>(),
            };
            let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
            (0..n).map(|_| rng.random_range(-bound..bound)).collect()
        };
        out.tensors.insert(
            spec.name,
            RawTensor {
                shape: spec.shape,
                data,
            },
        );
    }
    out
}

fn is_norm_weight(name: &str) -> bool {
    (name.contains("norm") || name.contains(".bn.") || name.contains("PCM.1."))
        && name.ends_with(".weight")
}

fn is_norm_bias(name: &str) -> bool {
    (name.contains("norm") || name.contains(".bn.") || name.contains("PCM.1."))
        && name.ends_with(".bias")
}

/// Biases use their layer's fan-in; `q_bias`/`v_bias` use the token width.
fn fan_in_of_bias(
    fan_ins: &std::collections::HashMap<String, usize>,
    cfg: &AstroMaeConfig,
    name: &str,
) -> usize {
    name.strip_suffix(".bias")
        .and_then(|p| fan_ins.get(&format!("{p}.weight")).copied())
        .unwrap_or(cfg.embed_dim)
}

/// The MAE 2-D sin-cos position table, `[1 + grid², dim]` with a zero class-token row.
pub fn sincos_pos_embed(dim: usize, grid: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; (1 + grid * grid) * dim];
    let quarter = dim / 4;
    for gy in 0..grid {
        for gx in 0..grid {
            let row = &mut out[(1 + gy * grid + gx) * dim..(2 + gy * grid + gx) * dim];
            // First half encodes the x (column) coordinate, second half y, as MAE does.
            for (half, pos) in [(0, gx as f64), (1, gy as f64)] {
                for i in 0..quarter {
                    let omega = 1.0 / 10000f64.powf(i as f64 / quarter as f64);
                    row[half * 2 * quarter + i] = (pos * omega).sin() as f32;
                    row[half * 2 * quarter + quarter + i] = (pos * omega).cos() as f32;
                }
            }
        }
    }
    out
}
