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
    let pad = (k / 2) as isize;
    let row = k * k * c;
    // SAFETY: every pixel's row is written in full: each of its k*k cells is a copy or zeros.
    unsafe {
        super::written_vec(b * h * w * row, |out| {
            let mut rows = out.chunks_exact_mut(row);
            for s in 0..b {
                for y in 0..h {
                    for xp in 0..w {
                        let o = rows.next().expect("b*h*w rows");
                        for ky in 0..k {
                            let iy = y as isize + ky as isize - pad;
                            for kx in 0..k {
                                let ix = xp as isize + kx as isize - pad;
                                let dst = &mut o[(ky * k + kx) * c..(ky * k + kx + 1) * c];
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    dst.fill(MaybeUninit::new(0.0));
                                } else {
                                    let at =
                                        ((s * h + iy as usize) * w + ix as usize) * stride + offset;
                                    dst.copy_from_slice(as_uninit(&x[at..at + c]));
                                }
                            }
                        }
                    }
                }
            }
        })
    }
}

/// Views initialised values as possibly-uninitialised ones (always sound for reading), so
/// `copy_from_slice` can fill an output under construction.
fn as_uninit(x: &[f32]) -> &[MaybeUninit<f32>] {
    // SAFETY: MaybeUninit<f32> has f32's layout, and the slice is only read.
    unsafe { std::slice::from_raw_parts(x.as_ptr().cast(), x.len()) }
}

/// 3x3 max pooling, stride 1, padding 1 (padding never wins, as in PyTorch).
pub fn max_pool3_same(x: &[f32], b: usize, h: usize, w: usize, c: usize) -> Vec<f32> {
    assert_eq!(x.len(), b * h * w * c);
    // Each pixel starts from its top-left neighbour (always inside the image) ...
    // SAFETY: every pixel's c channels are copied.
    let mut out = unsafe {
        super::written_vec(x.len(), |out| {
            let mut px = out.chunks_exact_mut(c);
            for s in 0..b {
                for y in 0..h {
                    for xp in 0..w {
                        let at = ((s * h + y.saturating_sub(1)) * w + xp.saturating_sub(1)) * c;
                        let o = px.next().expect("b*h*w pixels");
                        o.copy_from_slice(as_uninit(&x[at..at + c]));
                    }
                }
            }
        })
    };
    // ... then takes the maximum with the others.
    let mut px = out.chunks_exact_mut(c);
    for s in 0..b {
        for y in 0..h {
            for xp in 0..w {
                let o = px.next().expect("b*h*w pixels");
                for iy in y.saturating_sub(1)..(y + 2).min(h) {
                    for ix in xp.saturating_sub(1)..(xp + 2).min(w) {
                        let at = ((s * h + iy) * w + ix) * c;
                        o.iter_mut()
                            .zip(&x[at..at + c])
                            .for_each(|(o, v)| *o = o.max(*v));
                    }
                }
            }
        }
    }
    out
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
}
