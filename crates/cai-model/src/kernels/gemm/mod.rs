//! Matrix products against weights packed once at load, with the bias, the residual and the
//! activation fused into the output step, on micro-kernels chosen at run time.
//!
//! Why not a crate: the `gemm` crate re-packs the weights on every call and keeps its
//! AVX-512 kernels behind a feature this workspace did not enable; these kernels read
//! panels packed at load, so a call is only the product (see the README's Performance
//! section for the measurements behind the choice).
//!
//! Blocking: `C[n x m] (+)= A[n x k] · B[k x m]` runs over column blocks of `nc` (so the
//! `kc x nc` slice of B stays in L2), then k blocks of `kc`, then bands of `MR` rows (read in
//! place: `MR x kc` of A stays in L1), then `NR`-column tiles of that band. The activation runs over each finished row band while it is
//! still in cache.

mod aligned;
#[cfg(target_arch = "aarch64")]
mod f32_neon;
mod f32_portable;
#[cfg(target_arch = "x86_64")]
mod f32_x86;
pub mod pack;
pub mod pack_q;
pub mod quant;
#[cfg(target_arch = "aarch64")]
mod quant_neon;
#[cfg(target_arch = "x86_64")]
mod quant_x86;

pub use aligned::Aligned;
pub use pack::{PackedF32, PANEL};
pub use pack_q::{PackedBf16, PackedI8};
pub use quant::{gemm_bf16, gemm_i8};

use super::activation::{self, Activation};
use crate::isa::Isa;
use std::marker::PhantomData;
use std::mem::MaybeUninit;

/// One tile's operands; pointers are raw because the tile sits inside larger matrices.
pub struct Tile {
    /// A's first value: row `i`, step `p` is at `a + i * a_row + p`.
    pub a: *const f32,
    /// Distance between two rows of A.
    pub a_row: usize,
    /// First B panel at the current k offset; the next panel is `b_stride` floats further.
    pub b: *const f32,
    /// Distance between two panels (`k * 16`).
    pub b_stride: usize,
    /// Steps of the product.
    pub kc: usize,
    /// Top-left of the C tile.
    pub c: *mut f32,
    /// Row stride of C.
    pub ldc: usize,
    /// Valid columns of the tile (1..=NR).
    pub cols: usize,
    /// Start from the values in C instead of zero.
    pub init: bool,
    /// Bias for the tile's columns, added before storing (null: none).
    pub bias: *const f32,
}

/// What happens to a product on its way into the output.
#[derive(Clone, Copy, Debug)]
pub struct Epilogue {
    /// Add the layer's bias.
    pub bias: bool,
    /// Applied last.
    pub act: Activation,
    /// `dst = act(dst + x·W + b)` (a residual connection) instead of `dst = act(x·W + b)`.
    pub accumulate: bool,
}

impl Epilogue {
    /// `act(x·W + b)`.
    pub fn store(act: Activation) -> Self {
        Self {
            bias: true,
            act,
            accumulate: false,
        }
    }

    /// `dst + x·W + b`.
    pub fn residual() -> Self {
        Self {
            bias: true,
            act: Activation::Identity,
            accumulate: true,
        }
    }
}

/// A dense row-major output block: rows `ld` apart, columns starting at `col`.
///
/// Held as a pointer so a product can write straight into fresh, uninitialised memory
/// ([`Out::uninit`]): zero-filling every new activation first measured ~4% of a forward pass.
pub struct Out<'a> {
    ptr: *mut f32,
    len: usize,
    /// Row stride.
    pub ld: usize,
    /// First column written.
    pub col: usize,
    /// Whether the memory holds values (a product into uninitialised memory may only store).
    init: bool,
    _data: PhantomData<&'a mut [f32]>,
}

impl<'a> Out<'a> {
    /// The block of `data` with rows `ld` apart starting at column `col`.
    pub fn new(data: &'a mut [f32], ld: usize, col: usize) -> Self {
        Self {
            ptr: data.as_mut_ptr(),
            len: data.len(),
            ld,
            col,
            init: true,
            _data: PhantomData,
        }
    }

    /// Like [`Out::new`] over memory not written yet: only a storing (non-accumulating)
    /// product may run into it, and it writes every element of its block.
    pub fn uninit(data: &'a mut [MaybeUninit<f32>], ld: usize, col: usize) -> Self {
        Self {
            ptr: data.as_mut_ptr().cast(),
            len: data.len(),
            ld,
            col,
            init: false,
            _data: PhantomData,
        }
    }

