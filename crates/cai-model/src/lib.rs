//! AstroMAE, the redshift model CAI runs, on candle for CPU inference.
//!
//! * [`config`]: sizes read from a checkpoint's names and shapes, nothing hard-coded;
//! * [`weights`]: safetensors, PyTorch `.pt` (state dict or the original's pickled
//!   DataParallel module, read without Python) and seeded random weights, checked against
//!   the architecture with every problem listed at once;
//! * [`model`]: the modules, named like the checkpoint's tensors;
//! * [`ops`] and [`kernels`]: fused CPU kernels (bias + activation + residual in the
//!   matrix product, batch norm folded into convolutions, attention for short sequences);
//! * [`Predictor`]: batches split across threads;
//! * [`metrics`]: the accuracy figures the field reports.

#![warn(missing_docs)]

pub mod config;
#[macro_use]
pub mod isa;
pub mod kernels;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod precision;
mod predictor;
pub mod weights;

pub use config::{AstroMaeConfig, BlockVariant};
pub use isa::Isa;
pub use model::AstroMae;
pub use precision::Precision;
pub use predictor::{PredictError, Predictor};
pub use weights::{inspect, Inspection, WeightError, WeightSource};

/// A model ready to run, with what the caller should tell the user about it.
pub struct LoadedModel {
    /// The model.
    pub model: AstroMae,
    /// True for seeded random weights: every output must say its predictions are untrained.
    pub untrained: bool,
    /// Where the weights came from.
    pub origin: String,
    /// Trainable parameters (15,902,889 for the published model).
    pub parameters: usize,
    /// Tensors in the file that the architecture does not know about.
    pub unexpected: Vec<String>,
}

/// Loads weights from `source`, infers the configuration and builds the model.
pub fn load_model(source: &WeightSource) -> Result<LoadedModel, WeightError> {
    build_model(weights::load_raw(source)?)
}

/// Builds the model from raw tensors, failing with every missing or mis-shaped tensor listed.
pub fn build_model(raw: weights::RawWeights) -> Result<LoadedModel, WeightError> {
    let (cfg, check) = weights::fit(&raw)?;
    let origin = raw.origin.clone();
    for name in &check.unexpected {
        tracing::warn!("{origin}: ignoring unexpected tensor {name}");
    }
    let untrained = raw.untrained;
    let mut params = model::Params::new(raw.tensors);
    let model = AstroMae::new(&mut params, &cfg).map_err(|e| WeightError::Config {
        origin: origin.clone(),
        msg: e.to_string(),
    })?;
    Ok(LoadedModel {
        model,
        untrained,
        origin,
        parameters: weights::parameter_count(&cfg),
        unexpected: check.unexpected,
    })
}
