//! `predictions-<split>.csv`: one row per evaluated tile (`file_split,file_index,label,
//! probability`). Written here and read back here through the `csv` crate, columns found by
//! their header names, so nothing else in pcam parses it.

use super::RunDir;
use crate::data::SplitName;
use crate::error::{Error, Result};
use serde::Deserialize;

/// The columns of the file, in order.
const COLUMNS: [&str; 4] = ["file_split", "file_index", "label", "probability"];

/// A split's predictions, one entry per tile in evaluation order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Predictions {
    /// Source file split and index of each tile.
    pub at: Vec<(String, usize)>,
    pub labels: Vec<u8>,
    pub probs: Vec<f32>,
}

/// One row, as read.
#[derive(Deserialize)]
struct Row {
    file_split: String,
    file_index: usize,
    label: u8,
    probability: f32,
}

/// The file name of `split`'s predictions inside a run folder.
pub fn file_name(split: SplitName) -> String {
    format!("predictions-{split}.csv")
}

impl RunDir {
    /// Writes `predictions-<split>.csv` (atomically). Probabilities are stored as the
    /// shortest text that parses back to the same `f32` (`{:e}`).
    pub fn write_predictions(&self, split: SplitName, p: &Predictions) -> Result<()> {
        let header = COLUMNS.map(String::from);
        let rows: Vec<Vec<String>> = (0..p.probs.len())
            .map(|i| {
                vec![
                    p.at[i].0.clone(),
                    p.at[i].1.to_string(),
                    p.labels[i].to_string(),
                    format!("{:e}", p.probs[i]),
                ]
            })
            .collect();
        self.write_csv(&file_name(split), &header, &rows)
    }

    /// Reads `predictions-<split>.csv` back (written by `pcam eval`).
    pub fn predictions(&self, split: SplitName) -> Result<Predictions> {
        let path = self.path.join(file_name(split));
        let text = std::fs::read_to_string(&path).map_err(|_| {
            Error::bad_file(
                &path,
                format!(
                    "missing: run `pcam eval --run {} --split {split}` first",
                    self.path.display()
                ),
            )
        })?;
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let mut p = Predictions::default();
        for (k, row) in reader.deserialize::<Row>().enumerate() {
            let row = row.map_err(|e| {
                Error::bad_file(
                    &path,
                    format!("line {}: expected {}: {e}", k + 2, COLUMNS.join(",")),
                )
            })?;
            p.at.push((row.file_split, row.file_index));
            p.labels.push(row.label);
            p.probs.push(row.probability);
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> (tempfile::TempDir, RunDir) {
        let d = tempfile::tempdir().unwrap();
        let r = RunDir {
            path: d.path().to_path_buf(),
        };
        (d, r)
    }

    #[test]
    fn predictions_read_back_bit_for_bit() {
        let (_d, r) = run();
        let p = Predictions {
            at: vec![("valid".into(), 3), ("train".into(), 0)],
            labels: vec![1, 0],
            probs: vec![0.1 + f32::EPSILON, 1e-30],
        };
        r.write_predictions(SplitName::Valid, &p).unwrap();
        let text = std::fs::read_to_string(r.path.join("predictions-valid.csv")).unwrap();
        assert!(text.starts_with("file_split,file_index,label,probability\nvalid,3,1,"));
        assert_eq!(r.predictions(SplitName::Valid).unwrap(), p);
    }

    #[test]
    fn a_missing_or_broken_file_names_itself_and_the_line() {
        let (_d, r) = run();
        let e = r.predictions(SplitName::Test).unwrap_err().to_string();
        assert!(
            e.contains("predictions-test.csv") && e.contains("pcam eval"),
            "{e}"
        );
        let bad = "file_split,file_index,label,probability\nvalid,1,0,0.5\nvalid,x,0,0.5\n";
        std::fs::write(r.path.join("predictions-test.csv"), bad).unwrap();
        let e = r.predictions(SplitName::Test).unwrap_err().to_string();
        assert!(
            e.contains("predictions-test.csv") && e.contains("line 3"),
            "{e}"
        );
    }
}
