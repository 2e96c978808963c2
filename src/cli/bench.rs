//! `pcam bench`: metric, tracking, training and inference throughput benchmarks.

use super::{server_uri, ConfigArgs};
use anyhow::Result;
use clap::{Subcommand, ValueEnum};
use pcam::progress::Progress;
use std::path::PathBuf;

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
        #[arg(long, value_name = "LIST", value_delimiter = ',', value_enum)]
        modes: Vec<BenchMode>,
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
    /// Training images/s of the config's model, as `pcam train` with the same config and
    /// overrides builds and trains it: whole pipeline vs compute only, ms per step.
    Train {
        #[command(flatten)]
        config: ConfigArgs,
        /// Timed steps per measurement (after 5 warm-up steps), in each of 5 rounds.
        #[arg(long, default_value_t = 40)]
        steps: usize,
        /// Also write the table as JSON here.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
}

/// `--modes` values: what `pcam bench throughput` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchMode {
    Inference,
    Train,
}

impl From<BenchMode> for pcam::bench::throughput::Mode {
    fn from(m: BenchMode) -> Self {
        match m {
            BenchMode::Inference => Self::Inference,
            BenchMode::Train => Self::Train,
        }
    }
}

pub fn run(cmd: BenchCmd, progress: Progress) -> Result<()> {
    match cmd {
        BenchCmd::Tracking {
            uri,
            experiment,
            points,
            single,
        } => {
            let client = pcam::tracking::Client::new(&server_uri(uri)?, 5)?;
            let rows = [(points, 1000), (single, 1)]
                .into_iter()
                .map(|(n, b)| pcam::tracking::bench_logging(&client, &experiment, n, b))
                .collect::<pcam::Result<Vec<_>>>()?;
            print!("{}", pcam::tracking::LogBench::markdown(&rows));
        }
        BenchCmd::Train {
            config,
            steps,
            json,
        } => {
            let cfg = config.resolve()?;
            let plan = cfg.config.data.plan()?;
            let opts = cfg.config.data.open_options(progress);
            let train = std::sync::Arc::new(plan.tiles(pcam::data::SplitName::Train, &opts)?);
            let rows = [pcam::bench::train_throughput(&cfg, &train, steps)];
            print!("{}", pcam::bench::TrainThroughput::markdown(&rows));
            if let Some(p) = json {
                pcam::fsutil::write_atomic(&p, serde_json::to_string_pretty(&rows)?.as_bytes())?;
            }
        }
        BenchCmd::Throughput {
            config,
            spec,
            batch_sizes,
            modes,
            models,
            repeats,
            min_seconds,
            out,
        } => {
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
                s.modes = modes.into_iter().map(Into::into).collect();
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
            print!("{}", report.to_text());
            println!("wrote {}", out.display());
        }
        BenchCmd::Metrics {
            n,
            seed,
            data_out,
            json,
        } => {
            let (scores, labels) = pcam::bench::metrics_data(n, seed);
            if let Some(p) = &data_out {
                let bytes: Vec<u8> = scores.iter().flat_map(|s| s.to_le_bytes()).collect();
                pcam::fsutil::write_atomic(&p.with_extension("scores"), &bytes)?;
                pcam::fsutil::write_atomic(&p.with_extension("labels"), &labels)?;
            }
            let t = pcam::bench::metrics_throughput(&scores, &labels, 3);
            println!("{}", t.to_line());
            if let Some(p) = json {
                pcam::fsutil::write_atomic(&p, serde_json::to_string_pretty(&t)?.as_bytes())?;
            }
        }
    }
    Ok(())
}
