//! The command line: clap definitions (doc comments are the `--help` text) and the
//! dispatch from parsed flags to library calls. Output formatting lives here; all
//! work lives in the library.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use pcam::config::{self, ResolvedConfig};
use pcam::data::hdf5::OpenOptions;
use pcam::data::inspect;
use pcam::data::synth::{self, Sizes, SynthOptions, Variant};
use pcam::progress::Progress;
use pcam::report::Assets;
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
    Data(DataCmd),
    /// Train a model; the run gets its own folder under runs/<experiment>/.
    Train {
        #[command(flatten)]
        config: ConfigArgs,
        /// Continue the run in this folder from its last checkpoint (bitwise-equal result).
        #[arg(long, value_name = "RUN_DIR", conflicts_with = "run_dir")]
        resume: Option<PathBuf>,
        /// Use this folder for the run instead of runs/<experiment>/<run-id>.
        #[arg(long, value_name = "DIR")]
        run_dir: Option<PathBuf>,
        /// Train once per master seed (`1,2,3` or `1-5`), choose each run's threshold on
        /// valid, evaluate on test, and print mean ± sd of F1, F2, ROC-AUC and PR-AUC.
        #[arg(long, value_name = "SEEDS", conflicts_with_all = ["resume", "run_dir"])]
        seeds: Option<String>,
    },
    /// Evaluate a finished run's checkpoint on a split (writes eval-<split>.json and predictions).
    Eval {
        /// The run folder.
        #[arg(long, value_name = "RUN_DIR")]
        run: PathBuf,
        /// Split to evaluate.
        #[arg(long, default_value = "test")]
        split: pcam::data::SplitName,
        /// Which checkpoint: best or last.
        #[arg(long, default_value = "best", value_parser = ["best", "last"])]
        checkpoint: String,
        /// Choose the run's decision threshold on this (validation) split by
        /// `eval.threshold_policy` and store it in threshold.json.
        #[arg(long)]
        choose_threshold: bool,
        /// Also score the baselines (majority class; logistic regression on tile features)
        /// on the same split: baselines-<split>.json.
        #[arg(long)]
        baselines: bool,
        /// Also slice the split (confidence, brightness, stain, tissue, slide, label, audit
        /// flags): slices-<split>.json and .md, worst slices first.
        #[arg(long)]
        slices: bool,
        /// Then compare with the evaluation stored in this run folder (a reference run of
        /// the same checkpoint, e.g. models/demo-cnn): the same tiles, probabilities within
        /// --probability-tolerance, ROC-AUC/AP/log loss/Brier within --metric-tolerance, the same
        /// decisions except within --margin of the threshold; fails otherwise.
        #[arg(long, value_name = "REF_RUN_DIR")]
        expect: Option<PathBuf>,
        /// Largest |Δ probability| of a tile allowed by --expect.
        #[arg(long, default_value_t = 1e-4, requires = "expect")]
        probability_tolerance: f64,
        /// Largest |Δ| of a threshold-free metric allowed by --expect.
        #[arg(long, default_value_t = 1e-4, requires = "expect")]
        metric_tolerance: f64,
        /// Tiles this close to the threshold may change their decision under --expect.
        #[arg(long, default_value_t = 1e-3, requires = "expect")]
        margin: f64,
    },
    /// Predict tumour probability for new tiles with a finished run's model.
    Predict {
        /// The run folder.
        #[arg(long, value_name = "RUN_DIR")]
        run: PathBuf,
        /// PCAM x files (.h5 / .h5.gz, only `x` is read), 96x96 RGB PNG tiles, or folders of PNGs.
        #[arg(required = true, value_name = "INPUT")]
        inputs: Vec<PathBuf>,
        /// Output CSV: input,index,probability,label,note.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Which checkpoint: best or last.
        #[arg(long, default_value = "best", value_parser = ["best", "last"])]
        checkpoint: String,
        /// Decision threshold (default: the run's stored threshold, else 0.5).
        #[arg(long)]
        threshold: Option<f32>,
        /// Device (default: the run's train.device): cpu, cuda or auto.
        #[arg(long, value_parser = parse_device)]
        device: Option<pcam::config::DeviceChoice>,
    },
    /// Pack a finished run for offline inference: this binary, the libraries it loads,
    /// the checkpoints and resolved config, a README and SHA-256 sums, in one .tar.gz.
    Bundle {
        /// The run folder.
        #[arg(long, value_name = "RUN_DIR")]
        run: PathBuf,
        /// The archive to write (.tar.gz).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// gzip level 0-9 (CUDA libraries barely compress: 1 is nearly as small as 9).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=9))]
        level: u32,
        /// Replace an existing archive.
        #[arg(long)]
        force: bool,
    },
    /// Train the same config twice in two processes and compare weights and histories.
    TwinRun {
        #[command(flatten)]
        config: ConfigArgs,
        /// Folder for the two runs and the report (default runs/<experiment>/twin-<time>).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Hyperparameter search (grid, random, successive halving) over a YAML space; rerun
    /// the same command to resume an interrupted search.
    #[command(args_conflicts_with_subcommands = true)]
    Search {
        #[command(subcommand)]
        cmd: Option<SearchCmd>,
        #[command(flatten)]
        args: SearchArgs,
    },
    /// Experiment tracking with an MLflow server: sync runs logged offline, show state,
    /// list a server's runs, run a local server.
    #[command(subcommand)]
    Tracking(TrackingCmd),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Export tables and figures to assets/ (the same helpers the notebooks use).
    #[command(subcommand)]
    Report(ReportCmd),
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

#[derive(Debug, Subcommand)]
pub enum DataCmd {
    /// Write a synthetic PCAM dataset (the 9-file layout plus synthetic.json).
    Synth {
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Seed: the same seed gives byte-identical files.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Tiles per split, e.g. `train=4096,valid=512,test=512` (unnamed splits keep defaults).
        #[arg(long, default_value = "")]
        sizes: String,
        /// Which copy of PCAM to imitate.
        #[arg(long, value_enum, default_value_t = Variant::Pcam)]
        variant: Variant,
        /// Rendering threads (does not change the output).
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Overwrite PCAM files already in the output folder.
        #[arg(long)]
        force: bool,
    },
    /// Report storage, labels, pixel ranges and slides of a PCAM folder or file.
    Inspect {
        /// A folder with PCAM files, or one x/y file.
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Where .h5.gz files are decompressed (default: the user cache folder).
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Write tiles of a split as 96x96 PNG files (<split>_<index>.png), e.g. to try `pcam predict`.
    ExportPng {
        /// A folder with PCAM files.
        dir: PathBuf,
        #[arg(long, default_value = "test")]
        split: pcam::data::SplitName,
        /// Tile indices, e.g. `0,5,9` or `0..16`.
        #[arg(long, default_value = "0..8")]
        tiles: String,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Where .h5.gz files are decompressed (default: the user cache folder).
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Leakage and poisoning audit: duplicates across splits, shared slides, bad pixels,
    /// blank/saturated/low-tissue tiles, trigger patches, label-noise candidates.
    Audit {
        /// A folder with PCAM files.
        dir: PathBuf,
        /// Report folder (audit.json, audit.md, figures/); default runs/audit/<folder name>.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Also write a clean index (tiles to drop, and why) for `data.exclude`.
        #[arg(long, value_name = "FILE")]
        write_clean: Option<PathBuf>,
        /// Check that every run under this folder normalised with train-only statistics.
        #[arg(long, value_name = "DIR")]
        runs: Option<PathBuf>,
        /// Near-duplicate threshold: perceptual-hash distance, 0..=7 bits of 63.
        #[arg(long, default_value_t = 6)]
        near_distance: u32,
        /// Seed of the label-noise model's folds.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Print JSON instead of the summary.
        #[arg(long)]
        json: bool,
        /// Where .h5.gz files are decompressed (default: the user cache folder).
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Build seeded, stratified, slide-grouped splits (train/valid or k folds) as a split
    /// manifest for `data.split_manifest`; the provided test split stays the hold-out.
    Split {
        /// A folder with PCAM files (with meta.csv: slides come from its wsi column).
        dir: PathBuf,
        /// The manifest to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Split seed (the default equals the embedded `data.split_seed`).
        #[arg(long, default_value_t = 1234)]
        seed: u64,
        /// Share of the pool in valid (one train/valid split).
        #[arg(long, default_value_t = 0.125)]
        valid_fraction: f64,
        /// k folds instead of one train/valid split (k ≥ 2).
        #[arg(long, default_value_t = 1)]
        folds: usize,
        /// Provided splits pooled and re-split, e.g. `train,valid`.
        #[arg(long, default_value = "train,valid", value_delimiter = ',')]
        pool: Vec<pcam::data::SplitName>,
        /// Where .h5.gz files are decompressed (default: the user cache folder).
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Read every tile of `data.dir` under the `data.invalid` policy, as training will.
    Check {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

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

#[derive(Debug, Subcommand)]
pub enum TrackingCmd {
    /// Push runs a server does not hold completely (logged while it was down); running it
    /// again changes nothing. Server: --uri, else those recorded in each run and
    /// MLFLOW_TRACKING_URI / run.tracking_uri.
    Sync {
        /// Run folders, or folders to search for runs (default: runs/).
        #[arg(value_name = "RUN_OR_DIR")]
        paths: Vec<PathBuf>,
        /// Push to this server.
        #[arg(long)]
        uri: Option<String>,
        /// Re-send everything even to servers recorded as synced (still no duplicates).
        #[arg(long)]
        force: bool,
    },
    /// Which servers hold each run, and what is missing.
    Status {
        /// Run folders, or folders to search for runs (default: runs/).
        #[arg(value_name = "RUN_OR_DIR")]
        paths: Vec<PathBuf>,
    },
    /// List an experiment's runs on the server, newest first.
    List {
        /// Server (default: MLFLOW_TRACKING_URI).
        #[arg(long)]
        uri: Option<String>,
        /// Experiment name.
        #[arg(long)]
        experiment: String,
    },
    /// Download a logged run's artifacts (config, checkpoints, history…) into a new run
    /// folder, ready for `pcam eval` / `pcam predict`.
    Fetch {
        /// Server (default: MLFLOW_TRACKING_URI).
        #[arg(long)]
        uri: Option<String>,
        /// MLflow run id.
        #[arg(long)]
        run_id: String,
        /// New folder for the run.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// A local low-memory MLflow server (SQLite + artifacts in one folder, 127.0.0.1).
    #[command(subcommand)]
    Server(ServerCmd),
}

#[derive(Debug, Subcommand)]
pub enum ServerCmd {
    /// Start it in the background and print its URL.
    Start {
        /// Folder for mlflow.db, mlartifacts/, server.log and server.json.
        #[arg(long, default_value = "mlflow")]
        dir: PathBuf,
        /// Port on 127.0.0.1 (0: a free one).
        #[arg(long, default_value_t = 5000)]
        port: u16,
        /// The mlflow executable (default: PCAM_MLFLOW, $VIRTUAL_ENV/bin, .venv/bin, PATH).
        #[arg(long, value_name = "FILE")]
        mlflow: Option<PathBuf>,
    },
    /// Stop it (by the PID recorded in DIR/server.json).
    Stop {
        #[arg(long, default_value = "mlflow")]
        dir: PathBuf,
    },
    /// Print its URL if it is running.
    Status {
        #[arg(long, default_value = "mlflow")]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// ROC-AUC and average precision on N seeded synthetic scores (seconds, best of 3).
    Metrics {
        /// How many scores.
        #[arg(long, default_value_t = 10_000_000)]
        n: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also write the scores (f32 little-endian) and labels (u8) here, as FILE.scores
        /// and FILE.labels, for an independent comparison.
        #[arg(long, value_name = "FILE")]
        data_out: Option<PathBuf>,
        /// Write the timings as JSON here.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Metric points/s logged to an MLflow server, batched vs one point per request.
    Tracking {
        /// Server (default: MLFLOW_TRACKING_URI).
        #[arg(long)]
        uri: Option<String>,
        #[arg(long, default_value = "pcam-logging-bench")]
        experiment: String,
        /// Points logged in batches of 1000.
        #[arg(long, default_value_t = 100_000)]
        points: usize,
        /// Points logged one per request.
        #[arg(long, default_value_t = 1_000)]
        single: usize,
    },
    /// Images/s of inference and of a training step at batch size 1 and over a batch-size
    /// sweep, with a stage breakdown and the compute-only bound; writes a JSON result file.
    Throughput {
        #[command(flatten)]
        config: ConfigArgs,
        /// What to time: models, modes, batch sizes, repetitions (default: the embedded
        /// configs/bench/throughput.yaml).
        #[arg(long, value_name = "FILE")]
        spec: Option<PathBuf>,
        /// Replace the spec's batch sizes, e.g. `1,8,64`.
        #[arg(long, value_name = "LIST", value_delimiter = ',')]
        batch_sizes: Vec<usize>,
        /// Replace the spec's modes: `inference`, `train` or both, e.g. `inference`.
        #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = ["inference", "train"])]
        modes: Vec<String>,
        /// Keep only these of the spec's models (by name), e.g. `cnn`.
        #[arg(long, value_name = "LIST", value_delimiter = ',')]
        models: Vec<String>,
        /// Replace the spec's repetitions.
        #[arg(long)]
        repeats: Option<usize>,
        /// Replace the spec's seconds per repetition.
        #[arg(long)]
        min_seconds: Option<f64>,
        /// Result file (default results/bench/throughput-<partition or host>-<job id or time>.json).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Training images/s, whole pipeline vs compute only, for MLP [64,32] and the CNN.
    Train {
        #[command(flatten)]
        config: ConfigArgs,
        /// Timed steps per measurement (after 3 warm-up steps).
        #[arg(long, default_value_t = 40)]
        steps: usize,
        /// Also write the table as JSON here.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportCmd {
    /// Dataset-size evidence (journal Q2.4): table + bar chart of storage per split.
    DatasetSize {
        /// PCAM folders or files to compare (e.g. data/demo/pcam data/demo/course).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Asset name: writes assets/tables/NAME.md and assets/NAME.png.
        #[arg(long, default_value = "q2_dataset_size")]
        name: String,
        /// Assets folder (default: $PCAM_ASSETS_DIR, else assets/ of the project).
        #[arg(long, value_name = "DIR")]
        assets: Option<PathBuf>,
    },
    /// Throughput results (journal Q8): the batch-1 table and the throughput-vs-batch-size
    /// figure from every results/bench/throughput-*.json, and a stage breakdown per file.
    Bench {
        /// Folder of `pcam bench throughput` result files.
        #[arg(long, default_value = "results/bench")]
        dir: PathBuf,
        /// Asset name prefix: NAME_throughput.png, NAME_stages_<n>.png, tables/NAME_batch1.md.
        #[arg(long, default_value = "bench")]
        name: String,
        /// Assets folder (default: $PCAM_ASSETS_DIR, else assets/ of the project).
        #[arg(long, value_name = "DIR")]
        assets: Option<PathBuf>,
    },
    /// Compare the assets a fresh notebook run wrote with the committed ones (what
    /// `make notebooks-check` runs): assets without a `.numbers.json` must be byte-identical;
    /// training-derived ones too on the machine in assets/MACHINE, elsewhere their numbers
    /// must agree within the tolerance each notebook states. Exit 1 on any failure.
    CheckAssets {
        /// The fresh run's assets folder.
        #[arg(long, value_name = "DIR")]
        fresh: PathBuf,
        /// The committed assets folder (default: $PCAM_ASSETS_DIR, else assets/ of the project).
        #[arg(long, value_name = "DIR")]
        assets: Option<PathBuf>,
        /// This machine matches assets/MACHINE: compare training-derived assets byte for byte.
        #[arg(long)]
        same_machine: bool,
        /// Every notebook ran: a committed asset that none made is stale.
        #[arg(long)]
        complete: bool,
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
            Command::Train { .. }
                | Command::Search { .. }
                | Command::TwinRun { .. }
                | Command::Bench(BenchCmd::Train { .. })
        )
    }
}

pub fn run(cli: Cli) -> Result<()> {
    let progress = Progress { quiet: cli.quiet };
    match cli.command {
        Command::Config(ConfigCmd::Show { config, write }) => {
            let r = config.resolve()?;
            print!("{}", r.yaml);
            println!("# sha256: {}", r.sha256);
            if !cli.quiet {
                eprintln!("layers: {}", r.sources.join(" -> "));
                if let Err(e) = r.config.data.plan() {
                    eprintln!("warning: {e}");
                }
            }
            if let Some(dir) = write {
                r.write_to(&dir)?;
            }
        }
        Command::Data(DataCmd::Synth {
            out,
            seed,
            sizes,
            variant,
            threads,
            force,
        }) => {
            let sizes = Sizes::default_for(variant).parse_over(&sizes)?;
            let report = synth::generate(&SynthOptions {
                out: out.clone(),
                seed,
                sizes,
                variant,
                threads,
                force,
                progress,
            })
            .with_context(|| format!("synthesizing PCAM into {}", out.display()))?;
            let m = &report.manifest;
            println!(
                "wrote SYNTHETIC PCAM ({:?} variant, seed {}) to {}: {} tiles in {:.1}s ({:.0} tiles/s)",
                m.variant,
                m.seed,
                out.display(),
                report.tiles,
                report.seconds,
                report.tiles as f64 / report.seconds.max(1e-9)
            );
            for (s, sum) in &m.splits {
                println!(
                    "  {s:<5} {:>7} tiles, {:>5.1}% positive, {} slides",
                    sum.tiles,
                    100.0 * sum.positives as f64 / sum.tiles as f64,
                    sum.slides
                );
            }
            if let Some(c) = &m.corruptions {
                println!(
                    "  poisoned train tiles: {} blank, {} saturated, {} out-of-range, {} trigger, {} exact + {} near duplicates of test; {} valid tiles on train slides (ground truth in {})",
                    c.blank.len(),
                    c.saturated.len(),
                    c.out_of_range.len(),
                    c.trigger.len(),
                    c.exact_duplicate_of_test.len(),
                    c.near_duplicate_of_test.len(),
                    c.valid_on_train_slides.len(),
                    out.join(synth::MANIFEST).display()
                );
            }
        }
        Command::Data(DataCmd::Inspect {
            path,
            json,
            cache_dir,
        }) => {
            let opts = standalone_options(cache_dir, progress);
            let report = inspect::inspect(&path, &opts)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.to_text());
            }
        }
        Command::Data(DataCmd::ExportPng {
            dir,
            split,
            tiles,
            out,
            cache_dir,
        }) => {
            let opts = standalone_options(cache_dir, progress);
            let indices = parse_indices(&tiles)?;
            let paths = pcam::data::tile_png::export(&dir, split, &indices, &out, &opts)?;
            println!("wrote {} PNG tiles to {}", paths.len(), out.display());
        }
        Command::Data(DataCmd::Audit {
            dir,
            out,
            write_clean,
            runs,
            near_distance,
            seed,
            json,
            cache_dir,
        }) => {
            let open = standalone_options(cache_dir, progress);
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "data".into());
            let opts = pcam::audit::AuditOptions {
                thresholds: pcam::audit::Thresholds {
                    near_distance,
                    ..Default::default()
                },
                seed,
                out: out.unwrap_or_else(|| PathBuf::from("runs/audit").join(name)),
                write_clean,
                runs,
                examples: 8,
            };
            let r = pcam::audit::audit(&dir, &opts, &open)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", r.summary());
                println!("report: {}", opts.out.join("audit.md").display());
            }
        }
        Command::Data(DataCmd::Split {
            dir,
            out,
            seed,
            valid_fraction,
            folds,
            pool,
            cache_dir,
        }) => {
            let open = standalone_options(cache_dir, progress);
            let m = pcam::data::split::build(&dir, &pool, valid_fraction, folds, seed, &open)?;
            m.write(&out)?;
            println!("| fold | train tiles | valid tiles | train positive | valid positive | train slides | valid slides | shared slides |");
            println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
            for (k, f) in m.facts.iter().enumerate() {
                println!(
                    "| {k} | {} | {} | {:.3} | {:.3} | {} | {} | {} |",
                    f.train_tiles,
                    f.valid_tiles,
                    f.train_positive_rate,
                    f.valid_positive_rate,
                    f.train_slides,
                    f.valid_slides,
                    f.shared_slides
                );
            }
            println!(
                "wrote {} (seed {seed}, sha256 {})",
                out.display(),
                &m.sha256[..16]
            );
        }
        Command::Data(DataCmd::Check { config, json }) => {
            let r = config.resolve()?;
            r.config.data.plan()?;
            let opts = r.config.data.open_options(progress);
            let reports = inspect::check(&r.config.data.dir, r.config.data.invalid, &opts)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            } else {
                println!(
                    "{} read with data.invalid = {}",
                    r.config.data.dir.display(),
                    r.config.data.invalid
                );
                for c in &reports {
                    println!(
                        "  {:<5} {:>7} tiles, {:>7} kept, {} dropped, {} tiles with out-of-range/NaN values ({} below 0, {} above 255, {} NaN)",
                        c.split.to_string(),
                        c.tiles,
                        c.kept,
                        c.pixels.dropped_tiles,
                        c.pixels.bad_tiles,
                        c.pixels.below,
                        c.pixels.above,
                        c.pixels.nan
                    );
                }
            }
        }
        Command::Train {
            config,
            resume: None,
            run_dir: None,
            seeds: Some(spec),
        } => {
            let seeds = pcam::multiseed::parse_seeds(&spec)?;
            let g =
                pcam::multiseed::train_seeds(&config.files, &config.overrides, &seeds, progress)?;
            for r in &g.runs {
                println!("run {}", r.display());
            }
            println!("{}\n", g.valid.table()?.to_markdown());
            println!("{}", g.test.table()?.to_markdown());
            println!("group {}", g.dir.display());
        }
        Command::Train {
            config,
            resume,
            run_dir,
            seeds: _,
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
            if !cli.quiet {
                eprintln!("run folder: {}", run.path.display());
            }
            let mut tracker = pcam::tracking::Tracker::start(&run, cli.quiet)?;
            if let Some(u) = tracker.uri() {
                if !cli.quiet {
                    eprintln!("tracking to {u}");
                }
            }
            let fitted =
                pcam::train::fit_with(&cfg, &run, resume, progress, &mut |r| tracker.epoch(r));
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
            println!("final weights sha256 {}", s.final_weights_sha256);
            if let Some(b) = &s.best {
                println!(
                    "best epoch {}: valid AUC {}, valid loss {:.4}, accuracy {:.4}{}",
                    b.epoch + 1,
                    b.valid_auc
                        .map(|a| format!("{a:.4}"))
                        .unwrap_or_else(|| "n/a".into()),
                    b.valid_loss,
                    b.valid_accuracy,
                    if s.data_synthetic.is_some() {
                        " (SYNTHETIC data)"
                    } else {
                        ""
                    }
                );
            }
        }
        Command::Eval {
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
        } => {
            let run = pcam::run::RunDir::open(&run)?;
            let reference = expect.as_deref().map(pcam::run::RunDir::open).transpose()?;
            let r =
                pcam::eval::evaluate_with(&run, split, &checkpoint, choose_threshold, progress)?;
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
                println!(
                    "{} slices of {split}; worst (>= {} tiles) by gap to global:",
                    sr.slices.len(),
                    pcam::slicing::MIN_RANKED
                );
                for w in sr.worst.iter().take(5) {
                    println!(
                        "  {} / {} ({} tiles): {} {:.3} vs {:.3} global ({:+.3})",
                        w.family, w.slice, w.tiles, w.metric, w.value, w.global, -w.gap
                    );
                }
                let opts = run.config()?.data.open_options(progress);
                let figs = pcam::report::evaluation::save_all(&run, split, &sr, &opts)?;
                println!(
                    "{} figures (ROC, PR, confusion, thresholds, calibration, slices, errors overall and in the 3 worst slices) in {}",
                    figs.len(),
                    run.path.join("figures").display()
                );
            }
            if baselines {
                let b = pcam::baseline::evaluate(&run, split, progress)?;
                let opt =
                    |v: Option<f64>| v.map(|a| format!("{a:.4}")).unwrap_or_else(|| "n/a".into());
                println!("| scorer ({split}) | ROC-AUC | average precision | recall | precision | F2 | threshold |");
                println!("|---|---:|---:|---:|---:|---:|---:|");
                println!(
                    "| model ({}) | {} | {} | {:.4} | {:.4} | {:.4} | {} |",
                    r.checkpoint,
                    opt(r.roc_auc),
                    opt(r.average_precision),
                    r.recall,
                    r.precision,
                    r.f2,
                    r.threshold.threshold
                );
                for s in &b.baselines {
                    println!(
                        "| {} | {} | {} | {:.4} | {:.4} | {:.4} | {} |",
                        s.name,
                        opt(s.roc_auc),
                        opt(s.average_precision),
                        s.recall,
                        s.precision,
                        s.f2,
                        s.threshold.threshold
                    );
                }
            }
            let opt = |v: Option<f64>| v.map(|a| format!("{a:.4}")).unwrap_or_else(|| "n/a".into());
            println!(
                "{} {} ({} checkpoint, {} tiles): ROC-AUC {}, average precision {}, log loss {:.4}, Brier {:.4}, ECE {:.4}{}",
                r.run.display(),
                r.split,
                r.checkpoint,
                r.tiles,
                opt(r.roc_auc),
                opt(r.average_precision),
                r.log_loss,
                r.brier,
                r.ece,
                if r.data_synthetic.is_some() { " (SYNTHETIC data)" } else { "" }
            );
            println!(
                "  at threshold {} ({}): accuracy {:.4}, recall {:.4}, precision {:.4}, specificity {:.4}, F1 {:.4}, F2 {:.4}; TP {} FP {} TN {} FN {}",
                r.threshold.threshold,
                r.threshold.source,
                r.accuracy,
                r.recall,
                r.precision,
                r.specificity,
                r.f1,
                r.f2,
                r.confusion.tp,
                r.confusion.fp,
                r.confusion.tn,
                r.confusion.fn_
            );
            pcam::tracking::after_eval(&run, cli.quiet)?;
        }
        Command::Predict {
            run,
            inputs,
            out,
            checkpoint,
            threshold,
            device,
        } => {
            let run = pcam::run::RunDir::open(&run)?;
            let r = pcam::predict::predict(
                &run,
                &inputs,
                &out,
                &checkpoint,
                threshold,
                device,
                progress,
            )?;
            println!(
                "{}: {} tiles, {} positive at threshold {} ({}), {} dropped{}",
                r.out.display(),
                r.tiles,
                r.positives,
                r.threshold.threshold,
                r.threshold.source,
                r.dropped,
                if r.data_synthetic.is_some() {
                    " (model trained on SYNTHETIC data)"
                } else {
                    ""
                }
            );
        }
        Command::Bundle {
            run,
            out,
            level,
            force,
        } => {
            let run = pcam::run::RunDir::open(&run)?;
            if out.exists() && !force {
                return Err(pcam::Error::bad_file(
                    &out,
                    "already exists; pass --force to replace it",
                )
                .into());
            }
            let me = std::env::current_exe().context("locating the running pcam binary")?;
            let r = pcam::bundle::bundle(&run, &me, &out, level, progress)?;
            println!(
                "{}: {} files ({} libraries), {:.0} MiB packed into {:.0} MiB, sha256 {}; needs {}{}",
                r.out.display(),
                r.files,
                r.manifest.libraries,
                r.bytes_in as f64 / 1048576.0,
                r.bytes_out as f64 / 1048576.0,
                r.sha256,
                [&r.manifest.host_needs.glibc, &r.manifest.host_needs.glibcxx]
                    .iter()
                    .filter_map(|v| v.as_deref())
                    .collect::<Vec<_>>()
                    .join(" + "),
                if r.manifest.data_synthetic.is_some() {
                    " (model trained on SYNTHETIC data)"
                } else {
                    ""
                }
            );
        }
        Command::TwinRun { config, out } => {
            let cfg = config.resolve()?;
            cfg.config.data.plan()?;
            let out = out.unwrap_or_else(|| {
                cfg.config
                    .run
                    .root
                    .join(&cfg.config.run.experiment)
                    .join(format!("twin-{}", pcam::run::utc_stamp()))
            });
            let report = pcam::twin::run(&out, &config.files, &config.overrides)?;
            print!("{}", report.to_text());
            if !report.identical {
                anyhow::bail!("twin runs differ (report in {})", out.display());
            }
        }
        Command::Tracking(cmd) => tracking(cmd, progress)?,
        Command::Search {
            cmd:
                Some(SearchCmd::Trial {
                    sweep,
                    index,
                    epochs,
                }),
            ..
        } => {
            let s = pcam::search::open(&sweep)?;
            s.run_trial(index, epochs, progress)?;
        }
        Command::Search { cmd: None, args } => {
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
                pcam::search::Executor::Workers(args.workers)
            } else {
                pcam::search::Executor::Inline
            };
            if !cli.quiet {
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
            let note = if out.data_synthetic.is_some() {
                " (SYNTHETIC data)"
            } else {
                ""
            };
            pcam::report::search::metric_vs_params(
                "metric_vs_params",
                &out,
                &keys,
                &format!("{}: {} per trial{note}", out.sweep, out.metric),
            )?
            .save(&figs)?;
            pcam::report::search::parallel_coordinates(
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
            if let Some(c) = &out.champion {
                println!(
                    "champion t{:03}: valid {} {:.4}; test at its valid-chosen threshold {}: ROC-AUC {:.4}, PR-AUC {:.4}, F1 {:.4}, F2 {:.4}, recall {:.4}, precision {:.4}{}",
                    c.trial,
                    out.metric,
                    c.valid_score,
                    c.threshold,
                    c.test["roc_auc"],
                    c.test["pr_auc"],
                    c.test["f1"],
                    c.test["f2"],
                    c.test["recall"],
                    c.test["precision"],
                    if out.data_synthetic.is_some() { " (SYNTHETIC data)" } else { "" }
                );
            }
            println!(
                "epochs trained {} (full grid of these trials {}); sweep {}",
                out.epochs_total,
                out.epochs_full,
                out.dir.display()
            );
            if !out.failed.is_empty() {
                for (i, e) in &out.failed {
                    println!("trial t{i:03} failed: {e}");
                }
                anyhow::bail!(
                    "{} trial(s) failed; rerun the same command to retry them",
                    out.failed.len()
                );
            }
        }
        Command::Bench(BenchCmd::Tracking {
            uri,
            experiment,
            points,
            single,
        }) => {
            let client = pcam::tracking::Client::new(&server_uri(uri)?, 5)?;
            println!("| points | per request | requests | seconds | points/s |");
            println!("|---:|---:|---:|---:|---:|");
            for (n, b) in [(points, 1000), (single, 1)] {
                let r = pcam::tracking::bench_logging(&client, &experiment, n, b)?;
                println!(
                    "| {} | {} | {} | {:.2} | {:.0} |",
                    r.points, r.batch, r.requests, r.seconds, r.points_per_second
                );
            }
        }
        Command::Bench(BenchCmd::Train {
            config,
            steps,
            json,
        }) => {
            let cfg = config.resolve()?;
            let plan = cfg.config.data.plan()?;
            let c = &cfg.config;
            let opts = c.data.open_options(progress);
            let train = std::sync::Arc::new(plan.tiles(pcam::data::SplitName::Train, &opts)?);
            let mlp = pcam::config::ModelConfig {
                kind: pcam::config::ModelKind::Mlp,
                hidden: vec![64, 32],
                ..c.model.clone()
            };
            let cnn = pcam::config::ModelConfig {
                kind: pcam::config::ModelKind::Cnn,
                ..c.model.clone()
            };
            let rows: Vec<_> = [mlp, cnn]
                .iter()
                .map(|m| pcam::bench::train_throughput(c, m, &train, steps))
                .collect();
            println!("| model | batch | threads | pipeline img/s | compute-only img/s | pipeline / compute | assembly alone img/s |");
            println!("|---|---:|---:|---:|---:|---:|---:|");
            for r in &rows {
                println!(
                    "| {} | {} | {} | {:.1} | {:.1} | {:.1}% | {:.0} |",
                    r.model,
                    r.batch_size,
                    r.threads,
                    r.pipeline_images_per_second,
                    r.compute_only_images_per_second,
                    100.0 * r.ratio,
                    r.assembly_images_per_second
                );
            }
            if let Some(p) = json {
                pcam::fsutil::write_atomic(&p, serde_json::to_string_pretty(&rows)?.as_bytes())?;
            }
        }
        Command::Bench(BenchCmd::Throughput {
            config,
            spec,
            batch_sizes,
            modes,
            models,
            repeats,
            min_seconds,
            out,
        }) => {
            let cfg = config.resolve()?;
            cfg.config.data.plan()?;
            let mut s = match &spec {
                Some(p) => pcam::bench::throughput::load_spec(p)?,
                None => pcam::bench::throughput::default_spec(),
            };
            let spec = spec.unwrap_or_else(|| "the embedded configs/bench/throughput.yaml".into());
            if !batch_sizes.is_empty() {
                s.batch_sizes = batch_sizes;
            }
            if !modes.is_empty() {
                s.modes = modes
                    .iter()
                    .map(|m| match m.as_str() {
                        "train" => pcam::bench::throughput::Mode::Train,
                        _ => pcam::bench::throughput::Mode::Inference,
                    })
                    .collect();
            }
            if !models.is_empty() {
                if let Some(m) = models
                    .iter()
                    .find(|m| !s.models.iter().any(|x| &x.name == *m))
                {
                    return Err(pcam::Error::Usage(format!(
                        "--models: `{m}` is not a model of {} (it has: {})",
                        spec.display(),
                        s.models
                            .iter()
                            .map(|x| x.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                    .into());
                }
                s.models.retain(|x| models.contains(&x.name));
            }
            if let Some(r) = repeats {
                s.repeats = r;
            }
            if let Some(m) = min_seconds {
                s.min_seconds = m;
            }
            s.check().map_err(pcam::Error::Usage)?;
            let report = pcam::bench::throughput::run(&cfg.config, &s, progress)?;
            let out = out.unwrap_or_else(|| pcam::bench::throughput::default_out(&report));
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| pcam::Error::io(dir, "creating folder", e))?;
            }
            pcam::fsutil::write_atomic(&out, serde_json::to_string_pretty(&report)?.as_bytes())?;
            let m = &report.machine;
            println!(
                "# {} on {} ({}), {} threads{}{}",
                report.kind,
                m.device,
                m.device_name,
                m.threads,
                m.slurm_job_id
                    .as_ref()
                    .map(|j| format!(", Slurm job {j}"))
                    .unwrap_or_default(),
                m.slurm_partition
                    .as_ref()
                    .map(|p| format!(" in {p}"))
                    .unwrap_or_default(),
            );
            if let Some(n) = &report.data_synthetic {
                println!("# data: SYNTHETIC ({n})");
            }
            print!("{}", pcam::bench::throughput::markdown(&report));
            println!("wrote {}", out.display());
        }
        Command::Bench(BenchCmd::Metrics {
            n,
            seed,
            data_out,
            json,
        }) => {
            let (scores, labels) = pcam::bench::metrics_data(n, seed);
            if let Some(p) = &data_out {
                let bytes: Vec<u8> = scores.iter().flat_map(|s| s.to_le_bytes()).collect();
                pcam::fsutil::write_atomic(&p.with_extension("scores"), &bytes)?;
                pcam::fsutil::write_atomic(&p.with_extension("labels"), &labels)?;
            }
            let t = pcam::bench::metrics_throughput(&scores, &labels, 3);
            println!(
                "pcam on {n} scores: ROC-AUC {:.12} in {:.3} s, average precision {:.12} in {:.3} s",
                t.roc_auc, t.roc_auc_seconds, t.average_precision, t.average_precision_seconds
            );
            if let Some(p) = json {
                pcam::fsutil::write_atomic(&p, serde_json::to_string_pretty(&t)?.as_bytes())?;
            }
        }
        Command::Report(ReportCmd::CheckAssets {
            fresh,
            assets,
            same_machine,
            complete,
        }) => {
            let committed = Assets::from_flag(assets)?;
            let r = pcam::report::derived::check(committed.dir(), &fresh, same_machine, complete)?;
            for line in &r.deviations {
                println!("[notebooks] {line}");
            }
            for line in &r.failures {
                eprintln!("[notebooks] {line}");
            }
            let how = if same_machine {
                "byte for byte (this machine matches assets/MACHINE)"
            } else {
                "within their notebooks' tolerances (another machine than assets/MACHINE)"
            };
            if !r.failures.is_empty() {
                return Err(pcam::Error::Usage(format!(
                    "notebook assets: {} failure(s) among {} exact and {} training-derived assets (training-derived compared {how})",
                    r.failures.len(),
                    r.exact,
                    r.derived
                ))
                .into());
            }
            println!(
                "[notebooks] assets agree: {} exact byte for byte, {} training-derived compared {how}",
                r.exact, r.derived
            );
        }
        Command::Report(ReportCmd::Bench { dir, name, assets }) => {
            let assets = Assets::from_flag(assets)?;
            let reports = pcam::report::bench::read_reports(&dir)?;
            if reports.is_empty() {
                return Err(pcam::Error::Usage(format!(
                    "{}: no throughput-*.json result files (run pcam bench throughput or slurm/submit.sh bench)",
                    dir.display()
                ))
                .into());
            }
            let table = pcam::report::bench::batch1_table(&reports)?;
            print!("{}", table.to_markdown());
            println!(
                "wrote {}",
                table.export(&assets, &format!("{name}_batch1"))?.display()
            );
            let all: Vec<_> = reports.iter().map(|(_, r)| r.clone()).collect();
            let fig = pcam::report::bench::throughput_vs_batch(
                &format!("{name}_throughput"),
                &all,
                "images/s against batch size (solid: whole pipeline, dashed: compute only)",
            )?;
            println!("wrote {}", fig.save(&assets)?.display());
            for (i, (p, r)) in reports.iter().enumerate() {
                let fig = pcam::report::bench::stage_breakdown(
                    &format!("{name}_stages_{i}"),
                    r,
                    &[1, 32, 512],
                    &format!(
                        "stage shares, stages run one after another: {} ({})",
                        r.label(),
                        p.file_name()
                            .map(|f| f.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    ),
                )?;
                println!("wrote {}", fig.save(&assets)?.display());
            }
        }
        Command::Report(ReportCmd::DatasetSize {
            paths,
            name,
            assets,
        }) => {
            let assets = Assets::from_flag(assets)?;
            let opts = OpenOptions {
                cache_dir: pcam::data::plan::default_cache_dir(),
                chunk_cache_mb: 64,
                progress,
            };
            let reports = paths
                .iter()
                .map(|p| inspect::inspect(p, &opts))
                .collect::<pcam::Result<Vec<_>>>()?;
            let table = pcam::report::dataset::size_table(&reports)?.export(&assets, &name)?;
            let figure = pcam::report::dataset::size_figure(&name, &reports)?.save(&assets)?;
            println!("wrote {} and {}", table.display(), figure.display());
        }
        Command::Info { json } => {
            let info = pcam::device::runtime_info();
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                println!("pcam {}", info.pcam_version);
                println!("hdf5 {}", info.hdf5_version);
                println!(
                    "libtorch: cuda {} ({} devices), cudnn {}, {} intra-op threads by default",
                    if info.cuda_available {
                        "available"
                    } else {
                        "not available"
                    },
                    info.cuda_devices,
                    if info.cudnn_available {
                        "available"
                    } else {
                        "not available"
                    },
                    info.torch_threads
                );
            }
        }
    }
    Ok(())
}

/// Parses tile indices: `3`, `0,5,9`, `0..16` (end exclusive), or a mix (`0..4,10`).
fn parse_device(s: &str) -> std::result::Result<pcam::config::DeviceChoice, String> {
    match s {
        "cpu" => Ok(pcam::config::DeviceChoice::Cpu),
        "cuda" => Ok(pcam::config::DeviceChoice::Cuda),
        "auto" => Ok(pcam::config::DeviceChoice::Auto),
        _ => Err(format!("`{s}`: expected cpu, cuda or auto")),
    }
}

fn parse_indices(spec: &str) -> anyhow::Result<Vec<usize>> {
    let bad = || anyhow::anyhow!("--tiles: `{spec}` is not a list of indices or ranges like 0..16");
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once("..") {
            Some((a, b)) => {
                let (a, b): (usize, usize) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a >= b {
                    return Err(bad());
                }
                out.extend(a..b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// Options for data commands that take `--cache-dir` instead of a config.
fn standalone_options(cache_dir: Option<PathBuf>, progress: Progress) -> OpenOptions {
    OpenOptions {
        cache_dir: cache_dir.unwrap_or_else(pcam::data::plan::default_cache_dir),
        chunk_cache_mb: 64,
        progress,
    }
}

fn default_runs(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![PathBuf::from("runs")]
    } else {
        paths
    }
}

fn server_uri(uri: Option<String>) -> Result<String> {
    match uri.or_else(|| std::env::var("MLFLOW_TRACKING_URI").ok()) {
        Some(u) => Ok(u),
        None => anyhow::bail!("give --uri or set MLFLOW_TRACKING_URI"),
    }
}

fn tracking(cmd: TrackingCmd, progress: Progress) -> Result<()> {
    use pcam::tracking::{self, server};
    match cmd {
        TrackingCmd::Sync { paths, uri, force } => {
            let out = tracking::sync(&default_runs(paths), uri.as_deref(), force, progress)?;
            let mut failed = 0;
            for o in &out {
                let server = o.server.as_deref().unwrap_or("-");
                match o.action {
                    "pushed" => println!(
                        "{}: pushed to {server} (run {}{}): {} params, {} metric points, {} artifacts ({} bytes)",
                        o.run.display(),
                        o.run_id.as_deref().unwrap_or("?"),
                        if o.pushed.created_run { ", created" } else { "" },
                        o.pushed.params,
                        o.pushed.metrics,
                        o.pushed.artifacts,
                        o.pushed.artifact_bytes
                    ),
                    "failed" => {
                        failed += 1;
                        println!(
                            "{}: FAILED on {server}: {}",
                            o.run.display(),
                            o.error.as_deref().unwrap_or("")
                        )
                    }
                    "no server" => println!(
                        "{}: no tracking server (give --uri or set MLFLOW_TRACKING_URI)",
                        o.run.display()
                    ),
                    other => println!(
                        "{}: {other} on {server} (run {})",
                        o.run.display(),
                        o.run_id.as_deref().unwrap_or("?")
                    ),
                }
            }
            println!("{} run(s) checked, {failed} failed", out.len());
            if failed > 0 {
                anyhow::bail!("{failed} run(s) could not be synced; they stay marked unsynced");
            }
        }
        TrackingCmd::Status { paths } => {
            println!("| run | server | state | run id | steps | epochs | artifacts | last error |");
            println!("|---|---|---|---|---:|---:|---:|---|");
            for (run, server, s) in tracking::status(&default_runs(paths))? {
                let state = match (&server, s.synced) {
                    (None, _) => "untracked",
                    (Some(_), true) => "synced",
                    (Some(_), false) => "unsynced",
                };
                println!(
                    "| {} | {} | {state} | {} | {} | {} | {} | {} |",
                    run.display(),
                    server.as_deref().unwrap_or("-"),
                    s.run_id.as_deref().unwrap_or("-"),
                    s.steps_pushed,
                    s.epochs_pushed,
                    s.artifacts.len(),
                    s.last_error.as_deref().unwrap_or("")
                );
            }
        }
        TrackingCmd::Fetch { uri, run_id, out } => {
            let client = tracking::Client::new(&server_uri(uri)?, 5)?;
            let n = tracking::fetch(&client, &run_id, &out)?;
            println!("{n} files of run {run_id} in {}", out.display());
        }
        TrackingCmd::List { uri, experiment } => {
            let uri = server_uri(uri)?;
            let client = tracking::Client::new(&uri, 3)?;
            let exp = client.experiment_id(&experiment)?;
            let runs = client.search_runs(&exp, "")?;
            println!("| run id | name | status | seed | valid_auc | test/roc_auc | synthetic |");
            println!("|---|---|---|---:|---:|---:|---|");
            for r in &runs {
                let m = |k: &str| {
                    r.metrics
                        .get(k)
                        .map(|v| format!("{v:.4}"))
                        .unwrap_or_default()
                };
                println!(
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    r.run_id,
                    r.run_name,
                    r.status,
                    r.tags.get("pcam.seed").map(String::as_str).unwrap_or(""),
                    m("valid_auc"),
                    m("test/roc_auc"),
                    r.tags
                        .get("pcam.synthetic_data")
                        .map(|s| if s.starts_with("yes") { "yes" } else { "no" })
                        .unwrap_or("")
                );
            }
            println!(
                "{} run(s) in experiment `{experiment}` on {uri}",
                runs.len()
            );
        }
        TrackingCmd::Server(ServerCmd::Start { dir, port, mlflow }) => {
            let s = server::start(&dir, port, mlflow.as_deref())?;
            println!("{}", s.url);
            if !progress.quiet {
                eprintln!(
                    "MLflow server up (pid {}, store {}, log {})\n  export MLFLOW_TRACKING_URI={}\n  stop it with: make mlflow-stop  (or pcam tracking server stop --dir {})",
                    s.pid,
                    s.dir.display(),
                    s.log.display(),
                    s.url,
                    dir.display()
                );
            }
        }
        TrackingCmd::Server(ServerCmd::Stop { dir }) => match server::stop(&dir)? {
            Some(pid) => println!("stopped MLflow server (pid {pid})"),
            None => println!("no MLflow server running in {}", dir.display()),
        },
        TrackingCmd::Server(ServerCmd::Status { dir }) => match server::status(&dir)? {
            Some(s) => println!("{} (pid {})", s.url, s.pid),
            None => anyhow::bail!("no MLflow server running in {}", dir.display()),
        },
    }
    Ok(())
}
