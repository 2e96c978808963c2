//! Named values: the single numbers the journal's prose quotes ("8,226 points/s", "valid
//! ROC-AUC 0.919"), exported by the notebook that measured them into
//! `assets/values/<file>.json` and cited in journal.md between markers
//! (`<!-- pcam:value q5a.points_per_second -->8,226<!-- /pcam:value -->`) that
//! `pcam-course journal render` fills in and `journal check` fails on when stale or unknown.
//!
//! Each value says how a fresh run may reproduce it ([`Kind`]): **exact** (counts, values
//! read from committed results: equal everywhere), **training-derived** (libtorch float
//! results: equal on the machine in `assets/MACHINE`, within the notebook's stated
//! tolerance elsewhere, as for derived tables) or **measured** (a time or a rate on this
//! machine: a fresh run must land within the stated factor of the committed value, on any
//! machine, because load and hardware move it). `pcam report check-assets` compares value
//! files by these rules ([`compare`]).
//!
//! A notebook cell records its values with [`record`], which merges them into the file by
//! key, so rerunning a cell replaces its own values and leaves the others alone. Depends on
//! `error`, `fsutil` and the rest of `report` only.

use super::derived::AcrossCpus;
use super::{check_name, write_asset, Assets, Table};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How a fresh run may reproduce a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Kind {
    /// Equal on every machine (counts, values from committed result files, text).
    Exact,
    /// A libtorch float result: equal on the recorded machine, within `across_cpus` elsewhere.
    TrainingDerived { across_cpus: AcrossCpus },
    /// A time or rate: a fresh run within `factor` of the committed value (either way).
    Measured { factor: f64 },
}

/// One value: the text the journal shows and, unless it is plain text, the number behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedValue {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(flatten)]
    pub kind: Kind,
}

impl NamedValue {
    /// An exact number, shown with `decimals` decimals and thousands separators.
    pub fn exact(x: f64, decimals: usize) -> NamedValue {
        NamedValue {
            text: format_number(x, decimals),
            value: Some(x),
            kind: Kind::Exact,
        }
    }

    /// Exact text (a name, a date, a verdict).
    pub fn text(s: impl Into<String>) -> NamedValue {
        NamedValue {
            text: s.into(),
            value: None,
            kind: Kind::Exact,
        }
    }

    /// A training-derived number with the tolerance the notebook states for other CPUs.
    pub fn derived(x: f64, decimals: usize, across: &AcrossCpus) -> NamedValue {
        NamedValue {
            text: format_number(x, decimals),
            value: Some(x),
            kind: Kind::TrainingDerived {
                across_cpus: across.clone(),
            },
        }
    }

    /// A time or rate measured by this run; another run must land within `factor` of it.
    pub fn measured(x: f64, decimals: usize, factor: f64) -> NamedValue {
        NamedValue {
            text: format_number(x, decimals),
            value: Some(x),
            kind: Kind::Measured { factor },
        }
    }

    /// The same number shown as `text` (a percentage, a unit the default format lacks).
    pub fn shown_as(mut self, text: impl Into<String>) -> NamedValue {
        self.text = text.into();
        self
    }

    fn validate(&self, file: &str, key: &str) -> Result<()> {
        let bad = |why: &str| Err(Error::Usage(format!("value {file}.{key}: {why}")));
        if self.text.trim().is_empty() || self.text.contains('\n') || self.text.contains("<!--") {
            return bad("its text must be one non-empty line without markers");
        }
        if self.value.is_some_and(|x| !x.is_finite()) {
            return bad("the number is not finite (NaN or infinite)");
        }
        match &self.kind {
            Kind::Exact => Ok(()),
            Kind::TrainingDerived { across_cpus } => {
                if self.value.is_none() {
                    return bad("a training-derived value needs its number");
                }
                across_cpus.check(&format!("value {file}.{key}"))
            }
            Kind::Measured { factor } => {
                if self.value.is_none_or(|x| x <= 0.0) {
                    return bad("a measured value needs a positive number");
                }
                if !(factor.is_finite() && *factor > 1.0) {
                    return bad("a measured value needs a finite factor > 1");
                }
                Ok(())
            }
        }
    }
}

/// `x` with `decimals` decimals and `,` between thousands: 8226.3 → "8,226", 0.95238 → "0.9524".
pub fn format_number(x: f64, decimals: usize) -> String {
    let s = format!("{:.*}", decimals, x.abs());
    let (int, frac) = s
        .split_once('.')
        .map_or((s.as_str(), None), |(i, f)| (i, Some(f)));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let negative = x < 0.0 && s.chars().any(|c| c.is_ascii_digit() && c != '0');
    let sign = if negative { "-" } else { "" };
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// `assets/values/<file>.json`: the values of one notebook, by key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValuesFile {
    pub values: BTreeMap<String, NamedValue>,
}

