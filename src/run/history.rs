//! `history/epochs.csv` and `history/steps.csv`: what training logged, one row per epoch
//! and one per optimisation step. Written here and read back here (through the `csv`
//! crate, columns found by their header names), so nothing else in pcam parses them.

use super::RunDir;
use crate::config::SelectMetric;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The epoch history, relative to a run folder.
pub const EPOCHS: &str = "history/epochs.csv";
/// The step history, relative to a run folder.
pub const STEPS: &str = "history/steps.csv";
/// Prefix of the per-layer gradient-norm columns of [`STEPS`].
const LAYER_PREFIX: &str = "grad_norm/";
/// Columns of [`STEPS`] before the per-layer norms.
const STEP_COLUMNS: [&str; 5] = ["step", "epoch", "lr", "loss", "grad_norm"];

/// One optimisation step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: usize,
    pub epoch: usize,
    pub lr: f64,
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Per-layer gradient norms, in the order of [`History::layers`].
    pub layer_norms: Vec<f64>,
}

/// One epoch's summary (a row of [`EPOCHS`]; the field names are its columns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub steps: usize,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub train_loss: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub valid_loss: f64,
    pub valid_auc: Option<f64>,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub valid_accuracy: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub lr_end: f64,
    /// Wall-clock facts: excluded from reproducibility comparisons.
    #[serde(deserialize_with = "super::nan_if_null")]
    pub seconds: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub images_per_second: f64,
}

impl EpochRecord {
    /// The value of `metric`, oriented so that larger is better.
    pub fn score(&self, metric: SelectMetric) -> f64 {
        match metric {
            SelectMetric::ValidAuc => self.valid_auc.unwrap_or(f64::NEG_INFINITY),
            SelectMetric::ValidLoss => -self.valid_loss,
        }
    }
}

/// A run's logged history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub epochs: Vec<EpochRecord>,
    pub steps: Vec<StepRecord>,
    /// Layer names of the per-layer gradient-norm columns.
    pub layers: Vec<String>,
}

/// Shortest text that parses back to the same `f64` (`{:e}`), as the CSVs store floats.
fn float(v: f64) -> String {
    format!("{v:e}")
}

impl RunDir {
    /// Writes both history files (atomically, each in full).
    pub fn write_history(
        &self,
        epochs: &[EpochRecord],
        steps: &[StepRecord],
        layers: &[String],
    ) -> Result<()> {
        let header: Vec<String> = [
            "epoch",
            "steps",
            "train_loss",
            "valid_loss",
            "valid_auc",
            "valid_accuracy",
            "lr_end",
            "seconds",
            "images_per_second",
        ]
        .iter()
        .map(|h| h.to_string())
        .collect();
        let rows: Vec<Vec<String>> = epochs
            .iter()
            .map(|e| {
                vec![
                    e.epoch.to_string(),
                    e.steps.to_string(),
                    float(e.train_loss),
                    float(e.valid_loss),
                    e.valid_auc.map(float).unwrap_or_default(),
                    float(e.valid_accuracy),
                    float(e.lr_end),
                    format!("{:.3}", e.seconds),
                    format!("{:.1}", e.images_per_second),
                ]
            })
            .collect();
        self.write_csv(EPOCHS, &header, &rows)?;
        let mut header: Vec<String> = STEP_COLUMNS.iter().map(|h| h.to_string()).collect();
        header.extend(layers.iter().map(|l| format!("{LAYER_PREFIX}{l}")));
        let rows: Vec<Vec<String>> = steps
            .iter()
            .map(|r| {
                let mut v = vec![
                    r.step.to_string(),
                    r.epoch.to_string(),
                    float(r.lr),
                    float(r.loss),
                    float(r.grad_norm),
                ];
                v.extend(r.layer_norms.iter().map(|&n| float(n)));
                v
            })
            .collect();
        self.write_csv(STEPS, &header, &rows)
    }

    /// Reads both history files back.
    pub fn history(&self) -> Result<History> {
        read_history(&self.path)
    }
}

fn reader(path: &Path) -> Result<csv::Reader<std::fs::File>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, "reading", e))?;
    Ok(csv::ReaderBuilder::new().from_reader(file))
}

fn bad(path: &Path, e: csv::Error) -> Error {
    Error::bad_file(path, crate::error::one_line(&e.to_string()))
}

/// Field `k` of data row `row` parsed as a `T`; an error names the file, row, column, the
/// text found and what it must be (`what`).
fn cell<T: std::str::FromStr>(
    path: &Path,
    header: &csv::StringRecord,
    rec: &csv::StringRecord,
    row: usize,
    k: usize,
    what: &str,
) -> Result<T> {
    let s = rec.get(k).unwrap_or("");
    s.parse::<T>().map_err(|_| {
        Error::bad_file(
            path,
            format!("row {row}: `{s}` in column `{}` is not {what}", &header[k]),
        )
    })
}

