//! The ViTAE parallel convolution module (PCM) for 1x1 kernels, fused into one pass.
//!
//! PCM is `Conv1x1(groups) -> BatchNorm -> SiLU -> Conv1x1(groups)` over the patch tokens.
//! With 1x1 kernels it acts on each token independently, and with 48 groups each output
//! reads only 4 (then 16) inputs, so a dense GEMM would do ~48x the needed work. This kernel
//! walks the groups directly, with the batch norm already folded into the first conv.

use super::activation::{self, Activation};
use super::transpose::{transpose16, N};
use std::mem::MaybeUninit;

/// Shapes of a grouped pointwise layer: `channels_in -> channels_out` in `groups` groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grouped {
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Number of groups (divides both).
    pub groups: usize,
}

impl Grouped {
    /// Weight elements in PyTorch's `[cout, cin/groups, 1, 1]` layout.
    pub fn weight_len(&self) -> usize {
        self.cout * (self.cin / self.groups)
    }
}

/// Tokens processed together: one vector lane per token (16 = the published 4x4 grid, one
/// AVX-512 register or two AVX2 ones).
const LANES: usize = N;

/// `y[o] = b[o] + Σ_i w[o][i] · x[group(o) · ipg + i]` for a grouped 1x1 conv, on lanes of
/// tokens: every multiply-add works on 16 tokens at once, with weights in PyTorch's layout.
/// Written with `mul_add` so it compiles to fused multiply-adds (a separate multiply and add
/// measured as the PCM's bottleneck).
#[inline(always)]
fn grouped_lanes(x: &[[f32; LANES]], w: &[f32], bias: &[f32], g: Grouped, y: &mut [[f32; LANES]]) {
    let (ipg, opg) = (g.cin / g.groups, g.cout / g.groups);
    let groups = y.chunks_exact_mut(opg).zip(bias.chunks_exact(opg));
    for (group, (ys, bs)) in groups.enumerate() {
        let xs = &x[group * ipg..(group + 1) * ipg];
        let ws = w[group * opg * ipg..(group + 1) * opg * ipg].chunks_exact(ipg);
        for ((out, b), ws) in ys.iter_mut().zip(bs).zip(ws) {
            let mut acc = [*b; LANES];
            for (xv, wv) in xs.iter().zip(ws) {
                for l in 0..LANES {
                    acc[l] = wv.mul_add(xv[l], acc[l]);
                }
            }
            *out = acc;
        }
    }
}

