//! Two kinds of asset, recorded per asset by the file beside it:
//!
//! - **exact** (no `<name>.numbers.json`): nothing in it depends on libtorch arithmetic
//!   (config tables, CI tables, schedules, tables rendered from committed JSON), so it must
//!   be byte-identical on every machine;
//! - **training-derived** (written by [`Table::export_derived`](super::Table::export_derived)
//!   or [`Figure::save_derived`](super::Figure::save_derived)): the asset plus the numbers
//!   behind it and the tolerance the notebook states for them. On the machine recorded in
//!   `assets/MACHINE` both files must be byte-identical; on another CPU the numbers must agree
//!   within that tolerance ([`check`]), because libtorch's float results depend on the
//!   instruction set its kernels were dispatched to.

use super::{write_asset, Assets};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a training-derived asset's numbers may do on a CPU other than the recorded one:
/// every number `a` (committed) and `b` (fresh) must satisfy
/// `|a − b| ≤ abs + rel · max(|a|, |b|)`; text must be equal except in the `varies` columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcrossCpus {
    pub abs: f64,
    pub rel: f64,
    /// The notebook's justification, stored with the numbers.
    pub why: String,
    /// Columns or series whose text is machine-specific (weight hashes): not compared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub varies: Vec<String>,
    /// Columns or series with their own `(abs, rel)` (e.g. a chosen threshold, which moves
    /// further than the metrics around it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub keys: BTreeMap<String, (f64, f64)>,
    /// Tables ranked by a training result (a search board): their numbers are recorded in
    /// the order of this column (e.g. the trial), so rows are matched by what they are, not
    /// by a rank that a near-tie can swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_by: Option<String>,
}

impl AcrossCpus {
    /// A tolerance with its reason.
    pub fn within(abs: f64, rel: f64, why: &str) -> AcrossCpus {
        AcrossCpus {
            abs,
            rel,
            why: why.to_string(),
            varies: Vec::new(),
            keys: BTreeMap::new(),
            rows_by: None,
        }
    }

    /// Records a table's numbers in the order of `column` (see [`AcrossCpus::rows_by`]).
    pub fn rows_by(mut self, column: &str) -> AcrossCpus {
        self.rows_by = Some(column.to_string());
        self
    }

    /// Gives column or series `key` its own tolerance (the reason goes in `why`).
    pub fn key(mut self, key: &str, abs: f64, rel: f64) -> AcrossCpus {
        self.keys.insert(key.to_string(), (abs, rel));
        self
    }

    /// Marks `column` as machine-specific text (e.g. a weight hash).
    pub fn varies(mut self, column: &str) -> AcrossCpus {
        self.varies.push(column.to_string());
        self
    }

    pub(crate) fn allowed(&self, key: &str, a: f64, b: f64) -> f64 {
        let (abs, rel) = self.keys.get(key).copied().unwrap_or((self.abs, self.rel));
        abs + rel * a.abs().max(b.abs())
    }

    pub(crate) fn check(&self, asset: &str) -> Result<()> {
        let ok = |x: f64| x.is_finite() && x >= 0.0;
        let all = std::iter::once((self.abs, self.rel)).chain(self.keys.values().copied());
        if all.into_iter().all(|(a, r)| ok(a) && ok(r)) && !self.why.trim().is_empty() {
            Ok(())
        } else {
            Err(Error::Usage(format!(
                "{asset}: a cross-CPU tolerance needs finite abs ≥ 0, rel ≥ 0 and a reason"
            )))
        }
    }
}

/// The numbers behind one asset, by column (tables) or series (figures): numbers, text,
/// or null (empty cells, NaN).
pub type Values = BTreeMap<String, Vec<Value>>;

/// `<asset>.numbers.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumbersFile {
    /// The asset's path under the assets folder (`q1_loss_curves.png`, `tables/q1_twin_runs.md`).
    pub asset: String,
    pub kind: String,
    pub across_cpus: AcrossCpus,
    pub numbers: Values,
}

const KIND: &str = "training-derived";

/// The sidecar path of an asset: `x.png` → `x.numbers.json`, `tables/t.md` → `tables/t.numbers.json`.
pub fn numbers_path(asset: &Path) -> PathBuf {
    asset.with_extension("numbers.json")
}

