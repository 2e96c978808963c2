//! Twin runs: the same configuration trained twice, in two separate processes, then
//! compared — final weight SHA-256, the per-epoch history (wall-clock columns aside) and
//! every per-step record, read through [`crate::run`]. The report is written beside the
//! two runs. Depends on `run`, `error` and `fsutil`.

use crate::error::{Error, Result};
use crate::run::{EpochRecord, History, RunDir};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What the comparison found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TwinReport {
    pub runs: [PathBuf; 2],
    pub weights_sha256: [String; 2],
    pub final_valid_loss: [String; 2],
    pub weights_identical: bool,
    pub epoch_history_identical: bool,
    pub step_history_identical: bool,
    pub identical: bool,
}

/// Trains `<out>/a` and `<out>/b` with the same config files and overrides, each in its
/// own `pcam train` process started from the pcam executable `exe` (the CLI passes
/// itself; a notebook passes `target/release/pcam`), and compares them.
pub fn run(exe: &Path, out: &Path, files: &[PathBuf], overrides: &[String]) -> Result<TwinReport> {
    if !exe.is_file() {
        return Err(Error::bad_file(
            exe,
            "not a file: the pcam executable is needed for twin runs",
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, "creating folder", e))?;
    let runs = [out.join("a"), out.join("b")];
    for r in &runs {
        let mut cmd = std::process::Command::new(exe);
        cmd.arg("--quiet").arg("train").arg("--run-dir").arg(r);
        for f in files {
            cmd.arg("--config").arg(f);
        }
        cmd.args(overrides);
        let o = cmd
            .output()
            .map_err(|e| Error::io(exe, "starting a training process", e))?;
        if !o.status.success() {
            return Err(Error::failed(
                format!("training {} failed", r.display()),
                crate::error::one_line(&String::from_utf8_lossy(&o.stderr)),
            ));
        }
    }
    let report = compare(&runs[0], &runs[1])?;
    crate::fsutil::write_atomic(
        &out.join("twin.json"),
        serde_json::to_string_pretty(&report)
            .map_err(|e| Error::failed("serialising twin.json", e))?
            .as_bytes(),
    )?;
    crate::fsutil::write_atomic(&out.join("twin.md"), report.to_text().as_bytes())?;
    Ok(report)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, "reading", e))
}

/// Reads a `twin.json` written by [`run`] (e.g. one committed as evidence).
pub fn read_report(path: &Path) -> Result<TwinReport> {
    serde_json::from_str(&read(path)?).map_err(|e| Error::bad_file(path, e.to_string()))
}

/// Records compared bit for bit: `{:?}` prints every float as its shortest round-trip text,
/// so equal text means equal bits (NaN included, unlike `==`).
fn bits<T: std::fmt::Debug>(records: &[T]) -> String {
    format!("{records:?}")
}

/// Compares two finished runs.
pub fn compare(a: &Path, b: &Path) -> Result<TwinReport> {
    let (ra, rb) = (RunDir::open(a)?, RunDir::open(b)?);
    let (ha, hb) = (ra.history()?, rb.history()?);
    // A run without final weights (unfinished) is never identical to anything.
    let (sa, sb) = (
        ra.weights_sha256().unwrap_or_default(),
        rb.weights_sha256().unwrap_or_default(),
    );
    let last_loss = |h: &History| {
        h.epochs
            .last()
            .map(|e| format!("{:e}", e.valid_loss))
            .unwrap_or_default()
    };
    let epochs_same = bits(&without_timing(&ha)) == bits(&without_timing(&hb));
    let steps_same = ha.layers == hb.layers && bits(&ha.steps) == bits(&hb.steps);
    let weights_same = sa == sb && !sa.is_empty();
    Ok(TwinReport {
        runs: [a.to_path_buf(), b.to_path_buf()],
        final_valid_loss: [last_loss(&ha), last_loss(&hb)],
        weights_sha256: [sa, sb],
        weights_identical: weights_same,
        epoch_history_identical: epochs_same,
        step_history_identical: steps_same,
        identical: weights_same && epochs_same && steps_same,
    })
}

/// The epoch history without its wall-clock fields, which measure time, not the computation.
fn without_timing(h: &History) -> Vec<EpochRecord> {
    let mut epochs = h.epochs.clone();
    for e in &mut epochs {
        (e.seconds, e.images_per_second) = (0.0, 0.0);
    }
    epochs
}

impl TwinReport {
    /// A Markdown summary.
    pub fn to_text(&self) -> String {
        let yes = |b: bool| if b { "identical" } else { "DIFFERENT" };
        let mut s =
            String::from("| run | final weights sha256 | final valid loss |\n|---|---|---:|\n");
        for i in 0..2 {
            s.push_str(&format!(
                "| {} | {} | {} |\n",
                self.runs[i].display(),
                self.weights_sha256[i],
                self.final_valid_loss[i]
            ));
        }
        s.push_str(&format!(
            "\nweights: {}; epoch history: {}; step history (loss, LR, gradient norms): {}\n",
            yes(self.weights_identical),
            yes(self.epoch_history_identical),
            yes(self.step_history_identical)
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_fields_are_ignored_and_every_other_bit_counts() {
        let e = |loss: f64, seconds: f64| EpochRecord {
            epoch: 0,
            steps: 4,
            train_loss: 0.7,
            valid_loss: loss,
            valid_auc: None,
            valid_accuracy: 0.5,
            lr_end: 1e-3,
            seconds,
            images_per_second: 300.0 / seconds,
        };
        let h = |loss: f64, seconds: f64| History {
            epochs: vec![e(loss, seconds)],
            ..History::default()
        };
        let same = |a: &History, b: &History| bits(&without_timing(a)) == bits(&without_timing(b));
        assert!(same(&h(0.5, 1.2), &h(0.5, 9.9)));
        assert!(!same(&h(0.5, 1.2), &h(0.6, 1.2)));
        assert!(
            same(&h(f64::NAN, 1.0), &h(f64::NAN, 2.0)),
            "NaN equals itself bit for bit"
        );
        assert!(
            !same(&h(0.0, 1.0), &h(-0.0, 1.0)),
            "-0 and +0 differ in their bits"
        );
    }

    #[test]
    fn a_written_report_reads_back_and_a_broken_one_names_its_file() {
        let d = tempfile::tempdir().unwrap();
        let r = TwinReport {
            runs: [d.path().join("a"), d.path().join("b")],
            weights_sha256: ["ab".into(), "ab".into()],
            final_valid_loss: ["0.5".into(), "0.5".into()],
            weights_identical: true,
            epoch_history_identical: true,
            step_history_identical: false,
            identical: false,
        };
        let p = d.path().join("twin.json");
        std::fs::write(&p, serde_json::to_vec(&r).unwrap()).unwrap();
        let back = read_report(&p).unwrap();
        assert_eq!(back.weights_sha256, r.weights_sha256);
        assert!(!back.identical && !back.step_history_identical);
        std::fs::write(&p, b"{\"runs\": 3}").unwrap();
        let e = read_report(&p).unwrap_err().to_string();
        assert!(e.contains("twin.json"), "{e}");
    }
}
