//! Loads the real torch files written by `tools/make_torchfile_fixtures.py` and compares
//! them with the values torch reported.

use std::path::PathBuf;

use cai_torchfile::{lookup, DType, TorchError, TorchFile, Value};
use serde_json::Value as Json;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/torchfile")
}

fn expected() -> serde_json::Map<String, Json> {
    let text = std::fs::read_to_string(dir().join("expected.json")).unwrap();
    serde_json::from_str::<Json>(&text)
        .unwrap()
        .as_object()
        .unwrap()
        .clone()
}

fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F16 => "float16",
        DType::BF16 => "bfloat16",
        DType::F32 => "float32",
        DType::F64 => "float64",
        DType::I8 => "int8",
        DType::U8 => "uint8",
        DType::I16 => "int16",
        DType::I32 => "int32",
        DType::I64 => "int64",
        DType::Bool => "bool",
    }
}

/// Tensors of a file keyed as in expected.json (dataset tensors by index).
fn tensors(f: &TorchFile) -> Vec<(String, cai_torchfile::TensorRef)> {
    if let Some(Value::Tuple(ts)) = f.root().get("tensors") {
        return ts
            .iter()
            .enumerate()
            .map(|(i, t)| (i.to_string(), t.as_tensor().unwrap().clone()))
            .collect();
    }
    f.named_tensors()
}

#[test]
fn every_fixture_matches_torch() {
    let mut checked = 0;
    for (file, want) in expected() {
        let path = dir().join(&file);
        let want = want.as_object().unwrap();
        if want.contains_key("__error__") {
            let err = TorchFile::open(&path).unwrap_err();
            assert!(
                matches!(err, TorchError::Unsupported { .. }),
                "{file}: {err}"
            );
            assert!(err.to_string().contains("torch>=1.6"), "{err}");
            continue;
        }
        let f = TorchFile::open(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        let got = tensors(&f);
        for (name, w) in want {
            if name == "__attrs__" {
                for (p, v) in w.as_object().unwrap() {
                    let found = lookup(f.root(), p).unwrap_or_else(|| panic!("{file}: no {p}"));
                    assert_eq!(found.as_int(), v.as_i64(), "{file}: {p}");
                }
                continue;
            }
            let t = &got
                .iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| {
                    panic!(
                        "{file}: no tensor {name} in {:?}",
                        got.iter().map(|g| &g.0).collect::<Vec<_>>()
                    )
                })
                .1;
            assert_eq!(
                dtype_name(t.dtype),
                w["dtype"].as_str().unwrap(),
                "{file}:{name}"
            );
            let shape: Vec<usize> = w["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(t.shape, shape, "{file}:{name}");
            let mut all: Vec<f64> = Vec::new();
            let rows = if shape.is_empty() { 1 } else { shape[0] };
            f.read_rows_into(t, 0..rows, &mut all).unwrap();
            let sum: f64 = all.iter().sum();
            let want_sum = w["sum"].as_f64().unwrap();
            assert!(
                (sum - want_sum).abs() <= 1e-9 * want_sum.abs().max(1.0),
                "{file}:{name} sum {sum} vs {want_sum}"
            );
            let key = if w.get("values").is_some() {
                "values"
            } else {
                "first"
            };
            for (i, v) in w[key].as_array().unwrap().iter().enumerate() {
                let v = v.as_f64().unwrap();
                assert!(
                    (all[i] - v).abs() <= 1e-12 * v.abs().max(1.0),
                    "{file}:{name}[{i}] {} vs {v}",
                    all[i]
                );
            }
            // Row-range reads agree with the whole read.
            if rows > 1 {
                let part = f.read_f32(t, 1..rows).unwrap();
                let per_row = all.len() / rows;
                for (a, b) in part.iter().zip(&all[per_row..]) {
                    assert_eq!(*a, *b as f32);
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} tensors checked");
}

#[test]
fn data_parallel_module_loads_cuda_tensors_on_cpu() {
    let f = TorchFile::open(&dir().join("module_dp.pt")).unwrap();
    let names: Vec<String> = f.named_tensors().into_iter().map(|(n, _)| n).collect();
    assert!(names.iter().all(|n| n.starts_with("module.")), "{names:?}");
    assert!(names.contains(&"module.blocks.1.attn.qkv.weight".to_string()));
    assert!(names.contains(&"module.blocks.0.scale".to_string()));
    assert!(!names.iter().any(|n| n.ends_with("unused")));
    let (_, t) = &f.named_tensors()[0];
    assert_eq!(t.storage.location, "cuda:0");
    let attn = lookup(f.root(), "module.blocks.0.attn").unwrap();
    assert_eq!(attn.get("num_heads").and_then(Value::as_int), Some(2));
}

#[test]
fn views_share_one_storage() {
    let f = TorchFile::open(&dir().join("views.pt")).unwrap();
    let named = f.named_tensors();
    let key = |n: &str| {
        named
            .iter()
            .find(|(k, _)| k == n)
            .unwrap()
            .1
            .storage
            .key
            .clone()
    };
    assert_eq!(key("full"), key("transposed"));
    assert_eq!(key("offset"), key("strided"));
    assert_eq!(
        f.read_all_f32(&named.iter().find(|(k, _)| k == "scalar").unwrap().1)
            .unwrap(),
        vec![28.0]
    );
}