/// Number of epochs in the history of the run in `dir` (0 when it has none yet).
pub fn epochs_done(dir: &Path) -> usize {
    read_epochs(&dir.join(EPOCHS)).map_or(0, |e| e.len())
}

fn read_epochs(path: &Path) -> Result<Vec<EpochRecord>> {
    reader(path)?
        .deserialize()
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(path, e))
}

/// Reads `history/epochs.csv` and `history/steps.csv` of the run in `dir` (a folder that
/// need not hold a finished run: a paused or killed run has a history too).
pub fn read_history(dir: &Path) -> Result<History> {
    let epochs = read_epochs(&dir.join(EPOCHS))?;
    let path = dir.join(STEPS);
    let mut r = reader(&path)?;
    let header = r.headers().map_err(|e| bad(&path, e))?.clone();
    let named: Vec<&str> = header.iter().take(STEP_COLUMNS.len()).collect();
    if named != STEP_COLUMNS {
        return Err(Error::bad_file(
            &path,
            format!(
                "header starts {named:?}, expected {STEP_COLUMNS:?} then {LAYER_PREFIX}<layer> columns"
            ),
        ));
    }
    let layers = header
        .iter()
        .skip(STEP_COLUMNS.len())
        .map(|c| {
            c.strip_prefix(LAYER_PREFIX)
                .map(str::to_string)
                .ok_or_else(|| Error::bad_file(&path, format!("unexpected column `{c}`")))
        })
        .collect::<Result<Vec<String>>>()?;
    let mut steps = vec![];
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| bad(&path, e))?;
        let row = i + 1;
        let num = |k: usize| -> Result<f64> { cell(&path, &header, &rec, row, k, "a number") };
        let int = |k: usize| -> Result<usize> { cell(&path, &header, &rec, row, k, "a count") };
        steps.push(StepRecord {
            step: int(0)?,
            epoch: int(1)?,
            lr: num(2)?,
            loss: num(3)?,
            grad_norm: num(4)?,
            layer_norms: (STEP_COLUMNS.len()..header.len())
                .map(num)
                .collect::<Result<_>>()?,
        });
    }
    Ok(History {
        epochs,
        steps,
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> (tempfile::TempDir, RunDir) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("history")).unwrap();
        let r = RunDir {
            path: d.path().to_path_buf(),
        };
        (d, r)
    }

    #[test]
    fn what_is_written_reads_back_exactly() {
        let (_d, r) = run();
        let epochs = vec![EpochRecord {
            epoch: 0,
            steps: 2,
            train_loss: 0.1 + 0.2,
            valid_loss: std::f64::consts::PI,
            valid_auc: None,
            valid_accuracy: 1.0 / 3.0,
            lr_end: 1e-7,
            seconds: 1.25,
            images_per_second: 100.5,
        }];
        let steps: Vec<StepRecord> = (0..2)
            .map(|s| StepRecord {
                step: s,
                epoch: 0,
                lr: 3e-4 * (s + 1) as f64,
                loss: std::f64::consts::LN_2 / (s + 1) as f64,
                grad_norm: 12.5,
                layer_norms: vec![f64::MIN_POSITIVE, 1e300],
            })
            .collect();
        let layers = vec!["conv0".to_string(), "head.fc".to_string()];
        r.write_history(&epochs, &steps, &layers).unwrap();
        let h = r.history().unwrap();
        assert_eq!(h.epochs, epochs);
        assert_eq!(h.steps, steps);
        assert_eq!(h.layers, layers);
        assert_eq!(epochs_done(&r.path), 1);
    }

    #[test]
    fn columns_are_found_by_name_and_bad_files_are_named() {
        let (_d, r) = run();
        // Columns of epochs.csv in another order still read by name.
        std::fs::write(
            r.path.join(EPOCHS),
            "steps,epoch,train_loss,valid_loss,valid_auc,valid_accuracy,lr_end,seconds,images_per_second\n7,0,1,2,,0.5,0.1,3,4\n",
        )
        .unwrap();
        std::fs::write(
            r.path.join(STEPS),
            "step,epoch,lr,loss,grad_norm\n0,0,0.1,0.7,x\n",
        )
        .unwrap();
        let e = read_history(&r.path).unwrap_err().to_string();
        assert!(
            e.contains("steps.csv") && e.contains("`x`") && e.contains("grad_norm"),
            "{e}"
        );
        let h = read_epochs(&r.path.join(EPOCHS)).unwrap();
        assert_eq!((h[0].epoch, h[0].steps, h[0].valid_auc), (0, 7, None));
        std::fs::write(r.path.join(STEPS), "epoch,step,lr,loss,grad_norm\n").unwrap();
        let e = read_history(&r.path).unwrap_err().to_string();
        assert!(e.contains("header starts"), "{e}");
        assert_eq!(epochs_done(&r.path.join("nowhere")), 0);
    }
}
