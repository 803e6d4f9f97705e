//! Hostile and broken inputs must produce errors, never panics or huge allocations.

use std::path::PathBuf;

use cai_torchfile::pickle::{self, Limits};
use cai_torchfile::{TorchError, TorchFile};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/torchfile")
            .join(name),
    )
    .unwrap()
}

/// Opens and reads every tensor, returning the first error.
fn load_all(bytes: Vec<u8>) -> Result<(), TorchError> {
    let f = TorchFile::from_bytes("test", bytes)?;
    for (_, t) in f.named_tensors() {
        if t.numel()? < 1 << 20 {
            f.read_all_f32(&t)?;
        }
    }
    Ok(())
}

#[test]
fn every_truncation_of_a_real_file_fails_cleanly() {
    let bytes = fixture("views.pt");
    for cut in (0..bytes.len()).step_by(7) {
        assert!(
            load_all(bytes[..cut].to_vec()).is_err(),
            "cut at {cut} loaded"
        );
    }
}

#[test]
fn byte_flips_never_panic() {
    let bytes = fixture("module_dp.pt");
    for i in (0..bytes.len()).step_by(3) {
        let mut b = bytes.clone();
        b[i] ^= 0x5a;
        let _ = load_all(b);
    }
}

/// Replaces `from` by `to` (same length) inside the file.
fn patched(name: &str, from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut b = fixture(name);
    let mut found = false;
    while let Some(at) = b.windows(from.len()).position(|w| w == from) {
        b[at..at + to.len()].copy_from_slice(to);
        found = true;
    }
    assert!(found, "pattern present");
    b
}

#[test]
fn storage_size_mismatch_is_reported_with_the_entry() {
    // Same element count, half the element size: the entry is twice the declared size.
    let b = patched("dtypes.pt", b"torch\nFloatStorage", b"torch\nShortStorage");
    let err = TorchFile::from_bytes("d.pt", b).unwrap_err().to_string();
    assert!(err.contains("data/") && err.contains("bytes"), "{err}");
}

#[test]
fn compressed_or_missing_entries_are_rejected() {
    let b = patched("dtypes.pt", b"data.pkl", b"data.pkx");
    let err = TorchFile::from_bytes("x.pt", b).unwrap_err().to_string();
    assert!(err.contains("data.pkl"), "{err}");
}

#[test]
fn big_endian_files_are_rejected() {
    let b = patched("dtypes.pt", b"little", b"bigend");
    let err = TorchFile::from_bytes("x.pt", b).unwrap_err().to_string();
    assert!(err.contains("byteorder"), "{err}");
}

#[test]
fn garbage_and_empty_inputs_are_rejected() {
    for b in [
        vec![],
        b"PK".to_vec(),
        b"hello world, not a zip".to_vec(),
        vec![0x80, 2, b'.'],
    ] {
        assert!(TorchFile::from_bytes("x", b).is_err());
    }
}

fn pkl(body: &[u8]) -> Vec<u8> {
    let mut v = vec![0x80, 2];
    v.extend_from_slice(body);
    v
}

#[test]
fn huge_declared_lengths_fail_without_allocating() {
    for op in [b'X', b'B', b'T'] {
        let mut body = vec![op];
        body.extend_from_slice(&0x7fff_fff0u32.to_le_bytes());
        body.extend_from_slice(b"abc.");
        assert!(pickle::parse(&pkl(&body))
            .unwrap_err()
            .to_string()
            .contains("exceeds"));
    }
    let mut body = vec![0x8d];
    body.extend_from_slice(&u64::MAX.to_le_bytes());
    assert!(pickle::parse(&pkl(&body)).is_err());
    let mut body = vec![0x95];
    body.extend_from_slice(&(1u64 << 60).to_le_bytes());
    assert!(pickle::parse(&pkl(&body)).is_err());
}

#[test]
fn deep_nesting_is_bounded() {
    // 100k nested lists: EMPTY_LIST, then (EMPTY_LIST APPEND)... built bottom-up.
    let mut body = vec![b']'; 100_000];
    body.extend(std::iter::repeat_n(b'a', 99_999));
    body.push(b'.');
    let err = pickle::parse(&pkl(&body)).unwrap_err().to_string();
    assert!(err.contains("nested"), "{err}");
}

#[test]
fn shared_reference_blowup_is_bounded() {
    // l0 = []; l(k+1) = [lk, lk] via the memo: 2^60 leaves if expanded.
    let mut body = vec![b']', b'q', 0];
    for k in 0..60u8 {
        body.extend_from_slice(&[b']', b'h', k, b'a', b'h', k, b'a', b'q', k + 1]);
    }
    body.push(b'.');
    let err = pickle::parse(&pkl(&body)).unwrap_err().to_string();
    assert!(err.contains("expand") || err.contains("nested"), "{err}");
    let limits = Limits {
        max_values: 10,
        ..Limits::for_len(body.len())
    };
    assert!(pickle::parse_with_limits(&pkl(&body), limits).is_err());
}

#[test]
fn stack_and_memo_misuse_is_an_error() {
    for body in [
        &b"0."[..],
        b"1.",
        b"2.",
        b"t.",
        b"a.",
        b"h\x05.",
        b"R.",
        b"Q.",
        b"(.",
        b"\x85.",
        b"N",
        b"b.",
        b"cos\nsystem",
        b"\xff.",
    ] {
        assert!(pickle::parse(&pkl(body)).is_err(), "{body:?}");
    }
}

#[test]
fn out_of_bounds_views_are_rejected() {
    // A 4-element storage viewed as 3x3.
    let body = b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x00K\x03K\x03\x86K\x03K\x01\x86\x89tR.";
    let err = pickle::parse(&pkl(body)).unwrap_err().to_string();
    assert!(err.contains("needs") && err.contains("bytes"), "{err}");
    // Offset past the end.
    let body = b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x04K\x01\x85K\x01\x85\x89tR.";
    assert!(pickle::parse(&pkl(body)).is_err());
    // Overflowing stride.
    let body = b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x00K\x02\x85\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f\x85\x89tR.";
    assert!(pickle::parse(&pkl(body)).is_err());
}
