//! Twin runs: the same configuration trained twice, in two separate processes, then
//! compared — final weight SHA-256, the per-epoch history (wall-clock columns aside) and
//! every per-step record. The report is written beside the two runs.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Columns of `epochs.csv` that measure time, not the computation.
const TIMING_COLUMNS: [&str; 2] = ["seconds", "images_per_second"];

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
            return Err(Error::Usage(format!(
                "training {} failed: {}",
                r.display(),
                crate::error::one_line(&String::from_utf8_lossy(&o.stderr))
            )));
        }
    }
    let report = compare(&runs[0], &runs[1])?;
    crate::fsutil::write_atomic(
        &out.join("twin.json"),
        serde_json::to_string_pretty(&report)
            .map_err(|e| Error::Usage(e.to_string()))?
            .as_bytes(),
    )?;
    crate::fsutil::write_atomic(&out.join("twin.md"), report.to_text().as_bytes())?;
    Ok(report)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, "reading", e))
}

/// `epochs.csv` without its timing columns.
fn deterministic_columns(csv: &str) -> Vec<Vec<String>> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| !TIMING_COLUMNS.contains(&header[i]))
        .collect();
    std::iter::once(header.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .chain(lines.map(|l| l.split(',').map(str::to_string).collect()))
        .map(|row| keep.iter().filter_map(|&i| row.get(i).cloned()).collect())
        .collect()
}

/// Reads a `twin.json` written by [`run`] (e.g. one committed as evidence).
pub fn read_report(path: &Path) -> Result<TwinReport> {
    serde_json::from_str(&read(path)?).map_err(|e| Error::bad_file(path, e.to_string()))
}

/// Compares two finished runs.
pub fn compare(a: &Path, b: &Path) -> Result<TwinReport> {
    let metrics = |r: &Path| -> Result<serde_json::Value> {
        let p = r.join("metrics.json");
        serde_json::from_str(&read(&p)?).map_err(|e| Error::bad_file(&p, e.to_string()))
    };
    let (ma, mb) = (metrics(a)?, metrics(b)?);
    let sha = |m: &serde_json::Value| {
        m["final_weights_sha256"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let last_loss = |r: &Path| -> Result<String> {
        let rows = deterministic_columns(&read(&r.join("history/epochs.csv"))?);
        let col = rows[0].iter().position(|h| h == "valid_loss").unwrap_or(0);
        Ok(rows
            .last()
            .and_then(|r| r.get(col).cloned())
            .unwrap_or_default())
    };
    let epochs_same = deterministic_columns(&read(&a.join("history/epochs.csv"))?)
        == deterministic_columns(&read(&b.join("history/epochs.csv"))?);
    let steps_same = read(&a.join("history/steps.csv"))? == read(&b.join("history/steps.csv"))?;
    let weights_same = sha(&ma) == sha(&mb) && !sha(&ma).is_empty();
    Ok(TwinReport {
        runs: [a.to_path_buf(), b.to_path_buf()],
        weights_sha256: [sha(&ma), sha(&mb)],
        final_valid_loss: [last_loss(a)?, last_loss(b)?],
        weights_identical: weights_same,
        epoch_history_identical: epochs_same,
        step_history_identical: steps_same,
        identical: weights_same && epochs_same && steps_same,
    })
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
    fn timing_columns_are_ignored() {
        let a = "epoch,valid_loss,seconds,images_per_second\n0,0.5,1.2,300\n";
        let b = "epoch,valid_loss,seconds,images_per_second\n0,0.5,9.9,20\n";
        let c = "epoch,valid_loss,seconds,images_per_second\n0,0.6,1.2,300\n";
        assert_eq!(deterministic_columns(a), deterministic_columns(b));
        assert_ne!(deterministic_columns(a), deterministic_columns(c));
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
