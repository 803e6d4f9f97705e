//! Partition reading on real torch fixtures, synthesis, split and convert.

use std::path::{Path, PathBuf};

use cai_data::{
    convert, split, synth, synth_partition, Batch, DataError, Format, Partition, SAMPLE_BYTES,
};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/torchfile")
}

fn expected(file: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&text).unwrap()[file].clone()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cai-data-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn all_rows(p: &Partition) -> Batch {
    let mut b = Batch::default();
    p.read_batch(0..p.len(), &mut b).unwrap();
    b
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-4 * b.abs().max(1.0)
}

#[test]
fn torch_fixtures_read_like_torch() {
    let cases = [
        ("dataset_p2.pt", ["0", "1", "2"]),
        ("dataset_p3.pt", ["0", "1", "2"]),
        ("dataset_p4.pt", ["0", "1", "2"]),
        ("dataset_p5.pt", ["0", "1", "2"]),
        ("dataset_views.pt", ["0", "1", "2"]),
        ("tuple_dataset.pt", ["0", "1", "2"]),
        ("dict_dataset.pt", ["images", "magnitudes", "redshifts"]),
    ];
    for (file, keys) in cases {
        let p = Partition::open(&fixtures().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let want = expected(file);
        assert!(p.has_redshifts());
        assert_eq!(p.len() as u64, want[keys[0]]["shape"][0].as_u64().unwrap());
        let b = all_rows(&p);
        let sums = [
            b.images.iter().map(|&x| x as f64).sum::<f64>(),
            b.magnitudes.iter().map(|&x| x as f64).sum(),
            b.redshifts
                .as_ref()
                .unwrap()
                .iter()
                .map(|&x| x as f64)
                .sum(),
        ];
        for (k, s) in keys.iter().zip(sums) {
            assert!(
                close(s, want[k]["sum"].as_f64().unwrap()),
                "{file}:{k} {s} vs {}",
                want[k]["sum"]
            );
        }
        // Batches concatenate to the whole.
        let mut images = Vec::new();
        for batch in p.batches(3) {
            images.extend(batch.unwrap().images);
        }
        assert_eq!(images, b.images, "{file}");
    }
}

#[test]
fn non_partitions_are_rejected_with_the_tensor_named() {
    let err = Partition::open(&fixtures().join("state_dict.pt")).unwrap_err();
    assert!(matches!(err, DataError::Layout { .. }), "{err}");
    let err = Partition::open(&fixtures().join("legacy.pt"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("torch>=1.6"), "{err}");
    let err = Partition::from_bytes("x".into(), b"not a partition at all".to_vec()).unwrap_err();
    assert!(matches!(err, DataError::Format { .. }), "{err}");
    // images of rank 2 in a dict
    let dir = tmp("badrank");
    let path = dir.join("bad.safetensors");
    let mut w =
        cai_data::PartitionWriter::create(&path, Format::Safetensors, 2, [1, 1, 1], 0, false);
    if let Ok(w) = w.as_mut() {
        w.write_f32(&[1.0, 2.0]).unwrap();
    }
    w.unwrap().finish().unwrap();
    let err = Partition::open(&path).unwrap_err().to_string();
    assert!(
        err.contains("magnitudes") && err.contains("expected"),
        "{err}"
    );
}

fn read_everything(path: &Path) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let p = Partition::open(path).unwrap();
    let b = all_rows(&p);
    (b.images, b.magnitudes, b.redshifts.unwrap())
}

#[test]
fn synth_is_deterministic_plausible_and_both_formats_agree() {
    let dir = tmp("synth");
    let a = synth(&dir.join("a"), 0.25, 0.1, 42, Format::Torch, &|_, _| {}).unwrap();
    let b = synth(
        &dir.join("b"),
        0.25,
        0.1,
        42,
        Format::Safetensors,
        &|_, _| {},
    )
    .unwrap();
    assert_eq!(a.len(), 3);
    assert!(a[0].ends_with("1.pt") && b[2].ends_with("3.safetensors"));
    let per = ((0.1 * (1u64 << 20) as f64) / SAMPLE_BYTES as f64) as usize;
    for (pa, pb) in a.iter().zip(&b) {
        assert_eq!(read_everything(pa), read_everything(pb));
    }
    let (img, mags, z) = read_everything(&a[0]);
    assert_eq!(z.len(), per);
    assert_eq!(img.len(), per * 5 * 32 * 32);
    assert!(z.iter().all(|&z| (0.0..0.4).contains(&z)));
    assert!(mags.iter().all(|&m| (13.5..24.5).contains(&m)));
    let median = {
        let mut s = z.clone();
        s.sort_by(f32::total_cmp);
        s[s.len() / 2]
    };
    assert!(median < 0.15, "median z {median}");
    // Brighter (smaller r magnitude) galaxies have more flux in r.
    let flux = |i: usize| {
        img[i * 5120 + 2 * 1024..i * 5120 + 3 * 1024]
            .iter()
            .sum::<f32>()
    };
    let mut by_mag: Vec<usize> = (0..per).collect();
    by_mag.sort_by(|&x, &y| mags[x * 5 + 2].total_cmp(&mags[y * 5 + 2]));
    assert!(flux(by_mag[0]) > flux(by_mag[per - 1]));
    // Partition 2 alone reproduces the same bytes.
    let again = dir.join("again.pt");
    synth_partition(&again, 1, per, 42, Format::Torch).unwrap();
    assert_eq!(read_everything(&again), read_everything(&a[1]));
    // Size is about partition_mb.
    let size = std::fs::metadata(&a[0]).unwrap().len() as f64;
    assert!(
        (size / (0.1 * (1u64 << 20) as f64) - 1.0).abs() < 0.02,
        "size {size}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn split_and_convert_preserve_rows() {
    let dir = tmp("split");
    let parts = synth(&dir.join("src"), 0.1, 0.1, 7, Format::Torch, &|_, _| {}).unwrap();
    let whole = read_everything(&parts[0]);
    let st = dir.join("whole.safetensors");
    convert(&parts[0], &st, &|_, _| {}).unwrap();
    assert_eq!(read_everything(&st), whole);
    let back = dir.join("back.pt");
    convert(&st, &back, &|_, _| {}).unwrap();
    assert_eq!(read_everything(&back), whole);
    let pieces = split(&st, &dir.join("pieces"), 0.04, &|_, _| {}).unwrap();
    assert_eq!(pieces.len(), 3);
    let mut joined = (Vec::new(), Vec::new(), Vec::new());
    for p in &pieces {
        let (a, b, c) = read_everything(p);
        joined.0.extend(a);
        joined.1.extend(b);
        joined.2.extend(c);
    }
    assert_eq!(joined, whole);
    // In-memory bytes read the same as the file.
    let bytes = std::fs::read(&pieces[1]).unwrap();
    let p = Partition::from_bytes("piece".into(), bytes).unwrap();
    assert_eq!(all_rows(&p).images, read_everything(&pieces[1]).0);
    assert!(convert(&st, &dir.join("x.bin"), &|_, _| {}).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn truncated_and_corrupted_partitions_fail_cleanly() {
    let dir = tmp("trunc");
    for format in [Format::Torch, Format::Safetensors] {
        let path = dir.join(format!("p.{}", format.extension()));
        synth_partition(&path, 0, 3, 1, format).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        for cut in (0..bytes.len()).step_by(997) {
            let r = Partition::from_bytes("cut".into(), bytes[..cut].to_vec());
            assert!(r.is_err(), "{format:?} cut at {cut} opened");
        }
        for i in (0..bytes.len()).step_by(89) {
            let mut b = bytes.clone();
            b[i] ^= 0xa5;
            cai_data::fuzz_support::partition_bytes(&b);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn partition_is_shareable_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Partition>();
    assert_send_sync::<cai_torchfile::TorchFile>();
}
