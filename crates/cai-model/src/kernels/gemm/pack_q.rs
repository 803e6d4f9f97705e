//! Weights packed for the bf16 and int8 products, and the activation conversions that feed
//! them.
//!
//! Both keep the 16-column panels of [`super::PackedF32`], with `k` grouped into the units a
//! dot-product instruction consumes: pairs for bf16 (`vdpbf16ps`), quads for int8
//! (`vpdpbusd`, `vpmaddubsw` + `vpmaddwd`, `sdot`). A panel row is then one 64-byte vector
//! of 16 columns x one unit.
//!
//! int8 weights are quantized per output channel to 7 bits (`[-63, 63]`): with activations
//! as unsigned bytes, AVX2's `vpmaddubsw` adds two 255 x 63 products without saturating
//! its 16-bit lanes, so AVX2, AVX-512 VNNI, NEON and the portable code all compute exactly
//! the same integer sums and the same predictions.

use super::aligned::Aligned;
use super::pack::PANEL;

/// Largest int8 weight magnitude (7 bits; see the module documentation).
pub const W_MAX: f32 = 63.0;
/// Largest int8 activation magnitude.
pub const A_MAX: f32 = 127.0;

/// f32 to bf16 with round-to-nearest-even, denormals flushed to zero and NaN kept quiet, as
/// `vcvtne2ps2bf16` does.
#[inline(always)]
pub fn bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    if b & 0x7f80_0000 == 0 {
        return ((b >> 16) & 0x8000) as u16;
    }
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

/// bf16 bits back to f32 (exact).
#[inline(always)]
pub fn bf16_value(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// Where weight `(o, p)` (output channel, input index) of a `k`-deep matrix sits when `k` is
/// grouped in units of `unit` (2 for bf16, 4 for int8): panel of 16 channels, then unit of
/// `k`, then channel within the panel, then position within the unit. Both packings and
/// their inverses go through it, so they cannot disagree.
#[inline(always)]
fn grouped_at(o: usize, p: usize, k: usize, unit: usize) -> usize {
    let units = k.div_ceil(unit);
    (o / PANEL) * units * unit * PANEL + (p / unit) * unit * PANEL + (o % PANEL) * unit + p % unit
}

/// bf16 weights in 16-column panels of k pairs, plus the f32 bias.
#[derive(Clone, Debug)]
pub struct PackedBf16 {
    k: usize,
    m: usize,
    data: Aligned<u16>,
    bias: Vec<f32>,
}

impl PackedBf16 {
    /// Packs PyTorch-layout weights `w[m][k]`.
    pub fn from_rows(w: &[f32], bias: &[f32], k: usize, m: usize) -> Self {
        assert_eq!(w.len(), k * m);
        assert_eq!(bias.len(), m);
        let kp = k.div_ceil(2);
        let mut data = Aligned::zeroed(m.div_ceil(PANEL) * kp * 2 * PANEL);
        let d = data.as_mut_slice();
        for o in 0..m {
            for p in 0..k {
                d[grouped_at(o, p, k, 2)] = bf16_bits(w[o * k + p]);
            }
        }
        Self {
            k,
            m,
            data,
            bias: bias.to_vec(),
        }
    }

    /// The weights as f32 `[m][k]` (bf16-rounded): the inverse of [`Self::from_rows`].
    pub fn to_rows(&self) -> Vec<f32> {
        let (k, m) = (self.k, self.m);
        let d = self.data.as_slice();
        let mut w = vec![0.0; k * m];
        for o in 0..m {
            for p in 0..k {
                w[o * k + p] = bf16_value(d[grouped_at(o, p, k, 2)]);
            }
        }
        w
    }

    /// Input features.
    pub fn k(&self) -> usize {
        self.k
    }
    /// Output features.
    pub fn m(&self) -> usize {
        self.m
    }
    /// The bias.
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }
    /// The panels.
    pub fn panels(&self) -> &[u16] {
        self.data.as_slice()
    }
}

