//! The Lambda deployment zip: the `cai` binary as `bootstrap` (mode 0755), for the
//! `provided.al2023` runtime. The binary must be an ELF for the function's architecture that
//! needs at most glibc 2.34 (Amazon Linux 2023's), or be static. The zip is written
//! atomically, so a failed package never leaves a truncated file for deploy to upload.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use cai_workflow::settings::Architecture;

/// Amazon Linux 2023's glibc: the newest symbol version a `bootstrap` may need.
pub const MAX_GLIBC: (u32, u32) = (2, 34);

/// Lambda's limit for a zip uploaded directly with CreateFunction/UpdateFunctionCode.
pub const MAX_DIRECT_ZIP_BYTES: u64 = 50 * 1024 * 1024;

/// Why a binary cannot be packaged.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// Not a 64-bit little-endian ELF executable.
    #[error("{0}: not a 64-bit Linux ELF executable")]
    NotElf(PathBuf),
    /// Built for another CPU.
    #[error("{path}: built for {found}, but the function is {wanted}")]
    WrongArch {
        /// The binary.
        path: PathBuf,
        /// Its machine.
        found: String,
        /// The function's.
        wanted: &'static str,
    },
    /// Needs a newer glibc than Amazon Linux 2023 has.
    #[error("{path}: needs GLIBC_{}.{} but Amazon Linux 2023 has 2.34; build with `cargo lambda build --release --target <arch>-unknown-linux-gnu.2.34` or for musl", .needs.0, .needs.1)]
    GlibcTooNew {
        /// The binary.
        path: PathBuf,
        /// The newest version it needs.
        needs: (u32, u32),
    },
    /// Reading, stripping, building or writing failed.
    #[error("{0}")]
    Io(String),
}

/// The default zip path for an architecture, relative to the working directory; deploy
/// looks there.
pub fn default_zip_path(arch: Architecture) -> PathBuf {
    PathBuf::from(format!("target/lambda/cai-{}.zip", arch.as_str()))
}

/// The architecture an ELF image was built for (None: not a 64-bit little-endian ELF or an
/// unknown machine).
pub fn elf_arch(image: &[u8]) -> Option<Result<Architecture, u16>> {
    if image.len() < 20 || &image[..4] != b"\x7fELF" || image[4] != 2 || image[5] != 1 {
        return None;
    }
    let machine = u16::from_le_bytes([image[18], image[19]]);
    Some(match machine {
        0x3e => Ok(Architecture::X86_64),
        0xb7 => Ok(Architecture::Arm64),
        other => Err(other),
    })
}

/// The newest `GLIBC_x.y` symbol version named in the image (None: no glibc versions, as in
/// a static or musl binary). Version names live in `.dynstr`, so a scan finds all of them.
pub fn max_glibc(image: &[u8]) -> Option<(u32, u32)> {
    const TAG: &[u8] = b"GLIBC_";
    let mut best: Option<(u32, u32)> = None;
    let mut i = 0;
    while let Some(pos) = find(&image[i..], TAG) {
        let start = i + pos + TAG.len();
        let digits: Vec<u8> = image[start..]
            .iter()
            .take(12)
            .copied()
            .take_while(|c| c.is_ascii_digit() || *c == b'.')
            .collect();
        let text = String::from_utf8_lossy(&digits);
        let mut parts = text.split('.').map(|p| p.parse::<u32>().ok());
        if let (Some(Some(major)), Some(Some(minor))) = (parts.next(), parts.next()) {
            best = best.max(Some((major, minor)));
        }
        i = start;
    }
    best
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Checks that `image` (read from `path`) can run as `arch`'s bootstrap on AL2023.
pub fn check_binary(path: &Path, image: &[u8], arch: Architecture) -> Result<(), PackageError> {
    match elf_arch(image) {
        None => Err(PackageError::NotElf(path.into())),
        Some(Err(m)) => Err(PackageError::WrongArch {
            path: path.into(),
            found: format!("ELF machine {m:#x}"),
            wanted: arch.as_str(),
        }),
        Some(Ok(a)) if a != arch => Err(PackageError::WrongArch {
            path: path.into(),
            found: a.as_str().into(),
            wanted: arch.as_str(),
        }),
        Some(Ok(_)) => match max_glibc(image) {
            Some(v) if v > MAX_GLIBC => Err(PackageError::GlibcTooNew {
                path: path.into(),
                needs: v,
            }),
            _ => Ok(()),
        },
    }
}

/// A zip holding `image` as the executable `bootstrap`.
pub fn zip_bootstrap(image: &[u8]) -> Result<Vec<u8>, PackageError> {
    let io = |e: &dyn std::fmt::Display| PackageError::Io(format!("building the zip: {e}"));
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o755);
    zip.start_file("bootstrap", options).map_err(|e| io(&e))?;
    zip.write_all(image).map_err(|e| io(&e))?;
    Ok(zip.finish().map_err(|e| io(&e))?.into_inner())
}

