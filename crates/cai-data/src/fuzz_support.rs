//! Entry point shared by the `partition` fuzz target and the corpus-replay test.

use crate::{Batch, Partition};

/// Largest partition (in image values) the entry point reads, bounding memory.
const MAX_VALUES: usize = 1 << 22;

/// Opens arbitrary bytes as a partition and reads all its batches; must never panic.
pub fn partition_bytes(data: &[u8]) {
    let Ok(p) = Partition::from_bytes("fuzz".into(), data.to_vec()) else {
        return;
    };
    let [c, h, w] = p.image_shape();
    if p.len().saturating_mul(c * h * w) > MAX_VALUES {
        return;
    }
    for b in p.batches(7) {
        let _ = b;
    }
    let mut b = Batch::default();
    let _ = p.read_batch(p.len() / 2..p.len() + 1, &mut b);
}
