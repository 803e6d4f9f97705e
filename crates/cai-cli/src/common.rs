//! Pieces every command shares: threads, tracing, progress bars, model loading and the
//! untrained-model banner.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cai_data::Partition;
use cai_model::{AstroMaeConfig, LoadedModel, WeightSource};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Logs go to stderr, filtered by `RUST_LOG` (default `warn`), so stdout stays parseable.
pub fn init_tracing() {
    init_tracing_at("warn");
}

/// Logs to stderr at `default` level unless RUST_LOG says otherwise.
pub fn init_tracing_at(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // No colour codes in files and CloudWatch Logs, only on a terminal.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// `--threads`, defaulting to every available core.
pub fn threads(flag: Option<usize>) -> usize {
    flag.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

/// candle sizes its pool from `RAYON_NUM_THREADS`; set it before any model work so it agrees
/// with `--threads`, unless the user chose it explicitly.
pub fn set_rayon_threads(threads: usize) {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // Called from `main` before any thread is spawned.
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    }
}

/// Parses a count that must be at least one (batch sizes, repeats, sample counts).
pub fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("expected a positive integer, got {s:?}")),
    }
}

/// A samples progress bar on stderr; hidden when quiet or when stderr is not a terminal, so
/// logs and pipes stay clean.
pub fn progress_bar(total: u64, quiet: bool, unit: &str) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let template = format!(
        "{{elapsed_precise}} [{{wide_bar}}] {{human_pos}}/{{human_len}} {unit} ({{per_sec}}, eta {{eta}})"
    );
    if let Ok(style) = ProgressStyle::with_template(&template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}

/// The warning printed at the start and end of any run on seeded random weights, so nobody
/// mistakes its numbers for a real model's.
pub fn untrained_banner(origin: &str) {
    let line = format!("UNTRAINED MODEL ({origin}): random weights, predictions are meaningless");
    let bar = "!".repeat(line.len() + 6);
    eprintln!("{bar}\n!!  {line}  !!\n{bar}");
}

/// Loads the model, naming the `--model` value on failure.
pub fn load_model(source: &WeightSource) -> Result<LoadedModel> {
    cai_model::load_model(source).with_context(|| format!("--model {source}: cannot load weights"))
}

/// Opens every input partition up front, so a bad file fails before any prediction is made.
pub fn open_inputs(paths: &[PathBuf]) -> Result<Vec<Partition>> {
    paths
        .iter()
        .map(|p| Partition::open(p).with_context(|| format!("--input {}", p.display())))
        .collect()
}

/// Fails with a clear message, naming the file, when a partition's sample shape differs
/// from the model's (the same check the inference handler makes).
pub fn check_compatible(cfg: &AstroMaeConfig, path: &Path, part: &Partition) -> Result<()> {
    cai_workflow::handlers::infer::check_compatible(cfg, part)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// The error and its causes on one line, dropping a cause already quoted by the message
/// above it (library errors print their source, which would otherwise appear twice).
pub fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut prev = String::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        if !prev.is_empty() && prev.ends_with(&msg) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&msg);
        prev = msg;
    }
    out
}

/// Ends this process when the process that started it goes away. The local engine's
/// invocations (`cai worker`, `cai handler`) run in their own process groups, so killing a
/// `cai run` outright (kill -9, a closed terminal) would leave them to finish the invocation
/// in hand and write into a result path whose lease has become stale, and that `--resume`
/// may have taken over by then. Watching the parent bounds that to half a second: a dead
/// engine's pid (what its lease names) then really means a gone run.
pub fn exit_with_parent() {
    // SAFETY: getppid has no preconditions.
    let parent = unsafe { libc::getppid() };
    if parent <= 1 {
        return; // started by init (or already orphaned): nothing to watch
    }
    let watch = move || loop {
        std::thread::sleep(std::time::Duration::from_millis(500));
        // SAFETY: as above.
        if unsafe { libc::getppid() } != parent {
            // SAFETY: ends this process only; no cleanup can be trusted to run in time.
            unsafe { libc::raise(libc::SIGKILL) };
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("cai-parent-watch".into())
        .spawn(watch)
    {
        tracing::warn!("cannot watch the parent process: {e}");
    }
}
