//! GFLOP/s of the packed f32 product on the model's shapes at every ISA level this CPU runs,
//! next to the `gemm` crate (re-packing per call, as the model used it before):
//! `cargo run --release -p cai-model --example gemm_speed` (GFLOP per CPU-second of the thread).
use cai_model::kernels::activation::Activation;
use cai_model::kernels::gemm::{
    gemm_bf16, gemm_f32, gemm_i8, Epilogue, Out, PackedBf16, PackedF32, PackedI8,
};
use cai_model::Isa;
use std::time::Instant;

/// This thread's CPU seconds (Linux schedstat), so other processes on a shared machine
/// do not count against the kernel.
fn cpu_s() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns * 1e-9)
}

fn rate(flop: f64, mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let (mut reps, t, c) = (0u32, Instant::now(), cpu_s());
    while t.elapsed().as_secs_f64() < 0.5 {
        f();
        reps += 1;
    }
    flop * reps as f64 / (cpu_s() - c) / 1e9
}

fn main() {
    let shapes = [
        (1088, 192, 768),
        (1088, 768, 192),
        (1088, 192, 576),
        (1088, 192, 192),
        (64, 1024, 1024),
    ];
    for (n, k, m) in shapes {
        let x: Vec<f32> = (0..n * k).map(|i| (i % 13) as f32 * 0.1).collect();
        let w: Vec<f32> = (0..k * m).map(|i| (i % 7) as f32 * 0.01).collect();
        let b = vec![0.5f32; m];
        let p = PackedF32::from_rows(&w, &b, k, m);
        let mut out = vec![0.0f32; n * m];
        let flop = 2.0 * (n * k * m) as f64;
        let mut line = format!("{n}x{k}x{m}:");
        for isa in Isa::available() {
            let r = rate(flop, || {
                let o = Out::new(&mut out, m, 0);
                gemm_f32(isa, &x, n, k, &p, o, Epilogue::store(Activation::Identity));
            });
            line += &format!("  {isa} {r:.1}");
        }
        let pb = PackedBf16::from_rows(&w, &b, k, m);
        let pi = PackedI8::from_rows(&w, &b, k, m);
        for isa in Isa::available() {
            let rb = rate(flop, || {
                let o = Out::new(&mut out, m, 0);
                gemm_bf16(isa, &x, n, k, &pb, o, Epilogue::store(Activation::Identity));
            });
            let ri = rate(flop, || {
                let o = Out::new(&mut out, m, 0);
                gemm_i8(isa, &x, n, k, &pi, o, Epilogue::store(Activation::Identity));
            });
            line += &format!("  bf16/{isa} {rb:.1}  int8/{isa} {ri:.1}");
        }
        let wt: Vec<f32> = (0..k * m).map(|i| w[(i % m) * k + i / m]).collect();
        let r = rate(flop, || unsafe {
            gemm::gemm(
                n,
                m,
                k,
                out.as_mut_ptr(),
                1,
                m as isize,
                false,
                x.as_ptr(),
                1,
                k as isize,
                wt.as_ptr(),
                1,
                m as isize,
                0.0f32,
                1.0f32,
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        });
        line += &format!("  gemm-crate {r:.1}");
        println!("{line} GFLOP/s");
    }
}