/// int8 weights in 16-column panels of k quads, with per-channel scales and the column sums
/// that undo the +128 offset of unsigned activations.
#[derive(Clone, Debug)]
pub struct PackedI8 {
    k: usize,
    m: usize,
    data: Aligned<i8>,
    scale: Vec<f32>,
    comp: Vec<i32>,
    bias: Vec<f32>,
}

impl PackedI8 {
    /// Quantizes and packs PyTorch-layout weights `w[m][k]`: `w ≈ q · scale[o]`, `|q| <= 63`.
    pub fn from_rows(w: &[f32], bias: &[f32], k: usize, m: usize) -> Self {
        assert_eq!(w.len(), k * m);
        assert_eq!(bias.len(), m);
        let kq = k.div_ceil(4);
        let mut data = Aligned::zeroed(m.div_ceil(PANEL) * kq * 4 * PANEL);
        let d = data.as_mut_slice();
        let (mut scale, mut comp) = (vec![0.0f32; m], vec![0i32; m]);
        for o in 0..m {
            let row = &w[o * k..(o + 1) * k];
            let max = row.iter().fold(0.0f32, |a, v| a.max(v.abs()));
            let s = if max > 0.0 { max / W_MAX } else { 1.0 };
            scale[o] = s;
            let mut sum = 0i32;
            for (p, v) in row.iter().enumerate() {
                let q = (v / s).round_ties_even().clamp(-W_MAX, W_MAX) as i8;
                d[grouped_at(o, p, k, 4)] = q;
                sum += q as i32;
            }
            comp[o] = 128 * sum;
        }
        Self {
            k,
            m,
            data,
            scale,
            comp,
            bias: bias.to_vec(),
        }
    }

    /// The dequantized weights `[m][k]`: the inverse of [`Self::from_rows`] up to rounding.
    pub fn to_rows(&self) -> Vec<f32> {
        let (k, m) = (self.k, self.m);
        let d = self.data.as_slice();
        let mut w = vec![0.0; k * m];
        for o in 0..m {
            for p in 0..k {
                w[o * k + p] = d[grouped_at(o, p, k, 4)] as f32 * self.scale[o];
            }
        }
        w
    }

    /// Input features.
    pub fn k(&self) -> usize {
        self.k
    }
    /// Output features.
    pub fn m(&self) -> usize {
        self.m
    }
    /// The bias.
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }
    /// Per-output-channel weight scales.
    pub fn scales(&self) -> &[f32] {
        &self.scale
    }
    /// `128 * Σ_k q[o][k]` per output channel.
    pub fn compensation(&self) -> &[i32] {
        &self.comp
    }
    /// The panels.
    pub fn panels(&self) -> &[i8] {
        self.data.as_slice()
    }
}

/// Rounds rows of f32 activations to bf16: `n` rows of `k` (stride `lda`) into rows of
/// `k` rounded up to even (the odd tail is zero), as the pair kernels read them.
pub fn rows_to_bf16(x: &[f32], n: usize, k: usize, lda: usize, out: &mut Vec<u16>) -> usize {
    let ld = k.div_ceil(2) * 2;
    out.clear();
    out.resize(n * ld, 0);
    for r in 0..n {
        bf16_row(&x[r * lda..r * lda + k], &mut out[r * ld..r * ld + k]);
    }
    ld
}

at_isa_level! {
    /// One row of [`bf16_bits`], branch-free so it vectorises.
    ///
    /// At the thread's ISA level (`at_isa_level!`).
    fn bf16_row(src: &[f32], dst: &mut [u16]) = bf16_row_body;
}

#[inline(always)]
fn bf16_row_body(src: &[f32], dst: &mut [u16]) {
    for (o, v) in dst.iter_mut().zip(src) {
        let b = v.to_bits();
        let rounded = (b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16) as u16;
        let quiet = ((b >> 16) | 0x40) as u16;
        let zero = ((b >> 16) & 0x8000) as u16;
        let exp = b & 0x7f80_0000;
        let nan = exp == 0x7f80_0000 && b & 0x007f_ffff != 0;
        *o = if nan {
            quiet
        } else if exp == 0 {
            zero
        } else {
            rounded
        };
    }
}

