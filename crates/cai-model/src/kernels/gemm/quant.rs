//! The bf16 and int8 products: drivers, and the portable kernels that define their exact
//! arithmetic (the SIMD kernels must agree with them to 1e-5, and int8 ones bit for bit).
//!
//! A is converted once per call (bf16 rounding, or per-row int8 quantization) into rows of
//! 4-byte units (a bf16 pair, an int8 quad); B is a pre-packed panel set with 64-byte rows
//! (16 columns x one unit). k is never blocked: a band of 14 rows of A and a 16-column
//! strip of B fit L1 and L2 even for the widest layer.

use super::pack::PANEL;
use super::pack_q::{self, bf16_value, PackedBf16, PackedI8};
use super::{Epilogue, Out};
use crate::isa::Isa;
use crate::kernels::activation::{self, Activation};
use std::cell::RefCell;

/// One tile of a quantized product. Pointers are raw: the tile sits inside larger matrices.
pub struct QTile {
    /// Row 0, unit 0 of A.
    pub a: *const u8,
    /// Bytes between two rows of A.
    pub a_row: usize,
    /// Units (pairs or quads) along k.
    pub units: usize,
    /// First B panel; the next one is `b_stride` bytes further.
    pub b: *const u8,
    /// Bytes between two panels.
    pub b_stride: usize,
    /// Top-left of the C tile.
    pub c: *mut f32,
    /// Row stride of C.
    pub ldc: usize,
    /// Valid columns (1..=NR).
    pub cols: usize,
    /// Add the existing C (residual).
    pub init: bool,
    /// Bias of the tile's columns (null: none).
    pub bias: *const f32,
    /// int8: per-row activation scales of the tile's rows.
    pub row_scale: *const f32,
    /// int8: per-column weight scales.
    pub col_scale: *const f32,
    /// int8: per-column `128 * Σ q` (ignored by kernels that multiply signed bytes).
    pub comp: *const i32,
}

/// Portable bf16 tile (up to 4 rows x 16 columns), in `vdpbf16ps` order: per pair, the odd
/// product is added first, then the even one, each rounded to f32.
///
/// # Safety
/// The pointers must cover `mr` rows, `units` pairs and `cols` columns.
pub unsafe fn bf16_portable(mr: usize, t: &QTile) {
    let mut acc = [[0.0f32; 16]; 4];
    for (i, row) in acc.iter_mut().enumerate().take(mr) {
        for (j, v) in row.iter_mut().enumerate().take(t.cols) {
            *v = if t.init { *t.c.add(i * t.ldc + j) } else { 0.0 };
        }
    }
    let b = t.b as *const u16;
    for u in 0..t.units {
        for (i, row) in acc.iter_mut().enumerate().take(mr) {
            let a = t.a.add(i * t.a_row + 4 * u) as *const u16;
            let (a0, a1) = (
                bf16_value(a.read_unaligned()),
                bf16_value(a.add(1).read_unaligned()),
            );
            for (j, v) in row.iter_mut().enumerate() {
                let w = b.add(u * 32 + 2 * j);
                *v += a1 * bf16_value(*w.add(1));
                *v += a0 * bf16_value(*w);
            }
        }
    }
    for (i, row) in acc.iter().enumerate().take(mr) {
        for (j, v) in row.iter().enumerate().take(t.cols) {
            let bias = if t.bias.is_null() {
                0.0
            } else {
                *t.bias.add(j)
            };
            *t.c.add(i * t.ldc + j) = v + bias;
        }
    }
}

/// The int8 epilogue every kernel applies to a column's exact sum `s = Σ (q_a + 128) q_w`.
#[inline(always)]
pub fn dequantize(s: i32, comp: i32, col_scale: f32, row_scale: f32, bias: f32) -> f32 {
    (s.wrapping_sub(comp) as f32 * col_scale) * row_scale + bias
}

/// Portable int8 tile (up to 4 rows x 16 columns).
///
/// # Safety
/// As [`bf16_portable`], plus the scales and compensation for `mr` rows and `cols` columns.
pub unsafe fn i8_portable(mr: usize, t: &QTile) {
    let mut acc = [[0i32; 16]; 4];
    let b = t.b as *const i8;
    for u in 0..t.units {
        for (i, row) in acc.iter_mut().enumerate().take(mr) {
            let a = t.a.add(i * t.a_row + 4 * u);
            for (j, v) in row.iter_mut().enumerate() {
                for l in 0..4 {
                    *v += *a.add(l) as i32 * *b.add(u * 64 + 4 * j + l) as i32;
                }
            }
        }
    }
    for (i, row) in acc.iter().enumerate().take(mr) {
        for (j, s) in row.iter().enumerate().take(t.cols) {
            let bias = if t.bias.is_null() {
                0.0
            } else {
                *t.bias.add(j)
            };
            let y = dequantize(
                *s,
                *t.comp.add(j),
                *t.col_scale.add(j),
                *t.row_scale.add(i),
                bias,
            );
            let c = t.c.add(i * t.ldc + j);
            *c = if t.init { *c + y } else { y };
        }
    }
}

/// Kernel choice for a level: (rows per tile, columns per tile, tile function).
type Kernel = (usize, usize, unsafe fn(usize, &QTile));

fn bf16_kernel(isa: Isa) -> Kernel {
    #[cfg(target_arch = "x86_64")]
    {
        if isa.native_bf16() {
            return (super::quant_x86::MR_512, 32, super::quant_x86::bf16_avx512);
        }
        if matches!(isa, Isa::Avx2 | Isa::Avx512) {
            return (
                super::quant_x86::MR_AVX2_BF16,
                16,
                super::quant_x86::bf16_avx2,
            );
        }
    }
    let _ = isa;
    (4, 16, bf16_portable)
}