fn is_numbers_file(p: &Path) -> bool {
    p.to_string_lossy().ends_with(".numbers.json")
}

/// Writes the asset's sidecar (called after the asset itself is written).
pub(crate) fn write_numbers(
    assets: &Assets,
    asset: &Path,
    across: &AcrossCpus,
    numbers: Values,
) -> Result<()> {
    let rel = asset
        .strip_prefix(assets.dir())
        .unwrap_or(asset)
        .to_string_lossy()
        .into_owned();
    across.check(&rel)?;
    if numbers.is_empty() {
        return Err(Error::Usage(format!(
            "{rel}: a training-derived asset needs the numbers behind it (none were recorded)"
        )));
    }
    let file = NumbersFile {
        asset: rel,
        kind: KIND.into(),
        across_cpus: across.clone(),
        numbers,
    };
    let mut text = serde_json::to_string_pretty(&file)
        .map_err(|e| Error::Usage(format!("{}: serialising numbers: {e}", file.asset)))?;
    text.push('\n');
    write_asset(&numbers_path(asset), text.as_bytes())
}

/// A text cell as JSON: a plain number when it is one (`0.9192`); text with numbers in it
/// (`0.761 ± 0.003`, `[0.784, 0.871]`, `t012`) as `{"text": "# ± #", "numbers": [...]}`
/// so the numbers are compared within tolerance and the rest exactly; other text as is.
pub fn text_value(s: &str) -> Value {
    let mut text = String::new();
    let mut numbers = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        // `-` is a sign only where it cannot be a hyphen or a range (`a-1`, `1-2`)
        let sign = b[i] == b'-'
            && b.get(i + 1).is_some_and(u8::is_ascii_digit)
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric());
        let starts_number = b[i].is_ascii_digit() || sign;
        // a digit glued to a letter before it (`q1`, `t012`) still counts; `-` only as a sign
        if starts_number {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if i + 1 < b.len() && (b[i] == b'e' || b[i] == b'E') {
                let mut j = i + 1;
                if j < b.len() && (b[j] == b'-' || b[j] == b'+') {
                    j += 1;
                }
                if j < b.len() && b[j].is_ascii_digit() {
                    while j < b.len() && b[j].is_ascii_digit() {
                        j += 1;
                    }
                    i = j;
                }
            }
            match s[start..i].parse::<f64>() {
                Ok(x) => {
                    numbers.push(num(x));
                    text.push('#');
                }
                Err(_) => text.push_str(&s[start..i]),
            }
        } else {
            let ch = s[i..].chars().next().map_or(1, char::len_utf8);
            text.push_str(&s[i..i + ch]);
            i += ch;
        }
    }
    match (text.as_str(), numbers.len()) {
        (_, 0) => Value::String(s.to_string()),
        ("#", 1) => numbers.remove(0),
        _ => serde_json::json!({ "text": text, "numbers": numbers }),
    }
}

