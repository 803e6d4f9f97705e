//! Quick forward-pass timing on seeded weights:
//! `CAI_PRECISION=int8 CAI_ISA=avx2 cargo run --release --example forward_speed -- BATCH THREADS`.
use cai_model::{load_model, Predictor, WeightSource};
use std::time::Instant;

/// CPU seconds of this process (user + system, all threads), from /proc/self/stat.
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("number"))
        .collect();
    let (batch, threads) = (
        args.first().copied().unwrap_or(64),
        args.get(1).copied().unwrap_or(1),
    );
    let loaded = load_model(&WeightSource::Seed(0)).expect("seeded model");
    let precision: cai_model::Precision = std::env::var("CAI_PRECISION")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_default();
    let p = Predictor::with_precision(loaded.model, threads, precision);
    let images: Vec<f32> = (0..batch * 5 * 1024)
        .map(|i| ((i % 97) as f32) * 0.01)
        .collect();
    let mags: Vec<f32> = (0..batch * 5).map(|i| 18.0 + (i % 7) as f32).collect();
    let z = p.predict(&images, &mags, batch).unwrap();
    println!("z[0..4] = {:?}", &z[..4.min(z.len())]);
    let reps = 30;
    let (t, c) = (Instant::now(), cpu_s());
    for _ in 0..reps {
        p.predict(&images, &mags, batch).unwrap();
    }
    let (s, cs) = (t.elapsed().as_secs_f64(), cpu_s() - c);
    println!(
        "{precision} batch {batch} threads {threads}: {:.1} samples/s, {:.1} samples per CPU-second",
        (reps * batch) as f64 / s,
        (reps * batch) as f64 / cs
    );
}
