//! `cai`: the CAI workflow (run locally or on AWS), redshift inference over partition
//! files, benchmarks, and data preparation.
//!
//! `main` only parses flags and dispatches; each command lives in its own module.

mod asl;
mod aws;
mod bench;
mod common;
mod data;
mod demo;
mod glibc_compat;
mod handler;
mod predict;
mod report;
mod run;
mod slurm_task;
mod worker;

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
    /// Make a synthetic set and run the seed report's three experiments (world sizes 11, 50,
    /// 100) through the whole workflow, scaled to about a minute.
    Demo(demo::DemoArgs),
    /// Run the workflow (Initialize, one inference process per rank, Summarize) on this
    /// machine from an original CAI payload.
    Run(run::RunArgs),
    /// The same workflow on AWS Step Functions + Lambda: package, deploy, run, status, destroy.
    #[command(subcommand)]
    Aws(aws::AwsCommand),
    /// Draw runs as one self-contained HTML page: redshift accuracy, invocation timeline,
    /// per-rank throughput and memory, cost, and scaling across runs.
    Report(report::ReportArgs),
    /// Print the workflow's Amazon States Language definition.
    Asl(asl::AslArgs),
    /// Predict redshifts for every sample of the input partitions and write them to a file.
    Predict(predict::PredictArgs),
    /// Measure throughput, CPU time, memory and latency (optionally against PyTorch).
    Bench(bench::BenchArgs),
    /// Make, split and convert partition files.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Serve one handler invocation: event on stdin, result on stdout (used by the engine).
    #[command(hide = true)]
    Handler {
        /// init, infer, failure or summarize.
        name: String,
    },
    /// Serve handler invocations, one JSON request per line, as a warm worker (used by the
    /// engine).
    #[command(hide = true)]
    Worker,
    /// Run one job's invocation of `cai run --engine slurm` (its batch scripts call this).
    #[command(hide = true, name = "slurm-task")]
    SlurmTask(slurm_task::SlurmTaskArgs),
}

/// Started by Lambda (or an emulator) as the function's `bootstrap`: no arguments and the
/// Runtime API in the environment.
fn serves_lambda() -> bool {
    cai_lambda::runtime::in_lambda() && std::env::args_os().len() == 1
}

fn main() -> ExitCode {
    // Taken first so that `bench` can report the time to the first prediction from start-up.
    let t0 = Instant::now();
    if serves_lambda() {
        common::init_tracing_at("info");
        return match cai_lambda::runtime::serve(t0) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        };
    }
    let cli = Cli::parse();
    common::init_tracing();
    match &cli.command {
        Command::Handler { name } => return handler::run(name),
        Command::Worker => return worker::run(),
        Command::SlurmTask(a) => return slurm_task::run(a),
        _ => {}
    }
    let threads = match &cli.command {
        Command::Predict(a) => Some(common::threads(a.threads)),
        Command::Bench(a) => Some(common::threads(a.threads)),
        _ => None,
    };
    if let Some(t) = threads {
        common::set_rayon_threads(t);
    }
    let result = match cli.command {
        Command::Predict(args) => predict::run(args, cli.quiet).map(|()| 0),
        Command::Bench(args) => bench::run(args, cli.quiet, t0).map(|()| 0),
        Command::Data(cmd) => data::run(cmd, cli.quiet).map(|()| 0),
        Command::Run(args) => run::run(args, cli.quiet),
        Command::Demo(args) => demo::run(args, cli.quiet),
        Command::Report(args) => report::run(args),
        Command::Asl(args) => asl::run(args).map(|()| 0),
        Command::Aws(cmd) => aws::run(cmd, cli.quiet),
        Command::Handler { .. } | Command::Worker | Command::SlurmTask(_) => {
            unreachable!("served above")
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", common::error_chain(&e));
            ExitCode::from(2)
        }
    }
}