fn i8_kernel(isa: Isa) -> Kernel {
    #[cfg(target_arch = "x86_64")]
    {
        if isa.native_vnni() {
            return (super::quant_x86::MR_512, 32, super::quant_x86::i8_vnni);
        }
        if matches!(isa, Isa::Avx2 | Isa::Avx512) {
            return (super::quant_x86::MR_AVX2_I8, 16, super::quant_x86::i8_avx2);
        }
    }
    #[cfg(target_arch = "aarch64")]
    if isa.native_dotprod() {
        return (super::quant_neon::MR, 16, super::quant_neon::i8_sdot);
    }
    let _ = isa;
    (4, 16, i8_portable)
}

thread_local! {
    static A_BF16: RefCell<Vec<u16>> = const { RefCell::new(Vec::new()) };
    static A_U8: RefCell<(Vec<u8>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// The tile loop shared by both precisions.
#[allow(clippy::too_many_arguments)]
fn drive(
    kernel: Kernel,
    n: usize,
    m: usize,
    a: &[u8],
    a_row: usize,
    units: usize,
    panels: &[u8],
    bias: &[f32],
    q: Option<(&[f32], &[f32], &[i32])>,
    mut out: Out,
    e: Epilogue,
) {
    let (mr_max, nr, tile) = kernel;
    let b_stride = units * 64;
    let c0 = out.ptr;
    for ic in (0..n).step_by(mr_max) {
        let mr = mr_max.min(n - ic);
        for jr in (0..m).step_by(nr) {
            let t = QTile {
                a: a[ic * a_row..].as_ptr(),
                a_row,
                units,
                b: panels[(jr / PANEL) * b_stride..].as_ptr(),
                b_stride,
                // SAFETY: row ic, column col + jr lies inside `out` (checked by the caller).
                c: unsafe { c0.add(ic * out.ld + out.col + jr) },
                ldc: out.ld,
                cols: nr.min(m - jr),
                init: e.accumulate,
                bias: if e.bias {
                    bias[jr..].as_ptr()
                } else {
                    std::ptr::null()
                },
                row_scale: q.map_or(std::ptr::null(), |q| q.0[ic..].as_ptr()),
                col_scale: q.map_or(std::ptr::null(), |q| q.1[jr..].as_ptr()),
                comp: q.map_or(std::ptr::null(), |q| q.2[jr..].as_ptr()),
            };
            // SAFETY: the kernel was chosen for a level this CPU supports (asserted by the
            // callers); the tile covers mr rows and `cols` columns of `out`, `units` units of
            // A's rows and of the panels.
            unsafe { tile(mr, &t) };
        }
        if e.act != Activation::Identity {
            for r in ic..ic + mr {
                // SAFETY: the band's tiles just wrote these columns.
                activation::apply(e.act, unsafe { out.written(r, 0, m) });
            }
        }
    }
}

fn check(isa: Isa, x: &[f32], n: usize, k: usize, lda: usize) {
    assert!(isa.supported(), "{isa} is not supported by this CPU");
    assert!(
        lda >= k && (n == 0 || x.len() >= (n - 1) * lda + k),
        "gemm: A too short"
    );
}

/// `out = act((out +) bf16(x) · W + b)`, f32 accumulation.
pub fn gemm_bf16(isa: Isa, x: &[f32], n: usize, lda: usize, w: &PackedBf16, out: Out, e: Epilogue) {
    let (k, m) = (w.k(), w.m());
    check(isa, x, n, k, lda);
    out.check(n, m, &e);
    if n == 0 || m == 0 {
        return;
    }
    A_BF16.with(|buf| {
        let mut buf = buf.borrow_mut();
        let ld = pack_q::rows_to_bf16(x, n, k, lda, &mut buf);
        // SAFETY: reinterpreting initialised u16s as bytes.
        let a = unsafe { std::slice::from_raw_parts(buf.as_ptr() as *const u8, buf.len() * 2) };
        // SAFETY: as above, i8/u16 panels as bytes.
        let p = unsafe {
            std::slice::from_raw_parts(w.panels().as_ptr() as *const u8, w.panels().len() * 2)
        };
        drive(
            bf16_kernel(isa),
            n,
            m,
            a,
            ld * 2,
            ld / 2,
            p,
            w.bias(),
            None,
            out,
            e,
        );
    });
}

/// `out = act((out +) x · W + b)` with x quantized per row and W per column to int8.
pub fn gemm_i8(isa: Isa, x: &[f32], n: usize, lda: usize, w: &PackedI8, out: Out, e: Epilogue) {
    let (k, m) = (w.k(), w.m());
    check(isa, x, n, k, lda);
    out.check(n, m, &e);
    if n == 0 || m == 0 {
        return;
    }
    A_U8.with(|buf| {
        let (bytes, scales) = &mut *buf.borrow_mut();
        let ld = pack_q::rows_to_u8(x, n, k, lda, bytes, scales);
        // SAFETY: reinterpreting initialised i8s as bytes.
        let p = unsafe {
            std::slice::from_raw_parts(w.panels().as_ptr() as *const u8, w.panels().len())
        };
        let q = (&scales[..], w.scales(), w.compensation());
        drive(
            i8_kernel(isa),
            n,
            m,
            bytes,
            ld,
            ld / 4,
            p,
            w.bias(),
            Some(q),
            out,
            e,
        );
    });
}
