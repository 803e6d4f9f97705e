//! The cai configurations one `cai bench` run measures side by side: every requested
//! precision at every requested ISA level, each with its own predictor.

use anyhow::{bail, Result};
use cai_model::{AstroMae, Isa, Precision, Predictor};

/// One configuration and what was measured for it.
pub struct Variant {
    /// Precision of the products.
    pub precision: Precision,
    /// Kernel level.
    pub isa: Isa,
    /// The model at that precision.
    pub predictor: Predictor,
    /// Samples/s of each timed pass.
    pub rates: Vec<f64>,
    /// CPU seconds over the timed passes.
    pub cpu_s: f64,
    /// Predictions of the warm-up pass (for the accuracy against fp32).
    pub z: Vec<f32>,
}

/// Parses one value of a comma-separated flag (a precision or an ISA level).
pub fn parse<T: std::str::FromStr<Err = String>>(s: &str) -> Result<T, String> {
    s.parse()
}

/// Fails unless this CPU runs every level in `isas`.
pub fn check(isas: &[Isa]) -> Result<()> {
    for isa in isas {
        if !isa.supported() {
            bail!(
                "--isa {isa}: this CPU cannot run it (available: {})",
                Isa::available()
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(())
}

impl Variant {
    /// `model` re-packed at `precision`, run at `isa` on `threads` threads.
    pub fn new(model: AstroMae, threads: usize, precision: Precision, isa: Isa) -> Self {
        Variant {
            precision,
            isa,
            predictor: Predictor::with_precision(model, threads, precision).with_isa(isa),
            rates: Vec::new(),
            cpu_s: 0.0,
            z: Vec::new(),
        }
    }
}

/// Largest `|z - z_fp32| / (1 + z_fp32)` (the field's `dz` with fp32 as the truth).
pub fn max_abs_dz(z: &[f32], fp32: &[f32]) -> f64 {
    z.iter()
        .zip(fp32)
        .map(|(a, b)| ((*a as f64 - *b as f64) / (1.0 + *b as f64)).abs())
        .fold(0.0, f64::max)
}
