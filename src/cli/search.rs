//! `pcam search`: hyperparameter search over a YAML space, and the trial runner that
//! workers and Slurm array tasks call.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use pcam::progress::Progress;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The search definition (configs/search/*.yaml).
    #[arg(long = "config", short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Trials at once, each in its own process (set train.threads to cores / workers).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Run each round of trials as a Slurm job array (sbatch --wait; PCAM_SBATCH overrides
    /// the sbatch command), at most --workers tasks at once.
    #[arg(long)]
    pub slurm: bool,
    /// The array task script (gets SWEEP_DIR LIST EPOCHS).
    #[arg(long, value_name = "FILE", default_value = "slurm/search_trial.sbatch")]
    pub script: PathBuf,
    /// Extra sbatch arguments, e.g. --sbatch-arg=--partition=gpu_course.
    #[arg(long = "sbatch-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub sbatch_args: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum SearchCmd {
    /// Train one trial of a prepared sweep to N epochs (what workers and array tasks run).
    Trial {
        #[arg(long, value_name = "SWEEP_DIR")]
        sweep: PathBuf,
        #[arg(long)]
        index: usize,
        #[arg(long)]
        epochs: usize,
    },
}

pub fn run(cmd: Option<SearchCmd>, args: SearchArgs, progress: Progress) -> Result<()> {
    match cmd {
        Some(SearchCmd::Trial {
            sweep,
            index,
            epochs,
        }) => {
            let s = pcam::search::open(&sweep)?;
            s.run_trial(index, epochs, progress)?;
        }
        None => {
            let Some(file) = args.config else {
                anyhow::bail!(
                    "give the search definition: pcam search --config configs/search/FILE.yaml"
                );
            };
            if args.workers == 0 {
                anyhow::bail!("--workers must be at least 1");
            }
            let sweep = pcam::search::prepare(&file)?;
            let exec = if args.slurm {
                if !args.script.is_file() {
                    anyhow::bail!("{}: Slurm script not found", args.script.display());
                }
                pcam::search::Executor::Slurm {
                    script: args.script.clone(),
                    sbatch_args: args.sbatch_args.clone(),
                    parallel: args.workers,
                }
            } else if args.workers > 1 {
                pcam::search::Executor::Workers {
                    exe: std::env::current_exe().context("locating the running pcam binary")?,
                    n: args.workers,
                }
            } else {
                pcam::search::Executor::Inline
            };
            if !progress.quiet {
                eprintln!(
                    "{}: {} trials ({:?}) in {}",
                    sweep.id(),
                    sweep.trials.len(),
                    sweep.spec.strategy,
                    sweep.dir.display()
                );
            }
            let out = pcam::search::run(&sweep, &exec, progress)?;
            let keys: Vec<String> = sweep.spec.space.keys().cloned().collect();
            let figs = pcam::report::Assets::at(sweep.dir.join("figures"));
            let note = pcam::data::synth::suffix(out.data_synthetic.is_some());
            pcam::search::report::metric_vs_params(
                "metric_vs_params",
                &out,
                &keys,
                &format!("{}: {} per trial{note}", out.sweep, out.metric),
            )?
            .save(&figs)?;
            pcam::search::report::parallel_coordinates(
                "parallel_coordinates",
                &out,
                &keys,
                &format!(
                    "{}: trials, darker = better {}{note}",
                    out.sweep, out.metric
                ),
            )?
            .save(&figs)?;
            println!("{}", out.table(&keys)?.to_markdown());
            print!("{}", out.summary_text());
            if !out.failed.is_empty() {
                anyhow::bail!(
                    "{} trial(s) failed; rerun the same command to retry them",
                    out.failed.len()
                );
            }
        }
    }
    Ok(())
}
