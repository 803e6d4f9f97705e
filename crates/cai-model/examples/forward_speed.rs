//! Quick forward-pass timing on seeded weights: `cargo run --release --example forward_speed -- BATCH THREADS`.
use cai_model::{load_model, Predictor, WeightSource};
use std::time::Instant;

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
    let p = Predictor::new(loaded.model, threads);
    let images: Vec<f32> = (0..batch * 5 * 1024)
        .map(|i| ((i % 97) as f32) * 0.01)
        .collect();
    let mags: Vec<f32> = (0..batch * 5).map(|i| 18.0 + (i % 7) as f32).collect();
    let z = p.predict(&images, &mags, batch).unwrap();
    println!("z[0..4] = {:?}", &z[..4.min(z.len())]);
    let reps = 10;
    let t = Instant::now();
    for _ in 0..reps {
        p.predict(&images, &mags, batch).unwrap();
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "batch {batch} threads {threads}: {:.1} samples/s",
        (reps * batch) as f64 / s
    );
}
