//! `cai aws package`: the deployment zip for `cai aws deploy`. By default the running `cai`
//! binary is packaged when it suits the architecture (it is checked: ELF machine, glibc at
//! most 2.34, as Amazon Linux 2023 has), stripped when `strip` is available; for the other
//! architecture it is cross-built with cargo-lambda (which brings zig as the linker).

use std::path::PathBuf;

use anyhow::{Context, Result};
use cai_aws::package::{self, MAX_DIRECT_ZIP_BYTES};
use cai_workflow::settings::Architecture;

/// Flags of `cai aws package`.
#[derive(clap::Args, Debug)]
pub struct PackageArgs {
    /// The functions' CPU architecture.
    #[arg(long, default_value = "x86_64", value_name = "x86_64|arm64")]
    pub arch: Architecture,
    /// Package this binary instead (for example one built with `cargo lambda build`).
    #[arg(long, value_name = "FILE")]
    pub binary: Option<PathBuf>,
    /// Where to write the zip (default target/lambda/cai-<arch>.zip, where deploy looks).
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Cross-build with `cargo lambda build` even when the running binary would do.
    #[arg(long)]
    pub build: bool,
}

/// Runs `cai aws package`.
pub fn run(args: PackageArgs, _quiet: bool) -> Result<u8> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| package::default_zip_path(args.arch));
    let binary = choose_binary(&args)?;
    let original = std::fs::read(&binary).with_context(|| format!("{}", binary.display()))?;
    package::check_binary(&binary, &original, args.arch)?;
    let scratch = tempfile::tempdir().context("scratch directory")?;
    let (image, stripped) = match package::stripped_copy(&binary, scratch.path()) {
        Some(s) if package::check_binary(&binary, &s, args.arch).is_ok() => (s, true),
        _ => (original.clone(), false),
    };
    let zip = package::zip_bootstrap(&image)?;
    package::write_atomically(&out, &zip)?;
    println!(
        "{}: bootstrap from {} ({:.1} MB{}), zip {:.1} MB, {}, needs glibc {}",
        out.display(),
        binary.display(),
        image.len() as f64 / 1e6,
        if stripped { ", stripped" } else { "" },
        zip.len() as f64 / 1e6,
        args.arch.as_str(),
        package::max_glibc(&image).map_or("none (static)".into(), |(a, b)| format!("{a}.{b}")),
    );
    if zip.len() as u64 > MAX_DIRECT_ZIP_BYTES {
        eprintln!(
            "warning: the zip is over Lambda's 50 MB direct-upload limit; strip the binary (install binutils) or build with `--build`"
        );
    }
    Ok(0)
}

/// `--binary`, else the running executable when it is for `arch`, else a cross build.
fn choose_binary(args: &PackageArgs) -> Result<PathBuf> {
    if let Some(b) = &args.binary {
        return Ok(b.clone());
    }
    let me = std::env::current_exe().context("locating the cai executable")?;
    let native = std::fs::read(&me)
        .ok()
        .and_then(|image| package::check_binary(&me, &image, args.arch).ok());
    if native.is_some() && !args.build {
        return Ok(me);
    }
    let workspace = workspace_root().with_context(|| {
        format!(
            "the running cai is not an {} Lambda binary, and no source tree to build one from was found; pass --binary",
            args.arch.as_str()
        )
    })?;
    eprintln!(
        "building cai for {} with cargo-lambda in {} (several minutes the first time)",
        args.arch.as_str(),
        workspace.display()
    );
    Ok(package::cross_build(&workspace, args.arch)?)
}

/// The workspace this binary was built from, when it is still there.
fn workspace_root() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.join("Cargo.lock")
        .is_file()
        .then(|| root.canonicalize().ok())
        .flatten()
}