/// A copy of `binary` without debug info and symbols (`strip`), or None when no `strip`
/// that understands it is on PATH: a smaller zip uploads and cold-starts faster.
pub fn stripped_copy(binary: &Path, scratch: &Path) -> Option<Vec<u8>> {
    let out = scratch.join("bootstrap.stripped");
    let ok = Command::new("strip")
        .arg("--strip-all")
        .arg("-o")
        .arg(&out)
        .arg(binary)
        .output()
        .is_ok_and(|o| o.status.success());
    let image = ok.then(|| std::fs::read(&out).ok()).flatten();
    let _ = std::fs::remove_file(&out);
    image
}

/// Writes `bytes` to `path` atomically (temp file in the same folder, then rename).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), PackageError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let io = |e: std::io::Error| PackageError::Io(format!("{}: {e}", path.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(io)?;
    }
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Cross-builds `cai` for `arch` with cargo-lambda (zig as the linker, glibc 2.34 symbols)
/// from the workspace at `workspace`, stripped, and returns the binary's path.
pub fn cross_build(workspace: &Path, arch: Architecture) -> Result<PathBuf, PackageError> {
    let triple = match arch {
        Architecture::X86_64 => "x86_64-unknown-linux-gnu.2.34",
        Architecture::Arm64 => "aarch64-unknown-linux-gnu.2.34",
    };
    let lambda_dir = workspace.join(format!("target/lambda-build/{}", arch.as_str()));
    let status = Command::new("cargo")
        .current_dir(workspace)
        .args([
            "lambda",
            "build",
            "--release",
            "-p",
            "cai-cli",
            "--bin",
            "cai",
        ])
        .args(["--target", triple, "--lambda-dir"])
        .arg(&lambda_dir)
        // The release profile keeps line tables for profiling; a bootstrap needs none.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "0")
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
        .status()
        .map_err(|e| {
            PackageError::Io(format!(
                "running `cargo lambda build` ({e}); install it with `pip install cargo-lambda`"
            ))
        })?;
    if !status.success() {
        return Err(PackageError::Io(format!(
            "`cargo lambda build --target {triple}` failed ({status})"
        )));
    }
    Ok(lambda_dir.join("cai/bootstrap"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn elf(machine: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[18..20].copy_from_slice(&machine.to_le_bytes());
        h
    }

    #[test]
    fn elf_machine_is_read() {
        assert_eq!(elf_arch(&elf(0x3e)), Some(Ok(Architecture::X86_64)));
        assert_eq!(elf_arch(&elf(0xb7)), Some(Ok(Architecture::Arm64)));
        assert_eq!(elf_arch(&elf(0x28)), Some(Err(0x28)));
        assert_eq!(elf_arch(b"#!/bin/sh\n"), None);
    }

    #[test]
    fn newest_glibc_version_is_found() {
        let mut image = elf(0x3e);
        image.extend_from_slice(b"\0GLIBC_2.2.5\0GLIBC_2.34\0GLIBC_2.17\0GLIBC_PRIVATE\0");
        assert_eq!(max_glibc(&image), Some((2, 34)));
        assert!(check_binary(Path::new("b"), &image, Architecture::X86_64).is_ok());
        image.extend_from_slice(b"GLIBC_2.38\0");
        let e = check_binary(Path::new("b"), &image, Architecture::X86_64).unwrap_err();
        assert!(e.to_string().contains("GLIBC_2.38"), "{e}");
        let e = check_binary(Path::new("b"), &image, Architecture::Arm64).unwrap_err();
        assert!(e.to_string().contains("built for x86_64"), "{e}");
        assert_eq!(max_glibc(&elf(0x3e)), None);
    }

    #[test]
    fn the_running_test_binary_passes_the_check() {
        let me = std::env::current_exe().unwrap();
        let image = std::fs::read(&me).unwrap();
        let native = if cfg!(target_arch = "aarch64") {
            Architecture::Arm64
        } else {
            Architecture::X86_64
        };
        assert_eq!(elf_arch(&image), Some(Ok(native)));
        assert!(max_glibc(&image).is_some());
    }

    #[test]
    fn zip_holds_an_executable_bootstrap() {
        let image = b"\x7fELF pretend binary".repeat(100);
        let bytes = zip_bootstrap(&image).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/cai.zip");
        write_atomically(&path, &bytes).unwrap();
        let mut archive = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
        assert_eq!(archive.len(), 1);
        let mut entry = archive.by_name("bootstrap").unwrap();
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
        let mut back = Vec::new();
        entry.read_to_end(&mut back).unwrap();
        assert_eq!(back, image);
    }
}
