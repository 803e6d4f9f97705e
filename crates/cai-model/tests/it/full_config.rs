//! The full-size architectures without full-size files: the reference model's state-dict
//! names and shapes (`fixtures/model/full-*-shapes.json`, written by `tools/make_fixtures.py`)
//! must be read back as the published configuration, with nothing missing or unexpected.

use cai_model::weights::{parameter_count, validate, RawTensor, RawWeights};
use cai_model::{AstroMaeConfig, BlockVariant};
use std::path::PathBuf;

fn shapes(file: &str) -> (RawWeights, u64) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/model")
        .join(file);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut raw = RawWeights {
        origin: file.into(),
        ..Default::default()
    };
    for t in json["tensors"].as_array().unwrap() {
        let shape: Vec<usize> = t["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        // Integer buffers (num_batches_tracked) are skipped by the loaders too.
        if t["dtype"] == "int64" {
            continue;
        }
        raw.tensors.insert(
            t["name"].as_str().unwrap().into(),
            RawTensor {
                shape,
                data: Vec::new(),
            },
        );
    }
    (raw, json["parameters"].as_u64().unwrap())
}

#[test]
fn published_vitae_checkpoint_layout_is_understood() {
    let (raw, params) = shapes("full-vitae-shapes.json");
    let cfg = AstroMaeConfig::infer(&raw);
    assert_eq!(cfg, AstroMaeConfig::published());
    let check = validate(&raw, &cfg);
    assert!(check.mismatches.is_empty(), "{:?}", check.mismatches);
    assert!(check.unexpected.is_empty(), "{:?}", check.unexpected);
    assert_eq!(parameter_count(&cfg) as u64, params);
    assert_eq!(params, 15_902_889);
}

#[test]
fn plain_vit_checkpoint_layout_is_understood() {
    let (raw, params) = shapes("full-vit-shapes.json");
    let cfg = AstroMaeConfig::infer(&raw);
    assert_eq!(cfg.block, BlockVariant::Plain);
    assert_eq!(
        cfg,
        AstroMaeConfig {
            block: BlockVariant::Plain,
            ..AstroMaeConfig::published()
        }
    );
    let check = validate(&raw, &cfg);
    assert!(
        check.mismatches.is_empty() && check.unexpected.is_empty(),
        "{check:?}"
    );
    assert_eq!(parameter_count(&cfg) as u64, params);
    assert_eq!(params, 15_801_513);
}

#[test]
fn every_problem_is_listed_at_once() {
    let (mut raw, _) = shapes("full-vitae-shapes.json");
    raw.tensors.remove("blocks.3.mlp.fc1.bias");
    raw.tensors.get_mut("concat_block.0.weight").unwrap().shape = vec![1024, 3000];
    raw.tensors.insert(
        "mystery.weight".into(),
        RawTensor {
            shape: vec![2],
            data: vec![0.0; 2],
        },
    );
    let cfg = AstroMaeConfig::infer(&raw);
    let check = validate(&raw, &cfg);
    let text: Vec<String> = check.mismatches.iter().map(|m| m.to_string()).collect();
    assert_eq!(text.len(), 2, "{text:?}");
    assert!(
        text.iter()
            .any(|t| t == "blocks.3.mlp.fc1.bias: missing (expected shape [768])"),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|t| t == "concat_block.0.weight: expected shape [1024, 3216], found [1024, 3000]"),
        "{text:?}"
    );
    assert_eq!(check.unexpected, vec!["mystery.weight".to_string()]);
}