at_isa_level! {
    /// Writes `src row + pcm(src row)` to `dst row` for each of the `rows` tokens (`d` channels
    /// each): the block's residual stream starts from it, so it needs no copy of its input first.
    ///
    /// `w1`/`b1`: first conv with batch norm folded; `w2`/`b2`: second conv; both weights in
    /// PyTorch's `[cout][cin/groups]` layout. Tokens are transposed into lanes (16 at a time),
    /// both convolutions and the SiLU run lane-wise, and the result is transposed back onto
    /// `dst`: no horizontal sums and no 4-wide vectors, whatever the group widths.
    ///
    /// At the thread's ISA level (`at_isa_level!`).
    #[allow(clippy::too_many_arguments)]
    pub fn pcm_residual(
        src: &[f32],
        dst: &mut [MaybeUninit<f32>],
        rows: usize,
        first: Grouped,
        w1: &[f32],
        b1: &[f32],
        second: Grouped,
        w2: &[f32],
        b2: &[f32],
    ) = pcm_residual_body;
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pcm_residual_body(
    src: &[f32],
    dst: &mut [MaybeUninit<f32>],
    rows: usize,
    first: Grouped,
    w1: &[f32],
    b1: &[f32],
    second: Grouped,
    w2: &[f32],
    b2: &[f32],
) {
    let d = first.cin;
    assert_eq!(second.cin, first.cout);
    assert_eq!(second.cout, d);
    assert_eq!(src.len(), rows * d);
    assert_eq!(dst.len(), rows * d);
    assert_eq!(w1.len(), first.weight_len());
    assert_eq!(w2.len(), second.weight_len());
    assert_eq!(b1.len(), first.cout);
    assert_eq!(b2.len(), d);
    let mut x = vec![[0.0f32; LANES]; d];
    let mut hidden = vec![[0.0f32; LANES]; first.cout];
    let mut y = vec![[0.0f32; LANES]; d];
    for r0 in (0..rows).step_by(LANES) {
        let count = LANES.min(rows - r0);
        let tiled = count == LANES && d.is_multiple_of(N);
        if tiled {
            for (cb, xs) in x.chunks_exact_mut(N).enumerate() {
                let tile = xs.try_into().expect("16 channels");
                transpose16(&src[r0 * d + cb * N..], d, tile);
            }
        } else {
            for (l, row) in src[r0 * d..(r0 + count) * d].chunks_exact(d).enumerate() {
                for (xc, v) in x.iter_mut().zip(row) {
                    xc[l] = *v;
                }
            }
        }
        grouped_lanes(&x, w1, b1, first, &mut hidden);
        activation::apply(Activation::Silu, hidden.as_flattened_mut());
        grouped_lanes(&hidden, w2, b2, second, &mut y);
        if tiled {
            let mut tile = [[0.0f32; N]; N];
            for (cb, ys) in y.chunks_exact(N).enumerate() {
                transpose16(ys.as_flattened(), N, &mut tile);
                for (l, t) in tile.iter().enumerate() {
                    let at = (r0 + l) * d + cb * N;
                    let (o, x) = (&mut dst[at..at + N], &src[at..at + N]);
                    for ((o, x), t) in o.iter_mut().zip(x).zip(t) {
                        o.write(x + t);
                    }
                }
            }
        } else {
            let dst_rows = dst[r0 * d..(r0 + count) * d].chunks_exact_mut(d);
            let src_rows = src[r0 * d..(r0 + count) * d].chunks_exact(d);
            for (l, (row, x)) in dst_rows.zip(src_rows).enumerate() {
                for ((o, yc), x) in row.iter_mut().zip(&y).zip(x) {
                    o.write(x + yc[l]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_grouped_conv_definition() {
        let first = Grouped {
            cin: 8,
            cout: 16,
            groups: 4,
        };
        let second = Grouped {
            cin: 16,
            cout: 8,
            groups: 2,
        };
        let w1: Vec<f32> = (0..first.weight_len())
            .map(|i| (i as f32 * 0.3).sin())
            .collect();
        let b1: Vec<f32> = (0..16).map(|i| i as f32 * 0.01).collect();
        let w2: Vec<f32> = (0..second.weight_len())
            .map(|i| (i as f32 * 0.7).cos())
            .collect();
        let b2: Vec<f32> = (0..8).map(|i| -(i as f32) * 0.02).collect();
        let src: Vec<f32> = (0..3 * 8).map(|i| (i as f32 * 0.13).sin()).collect();
        let mut dst = Vec::with_capacity(3 * 8);
        pcm_residual(
            &src,
            dst.spare_capacity_mut(),
            3,
            first,
            &w1,
            &b1,
            second,
            &w2,
            &b2,
        );
        // SAFETY: pcm_residual writes all 3 rows of 8.
        unsafe { dst.set_len(3 * 8) };
        for r in 0..3 {
            let x = &src[r * 8..(r + 1) * 8];
            let h: Vec<f64> = (0..16)
                .map(|o| {
                    let g = o / 4;
                    let v = b1[o] as f64
                        + (0..2)
                            .map(|c| w1[o * 2 + c] as f64 * x[g * 2 + c] as f64)
                            .sum::<f64>();
                    v / (1.0 + (-v).exp())
                })
                .collect();
            for o in 0..8 {
                let g = o / 4;
                let want = x[o] as f64
                    + b2[o] as f64
                    + (0..8)
                        .map(|c| w2[o * 8 + c] as f64 * h[g * 8 + c])
                        .sum::<f64>();
                assert!((dst[r * 8 + o] as f64 - want).abs() < 1e-5);
            }
        }
    }
}
