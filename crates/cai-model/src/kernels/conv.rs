//! Channels-last (NHWC) helpers for the Inception branch.
//!
//! In NHWC a 1x1 convolution is a plain matrix product over pixels, and a kxk one is an
//! im2col followed by the same product, so every convolution reuses the fused
//! [`super::gemm`] product.

/// Transposes `[b, c, h, w]` into `[b, h, w, c]`.
pub fn nchw_to_nhwc(x: &[f32], b: usize, c: usize, h: usize, w: usize, out: &mut [f32]) {
    assert_eq!(x.len(), b * c * h * w);
    assert_eq!(out.len(), x.len());
    let hw = h * w;
    for s in 0..b {
        let xs = &x[s * c * hw..(s + 1) * c * hw];
        let os = &mut out[s * c * hw..(s + 1) * c * hw];
        for ch in 0..c {
            for p in 0..hw {
                os[p * c + ch] = xs[ch * hw + p];
            }
        }
    }
}

/// Gathers the `k x k` neighbourhood (zero padded by `k/2`, stride 1) of every pixel of a
/// channels-last image: `[b, h, w, c] -> [b*h*w, k*k*c]`, ordered (ky, kx, c).
pub fn im2col_same(x: &[f32], b: usize, h: usize, w: usize, c: usize, k: usize, out: &mut [f32]) {
    assert_eq!(x.len(), b * h * w * c);
    assert_eq!(out.len(), b * h * w * k * k * c);
    let pad = (k / 2) as isize;
    let row = k * k * c;
    for s in 0..b {
        for y in 0..h {
            for xp in 0..w {
                let o = &mut out[((s * h + y) * w + xp) * row..((s * h + y) * w + xp + 1) * row];
                for ky in 0..k {
                    let iy = y as isize + ky as isize - pad;
                    for kx in 0..k {
                        let ix = xp as isize + kx as isize - pad;
                        let dst = &mut o[(ky * k + kx) * c..(ky * k + kx + 1) * c];
                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                            dst.fill(0.0);
                        } else {
                            let at = ((s * h + iy as usize) * w + ix as usize) * c;
                            dst.copy_from_slice(&x[at..at + c]);
                        }
                    }
                }
            }
        }
    }
}

/// 3x3 max pooling, stride 1, padding 1 (padding never wins, as in PyTorch).
pub fn max_pool3_same(x: &[f32], b: usize, h: usize, w: usize, c: usize, out: &mut [f32]) {
    assert_eq!(x.len(), b * h * w * c);
    assert_eq!(out.len(), x.len());
    for s in 0..b {
        for y in 0..h {
            for xp in 0..w {
                let o = &mut out[((s * h + y) * w + xp) * c..((s * h + y) * w + xp + 1) * c];
                o.fill(f32::NEG_INFINITY);
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
}

/// 2x2 average pooling with stride 2 (odd trailing rows/columns dropped, as in PyTorch).
pub fn avg_pool2(x: &[f32], b: usize, h: usize, w: usize, c: usize, out: &mut [f32]) {
    let (oh, ow) = (h / 2, w / 2);
    assert_eq!(x.len(), b * h * w * c);
    assert_eq!(out.len(), b * oh * ow * c);
    for s in 0..b {
        for y in 0..oh {
            for xp in 0..ow {
                let o = &mut out[((s * oh + y) * ow + xp) * c..((s * oh + y) * ow + xp + 1) * c];
                let at = |dy: usize, dx: usize| ((s * h + 2 * y + dy) * w + 2 * xp + dx) * c;
                let (a, bb, cc, d) = (at(0, 0), at(0, 1), at(1, 0), at(1, 1));
                for (i, o) in o.iter_mut().enumerate() {
                    *o = (x[a + i] + x[bb + i] + x[cc + i] + x[d + i]) * 0.25;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_pooling() {
        // One sample, 2 channels, 2x2.
        let nchw = [1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0];
        let mut nhwc = [0.0; 8];
        nchw_to_nhwc(&nchw, 1, 2, 2, 2, &mut nhwc);
        assert_eq!(nhwc, [1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 4.0, 40.0]);
        let mut avg = [0.0; 2];
        avg_pool2(&nhwc, 1, 2, 2, 2, &mut avg);
        assert_eq!(avg, [2.5, 25.0]);
        let mut mx = [0.0; 8];
        max_pool3_same(&nhwc, 1, 2, 2, 2, &mut mx);
        assert_eq!(mx, [4.0, 40.0, 4.0, 40.0, 4.0, 40.0, 4.0, 40.0]);
    }

    #[test]
    fn im2col_pads_with_zeros() {
        // 1 sample, 3x3 image, 1 channel, values 1..9.
        let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let mut cols = vec![0.0; 9 * 9];
        im2col_same(&x, 1, 3, 3, 1, 3, &mut cols);
        // Centre pixel sees the whole image; the corner sees zeros outside.
        assert_eq!(&cols[4 * 9..5 * 9], &x[..]);
        assert_eq!(&cols[0..9], &[0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 4.0, 5.0]);
    }
}
