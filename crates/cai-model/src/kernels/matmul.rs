//! Matrix products with the bias (and optionally a residual) folded into the same pass.

#[allow(clippy::too_many_arguments)]
/// `dst[n×m] (+)= x[n×k] · w[k×m] + bias[m]`.
///
/// With `accumulate`, `dst` already holds a residual and the product is added to it, which
/// saves the separate residual pass that a transformer block would otherwise need.
/// `w` is stored input-major (`[k, m]`, the transpose of PyTorch's `Linear.weight`) so the
/// kernel streams it contiguously.
pub fn linear_into(
    x: &[f32],
    n: usize,
    k: usize,
    w: &[f32],
    m: usize,
    bias: Option<&[f32]>,
    dst: &mut [f32],
    accumulate: bool,
) {
    assert_eq!(x.len(), n * k, "linear: input is not {n}x{k}");
    assert_eq!(w.len(), k * m, "linear: weight is not {k}x{m}");
    assert_eq!(dst.len(), n * m, "linear: output is not {n}x{m}");
    if n == 0 || m == 0 {
        return;
    }
    match (bias, accumulate) {
        (Some(b), false) => dst
            .chunks_exact_mut(m)
            .for_each(|row| row.copy_from_slice(b)),
        (Some(b), true) => dst
            .chunks_exact_mut(m)
            .for_each(|row| row.iter_mut().zip(b).for_each(|(d, b)| *d += b)),
        (None, false) => dst.fill(0.0),
        (None, true) => {}
    }
    if k == 0 {
        return;
    }
    // SAFETY: the asserts above bound every index: dense row-major matrices.
    unsafe { accumulate_product(x, n, k, w, m, dst.as_mut_ptr(), m) };
}

/// `dst[r, col..col+m] = x[r] · w + bias` for a row-major `dst` of `ld` columns.
#[allow(clippy::too_many_arguments)]
pub fn linear_strided(
    x: &[f32],
    n: usize,
    k: usize,
    w: &[f32],
    m: usize,
    bias: &[f32],
    dst: &mut [f32],
    ld: usize,
    col: usize,
) {
    assert_eq!(x.len(), n * k, "linear: input is not {n}x{k}");
    assert_eq!(w.len(), k * m, "linear: weight is not {k}x{m}");
    assert_eq!(bias.len(), m);
    assert!(
        col + m <= ld && dst.len() == n * ld,
        "linear: columns {col}..{} outside a {n}x{ld} output",
        col + m
    );
    if n == 0 || m == 0 {
        return;
    }
    for row in dst.chunks_exact_mut(ld) {
        row[col..col + m].copy_from_slice(bias);
    }
    if k == 0 {
        return;
    }
    // SAFETY: the asserts above bound every index: rows of `ld` floats, columns col..col+m.
    unsafe { accumulate_product(x, n, k, w, m, dst.as_mut_ptr().add(col), ld) };
}

/// `dst[i, j] += Σ_p x[i, p] · w[p, j]` for an `n x m` block of a row-major matrix whose rows
/// are `ld` apart, single-threaded (the predictor parallelises over the batch).
///
/// # Safety
/// `dst` must be valid for `n` rows of `ld` floats with `m <= ld`; `x` and `w` must hold
/// `n*k` and `k*m` floats.
unsafe fn accumulate_product(
    x: &[f32],
    n: usize,
    k: usize,
    w: &[f32],
    m: usize,
    dst: *mut f32,
    ld: usize,
) {
    gemm::gemm(
        n,
        m,
        k,
        dst,
        1,
        ld as isize,
        true,
        x.as_ptr(),
        1,
        k as isize,
        w.as_ptr(),
        1,
        m as isize,
        1.0f32,
        1.0f32,
        false,
        false,
        false,
        gemm::Parallelism::None,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[f32], n: usize, k: usize, w: &[f32], m: usize, b: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; n * m];
        for i in 0..n {
            for j in 0..m {
                let mut s = b[j];
                for p in 0..k {
                    s += x[i * k + p] * w[p * m + j];
                }
                out[i * m + j] = s;
            }
        }
        out
    }

    #[test]
    fn matches_naive_product_with_bias_and_residual() {
        let (n, k, m) = (7, 13, 5);
        let x: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let w: Vec<f32> = (0..k * m).map(|i| (i as f32 * 0.11).cos()).collect();
        let b: Vec<f32> = (0..m).map(|i| i as f32 - 2.0).collect();
        let want = naive(&x, n, k, &w, m, &b);
        let mut got = vec![0.0; n * m];
        linear_into(&x, n, k, &w, m, Some(&b), &mut got, false);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-4, "{g} vs {w}");
        }
        let mut acc = vec![1.0; n * m];
        linear_into(&x, n, k, &w, m, Some(&b), &mut acc, true);
        for (g, w) in acc.iter().zip(&want) {
            assert!((g - (w + 1.0)).abs() < 1e-4);
        }
    }
}
