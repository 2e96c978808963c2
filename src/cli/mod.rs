//! The command line: clap definitions (doc comments are the `--help` text) and the
//! dispatch from parsed flags to library calls, one module per command family (each holds
//! its clap definitions and handlers). Output formatting lives here; all work lives in the
//! library.

mod bench;
mod data;
mod report;
mod runs;
mod search;
mod tracking;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use pcam::config::{self, ResolvedConfig};
use pcam::progress::Progress;
use std::path::PathBuf;

/// pcam — reproducible machine learning on PatchCamelyon (PCAM).
#[derive(Debug, Parser)]
#[command(name = "pcam", version, about, long_about = None)]
pub struct Cli {
    /// Print only results: no progress bars, no notes.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Resolve, validate and print configurations.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Create, inspect and check PCAM data.
    #[command(subcommand)]
    Data(data::DataCmd),
    /// Train a model; the run gets its own folder under runs/<experiment>/.
    Train(runs::TrainArgs),
    /// Evaluate a finished run's checkpoint on a split (writes eval-<split>.json and predictions).
    Eval(runs::EvalArgs),
    /// Predict tumour probability for new tiles with a finished run's model.
    Predict(runs::PredictArgs),
    /// Pack a finished run for offline inference: this binary, the libraries it loads,
    /// the checkpoints and resolved config, a README and SHA-256 sums, in one .tar.gz.
    Bundle(runs::BundleArgs),
    /// Train the same config twice in two processes and compare weights and histories.
    TwinRun(runs::TwinRunArgs),
    /// Hyperparameter search (grid, random, successive halving) over a YAML space; rerun
    /// the same command to resume an interrupted search.
    #[command(args_conflicts_with_subcommands = true)]
    Search {
        #[command(subcommand)]
        cmd: Option<search::SearchCmd>,
        #[command(flatten)]
        args: search::SearchArgs,
    },
    /// Experiment tracking with an MLflow server: sync runs logged offline, show state,
    /// list a server's runs, run a local server.
    #[command(subcommand)]
    Tracking(tracking::TrackingCmd),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(bench::BenchCmd),
    /// Export tables and figures to assets/ (the same helpers the notebooks use).
    #[command(subcommand)]
    Report(report::ReportCmd),
    /// Show the pcam version and what the linked libtorch and HDF5 offer here.
    Info {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Configuration files and overrides, shared by every command that takes a config.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// YAML file layered over the embedded defaults; repeat to layer several, in order.
    #[arg(long = "config", short = 'c', value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Dotted overrides with YAML values, applied last: `train.lr=3e-4 model.hidden=[128,64]`.
    #[arg(value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

impl ConfigArgs {
    fn resolve(&self) -> Result<ResolvedConfig> {
        Ok(config::resolve(&self.files, &self.overrides)?)
    }
}

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Print the resolved configuration (YAML) and its SHA-256.
    Show {
        #[command(flatten)]
        config: ConfigArgs,
        /// Also write config.yaml and config.sha256 into this folder.
        #[arg(long, value_name = "DIR")]
        write: Option<PathBuf>,
    },
}

impl Command {
    /// Commands that train while a background thread assembles batches: their idle OpenMP
    /// workers must not spin (see `pcam::runtime::passive_openmp`). Evaluation, prediction
    /// and the throughput benchmark read, assemble and compute in one thread, where
    /// spinning workers are what keeps batch-1 latency low (CNN batch 1 on 2 threads:
    /// ~1,030 img/s with libgomp's default policy, ~500 with PASSIVE).
    pub fn computes(&self) -> bool {
        matches!(
            self,
            Command::Train(_)
                | Command::Search { .. }
                | Command::TwinRun(_)
                | Command::Bench(bench::BenchCmd::Train { .. })
        )
    }
}

pub fn run(cli: Cli) -> Result<()> {
    let progress = Progress { quiet: cli.quiet };
    match cli.command {
        Command::Config(c) => config_show(c, progress),
        Command::Data(c) => data::run(c, progress),
        Command::Train(a) => runs::train(a, progress),
        Command::Eval(a) => runs::eval(a, progress),
        Command::Predict(a) => runs::predict(a, progress),
        Command::Bundle(a) => runs::bundle(a, progress),
        Command::TwinRun(a) => runs::twin_run(a),
        Command::Search { cmd, args } => search::run(cmd, args, progress),
        Command::Tracking(c) => tracking::run(c, progress),
        Command::Bench(c) => bench::run(c, progress),
        Command::Report(c) => report::run(c, progress),
        Command::Info { json } => info(json),
    }
}

/// `pcam config show`.
fn config_show(cmd: ConfigCmd, progress: Progress) -> Result<()> {
    let ConfigCmd::Show { config, write } = cmd;
    let r = config.resolve()?;
    print!("{}", r.yaml);
    println!("# sha256: {}", r.sha256);
    if !progress.quiet {
        eprintln!("layers: {}", r.sources.join(" -> "));
        if let Err(e) = r.config.data.plan() {
            eprintln!("warning: {e}");
        }
    }
    if let Some(dir) = write {
        r.write_to(&dir)?;
    }
    Ok(())
}

/// `pcam info`.
fn info(json: bool) -> Result<()> {
    let info = pcam::device::runtime_info();
    if json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        print!("{}", info.to_text());
    }
    Ok(())
}

/// The MLflow server: `--uri`, else `MLFLOW_TRACKING_URI`.
fn server_uri(uri: Option<String>) -> Result<String> {
    match uri.or_else(|| std::env::var("MLFLOW_TRACKING_URI").ok()) {
        Some(u) => Ok(u),
        None => anyhow::bail!("give --uri or set MLFLOW_TRACKING_URI"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pre_main_reading_of_the_command_line_agrees_with_clap() {
        // What main.rs decides before libgomp loads (from raw argv) must be what the
        // parsed command says (Command::computes), for every command and option order.
        let lines = [
            "train",
            "-q train",
            "train -q --config x.yaml",
            "train --resume runs/a/b",
            "--quiet train a=1",
            "search --config s.yaml --workers 2",
            "-q search trial --sweep d --index 3 --epochs 2",
            "twin-run --out d",
            "bench train",
            "bench -q train --steps 3",
            "-q bench train --steps 3",
            "bench throughput",
            "bench metrics",
            "eval --run runs/x",
            "predict --run runs/x --out p.csv x.h5",
            "data synth --out d",
            "info",
            "config show",
            "report bench",
        ];
        for line in lines {
            let words: Vec<&str> = line.split_whitespace().collect();
            let cli = Cli::try_parse_from(std::iter::once("pcam").chain(words.iter().copied()))
                .unwrap_or_else(|e| panic!("pcam {line}: {e}"));
            assert_eq!(
                pcam::runtime::trains_from_args(words.iter().map(|w| w.as_bytes())),
                cli.command.computes(),
                "pcam {line}"
            );
        }
    }
}