/// A number as JSON; NaN and ±inf become null (JSON has no such numbers).
pub fn num(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// The largest deviation found in one asset, relative to what its tolerance allows.
#[derive(Debug, Clone, PartialEq)]
pub struct Deviation {
    pub key: String,
    pub index: usize,
    pub committed: f64,
    pub fresh: f64,
    pub allowed: f64,
}

impl Deviation {
    fn diff(&self) -> f64 {
        (self.committed - self.fresh).abs()
    }

    /// How much of the allowance this deviation uses (0 = equal, > 1 = beyond tolerance).
    pub fn share(&self) -> f64 {
        if self.allowed > 0.0 {
            self.diff() / self.allowed
        } else if self.diff() == 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    }

    fn describe(&self) -> String {
        format!(
            "`{}`[{}]: {} committed, {} fresh, |Δ| {:.3e} (allowed {:.3e})",
            self.key,
            self.index,
            self.committed,
            self.fresh,
            self.diff(),
            self.allowed
        )
    }
}

/// Compares a fresh sidecar with the committed one under the committed tolerance: the
/// largest deviation, and every difference that is not allowed.
pub fn compare(committed: &NumbersFile, fresh: &NumbersFile) -> (Option<Deviation>, Vec<String>) {
    let tol = &committed.across_cpus;
    let mut failures = Vec::new();
    let mut largest: Option<Deviation> = None;
    let keys: std::collections::BTreeSet<&String> = committed
        .numbers
        .keys()
        .chain(fresh.numbers.keys())
        .collect();
    for key in keys {
        let (Some(a), Some(b)) = (committed.numbers.get(key), fresh.numbers.get(key)) else {
            failures.push(format!("`{key}` is in only one of the two runs"));
            continue;
        };
        if a.len() != b.len() {
            failures.push(format!(
                "`{key}`: {} values committed, {} fresh",
                a.len(),
                b.len()
            ));
            continue;
        }
        let mut number = |i: usize, x: &serde_json::Number, y: &serde_json::Number| {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            let d = Deviation {
                key: key.clone(),
                index: i,
                committed: x,
                fresh: y,
                allowed: tol.allowed(key, x, y),
            };
            if d.share() > 1.0 {
                failures.push(format!("beyond tolerance: {}", d.describe()));
            }
            if largest.as_ref().is_none_or(|l| d.share() > l.share()) {
                largest = Some(d);
            }
        };
        if tol.varies.contains(key) {
            continue;
        }
        let mut unequal = Vec::new();
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            match (x, y) {
                (Value::Number(x), Value::Number(y)) => number(i, x, y),
                (Value::Object(x), Value::Object(y)) if x.get("text") == y.get("text") => {
                    let nums = |o: &serde_json::Map<String, Value>| match o.get("numbers") {
                        Some(Value::Array(v)) => v.clone(),
                        _ => Vec::new(),
                    };
                    let (nx, ny) = (nums(x), nums(y));
                    if nx.len() != ny.len() {
                        unequal.push(i);
                    }
                    for (p, q) in nx.iter().zip(&ny) {
                        match (p, q) {
                            (Value::Number(p), Value::Number(q)) => number(i, p, q),
                            _ if p == q => {}
                            _ => unequal.push(i),
                        }
                    }
                }
                _ if x == y => {}
                _ => unequal.push(i),
            }
        }
        for i in unequal {
            failures.push(format!("`{key}`[{i}]: {} committed, {} fresh", a[i], b[i]));
        }
    }
    (largest, failures)
}

/// What [`check`] found.
#[derive(Debug, Default)]
pub struct AssetCheck {
    pub exact: usize,
    pub derived: usize,
    /// Value files (`values/<file>.json`), compared value by value by their kinds.
    pub values: usize,
    /// One line per training-derived asset compared by tolerance: its largest deviation.
    pub deviations: Vec<String>,
    pub failures: Vec<String>,
}

impl AssetCheck {
    /// The verdict `pcam report check-assets` prints: what agreed, or an error counting
    /// the failures. `same_machine`: training-derived assets were compared byte for byte.
    pub fn verdict(&self, same_machine: bool) -> Result<String> {
        let how = if same_machine {
            "byte for byte (this machine matches assets/MACHINE)"
        } else {
            "within their notebooks' tolerances (another machine than assets/MACHINE)"
        };
        if !self.failures.is_empty() {
            return Err(Error::failed(
                "notebook assets",
                format!(
                    "{} failure(s) among {} exact and {} training-derived assets and {} value files (training-derived compared {how})",
                    self.failures.len(),
                    self.exact,
                    self.derived,
                    self.values
                ),
            ));
        }
        Ok(format!(
            "assets agree: {} exact byte for byte, {} training-derived compared {how}, {} value files value by value",
            self.exact, self.derived, self.values
        ))
    }
}

fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| Error::io(&d, "listing folder", e))?;
        for e in entries {
            let p = e.map_err(|e| Error::io(&d, "listing folder", e))?.path();
            if p.is_dir() {
                todo.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                out.push(rel.to_path_buf());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The bytes of `path`; `None` if there is no such file.
pub(crate) fn read(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, "reading", e)),
    }
}

fn parse(path: &Path, bytes: &[u8]) -> Result<NumbersFile> {
    let f: NumbersFile = serde_json::from_slice(bytes)
        .map_err(|e| Error::bad_file(path, format!("not a numbers file: {e}")))?;
    if f.kind != KIND {
        return Err(Error::bad_file(
            path,
            format!("kind `{}`, expected `{KIND}`", f.kind),
        ));
    }
    Ok(f)
}