    /// Checks that `n` rows of `m` columns fit and that `e` does not read unwritten memory.
    fn check(&self, n: usize, m: usize, e: &Epilogue) {
        assert!(
            self.col + m <= self.ld && (n == 0 || self.len >= (n - 1) * self.ld + self.col + m),
            "gemm: output too short"
        );
        assert!(
            self.init || !e.accumulate,
            "gemm: cannot accumulate into uninitialised memory"
        );
    }

    /// Row `r`'s columns `col + from .. col + from + len`.
    ///
    /// # Safety
    /// They must have been written (by a tile) since the block was made.
    unsafe fn written(&mut self, r: usize, from: usize, len: usize) -> &mut [f32] {
        let at = r * self.ld + self.col + from;
        debug_assert!(at + len <= self.len);
        std::slice::from_raw_parts_mut(self.ptr.add(at), len)
    }
}

/// Micro-kernel shape of a level: rows per tile, columns per tile.
fn shape(isa: Isa) -> (usize, usize) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => (f32_x86::MR_512, 32),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => (f32_x86::MR_256, 16),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => (f32_neon::MR, 16),
        _ => (f32_portable::MR, 16),
    }
}

/// Runs one tile at `isa`.
///
/// # Safety
/// `isa` must be supported by this CPU and the tile's pointers valid (see [`Tile`]).
unsafe fn tile(isa: Isa, mr: usize, t: &Tile) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => f32_x86::tile_avx512(mr, t),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => f32_x86::tile_avx2(mr, t),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => f32_neon::tile(mr, t),
        _ => f32_portable::tile(mr, t),
    }
}

/// Largest k block: A's `MR x KC` band stays in L1 (21 KiB at AVX-512), and the ViT's fc2
/// (k = 768) passes over its output twice instead of three times (384 measured
/// 1-2% faster than 256 on the whole forward pass).
const KC: usize = 384;
/// Bytes of B one column block may take, so it stays in a 1 MiB L2 next to A and C.
const B_BLOCK_BYTES: usize = 640 * 1024;

/// Column block width: B's `kc x nc` slice within [`B_BLOCK_BYTES`], in whole tiles, split
/// evenly.
fn column_block(kc: usize, m: usize, nr: usize, elem: usize) -> usize {
    let fit = (B_BLOCK_BYTES / (kc.max(1) * elem)).max(nr);
    let blocks = m.div_ceil(fit);
    m.div_ceil(blocks).div_ceil(nr) * nr
}

