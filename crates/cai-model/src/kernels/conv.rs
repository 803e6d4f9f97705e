//! Channels-last (NHWC) helpers for the Inception branch.
//!
//! In NHWC a 1x1 convolution is a plain matrix product over pixels, and a kxk one is an
//! im2col followed by the same product, so every convolution reuses the fused
//! [`super::gemm`] product.

use std::mem::MaybeUninit;

/// Transposes `[b, c, h, w]` into `[b, h, w, c]`.
pub fn nchw_to_nhwc(x: &[f32], b: usize, c: usize, h: usize, w: usize) -> Vec<f32> {
    assert_eq!(x.len(), b * c * h * w);
    let hw = h * w;
    // SAFETY: every (sample, pixel, channel) of the output is written once.
    unsafe {
        super::written_vec(x.len(), |out| {
            for (xs, os) in x.chunks_exact(c * hw).zip(out.chunks_exact_mut(c * hw)) {
                for ch in 0..c {
                    for p in 0..hw {
                        os[p * c + ch].write(xs[ch * hw + p]);
                    }
                }
            }
        })
    }
}

/// Gathers the `k x k` neighbourhood (zero padded by `k/2`, stride 1) of every pixel of a
/// channels-last image into `[b*h*w, k*k*c]`, ordered (ky, kx, c). Pixel `p`'s `c` channels
/// are read at `x[p * stride + offset..]`, so a slice of a wider map's channels needs no
/// copy first.
#[allow(clippy::too_many_arguments)] // an image's shape plus where its channels sit
pub fn im2col_same(
    x: &[f32],
    stride: usize,
    offset: usize,
    b: usize,
    h: usize,
    w: usize,
    c: usize,
    k: usize,
) -> Vec<f32> {
    assert!(offset + c <= stride && x.len() >= b * h * w * stride);
    let src = Strided { x, stride, offset };
    // SAFETY: every pixel's row is written in full: each of its k*k cells is a copy or zeros.
    unsafe {
        super::written_vec(b * h * w * k * k * c, |out| match c {
            // The Inception branch's reductions: cells of a size known at compile time are a
            // few vector moves rather than a `memcpy` call each.
            4 => gather::<4>(src, b, h, w, c, k, out),
            8 => gather::<8>(src, b, h, w, c, k, out),
            16 => gather::<16>(src, b, h, w, c, k, out),
            _ => gather::<0>(src, b, h, w, c, k, out),
        })
    }
}

/// Where a map's pixels sit: pixel `p`'s channels start at `x[p * stride + offset]`.
#[derive(Clone, Copy)]
struct Strided<'a> {
    x: &'a [f32],
    stride: usize,
    offset: usize,
}

/// [`im2col_same`]'s loop, for cells of `C` channels (`C = 0`: `c`, known only at run time).
#[inline(always)]
fn gather<const C: usize>(
    src: Strided,
    b: usize,
    h: usize,
    w: usize,
    c: usize,
    k: usize,
    out: &mut [MaybeUninit<f32>],
) {
    let c = if C > 0 { C } else { c };
    let pad = (k / 2) as isize;
    let mut cells = out.chunks_exact_mut(c);
    for s in 0..b {
        for y in 0..h {
            for xp in 0..w {
                for ky in 0..k {
                    let iy = y as isize + ky as isize - pad;
                    for kx in 0..k {
                        let ix = xp as isize + kx as isize - pad;
                        let dst = cells.next().expect("b*h*w*k*k cells");
                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                            dst.fill(MaybeUninit::new(0.0));
                        } else {
                            let px = (s * h + iy as usize) * w + ix as usize;
                            let at = px * src.stride + src.offset;
                            dst.copy_from_slice(as_uninit(&src.x[at..at + c]));
                        }
                    }
                }
            }
        }
    }
}

/// Views initialised values as possibly-uninitialised ones (always sound for reading), so
/// `copy_from_slice` can fill an output under construction.
fn as_uninit(x: &[f32]) -> &[MaybeUninit<f32>] {
    // SAFETY: MaybeUninit<f32> has f32's layout, and the slice is only read.
    unsafe { std::slice::from_raw_parts(x.as_ptr().cast(), x.len()) }
}

/// 3x3 max pooling, stride 1, padding 1 (padding never wins, as in PyTorch).
///
/// Separable: a maximum over each pixel's row neighbours, then over three rows of those,
/// with neighbour indices clamped at the borders (a repeated value cannot change a
/// maximum): four comparisons per value instead of eight.
pub fn max_pool3_same(x: &[f32], b: usize, h: usize, w: usize, c: usize) -> Vec<f32> {
    assert_eq!(x.len(), b * h * w * c);
    if x.is_empty() {
        return Vec::new();
    }
    // SAFETY: `max3` writes every item of every group, and x.len() is a whole number of
    // groups in both passes.
    unsafe {
        let across = super::written_vec(x.len(), |o| max3(x, w, c, o));
        super::written_vec(x.len(), |o| max3(&across, h, w * c, o))
    }
}

