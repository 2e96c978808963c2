//! Evaluation of a finished run on a split: rebuilds the model from the run's own
//! config, loads a checkpoint, predicts every tile and writes
//! `eval-<split>.json` and `predictions-<split>.csv` into the run folder. Thresholds
//! other than 0.5, baselines and slicing build on this (journal Q5/Q6).

use crate::data::hdf5::OpenOptions;
use crate::data::loader::Tiles;
use crate::data::SplitName;
use crate::error::Error;
use crate::error::Result;
use crate::progress::Progress;
use crate::run::RunDir;
use crate::seed::Seeds;
use serde::{Deserialize, Serialize};

/// The default decision threshold, used while a run has no `threshold.json`.
pub const DEFAULT_THRESHOLD: f32 = 0.5;

/// A run's decision threshold and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub threshold: f32,
    /// How it was chosen (e.g. a selection policy on validation), or `default`.
    pub source: String,
}

/// The run's threshold: `threshold.json` in the run folder when a threshold was chosen
/// and stored there, else [`DEFAULT_THRESHOLD`].
pub fn run_threshold(run: &RunDir) -> Result<Threshold> {
    let p = run.path.join("threshold.json");
    if !p.exists() {
        return Ok(Threshold {
            threshold: DEFAULT_THRESHOLD,
            source: "default".into(),
        });
    }
    let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, "reading", e))?;
    let t: Threshold = serde_json::from_str(&text)
        .map_err(|e| Error::bad_file(&p, format!("invalid threshold file: {e}")))?;
    check_threshold(t.threshold).map_err(|m| Error::bad_file(&p, m))?;
    Ok(t)
}

/// A threshold must lie in [0, 1].
pub fn check_threshold(t: f32) -> std::result::Result<(), String> {
    if (0.0..=1.0).contains(&t) {
        Ok(())
    } else {
        Err(format!("threshold {t} is outside [0, 1]"))
    }
}

/// What `pcam eval` reports.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub run: std::path::PathBuf,
    pub split: SplitName,
    pub checkpoint: String,
    /// Tiles evaluated (after the run's `data.invalid` policy).
    pub tiles: usize,
    pub positives: usize,
    pub threshold: Threshold,
    pub log_loss: f64,
    pub roc_auc: Option<f64>,
    pub accuracy: f64,
    pub data_synthetic: Option<String>,
}

/// Evaluates checkpoint `which` (`best` or `last`) of `run` on `split`.
pub fn evaluate(
    run: &RunDir,
    split: SplitName,
    which: &str,
    progress: Progress,
) -> Result<EvalReport> {
    let c = run.config()?;
    let threshold = run_threshold(run)?;
    Seeds::new(c.seed).apply_to_torch(c.train.threads);
    let device = crate::device::select(c.train.device)?;
    let model = c.model.build(device);
    let state = crate::train::checkpoint::load_weights(&run.checkpoint(which), &model)?;
    let opts = OpenOptions::from_config(&c, progress);
    let tiles = Tiles::for_run(&c, split, &opts)?;
    let probs = crate::train::predict(&model, &tiles, &state.norm, c.train.batch_size, device);
    let rows: Vec<Vec<String>> = (0..tiles.len())
        .map(|i| {
            vec![
                tiles.file_split[i]
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                tiles.file_index[i].to_string(),
                tiles.labels[i].to_string(),
                format!("{:e}", probs[i]),
            ]
        })
        .collect();
    let header = ["file_split", "file_index", "label", "probability"].map(String::from);
    run.write_csv(&format!("predictions-{split}.csv"), &header, &rows)?;
    let report = EvalReport {
        run: run.path.clone(),
        split,
        checkpoint: which.to_string(),
        tiles: tiles.len(),
        positives: tiles.labels.iter().filter(|&&l| l == 1).count(),
        threshold: threshold.clone(),
        log_loss: crate::metrics::log_loss(&probs, &tiles.labels),
        roc_auc: crate::metrics::roc_auc(&probs, &tiles.labels),
        accuracy: crate::metrics::accuracy(&probs, &tiles.labels, threshold.threshold),
        data_synthetic: crate::data::synth::note(&c.data.dir),
    };
    run.write_json(&format!("eval-{split}.json"), &report)?;
    Ok(report)
}
