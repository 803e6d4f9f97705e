//! Parity with PyTorch: every fixture model (safetensors, state-dict `.pt`, whole pickled
//! DataParallel module with CUDA storage tags) on every fixture partition must give
//! PyTorch's redshifts to 1e-5. Fixtures come from `tools/make_fixtures.py`.

use cai_data::Partition;
use cai_model::{load_model, Predictor, WeightSource};
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn expected() -> serde_json::Value {
    let text =
        std::fs::read_to_string(fixtures().join("model/expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("valid JSON")
}

fn predict_partition(p: &Predictor, file: &str) -> Vec<f32> {
    let part = Partition::open(&fixtures().join("partitions").join(file)).expect("partition opens");
    let mut z = Vec::new();
    for batch in part.batches(7) {
        let b = batch.expect("batch reads");
        z.extend(p.predict(&b.images, &b.magnitudes, b.len).expect("predict"));
    }
    z
}

#[test]
fn every_fixture_model_matches_pytorch() {
    let exp = expected();
    let preds = exp["predictions"].as_object().expect("predictions");
    assert!(preds.len() >= 5, "expected.json lists too few models");
    for (model_file, per_partition) in preds {
        let src = WeightSource::File(fixtures().join("model").join(model_file));
        let loaded = load_model(&src).unwrap_or_else(|e| panic!("{model_file}: {e}"));
        assert!(!loaded.untrained);
        for threads in [1, 2] {
            let p = Predictor::new(loaded_clone(&src), threads);
            for (partition, want) in per_partition.as_object().expect("partitions") {
                let got = predict_partition(&p, partition);
                let want: Vec<f64> = want
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect();
                assert_eq!(
                    got.len(),
                    want.len(),
                    "{model_file} on {partition}: sample count"
                );
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    let err = (*g as f64 - w).abs();
                    assert!(err <= 1e-5, "{model_file} on {partition} sample {i}: ours {g}, PyTorch {w}, |diff| {err:e}");
                }
            }
        }
    }
}

fn loaded_clone(src: &WeightSource) -> cai_model::AstroMae {
    load_model(src).expect("loads").model
}

#[test]
fn formats_of_one_model_agree_exactly_in_tensors() {
    let dir = fixtures().join("model");
    let a = cai_model::weights::load_raw(&WeightSource::File(dir.join("small-vitae.safetensors")))
        .unwrap();
    for other in ["small-vitae.state_dict.pt", "small-vitae.dataparallel.pt"] {
        let b = cai_model::weights::load_raw(&WeightSource::File(dir.join(other))).unwrap();
        for (name, t) in &a.tensors {
            let u = b
                .tensors
                .get(name)
                .unwrap_or_else(|| panic!("{other} lacks {name}"));
            assert_eq!(t.shape, u.shape, "{other}: {name}");
            assert_eq!(t.data, u.data, "{other}: {name}");
        }
    }
}
