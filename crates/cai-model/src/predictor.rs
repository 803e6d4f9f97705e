//! Runs the model over a batch, split across threads.
//!
//! Each thread runs the whole forward pass on its share of the batch with single-threaded
//! kernels: no synchronisation inside the model, and every matrix product keeps enough rows
//! (tokens x samples) to run at full speed.

use crate::isa::{self, Isa};
use crate::model::AstroMae;
use crate::precision::Precision;
use candle_core::{Device, Tensor};

/// Why a batch could not be predicted.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    /// The inputs do not match the model's expected sizes.
    #[error("input shape: {0}")]
    Shape(String),
    /// The forward pass failed (a bug, not a data problem).
    #[error("forward pass: {0}")]
    Model(#[from] candle_core::Error),
}

/// A model plus the number of threads, the precision and the instruction set to run it on.
pub struct Predictor {
    model: AstroMae,
    threads: usize,
    isa: Isa,
}

impl Predictor {
    /// Uses `threads` worker threads per batch (at least one), the model's precision (fp32
    /// as loaded) and the process's ISA level ([`Isa::selected`]: `CAI_ISA` or the best).
    pub fn new(model: AstroMae, threads: usize) -> Self {
        Self {
            model,
            threads: threads.max(1),
            isa: Isa::selected(),
        }
    }

    /// Like [`Self::new`], with the model's products re-packed at `precision` first (the
    /// weights are converted once, here; see [`Precision`] for what stays f32).
    pub fn with_precision(mut model: AstroMae, threads: usize, precision: Precision) -> Self {
        model.set_precision(precision);
        Self::new(model, threads)
    }

    /// Runs the kernels at `isa` instead (tests and benchmarks compare levels this way).
    ///
    /// # Panics
    /// When this CPU cannot run `isa`.
    pub fn with_isa(mut self, isa: Isa) -> Self {
        assert!(isa.supported(), "{isa} is not supported by this CPU");
        self.isa = isa;
        self
    }

    /// The precision of the model's products.
    pub fn precision(&self) -> Precision {
        self.model.precision()
    }

    /// The instruction-set level the kernels run at.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The model.
    pub fn model(&self) -> &AstroMae {
        &self.model
    }

    /// Worker threads per batch.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Predicts redshifts for `n` samples: `images` `[n, c, h, w]`, `magnitudes` `[n, m]`.
    pub fn predict(
        &self,
        images: &[f32],
        magnitudes: &[f32],
        n: usize,
    ) -> Result<Vec<f32>, PredictError> {
        let cfg = self.model.config();
        let (c, s, m) = (cfg.in_chans, cfg.img_size, cfg.mag_in);
        if images.len() != n * c * s * s {
            return Err(PredictError::Shape(format!(
                "images: expected {n} x [{c}, {s}, {s}] = {} values, got {}",
                n * c * s * s,
                images.len()
            )));
        }
        if magnitudes.len() != n * m {
            return Err(PredictError::Shape(format!(
                "magnitudes: expected {n} x {m} values, got {}",
                magnitudes.len()
            )));
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        let workers = self.threads.min(n);
        let per = n.div_ceil(workers);
        let run =
            |lo: usize, hi: usize| isa::with_isa(self.isa, || self.run(images, magnitudes, lo, hi));
        if workers == 1 {
            return run(0, n);
        }
        let parts: Vec<Result<Vec<f32>, PredictError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|w| {
                    let (lo, hi) = (w * per, ((w + 1) * per).min(n));
                    scope.spawn(move || if lo < hi { run(lo, hi) } else { Ok(Vec::new()) })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("predictor worker panicked"))
                .collect()
        });
        let mut out = Vec::with_capacity(n);
        for p in parts {
            out.extend(p?);
        }
        Ok(out)
    }

    /// Samples `lo..hi` on the calling thread.
    fn run(
        &self,
        images: &[f32],
        magnitudes: &[f32],
        lo: usize,
        hi: usize,
    ) -> Result<Vec<f32>, PredictError> {
        let cfg = self.model.config();
        let (c, s, m) = (cfg.in_chans, cfg.img_size, cfg.mag_in);
        {
            let img = Tensor::from_slice(
                &images[lo * c * s * s..hi * c * s * s],
                (hi - lo, c, s, s),
                &Device::Cpu,
            )?;
            let mag = Tensor::from_slice(&magnitudes[lo * m..hi * m], (hi - lo, m), &Device::Cpu)?;
            Ok(self
                .model
                .forward(&img, &mag)?
                .flatten_all()?
                .to_vec1::<f32>()?)
        }
    }
}
