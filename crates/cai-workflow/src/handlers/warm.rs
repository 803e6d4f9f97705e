//! The model kept between invocations of one Lambda container: a warm invocation reuses the
//! weights the cold one loaded instead of downloading and building them again. A local
//! `cai handler` process serves one invocation, so there the cache is always cold.

use std::sync::{Arc, Mutex};

use cai_model::{LoadedModel, Precision, Predictor};

/// A built model ready to predict, with what the outputs must say about it.
pub struct WarmModel {
    /// Identifies the weights and how they are run: `seed:N`, or `bucket/key` with the
    /// object's size and mtime, so replaced weights are never served from the cache, plus the
    /// precision, so a model packed for one precision is never used for another.
    pub identity: String,
    /// The model on this context's threads.
    pub predictor: Arc<Predictor>,
    /// Where the weights came from.
    pub origin: String,
    /// Seeded random weights.
    pub untrained: bool,
}

impl WarmModel {
    /// Wraps a freshly loaded model, its products at `precision`.
    pub fn new(
        identity: String,
        loaded: LoadedModel,
        threads: usize,
        precision: Precision,
    ) -> WarmModel {
        WarmModel {
            identity,
            predictor: Arc::new(Predictor::with_precision(
                loaded.model,
                threads.max(1),
                precision,
            )),
            origin: loaded.origin,
            untrained: loaded.untrained,
        }
    }
}

/// At most one model, the last one used.
#[derive(Default)]
pub struct ModelCache {
    slot: Mutex<Option<Arc<WarmModel>>>,
}

impl ModelCache {
    /// The cached model if it has this identity.
    pub fn get(&self, identity: &str) -> Option<Arc<WarmModel>> {
        let slot = self.slot.lock().ok()?;
        slot.as_ref().filter(|m| m.identity == identity).cloned()
    }

    /// Keeps `model`, dropping the previous one (memory is the Lambda bill).
    pub fn put(&self, model: Arc<WarmModel>) {
        if let Ok(mut slot) = self.slot.lock() {
            *slot = Some(model);
        }
    }

    /// Forgets the model, so that loading another does not hold two in memory at once.
    pub fn clear(&self) {
        if let Ok(mut slot) = self.slot.lock() {
            *slot = None;
        }
    }
}