/// The path of value file `file`.
pub fn path(assets: &Assets, file: &str) -> PathBuf {
    assets.dir().join("values").join(format!("{file}.json"))
}

/// Reads a value file; `None` if there is none.
pub fn read(path: &Path) -> Result<Option<ValuesFile>> {
    super::derived::read(path)?
        .map(|bytes| parse(path, &bytes))
        .transpose()
}

/// Parses the bytes of value file `path`.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<ValuesFile> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::bad_file(path, format!("not a value file: {e}")))
}

/// Records `values` under their keys in `assets/values/<file>.json` (created if absent,
/// other keys kept), atomically; returns them as a table for the notebook to show.
pub fn record(assets: &Assets, file: &str, values: &[(&str, NamedValue)]) -> Result<Table> {
    check_name(file)?;
    for (key, v) in values {
        check_name(key).map_err(|_| {
            Error::Usage(format!(
                "value {file}.{key}: use lower-case letters, digits, `_` and `-` only"
            ))
        })?;
        v.validate(file, key)?;
    }
    let p = path(assets, file);
    let mut f = read(&p)?.unwrap_or_default();
    for (key, v) in values {
        f.values.insert(key.to_string(), v.clone());
    }
    let mut text = serde_json::to_string_pretty(&f)
        .map_err(|e| Error::Usage(format!("values {file}: serialising: {e}")))?;
    text.push('\n');
    write_asset(&p, text.as_bytes())?;
    let col = |g: &dyn Fn(&str, &NamedValue) -> String| -> Vec<String> {
        values.iter().map(|(k, v)| g(k, v)).collect()
    };
    Table::from_strings(
        &["value", "text", "kind"],
        vec![
            col(&|k, _| format!("{file}.{k}")),
            col(&|_, v| v.text.clone()),
            col(&|_, v| kind_name(&v.kind).to_string()),
        ],
        &format!("values recorded in assets/values/{file}.json (cited in journal.md)"),
    )
}

fn kind_name(k: &Kind) -> &'static str {
    match k {
        Kind::Exact => "exact",
        Kind::TrainingDerived { .. } => "training-derived",
        Kind::Measured { .. } => "measured",
    }
}

