//! `cai`: redshift inference over partition files, benchmarks, and data preparation.
//!
//! `main` only parses flags and dispatches; each command lives in its own module.

mod bench;
mod common;
mod data;
mod predict;

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

/// Redshift inference (AstroMAE) over galaxy partition files.
#[derive(Parser, Debug)]
#[command(name = "cai", version, about, propagate_version = true)]
struct Cli {
    /// Hide progress bars (they are also hidden when stderr is not a terminal).
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Predict redshifts for every sample of the input partitions and write them to a file.
    Predict(predict::PredictArgs),
    /// Measure throughput, CPU time, memory and latency (optionally against PyTorch).
    Bench(bench::BenchArgs),
    /// Make, split and convert partition files.
    #[command(subcommand)]
    Data(data::DataCommand),
}

fn main() -> ExitCode {
    // Taken first so that `bench` can report the time to the first prediction from start-up.
    let t0 = Instant::now();
    let cli = Cli::parse();
    common::init_tracing();
    let threads = match &cli.command {
        Command::Predict(a) => Some(common::threads(a.threads)),
        Command::Bench(a) => Some(common::threads(a.threads)),
        Command::Data(_) => None,
    };
    if let Some(t) = threads {
        common::set_rayon_threads(t);
    }
    let result = match cli.command {
        Command::Predict(args) => predict::run(args, cli.quiet),
        Command::Bench(args) => bench::run(args, cli.quiet, t0),
        Command::Data(cmd) => data::run(cmd, cli.quiet),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", common::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}
