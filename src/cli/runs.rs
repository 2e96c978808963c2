//! Commands on runs: `pcam train`, `eval`, `predict`, `bundle` and `twin-run`.

use super::ConfigArgs;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use pcam::config;
use pcam::progress::Progress;
use std::path::PathBuf;

// `pcam train` (the help text is the doc comment of `Command::Train`).
#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Continue the run in this folder from its last checkpoint (bitwise-equal result).
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "run_dir")]
    pub resume: Option<PathBuf>,
    /// Use this folder for the run instead of runs/<experiment>/<run-id>.
    #[arg(long, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    /// Train once per master seed (`1,2,3` or `1-5`), choose each run's threshold on
    /// valid, evaluate on test, and print mean ± sd of F1, F2, ROC-AUC and PR-AUC.
    #[arg(long, value_name = "SEEDS", conflicts_with_all = ["resume", "run_dir"])]
    pub seeds: Option<String>,
    /// With --seeds: the group's folder (default runs/<experiment>/seeds-<time>-<hash>);
    /// each seed's run is <group>/<group name>-seed<S>, and a seed whose folder already
    /// holds its finished evaluation is reused.
    #[arg(long, value_name = "DIR", requires = "seeds")]
    pub group: Option<PathBuf>,
    /// With --seeds and --group: train only this seed of the group (one task of a job
    /// array); a later `--seeds … --group` without --only reuses it and writes the summary.
    #[arg(long, value_name = "SEED", requires = "group")]
    pub only: Option<u64>,
}

// `pcam eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The run folder.
    #[arg(long, value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// Split to evaluate.
    #[arg(long, default_value = "test")]
    pub split: pcam::data::SplitName,
    /// Which checkpoint: best or last.
    #[arg(long, value_enum, default_value_t = Checkpoint::Best)]
    pub checkpoint: Checkpoint,
    /// Choose the run's decision threshold on this (validation) split by
    /// `eval.threshold_policy` and store it in threshold.json.
    #[arg(long)]
    pub choose_threshold: bool,
    /// Also score the baselines (majority class; logistic regression on tile features)
    /// on the same split: baselines-<split>.json.
    #[arg(long)]
    pub baselines: bool,
    /// Also slice the split (confidence, brightness, stain, tissue, slide, label, audit
    /// flags): slices-<split>.json and .md, worst slices first.
    #[arg(long)]
    pub slices: bool,
    /// Then compare with the evaluation stored in this run folder (a reference run of
    /// the same checkpoint, e.g. models/demo-cnn): the same tiles, probabilities within
    /// --probability-tolerance, ROC-AUC/AP/log loss/Brier within --metric-tolerance, the same
    /// decisions except within --margin of the threshold; fails otherwise.
    #[arg(long, value_name = "REF_RUN_DIR")]
    pub expect: Option<PathBuf>,
    /// Largest |Δ probability| of a tile allowed by --expect.
    #[arg(long, default_value_t = 1e-4, requires = "expect")]
    pub probability_tolerance: f64,
    /// Largest |Δ| of a threshold-free metric allowed by --expect.
    #[arg(long, default_value_t = 1e-4, requires = "expect")]
    pub metric_tolerance: f64,
    /// Tiles this close to the threshold may change their decision under --expect.
    #[arg(long, default_value_t = 1e-3, requires = "expect")]
    pub margin: f64,
}

// `pcam predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The run folder.
    #[arg(long, value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// PCAM x files (.h5 / .h5.gz, only `x` is read), 96x96 RGB PNG tiles, or folders of PNGs.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Output CSV: input,index,probability,label,note.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Which checkpoint: best or last.
    #[arg(long, value_enum, default_value_t = Checkpoint::Best)]
    pub checkpoint: Checkpoint,
    /// Decision threshold (default: the run's stored threshold, else 0.5).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Device (default: the run's train.device): cpu, cuda or auto.
    #[arg(long, value_enum)]
    pub device: Option<Device>,
}

