//! The audit scored on the independent generator (`scripts/audit-independent.sh`, which
//! runs `tests/independent/score_audit.py` for each storage type): its result files
//! `results/audit/independent-<dtype>.json` read typed, and the two tables the q2
//! notebook and journal Q2.5 show — recall and precision per corruption kind, and recall
//! per trigger shape and per near-copy transform — one column per storage type.

use crate::error::{Error, Result};
use crate::report::Table;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// What the generator was asked for.
#[derive(Debug, Clone, Deserialize)]
pub struct Truth {
    pub seed: Option<u64>,
    pub dtype: Option<String>,
}

/// One corruption kind's score.
#[derive(Debug, Clone, Deserialize)]
pub struct KindScore {
    pub audit_kind: String,
    pub injected: usize,
    pub found: usize,
    pub true_positives: usize,
    pub false_positives: usize,
    pub recall: f64,
    pub precision: f64,
    pub target_recall: f64,
    pub target_precision: f64,
    pub met: bool,
}

/// Recall of one subtype (a trigger shape, a copy transform).
#[derive(Debug, Clone, Deserialize)]
pub struct SubScore {
    pub injected: usize,
    pub found: usize,
    pub recall: f64,
}

/// Recall per subtype of one kind.
#[derive(Debug, Clone, Deserialize)]
pub struct Subtypes {
    pub field: String,
    pub recall: BTreeMap<String, SubScore>,
}

/// One `independent-<dtype>.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Scores {
    pub truth: Truth,
    pub per_kind: BTreeMap<String, KindScore>,
    pub per_subtype: BTreeMap<String, Subtypes>,
}

impl Scores {
    /// Reads a score file, naming it when it is not one.
    pub fn read(path: &Path) -> Result<Scores> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "reading", e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::bad_file(path, format!("not a score file of score_audit.py: {e}")))
    }

    fn label(&self) -> String {
        self.truth.dtype.clone().unwrap_or_else(|| "?".into())
    }
}

fn seeds(all: &[Scores]) -> String {
    let s: std::collections::BTreeSet<String> = all
        .iter()
        .map(|s| s.truth.seed.map_or("?".into(), |v| v.to_string()))
        .collect();
    s.into_iter().collect::<Vec<_>>().join(", ")
}

/// Kinds in the order of the first file; recall / precision per storage type.
pub fn kinds_table(all: &[Scores]) -> Result<Table> {
    let Some(first) = all.first() else {
        return Err(Error::Usage("no independent score files".into()));
    };
    let mut cols: Vec<Vec<String>> = vec![Vec::new(); 3 + all.len()];
    for (kind, k) in &first.per_kind {
        cols[0].push(kind.clone());
        cols[1].push(k.audit_kind.clone());
        cols[2].push(format!(
            "{:.2} / {:.2}",
            k.target_recall, k.target_precision
        ));
        for (j, s) in all.iter().enumerate() {
            cols[3 + j].push(match s.per_kind.get(kind) {
                Some(v) if v.injected == 0 && v.found == 0 => "none injected".into(),
                Some(v) => format!(
                    "{:.3} / {:.3} ({} of {}){}",
                    v.recall,
                    v.precision,
                    v.true_positives,
                    v.injected,
                    if v.met { "" } else { " NOT MET" }
                ),
                None => "—".into(),
            });
        }
    }
    per_storage_type(
        all,
        ["injected kind", "audit finding", "target"],
        "recall / precision",
        cols,
        &format!(
            "pcam data audit on SYNTHETIC data from the independent generator (tests/independent, held-out seed {}), per storage type; label flips from a 5-fold CNN's out-of-fold probabilities",
            seeds(all)
        ),
    )
}

/// A table of three leading columns and one column per score file (`<dtype>: what`).
fn per_storage_type(
    all: &[Scores],
    leading: [&str; 3],
    what: &str,
    cols: Vec<Vec<String>>,
    caption: &str,
) -> Result<Table> {
    let heads: Vec<String> = all
        .iter()
        .map(|s| format!("{}: {what}", s.label()))
        .collect();
    let mut names = leading.to_vec();
    names.extend(heads.iter().map(String::as_str));
    Table::from_strings(&names, cols, caption)
}

/// Recall per trigger shape and per near-copy transform, per storage type.
pub fn subtypes_table(all: &[Scores]) -> Result<Table> {
    let Some(first) = all.first() else {
        return Err(Error::Usage("no independent score files".into()));
    };
    let mut cols: Vec<Vec<String>> = vec![Vec::new(); 3 + all.len()];
    for kind in ["trigger_patch", "near_duplicate_across_splits"] {
        let Some(sub) = first.per_subtype.get(kind) else {
            continue;
        };
        for (group, g) in &sub.recall {
            cols[0].push(kind.to_string());
            cols[1].push(format!("{} {group}", sub.field));
            cols[2].push(g.injected.to_string());
            for (j, s) in all.iter().enumerate() {
                cols[3 + j].push(
                    match s.per_subtype.get(kind).and_then(|x| x.recall.get(group)) {
                        Some(v) => format!("{:.3} ({} of {})", v.recall, v.found, v.injected),
                        None => "—".into(),
                    },
                );
            }
        }
    }
    per_storage_type(
        all,
        ["kind", "subtype", "injected"],
        "recall",
        cols,
        &format!(
            "Recall per trigger shape and per near-copy transform on the independent SYNTHETIC set (seed {})",
            seeds(all)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"{"truth": {"seed": 37, "dtype": "uint8", "sizes": null, "generator": "x"},
      "rules": [], "unscored_audit_kinds": {}, "findings_without_tiles": [],
      "per_kind": {
        "trigger_patch": {"audit_kind": "trigger_patch", "injected": 105, "found": 103,
          "true_positives": 103, "false_positives": 0, "ignored": 0, "missed": 2,
          "recall": 0.981, "precision": 1.0, "target_recall": 0.95, "target_precision": 0.95,
          "met": true, "present_in_audit": true, "missed_tiles": [], "false_positive_tiles": []},
        "invalid_values": {"audit_kind": "invalid_values", "injected": 0, "found": 0,
          "true_positives": 0, "false_positives": 0, "ignored": 0, "missed": 0,
          "recall": 1.0, "precision": 1.0, "target_recall": 0.95, "target_precision": 0.95,
          "met": true, "present_in_audit": true, "missed_tiles": [], "false_positive_tiles": []}},
      "per_subtype": {"trigger_patch": {"field": "shape", "recall": {
          "circle": {"injected": 15, "found": 14, "recall": 0.9333},
          "square": {"injected": 15, "found": 15, "recall": 1.0}}}}}"#;

    #[test]
    fn score_files_read_typed_and_render_per_storage_type() {
        let a: Scores = serde_json::from_str(ONE).unwrap();
        let mut b = a.clone();
        b.truth.dtype = Some("float32".into());
        b.per_kind.get_mut("trigger_patch").unwrap().met = false;
        let k = kinds_table(&[a.clone(), b.clone()]).unwrap().to_markdown();
        assert!(k.contains("uint8: recall / precision"), "{k}");
        assert!(k.contains("0.981 / 1.000 (103 of 105)"), "{k}");
        assert!(k.contains("0.981 / 1.000 (103 of 105) NOT MET"), "{k}");
        assert!(k.contains("none injected"), "{k}");
        let s = subtypes_table(&[a, b]).unwrap().to_markdown();
        assert!(
            s.contains("shape circle") && s.contains("0.933 (14 of 15)"),
            "{s}"
        );
        assert!(Scores::read(Path::new("/nonexistent/independent.json")).is_err());
    }
}