/// Compares a fresh run's value file with the committed one: one line per value that does
/// not reproduce by its committed kind (see the module header). `same_machine`:
/// training-derived values must be equal.
pub fn compare(committed: &ValuesFile, fresh: &ValuesFile, same_machine: bool) -> Vec<String> {
    let mut out = vec![];
    let keys: std::collections::BTreeSet<&String> =
        committed.values.keys().chain(fresh.values.keys()).collect();
    for key in keys {
        let (Some(a), Some(b)) = (committed.values.get(key), fresh.values.get(key)) else {
            out.push(format!(
                "`{key}` is {} only",
                if committed.values.contains_key(key) {
                    "committed (no notebook records it any more)"
                } else {
                    "recorded by the fresh run (not committed)"
                }
            ));
            continue;
        };
        if a.kind != b.kind {
            out.push(format!(
                "`{key}`: the notebook now records it as {} with other terms than the committed {}",
                kind_name(&b.kind),
                kind_name(&a.kind)
            ));
            continue;
        }
        let pair = a.value.zip(b.value);
        let ok = match (&a.kind, pair) {
            (Kind::Exact, _) => a == b,
            (Kind::TrainingDerived { .. }, _) if same_machine => a == b,
            (Kind::TrainingDerived { across_cpus }, Some((x, y))) => {
                (x - y).abs() <= across_cpus.allowed(key, x, y)
            }
            (Kind::Measured { factor }, Some((x, y))) => {
                x > 0.0 && y > 0.0 && (x / y).max(y / x) <= *factor
            }
            _ => false,
        };
        if !ok {
            let how = match &a.kind {
                Kind::Measured { factor } => format!("more than {factor}× apart"),
                Kind::TrainingDerived { .. } if !same_machine => "beyond tolerance".into(),
                _ => "differs".into(),
            };
            out.push(format!(
                "`{key}` {how}: {} committed, {} fresh",
                a.text, b.text
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_and_rounded() {
        assert_eq!(format_number(8226.3, 0), "8,226");
        assert_eq!(format_number(0.952_38, 4), "0.9524");
        assert_eq!(format_number(1_234_567.891, 1), "1,234,567.9");
        assert_eq!(format_number(999.96, 1), "1,000.0");
        assert_eq!(format_number(-0.0004, 3), "0.000");
        assert_eq!(format_number(-12_345.0, 0), "-12,345");
        assert_eq!(format_number(7.0, 0), "7");
    }

    #[test]
    fn record_merges_by_key_and_refuses_bad_values() {
        let d = tempfile::tempdir().unwrap();
        let a = Assets::at(d.path());
        record(&a, "q5a", &[("runs", NamedValue::exact(7.0, 0))]).unwrap();
        let t = record(&a, "q5a", &[("rate", NamedValue::measured(8226.3, 0, 5.0))]).unwrap();
        assert!(t.to_markdown().contains("q5a.rate"));
        let f = read(&path(&a, "q5a")).unwrap().unwrap();
        assert_eq!(f.values.len(), 2, "other keys kept");
        assert_eq!(f.values["rate"].text, "8,226");
        // rerunning a cell replaces its value
        record(&a, "q5a", &[("runs", NamedValue::exact(8.0, 0))]).unwrap();
        let f = read(&path(&a, "q5a")).unwrap().unwrap();
        assert_eq!(f.values["runs"].text, "8");
        assert_eq!(f.values.len(), 2);

        let err = |file: &str, key: &str, v: NamedValue| {
            record(&a, file, &[(key, v)]).unwrap_err().to_string()
        };
        assert!(err("q5a", "Rate", NamedValue::exact(1.0, 0)).contains("q5a.Rate"));
        assert!(err("../x", "k", NamedValue::exact(1.0, 0)).contains("asset name"));
        assert!(err("q5a", "k", NamedValue::exact(f64::NAN, 0)).contains("not finite"));
        assert!(err("q5a", "k", NamedValue::measured(1.0, 0, 1.0)).contains("factor"));
        assert!(err("q5a", "k", NamedValue::measured(0.0, 0, 2.0)).contains("positive"));
        assert!(err("q5a", "k", NamedValue::text("a\nb")).contains("one non-empty line"));
        let no_reason = AcrossCpus::within(0.1, 0.0, " ");
        assert!(err("q5a", "k", NamedValue::derived(1.0, 2, &no_reason)).contains("reason"));
        let f = read(&path(&a, "q5a")).unwrap().unwrap();
        assert_eq!(f.values.len(), 2, "refused values write nothing");
    }

    #[test]
    fn compare_applies_each_kind_by_its_own_rule() {
        let tol = AcrossCpus::within(0.01, 0.0, "test");
        let file = |v: &[(&str, NamedValue)]| ValuesFile {
            values: v.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        };
        let old = file(&[
            ("n", NamedValue::exact(7.0, 0)),
            ("auc", NamedValue::derived(0.800, 3, &tol)),
            ("rate", NamedValue::measured(8000.0, 0, 3.0)),
            ("gone", NamedValue::text("x")),
        ]);
        let new = file(&[
            ("n", NamedValue::exact(7.0, 0)),
            ("auc", NamedValue::derived(0.805, 3, &tol)),
            ("rate", NamedValue::measured(3000.0, 0, 3.0)),
            ("new", NamedValue::text("y")),
        ]);
        let f = compare(&old, &new, false);
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f[0].contains("`gone` is committed"), "{f:?}");
        assert!(f[1].contains("`new` is recorded by the fresh run"), "{f:?}");
        // same machine: the derived value must be equal
        let f = compare(&old, &new, true);
        assert!(f.iter().any(|l| l.contains("`auc` differs")), "{f:?}");
        // beyond tolerance, beyond factor, an exact value changed, the kind changed
        let new = file(&[
            ("n", NamedValue::exact(8.0, 0)),
            ("auc", NamedValue::derived(0.82, 3, &tol)),
            ("rate", NamedValue::measured(2000.0, 0, 3.0)),
            ("gone", NamedValue::measured(1.0, 0, 2.0)),
        ]);
        let f = compare(&old, &new, false);
        assert_eq!(f.len(), 4, "{f:?}");
        assert!(f.iter().any(|l| l.contains("`auc` beyond tolerance")));
        assert!(f.iter().any(|l| l.contains("`rate` more than 3× apart")));
        assert!(f
            .iter()
            .any(|l| l.contains("`n` differs: 7 committed, 8 fresh")));
        assert!(f
            .iter()
            .any(|l| l.contains("`gone`: the notebook now records")));
    }
}
