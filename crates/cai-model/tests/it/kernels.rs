//! Every dispatched kernel level of every precision against the portable one (the definition
//! of the arithmetic) and against a plain f64 product, on awkward shapes.

use cai_model::kernels::activation::Activation;
use cai_model::kernels::gemm::{
    gemm_bf16, gemm_f32, gemm_i8, Epilogue, Out, PackedBf16, PackedF32, PackedI8,
};
use cai_model::Isa;

const SHAPES: [(usize, usize, usize); 7] = [
    (1, 1, 1),
    (7, 5, 17),
    (13, 300, 33),
    (29, 192, 576),
    (6, 601, 1),
    (65, 64, 1096),
    (15, 3, 48),
];

fn data(n: usize, k: usize, m: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let x = (0..n * k)
        .map(|i| ((i * 31 % 17) as f32 - 8.0) * 0.05 + (i % 5) as f32 * 1e-3)
        .collect();
    let w = (0..k * m)
        .map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.03 + (i % 13) as f32 * 1e-3)
        .collect();
    let b = (0..m).map(|i| i as f32 * 0.01 - 0.1).collect();
    (x, w, b)
}

fn naive(x: &[f32], n: usize, k: usize, w: &[f32], m: usize, b: &[f32]) -> Vec<f64> {
    (0..n * m)
        .map(|ij| {
            let (i, j) = (ij / m, ij % m);
            b[j] as f64
                + (0..k)
                    .map(|p| x[i * k + p] as f64 * w[j * k + p] as f64)
                    .sum::<f64>()
        })
        .collect()
}

/// Runs `f` into a fresh output with a residual of 0.5 and a ReLU-free epilogue, returning it.
fn run(n: usize, m: usize, accumulate: bool, f: impl FnOnce(Out, Epilogue)) -> Vec<f32> {
    let mut out = vec![0.5f32; n * m];
    let e = Epilogue {
        bias: true,
        act: Activation::Identity,
        accumulate,
    };
    f(Out::new(&mut out, m, 0), e);
    out
}

#[test]
fn bf16_levels_agree_with_the_portable_kernel() {
    for &(n, k, m) in &SHAPES {
        let (x, w, b) = data(n, k, m);
        let p = PackedBf16::from_rows(&w, &b, k, m);
        let want = naive(&x, n, k, &w, m, &b);
        for acc in [false, true] {
            let reference = run(n, m, acc, |o, e| gemm_bf16(Isa::Scalar, &x, n, k, &p, o, e));
            for isa in Isa::available() {
                let got = run(n, m, acc, |o, e| gemm_bf16(isa, &x, n, k, &p, o, e));
                for (i, (g, r)) in got.iter().zip(&reference).enumerate() {
                    assert!(
                        (g - r).abs() <= 1e-5 * (1.0 + r.abs()),
                        "{isa} {n}x{k}x{m}[{i}]: {g} vs {r}"
                    );
                    let exact = want[i] + if acc { 0.5 } else { 0.0 };
                    let tol = 2e-2 * (1.0 + exact.abs()) * (k as f64).sqrt().max(1.0) / 4.0;
                    assert!(
                        (*g as f64 - exact).abs() <= tol,
                        "{isa} {n}x{k}x{m}: {g} vs exact {exact}"
                    );
                }
            }
        }
    }
}

#[test]
fn int8_levels_compute_the_same_sums() {
    for &(n, k, m) in &SHAPES {
        let (x, w, b) = data(n, k, m);
        let p = PackedI8::from_rows(&w, &b, k, m);
        let want = naive(&x, n, k, &w, m, &b);
        for acc in [false, true] {
            let reference = run(n, m, acc, |o, e| gemm_i8(Isa::Scalar, &x, n, k, &p, o, e));
            for isa in Isa::available() {
                let got = run(n, m, acc, |o, e| gemm_i8(isa, &x, n, k, &p, o, e));
                for (i, (g, r)) in got.iter().zip(&reference).enumerate() {
                    assert!(
                        (g - r).abs() <= 1e-5 * (1.0 + r.abs()),
                        "{isa} {n}x{k}x{m}[{i}]: {g} vs {r}"
                    );
                    let exact = want[i] + if acc { 0.5 } else { 0.0 };
                    let tol = 3e-2 * (1.0 + exact.abs()) * (k as f64).sqrt().max(1.0) / 4.0;
                    assert!(
                        (*g as f64 - exact).abs() <= tol,
                        "{isa} {n}x{k}x{m}: {g} vs exact {exact}"
                    );
                }
            }
        }
    }
}

#[test]
fn f32_levels_agree_with_the_exact_product() {
    for &(n, k, m) in &SHAPES {
        let (x, w, b) = data(n, k, m);
        let p = PackedF32::from_rows(&w, &b, k, m);
        let want = naive(&x, n, k, &w, m, &b);
        for isa in Isa::available() {
            let got = run(n, m, true, |o, e| gemm_f32(isa, &x, n, k, &p, o, e));
            for (g, w) in got.iter().zip(&want) {
                let exact = w + 0.5;
                assert!(
                    (*g as f64 - exact).abs() <= 1e-5 * (1.0 + exact.abs()) * (k as f64).sqrt(),
                    "{isa} {n}x{k}x{m}: {g} vs {exact}"
                );
            }
        }
    }
}