// `pcam bundle`.
#[derive(Debug, Args)]
pub struct BundleArgs {
    /// The run folder.
    #[arg(long, value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// The archive to write (.tar.gz).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// gzip level 0-9 (CUDA libraries barely compress: 1 is nearly as small as 9).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub level: u32,
    /// Replace an existing archive.
    #[arg(long)]
    pub force: bool,
}

// `pcam twin-run`.
#[derive(Debug, Args)]
pub struct TwinRunArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Folder for the two runs and the report (default runs/<experiment>/twin-<time>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `--checkpoint`: which of a run's checkpoints to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Checkpoint {
    Best,
    Last,
}

impl Checkpoint {
    /// The name the library takes (`RunDir::checkpoint`).
    fn as_str(self) -> &'static str {
        match self {
            Checkpoint::Best => "best",
            Checkpoint::Last => "last",
        }
    }
}

/// `--device`: where to run the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Device {
    Cpu,
    Cuda,
    Auto,
}

impl From<Device> for config::DeviceChoice {
    fn from(d: Device) -> Self {
        match d {
            Device::Cpu => Self::Cpu,
            Device::Cuda => Self::Cuda,
            Device::Auto => Self::Auto,
        }
    }
}

/// Trains one run, resumes one, or trains one run per seed (`--seeds`).
pub fn train(a: TrainArgs, progress: Progress) -> Result<()> {
    match a {
        TrainArgs {
            config,
            resume: None,
            run_dir: None,
            seeds: Some(spec),
            group,
            only,
        } => {
            let seeds = pcam::multiseed::parse_seeds(&spec)?;
            if let (Some(only), Some(group)) = (only, &group) {
                let run = pcam::multiseed::train_one_seed(
                    &config.files,
                    &config.overrides,
                    &seeds,
                    only,
                    group,
                    progress,
                )?;
                println!("run {}", run.display());
                return Ok(());
            }
            let g = pcam::multiseed::train_seeds(
                &config.files,
                &config.overrides,
                &seeds,
                group.as_deref(),
                progress,
            )?;
            for r in &g.runs {
                println!("run {}", r.display());
            }
            println!("{}\n", g.valid.table()?.to_markdown());
            println!("{}", g.test.table()?.to_markdown());
            println!("group {}", g.dir.display());
        }
        TrainArgs {
            config,
            resume,
            run_dir,
            ..
        } => {
            let (cfg, run, resume) = match resume {
                Some(dir) => {
                    if !config.files.is_empty() || !config.overrides.is_empty() {
                        anyhow::bail!("--resume takes the config stored in the run; drop --config and overrides");
                    }
                    let run = pcam::run::RunDir::open(&dir)?;
                    (config::from_run(&run.path)?, run, true)
                }
                None => {
                    let cfg = config.resolve()?;
                    cfg.config.data.plan()?;
                    pcam::tracking::Target::resolve(&cfg.config)?;
                    let run = pcam::run::RunDir::create(&cfg, run_dir.as_deref())?;
                    (cfg, run, false)
                }
            };
            if !progress.quiet {
                eprintln!("run folder: {}", run.path.display());
            }
            let mut tracker = pcam::tracking::Tracker::start(&run, progress.quiet)?;
            if let Some(u) = tracker.uri() {
                if !progress.quiet {
                    eprintln!("tracking to {u}");
                }
            }
            let fitted = pcam::train::fit(
                &cfg,
                &run,
                pcam::train::FitOptions {
                    resume,
                    progress,
                    after_epoch: Some(&mut |r| tracker.epoch(r)),
                    ..Default::default()
                },
            );
            tracker.finish(&run, fitted.is_ok());
            let s = fitted?;
            println!("run {}", s.run.display());
            if let Some(u) = tracker.uri() {
                if tracker.is_offline() {
                    println!(
                        "tracking: {u} did not answer; run marked unsynced (pcam tracking sync {})",
                        s.run.display()
                    );
                } else {
                    println!("tracking: logged to {u}");
                }
            }
            print!("{}", s.to_text());
        }
    }
    Ok(())
}