/// Quantizes rows of f32 activations to unsigned bytes with one scale per row:
/// `x ≈ (q - 128) · scale`, `|q - 128| <= 127`, ties to even; rows are padded to a multiple
/// of 4 with 128 (zero). Returns the row stride.
pub fn rows_to_u8(
    x: &[f32],
    n: usize,
    k: usize,
    lda: usize,
    out: &mut Vec<u8>,
    scales: &mut Vec<f32>,
) -> usize {
    let ld = k.div_ceil(4) * 4;
    out.clear();
    out.resize(n * ld, 128);
    scales.clear();
    for r in 0..n {
        let src = &x[r * lda..r * lda + k];
        let max = abs_max(src);
        let s = if max > 0.0 { max / A_MAX } else { 1.0 };
        scales.push(s);
        quantize_row(src, 1.0 / s, &mut out[r * ld..r * ld + k]);
    }
    ld
}

at_isa_level! {
    /// Largest `|v|` (16 partial maxima, so it vectorises).
    ///
    /// At the thread's ISA level (`at_isa_level!`).
    fn abs_max(src: &[f32]) -> f32 = abs_max_body;
}

#[inline(always)]
fn abs_max_body(src: &[f32]) -> f32 {
    let mut m = [0.0f32; 16];
    let chunks = src.chunks_exact(16);
    let tail = chunks
        .remainder()
        .iter()
        .fold(0.0f32, |a, v| a.max(v.abs()));
    for c in chunks {
        for i in 0..16 {
            m[i] = if c[i].abs() > m[i] { c[i].abs() } else { m[i] };
        }
    }
    m.iter().fold(tail, |a, v| a.max(*v))
}

at_isa_level! {
    /// `q = round_ties_even(clamp(v · inv, ±127)) + 128` (NaN counts as -127).
    ///
    /// Branch-free so it vectorises: adding 1.5 · 2^23 rounds to the nearest even integer
    /// and leaves it, two's complement, in the low byte of the float's bits.
    ///
    /// At the thread's ISA level (`at_isa_level!`).
    fn quantize_row(src: &[f32], inv: f32, dst: &mut [u8]) = quantize_row_body;
}

#[inline(always)]
fn quantize_row_body(src: &[f32], inv: f32, dst: &mut [u8]) {
    const MAGIC: f32 = 12_582_912.0;
    for (o, v) in dst.iter_mut().zip(src) {
        // Not `clamp`: max/min also send NaN to a finite value.
        #[allow(clippy::manual_clamp)]
        let y = (v * inv).max(-A_MAX).min(A_MAX);
        *o = ((y + MAGIC).to_bits().wrapping_add(128)) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantized_packs_round_trip() {
        for (k, m) in [(1, 1), (3, 17), (192, 40), (5, 33)] {
            let w: Vec<f32> = (0..k * m)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.01)
                .collect();
            let b = vec![0.0; m];
            let h = PackedBf16::from_rows(&w, &b, k, m);
            for (a, b) in h.to_rows().iter().zip(&w) {
                assert!((a - b).abs() <= b.abs() / 128.0, "bf16 {a} vs {b}");
            }
            assert_eq!(
                PackedBf16::from_rows(&h.to_rows(), &b, k, m).to_rows(),
                h.to_rows()
            );
            let q = PackedI8::from_rows(&w, &b, k, m);
            for (o, (row, orig)) in q.to_rows().chunks(k).zip(w.chunks(k)).enumerate() {
                for (a, b) in row.iter().zip(orig) {
                    assert!(
                        (a - b).abs() <= q.scales()[o] * 0.5 + 1e-7,
                        "int8 {a} vs {b}"
                    );
                }
            }
            assert_eq!(q.panels().len() % 64, 0);
        }
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(bf16_bits(1.0), 0x3f80);
        // 1 + 2^-8 is halfway between two bf16 values: ties go to the even one (1.0).
        assert_eq!(bf16_bits(1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(bf16_bits(1.0 + 3.0 / 256.0), 0x3f82);
        assert_eq!(bf16_value(bf16_bits(-2.5)), -2.5);
        assert_eq!(bf16_bits(1e-40), 0);
    }
}
