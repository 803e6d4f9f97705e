//! Files written by `TorchWriter` read back identically; with `CAI_TORCHFILE_WRITE_DIR`
//! set they are also kept there with an expected.json for
//! `tools/make_torchfile_fixtures.py --check DIR` (real torch).

use std::path::PathBuf;

use cai_torchfile::{DType, SaveLayout, TensorSpec, TorchFile, TorchWriter, Value};

fn out_dir() -> (PathBuf, bool) {
    match std::env::var_os("CAI_TORCHFILE_WRITE_DIR") {
        Some(d) => {
            std::fs::create_dir_all(&d).unwrap();
            (PathBuf::from(d), true)
        }
        None => {
            let d = std::env::temp_dir().join(format!("cai-torchfile-rt-{}", std::process::id()));
            std::fs::create_dir_all(&d).unwrap();
            (d, false)
        }
    }
}

fn values(n: usize, scale: f64) -> Vec<f64> {
    (0..n)
        .map(|i| ((i * 37 % 101) as f64 - 50.0) * scale)
        .collect()
}

#[test]
fn datasets_and_state_dicts_round_trip() {
    let (dir, keep) = out_dir();
    let mut expected = serde_json::Map::new();
    for protocol in 2..=5u8 {
        for layout in [SaveLayout::TensorDataset, SaveLayout::StateDict] {
            let specs = vec![
                TensorSpec::new("images", DType::F32, vec![3, 5, 4, 4]),
                TensorSpec::new("magnitudes", DType::F64, vec![3, 5]),
                TensorSpec::new("redshifts", DType::F32, vec![3]),
                TensorSpec::new("half", DType::F16, vec![2, 2]),
                TensorSpec::new("empty", DType::F32, vec![0, 7]),
            ];
            let name = format!("rt_{layout:?}_p{protocol}.pt");
            let path = dir.join(&name);
            let mut w = TorchWriter::create(&path, layout, specs.clone(), protocol).unwrap();
            let data: Vec<Vec<f64>> = specs.iter().map(|s| values(s.numel(), 0.25)).collect();
            // Stream in odd-sized chunks to cross tensor boundaries.
            w.write_f32(&data[0][..7].iter().map(|&v| v as f32).collect::<Vec<_>>())
                .unwrap();
            w.write_f32(&data[0][7..].iter().map(|&v| v as f32).collect::<Vec<_>>())
                .unwrap();
            w.write_f64(&data[1]).unwrap();
            w.write_f32(&data[2].iter().map(|&v| v as f32).collect::<Vec<_>>())
                .unwrap();
            w.write_f64(&data[3]).unwrap();
            w.finish().unwrap();

            let f = TorchFile::open(&path).unwrap();
            let tensors: Vec<_> = match layout {
                SaveLayout::TensorDataset => {
                    let Some(Value::Tuple(ts)) = f.root().get("tensors") else {
                        panic!("no tensors")
                    };
                    ts.iter().map(|t| t.as_tensor().unwrap().clone()).collect()
                }
                SaveLayout::StateDict => {
                    let named = f.named_tensors();
                    let names: Vec<_> = named.iter().map(|(n, _)| n.as_str()).collect();
                    assert_eq!(
                        names,
                        ["images", "magnitudes", "redshifts", "half", "empty"]
                    );
                    named.into_iter().map(|(_, t)| t).collect()
                }
            };
            let mut file_expect = serde_json::Map::new();
            for (i, (t, s)) in tensors.iter().zip(&specs).enumerate() {
                assert_eq!(t.shape, s.shape);
                assert_eq!(t.dtype, s.dtype);
                let mut got: Vec<f64> = Vec::new();
                f.read_rows_into(t, 0..s.shape[0], &mut got).unwrap();
                assert_eq!(got, data[i], "{name} tensor {i}");
                let key = match layout {
                    SaveLayout::TensorDataset => i.to_string(),
                    SaveLayout::StateDict => s.name.clone(),
                };
                let dtype = match s.dtype {
                    DType::F32 => "float32",
                    DType::F64 => "float64",
                    _ => "float16",
                };
                file_expect.insert(key, serde_json::json!({"dtype": dtype, "shape": s.shape, "sum": got.iter().sum::<f64>()}));
            }
            expected.insert(name, serde_json::Value::Object(file_expect));
        }
    }
    if keep {
        std::fs::write(
            dir.join("expected.json"),
            serde_json::to_string_pretty(&expected).unwrap(),
        )
        .unwrap();
    } else {
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn writer_rejects_short_or_long_data_and_leaves_no_file() {
    let dir = std::env::temp_dir().join(format!("cai-torchfile-short-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("short.pt");
    let specs = vec![TensorSpec::new("x", DType::F32, vec![4])];
    let mut w = TorchWriter::create(&path, SaveLayout::StateDict, specs.clone(), 2).unwrap();
    w.write_f32(&[1.0, 2.0]).unwrap();
    assert!(w.finish().is_err());
    let mut w = TorchWriter::create(&path, SaveLayout::StateDict, specs, 2).unwrap();
    assert!(w.write_f32(&[1.0; 5]).is_err());
    drop(w);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "temp files left behind"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