/// Evaluates a run on a split, optionally against a reference run, with slices and baselines.
pub fn eval(a: EvalArgs, progress: Progress) -> Result<()> {
    let EvalArgs {
        run,
        split,
        checkpoint,
        choose_threshold,
        baselines,
        slices,
        expect,
        probability_tolerance,
        metric_tolerance,
        margin,
    } = a;
    let run = pcam::run::RunDir::open(&run)?;
    let reference = expect.as_deref().map(pcam::run::RunDir::open).transpose()?;
    let r =
        pcam::eval::evaluate_with(&run, split, checkpoint.as_str(), choose_threshold, progress)?;
    if let Some(reference) = reference {
        let tol = pcam::eval::Tolerance {
            probability: probability_tolerance,
            metric: metric_tolerance,
            margin,
        };
        let a = pcam::eval::agreement(&run, &reference, split, &tol)?;
        print!(
            "agreement with {}:\n{}",
            reference.path.display(),
            a.to_text(&tol)
        );
        if !a.failures.is_empty() {
            anyhow::bail!(
                "{} does not reproduce {} within tolerance: {}",
                run.path.display(),
                reference.path.display(),
                a.failures.join("; ")
            );
        }
    }
    if slices {
        let sr = pcam::slicing::slice(&run, split, progress)?;
        print!("{}", sr.worst_text(5));
        let opts = run.config()?.data.open_options(progress);
        let figs = pcam::slicing::figures::save_all(&run, split, &sr, &opts)?;
        println!(
            "{} figures (ROC, PR, confusion, thresholds, calibration, slices, errors overall and in the 3 worst slices) in {}",
            figs.len(),
            run.path.join("figures").display()
        );
    }
    if baselines {
        let b = pcam::baseline::evaluate(&run, split, progress)?;
        print!("{}", b.to_markdown(&r));
    }
    print!("{}", r.to_text());
    pcam::tracking::after_eval(&run, progress.quiet)?;
    Ok(())
}

/// Predicts new tiles with a finished run's model and writes the CSV.
pub fn predict(a: PredictArgs, progress: Progress) -> Result<()> {
    let PredictArgs {
        run,
        inputs,
        out,
        checkpoint,
        threshold,
        device,
    } = a;
    let run = pcam::run::RunDir::open(&run)?;
    let r = pcam::predict::predict(
        &run,
        &inputs,
        &out,
        checkpoint.as_str(),
        threshold,
        device.map(Into::into),
        progress,
    )?;
    print!("{}", r.to_text());
    Ok(())
}

/// Packs a finished run for offline inference.
pub fn bundle(a: BundleArgs, progress: Progress) -> Result<()> {
    let BundleArgs {
        run,
        out,
        level,
        force,
    } = a;
    let run = pcam::run::RunDir::open(&run)?;
    if out.exists() && !force {
        return Err(
            pcam::Error::bad_file(&out, "already exists; pass --force to replace it").into(),
        );
    }
    let me = std::env::current_exe().context("locating the running pcam binary")?;
    let r = pcam::bundle::bundle(&run, &me, &out, level, progress)?;
    print!("{}", r.to_text());
    Ok(())
}

/// Trains the same config twice in two processes and compares the runs.
pub fn twin_run(a: TwinRunArgs) -> Result<()> {
    let TwinRunArgs { config, out } = a;
    let cfg = config.resolve()?;
    cfg.config.data.plan()?;
    let out = out.unwrap_or_else(|| {
        cfg.config
            .run
            .root
            .join(&cfg.config.run.experiment)
            .join(format!("twin-{}", pcam::run::utc_stamp()))
    });
    let me = std::env::current_exe().context("locating the running pcam binary")?;
    let report = pcam::twin::run(&me, &out, &config.files, &config.overrides)?;
    print!("{}", report.to_text());
    if !report.identical {
        anyhow::bail!("twin runs differ (report in {})", out.display());
    }
    Ok(())
}