/// `out = act((out +) x · W + b)` for `n` rows of `x` (row stride `lda`) at `isa`.
pub fn gemm_f32(
    isa: Isa,
    x: &[f32],
    n: usize,
    lda: usize,
    w: &PackedF32,
    mut out: Out,
    e: Epilogue,
) {
    let (k, m) = (w.k(), w.m());
    assert!(isa.supported(), "{isa} is not supported by this CPU");
    assert!(
        lda >= k && (n == 0 || x.len() >= (n - 1) * lda + k),
        "gemm: A too short"
    );
    out.check(n, m, &e);
    if n == 0 || m == 0 {
        return;
    }
    if k == 0 {
        for r in 0..n {
            if !e.accumulate {
                // SAFETY: row r's m columns lie inside the block (checked above).
                unsafe { std::ptr::write_bytes(out.ptr.add(r * out.ld + out.col), 0, m) };
            }
            // SAFETY: written just above, or initialised when accumulating (checked).
            let row = unsafe { out.written(r, 0, m) };
            if e.bias {
                row.iter_mut().zip(w.bias()).for_each(|(d, b)| *d += b);
            }
            activation::apply(e.act, row);
        }
        return;
    }
    let (mr_max, nr) = shape(isa);
    let kc_max = KC.min(k);
    let nc = column_block(kc_max, m, nr, 4);
    let panels = w.panels().as_ptr();
    let c0 = out.ptr;
    {
        for jc in (0..m).step_by(nc) {
            let ncur = nc.min(m - jc);
            for pc in (0..k).step_by(kc_max) {
                let kc = kc_max.min(k - pc);
                let last = pc + kc == k;
                for ic in (0..n).step_by(mr_max) {
                    let mr = mr_max.min(n - ic);
                    // A is read in place: its rows are a few cache lines apart and stay
                    // in L1 across the row band (packing it measured slower).
                    let a = x[ic * lda + pc..].as_ptr();
                    for jr in (jc..jc + ncur).step_by(nr) {
                        let t = Tile {
                            a,
                            a_row: lda,
                            // SAFETY: panel jr/16 exists (jr < m) and has k rows of 16.
                            b: unsafe { panels.add((jr / PANEL) * k * PANEL + pc * PANEL) },
                            b_stride: k * PANEL,
                            kc,
                            // SAFETY: row ic, column col + jr is inside `out` (asserted).
                            c: unsafe { c0.add(ic * out.ld + out.col + jr) },
                            ldc: out.ld,
                            cols: nr.min(m - jr),
                            init: pc > 0 || e.accumulate,
                            bias: if last && e.bias {
                                w.bias()[jr..].as_ptr()
                            } else {
                                std::ptr::null()
                            },
                        };
                        // SAFETY: `isa` is supported (asserted); the tile covers mr rows
                        // and `cols` columns of `out`, kc steps of the packed A and B.
                        unsafe { tile(isa, mr, &t) };
                    }
                    if last && e.act != Activation::Identity {
                        for r in ic..ic + mr {
                            // SAFETY: the band's tiles just wrote these columns.
                            activation::apply(e.act, unsafe { out.written(r, jc, ncur) });
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[f32], n: usize, k: usize, w: &[f32], m: usize, b: &[f32]) -> Vec<f64> {
        (0..n)
            .flat_map(|i| {
                (0..m).map(move |j| {
                    b[j] as f64
                        + (0..k)
                            .map(|p| x[i * k + p] as f64 * w[j * k + p] as f64)
                            .sum::<f64>()
                })
            })
            .collect()
    }

    #[test]
    fn every_level_matches_naive_on_awkward_shapes() {
        for isa in Isa::available() {
            for &(n, k, m) in &[
                (1, 1, 1),
                (7, 5, 17),
                (13, 300, 33),
                (29, 192, 576),
                (6, 600, 1),
                (97, 64, 1096),
                (15, 520, 48),
            ] {
                let x: Vec<f32> = (0..n * k)
                    .map(|i| ((i * 31 % 17) as f32 - 8.0) * 0.05)
                    .collect();
                let w: Vec<f32> = (0..k * m)
                    .map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.03)
                    .collect();
                let b: Vec<f32> = (0..m).map(|i| i as f32 * 0.01 - 0.1).collect();
                let p = PackedF32::from_rows(&w, &b, k, m);
                let want = naive(&x, n, k, &w, m, &b);
                // Into the middle columns of a wider output, to check strides and masks.
                let ld = m + 5;
                let mut got = vec![f32::NAN; n * ld];
                let out = Out::new(&mut got, ld, 3);
                gemm_f32(
                    isa,
                    &x,
                    n,
                    k,
                    &p,
                    out,
                    Epilogue::store(Activation::Identity),
                );
                for i in 0..n {
                    for j in 0..m {
                        let (g, w) = (got[i * ld + 3 + j] as f64, want[i * m + j]);
                        assert!(
                            (g - w).abs() < 1e-4 * (1.0 + w.abs()),
                            "{isa} {n}x{k}x{m}: {g} vs {w}"
                        );
                    }
                    assert!(
                        got[i * ld].is_nan() && got[i * ld + 3 + m].is_nan(),
                        "{isa}: wrote outside"
                    );
                }
                let mut acc = vec![2.0f32; n * m];
                let out = Out::new(&mut acc, m, 0);
                gemm_f32(isa, &x, n, k, &p, out, Epilogue::residual());
                let mut relu = vec![0.0f32; n * m];
                let out = Out::new(&mut relu, m, 0);
                gemm_f32(isa, &x, n, k, &p, out, Epilogue::store(Activation::Relu));
                for ((a, r), w) in acc.iter().zip(&relu).zip(&want) {
                    assert!(
                        (*a as f64 - (w + 2.0)).abs() < 1e-4 * (1.0 + w.abs()),
                        "{isa} residual"
                    );
                    assert!(
                        (*r as f64 - w.max(0.0)).abs() < 1e-4 * (1.0 + w.abs()),
                        "{isa} relu"
                    );
                }
            }
        }
    }
}