/// Compares the assets a fresh notebook run wrote (`fresh`) with the committed ones.
/// Exact assets must be byte-identical. Training-derived ones must be byte-identical when
/// `same_machine` (this machine matches `assets/MACHINE`), else their numbers must agree
/// within the committed tolerance. With `complete` (every notebook ran), a committed asset
/// that no notebook made is stale too.
pub fn check(
    committed: &Path,
    fresh: &Path,
    same_machine: bool,
    complete: bool,
) -> Result<AssetCheck> {
    let mut r = AssetCheck::default();
    let fresh_files = files_under(fresh)?;
    for rel in fresh_files.iter().filter(|p| !is_numbers_file(p)) {
        let name = rel.display();
        let Some(new) = read(&fresh.join(rel))? else {
            continue;
        };
        let Some(old) = read(&committed.join(rel))? else {
            r.failures.push(format!(
                "missing: assets/{name} is made by a notebook but not committed (run make notebooks and commit)"
            ));
            continue;
        };
        if rel.starts_with("values") {
            r.values += 1;
            let a = super::values::parse(&committed.join(rel), &old)?;
            let b = super::values::parse(&fresh.join(rel), &new)?;
            r.failures.extend(
                super::values::compare(&a, &b, same_machine)
                    .into_iter()
                    .map(|f| format!("assets/{name}: {f}")),
            );
            continue;
        }
        let side = numbers_path(rel);
        let (new_side, old_side) = (read(&fresh.join(&side))?, read(&committed.join(&side))?);
        match (new_side, old_side) {
            (None, None) => {
                r.exact += 1;
                if new != old {
                    r.failures.push(format!(
                        "stale: assets/{name} differs from a fresh run; it does not depend on libtorch arithmetic, so it must be byte-identical on every machine (run make notebooks and commit)"
                    ));
                }
            }
            (Some(new_side), Some(old_side)) => {
                r.derived += 1;
                if same_machine {
                    if new != old || new_side != old_side {
                        r.failures.push(format!(
                            "stale: assets/{name} or its numbers differ from a fresh run on the machine that made them (assets/MACHINE); run make notebooks and commit"
                        ));
                    }
                    continue;
                }
                let a = parse(&committed.join(&side), &old_side)?;
                let b = parse(&fresh.join(&side), &new_side)?;
                if a.across_cpus != b.across_cpus {
                    r.failures.push(format!(
                        "stale: assets/{name}: the notebook now states a different tolerance than the committed numbers (run make notebooks and commit)"
                    ));
                    continue;
                }
                let (largest, failures) = compare(&a, &b);
                let dev = largest.map_or("no numbers".into(), |d| {
                    format!("{:.0}% of tolerance at {}", 100.0 * d.share(), d.describe())
                });
                r.deviations.push(format!("assets/{name}: largest deviation {dev}"));
                // the first few of each asset, then a count: enough to see what moved
                const SHOWN: usize = 5;
                let more = failures.len().saturating_sub(SHOWN);
                r.failures
                    .extend(failures.into_iter().take(SHOWN).map(|f| format!("assets/{name}: {f}")));
                if more > 0 {
                    r.failures.push(format!("assets/{name}: and {more} more differences"));
                }
            }
            (new_side, _) => r.failures.push(format!(
                "stale: assets/{name} is {} in the fresh run but {} in the committed assets (run make notebooks and commit)",
                if new_side.is_some() { "training-derived" } else { "exact" },
                if new_side.is_some() { "exact" } else { "training-derived" },
            )),
        }
    }
    for rel in fresh_files.iter().filter(|p| is_numbers_file(p)) {
        let made = fresh_files
            .iter()
            .any(|a| !is_numbers_file(a) && numbers_path(a) == *rel);
        if !made {
            r.failures
                .push(format!("{}: numbers without an asset", rel.display()));
        }
    }
    if complete {
        for rel in files_under(committed)? {
            let own = rel == Path::new("MACHINE") || rel == Path::new("README.md");
            if !own && !fresh_files.contains(&rel) {
                r.failures.push(format!(
                    "stale: assets/{} is committed but no notebook made it (delete it or restore its cell)",
                    rel.display()
                ));
            }
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sidecar(values: &[(&str, Vec<Value>)], tol: &AcrossCpus) -> NumbersFile {
        NumbersFile {
            asset: "tables/t.md".into(),
            kind: KIND.into(),
            across_cpus: tol.clone(),
            numbers: values
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn compare_applies_abs_and_rel_and_finds_the_largest() {
        let tol = AcrossCpus::within(1e-3, 1e-2, "test")
            .varies("sha")
            .key("threshold", 0.2, 0.0);
        let a = sidecar(
            &[
                ("auc", vec![num(0.80), num(100.0), Value::Null]),
                ("sha", vec!["abc".into()]),
                ("verdict", vec!["identical".into()]),
                ("threshold", vec![num(0.1)]),
            ],
            &tol,
        );
        let mut b = a.clone();
        b.numbers.get_mut("threshold").unwrap()[0] = num(0.25);
        b.numbers.get_mut("auc").unwrap()[0] = num(0.8005);
        b.numbers.get_mut("auc").unwrap()[1] = num(100.9);
        b.numbers.get_mut("sha").unwrap()[0] = "def".into();
        let (largest, failures) = compare(&a, &b);
        assert!(failures.is_empty(), "{failures:?}");
        let l = largest.unwrap();
        assert_eq!((l.key.as_str(), l.index), ("auc", 1));
        assert!(l.share() > 0.85 && l.share() < 1.0, "{}", l.share());

        b.numbers.get_mut("auc").unwrap()[0] = num(0.81);
        b.numbers.get_mut("verdict").unwrap()[0] = "DIFFERENT".into();
        let (largest, failures) = compare(&a, &b);
        assert_eq!(failures.len(), 2, "{failures:?}");
        assert!(failures[0].contains("beyond tolerance") && failures[0].contains("`auc`[0]"));
        assert!(failures[1].contains("verdict"));
        assert!(largest.unwrap().share() > 1.0);

        b.numbers.remove("verdict");
        b.numbers.get_mut("auc").unwrap().pop();
        let (_, failures) = compare(&a, &b);
        assert!(failures.iter().any(|f| f.contains("only one")));
        assert!(failures
            .iter()
            .any(|f| f.contains("3 values committed, 2 fresh")));
    }

    fn write(dir: &Path, rel: &str, bytes: &[u8]) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    fn side(value: f64, tol: &AcrossCpus) -> Vec<u8> {
        serde_json::to_vec(&sidecar(&[("x", vec![num(value)])], tol)).unwrap()
    }

    #[test]
    fn check_compares_each_kind_by_its_own_rule() {
        let tol = AcrossCpus::within(0.01, 0.0, "test");
        let (old, new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (o, n) = (old.path(), new.path());
        for d in [o, n] {
            write(d, "tables/config.md", b"| a |\n");
        }
        write(o, "MACHINE", b"cpu: x\n");
        write(o, "tables/auc.md", b"| 0.800 |\n");
        write(o, "tables/auc.numbers.json", &side(0.800, &tol));
        write(n, "tables/auc.md", b"| 0.805 |\n");
        write(n, "tables/auc.numbers.json", &side(0.805, &tol));

        // Another CPU: the derived table is within tolerance, the exact one is equal.
        let r = check(o, n, false, true).unwrap();
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        assert_eq!((r.exact, r.derived), (1, 1));
        assert!(
            r.deviations[0].contains("50% of tolerance"),
            "{:?}",
            r.deviations
        );
        // The recorded machine: training-derived bytes must match too.
        let r = check(o, n, true, true).unwrap();
        assert_eq!(r.failures.len(), 1);
        assert!(r.failures[0].contains("tables/auc.md"));

        // Beyond tolerance fails everywhere.
        write(n, "tables/auc.numbers.json", &side(0.83, &tol));
        let r = check(o, n, false, true).unwrap();
        assert!(
            r.failures.iter().any(|f| f.contains("beyond tolerance")),
            "{:?}",
            r.failures
        );

        // An exact asset that differs fails on any machine.
        write(n, "tables/auc.numbers.json", &side(0.805, &tol));
        write(n, "tables/config.md", b"| b |\n");
        let r = check(o, n, false, true).unwrap();
        assert_eq!(r.failures.len(), 1);
        assert!(r.failures[0].contains("byte-identical on every machine"));

        // A changed kind, a changed tolerance, a missing and an orphaned asset are stale.
        write(n, "tables/config.md", b"| a |\n");
        write(n, "tables/config.numbers.json", &side(1.0, &tol));
        write(n, "new.png", b"png");
        write(o, "old.png", b"png");
        let loose = AcrossCpus::within(0.5, 0.0, "looser");
        write(n, "tables/auc.numbers.json", &side(0.805, &loose));
        let r = check(o, n, false, true).unwrap();
        let all = r.failures.join("\n");
        for needle in [
            "tables/config.md is training-derived in the fresh run but exact",
            "different tolerance",
            "assets/new.png is made by a notebook but not committed",
            "assets/old.png is committed but no notebook made it",
        ] {
            assert!(all.contains(needle), "{needle} not in:\n{all}");
        }
        // Value files are compared value by value by their kinds, not byte for byte.
        let values = |rate: f64| {
            serde_json::to_vec(&super::super::values::ValuesFile {
                values: [(
                    "rate".to_string(),
                    super::super::NamedValue::measured(rate, 0, 3.0),
                )]
                .into(),
            })
            .unwrap()
        };
        write(o, "values/q5a.json", &values(9000.0));
        write(n, "values/q5a.json", &values(5000.0));
        let r = check(o, n, true, false).unwrap();
        assert_eq!(r.values, 1);
        assert!(
            !r.failures.iter().any(|f| f.contains("values/")),
            "{:?}",
            r.failures
        );
        write(n, "values/q5a.json", &values(2000.0));
        let r = check(o, n, true, false).unwrap();
        assert!(
            r.failures
                .iter()
                .any(|f| f.contains("assets/values/q5a.json: `rate` more than 3× apart")),
            "{:?}",
            r.failures
        );
        std::fs::remove_file(n.join("values/q5a.json")).unwrap();
        // A partial run does not call unmade assets stale.
        let r = check(o, n, false, false).unwrap();
        assert!(!r.failures.join("\n").contains("old.png"));
    }

    #[test]
    fn text_cells_split_into_shape_and_numbers() {
        assert_eq!(text_value("0.9192"), num(0.9192));
        assert_eq!(text_value("-3e-4"), num(-3e-4));
        assert_eq!(text_value("finished"), Value::String("finished".into()));
        assert_eq!(
            text_value("0.761 ± 0.003"),
            serde_json::json!({"text": "# ± #", "numbers": [0.761, 0.003]})
        );
        assert_eq!(
            text_value("t012 [256,64] Q1 (≤ 185.5)"),
            serde_json::json!({"text": "t# [#,#] Q# (≤ #)", "numbers": [12.0, 256.0, 64.0, 1.0, 185.5]})
        );
        assert_eq!(
            text_value("in-kernel-a 1-2"),
            serde_json::json!({"text": "in-kernel-a #-#", "numbers": [1.0, 2.0]})
        );
        // Within tolerance when only the numbers move; text around them must be equal.
        let tol = AcrossCpus::within(0.01, 0.0, "test");
        let a = sidecar(&[("c", vec![text_value("0.761 ± 0.003")])], &tol);
        let b = sidecar(&[("c", vec![text_value("0.765 ± 0.004")])], &tol);
        assert!(compare(&a, &b).1.is_empty());
        let c = sidecar(&[("c", vec![text_value("0.761 +/- 0.003")])], &tol);
        assert_eq!(compare(&a, &c).1.len(), 1);
        let d = sidecar(&[("c", vec![text_value("0.861 ± 0.003")])], &tol);
        assert!(compare(&a, &d).1[0].contains("beyond tolerance"));
    }

    #[test]
    fn tolerances_need_a_reason() {
        let d = tempfile::tempdir().unwrap();
        let assets = Assets::at(d.path());
        let p = assets.table_path("t");
        let mut values = Values::new();
        values.insert("x".into(), vec![num(1.0)]);
        let bad = AcrossCpus::within(1e-3, 0.0, " ");
        assert!(write_numbers(&assets, &p, &bad, values.clone()).is_err());
        let good = AcrossCpus::within(1e-3, 0.0, "measured");
        assert!(write_numbers(&assets, &p, &good, Values::new()).is_err());
        write_numbers(&assets, &p, &good, values).unwrap();
        let f: NumbersFile =
            serde_json::from_slice(&std::fs::read(d.path().join("tables/t.numbers.json")).unwrap())
                .unwrap();
        assert_eq!(f.asset, "tables/t.md");
        assert_eq!(f.numbers["x"], vec![num(1.0)]);
    }
}