at_isa_level! {
    /// `o[g][i] = max(x[g][i-1], x[g][i], x[g][i+1])`, indices clamped to `0..n`, for groups of
    /// `n` items of `unit` values each (pixels of a row, or rows of a map).
    ///
    /// At the thread's ISA level (`at_isa_level!`).
    fn max3(x: &[f32], n: usize, unit: usize, o: &mut [MaybeUninit<f32>]) = max3_body;
}

#[inline(always)]
fn max3_body(x: &[f32], n: usize, unit: usize, o: &mut [MaybeUninit<f32>]) {
    let group = n * unit;
    for (xg, og) in x.chunks_exact(group).zip(o.chunks_exact_mut(group)) {
        for (i, oi) in og.chunks_exact_mut(unit).enumerate() {
            let item = |j: usize| &xg[j * unit..(j + 1) * unit];
            let (l, m, r) = (item(i.saturating_sub(1)), item(i), item((i + 1).min(n - 1)));
            for (((o, l), m), r) in oi.iter_mut().zip(l).zip(m).zip(r) {
                o.write(l.max(*m).max(*r));
            }
        }
    }
}

/// 2x2 average pooling with stride 2 (odd trailing rows/columns dropped, as in PyTorch).
pub fn avg_pool2(x: &[f32], b: usize, h: usize, w: usize, c: usize) -> Vec<f32> {
    let (oh, ow) = (h / 2, w / 2);
    assert_eq!(x.len(), b * h * w * c);
    // SAFETY: every output pixel's c channels are written.
    unsafe {
        super::written_vec(b * oh * ow * c, |out| {
            for (px, o) in out.chunks_exact_mut(c).enumerate() {
                let (s, y, xp) = (px / (oh * ow), px / ow % oh, px % ow);
                let at = |dy: usize, dx: usize| ((s * h + 2 * y + dy) * w + 2 * xp + dx) * c;
                let (a, bb, cc, d) = (at(0, 0), at(0, 1), at(1, 0), at(1, 1));
                for (i, o) in o.iter_mut().enumerate() {
                    o.write((x[a + i] + x[bb + i] + x[cc + i] + x[d + i]) * 0.25);
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_pooling() {
        // One sample, 2 channels, 2x2.
        let nchw = [1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0];
        let nhwc = nchw_to_nhwc(&nchw, 1, 2, 2, 2);
        assert_eq!(nhwc, [1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 4.0, 40.0]);
        let avg = avg_pool2(&nhwc, 1, 2, 2, 2);
        assert_eq!(avg, [2.5, 25.0]);
        let mx = max_pool3_same(&nhwc, 1, 2, 2, 2);
        assert_eq!(mx, [4.0, 40.0, 4.0, 40.0, 4.0, 40.0, 4.0, 40.0]);
    }

    #[test]
    fn im2col_pads_with_zeros() {
        // 1 sample, 3x3 image, 1 channel, values 1..9.
        let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let cols = im2col_same(&x, 1, 0, 1, 3, 3, 1, 3);
        // Centre pixel sees the whole image; the corner sees zeros outside.
        assert_eq!(&cols[4 * 9..5 * 9], &x[..]);
        assert_eq!(&cols[0..9], &[0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 4.0, 5.0]);
    }

    #[test]
    fn max_pool_and_im2col_match_their_definitions() {
        let (b, h, w) = (2, 5, 6);
        for c in [3, 4, 8, 16] {
            let x: Vec<f32> = (0..b * h * w * c)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.1)
                .collect();
            let got = max_pool3_same(&x, b, h, w, c);
            for (px, g) in got.chunks_exact(c).enumerate() {
                let (s, y, xp) = (px / (h * w), px / w % h, px % w);
                for (ch, g) in g.iter().enumerate() {
                    let mut want = f32::NEG_INFINITY;
                    for iy in y.saturating_sub(1)..(y + 2).min(h) {
                        for ix in xp.saturating_sub(1)..(xp + 2).min(w) {
                            want = want.max(x[((s * h + iy) * w + ix) * c + ch]);
                        }
                    }
                    assert_eq!(*g, want, "max pool c={c} pixel {px}");
                }
            }
            // The last c of every 2c + 1 values: a slice of a wider map.
            let stride = 2 * c + 1;
            let wide: Vec<f32> = (0..b * h * w * stride).map(|i| i as f32).collect();
            let k = 3;
            let cols = im2col_same(&wide, stride, c + 1, b, h, w, c, k);
            for (px, row) in cols.chunks_exact(k * k * c).enumerate() {
                let (s, y, xp) = (px / (h * w), px / w % h, px % w);
                for (cell, v) in row.chunks_exact(c).enumerate() {
                    let (iy, ix) = ((y + cell / k) as isize - 1, (xp + cell % k) as isize - 1);
                    for (ch, v) in v.iter().enumerate() {
                        let inside = iy >= 0 && ix >= 0 && iy < h as isize && ix < w as isize;
                        let want = if inside {
                            let p = (s * h + iy as usize) * w + ix as usize;
                            wide[p * stride + c + 1 + ch]
                        } else {
                            0.0
                        };
                        assert_eq!(*v, want, "im2col c={c} pixel {px} cell {cell}");
                    }
                }
            }
        }
    }
}
