//! Entry points shared by the `fuzz/` targets and the corpus-replay tests, so both
//! exercise exactly the same code.

use crate::{pickle, TorchFile};

/// Largest tensor (in elements) the archive entry point reads, bounding memory.
const MAX_READ: usize = 1 << 20;

/// Interprets arbitrary bytes as a pickle; must never panic.
pub fn pickle_bytes(data: &[u8]) {
    let _ = pickle::parse(data);
}

/// Opens arbitrary bytes as a torch archive and reads every (small enough) tensor,
/// whole and by row ranges; must never panic.
pub fn archive_bytes(data: &[u8]) {
    let Ok(f) = TorchFile::from_bytes("fuzz", data.to_vec()) else {
        return;
    };
    for (_, t) in f.named_tensors() {
        if t.numel().is_ok_and(|n| n <= MAX_READ) {
            let _ = f.read_all_f32(&t);
            if let Some(&rows) = t.shape.first() {
                let _ = f.read_f32(&t, rows / 2..rows);
                let _ = f.read_f32(&t, 0..rows + 1);
            }
        }
    }
    let _ = crate::lookup(f.root(), "module.0.weight");
}
