//! Search definitions (`configs/search/*.yaml`) and the trials they expand to. A
//! definition names the configs every trial starts from, a space of parameters —
//! choices, int and float ranges (linear or log), optionally conditional on another
//! parameter's value — a strategy, the validation metric to optimise and a seed. The same
//! definition always gives the same trials in the same order.

use crate::error::{Error, Result};
use crate::seed::Seeds;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How trials are chosen and run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Every combination of each parameter's grid points.
    Grid,
    /// `trials` seeded draws from the space.
    Random,
    /// Successive halving over the grid (or `trials` random draws): every candidate gets
    /// `halving.min_epochs`, the best 1/eta go on with eta times the epochs, until the
    /// config's `train.epochs`.
    Halving,
}

/// The validation metric trials are compared on (the best epoch's value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    ValidAuc,
    ValidLoss,
    ValidAccuracy,
}

impl Objective {
    /// Whether larger is better.
    pub fn maximize(self) -> bool {
        !matches!(self, Objective::ValidLoss)
    }
    pub fn name(self) -> &'static str {
        match self {
            Objective::ValidAuc => "valid_auc",
            Objective::ValidLoss => "valid_loss",
            Objective::ValidAccuracy => "valid_accuracy",
        }
    }
}

/// Whether the metric should go up or down (optional in the file; it must agree with the
/// metric, so a typo cannot silently search for the worst model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Maximize,
    Minimize,
}

/// Successive-halving settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Halving {
    /// Epochs of the first rung.
    pub min_epochs: usize,
    /// Keep the best 1/eta of each rung; the next rung trains eta times longer.
    pub eta: usize,
    /// Draw the candidates from the grid (default) or `trials` random draws.
    #[serde(default)]
    pub candidates: Candidates,
}

impl Default for Halving {
    fn default() -> Self {
        Halving {
            min_epochs: 1,
            eta: 2,
            candidates: Candidates::Grid,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Candidates {
    #[default]
    Grid,
    Random,
}

/// One parameter of the space: exactly one of `choice`, `float`, `int`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub float: Option<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub int: Option<[i64; 2]>,
    /// Log scale for ranges (sampling and grid points).
    #[serde(default)]
    pub log: bool,
    /// Grid points of a range.
    #[serde(default = "default_grid")]
    pub grid: usize,
    /// Only when every listed parameter (of the trial, else of the base config) has this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<BTreeMap<String, Value>>,
}

fn default_grid() -> usize {
    3
}

/// A search definition, as written in YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSpec {
    /// Names the sweep folder `runs/<experiment>/search-<name>/` and the sweep id tag.
    pub name: String,
    /// Config files every trial starts from (relative to the search file), in order.
    pub configs: Vec<PathBuf>,
    /// Overrides applied after them, before the trial's own values.
    #[serde(default)]
    pub overrides: Vec<String>,
    pub strategy: Strategy,
    /// Seed of the random draws (trials themselves train with the config's seed).
    pub seed: u64,
    /// Random draws (random strategy, or halving over random candidates).
    #[serde(default)]
    pub trials: Option<usize>,
    pub metric: Objective,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    #[serde(default)]
    pub halving: Halving,
    /// Parameters by dotted config key.
    pub space: BTreeMap<String, Param>,
}

/// One trial: its index and the config values it sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    pub index: usize,
    pub values: BTreeMap<String, Value>,
}

impl Trial {
    /// `key=value` overrides (values as JSON, which the YAML override parser reads).
    pub fn overrides(&self) -> Vec<String> {
        self.values
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }
}

/// Reads and checks a search definition; config paths become relative to the caller.
pub fn load(path: &Path) -> Result<SearchSpec> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "reading", e))?;
    let de = serde_yaml_ng::Deserializer::from_str(&text);
    let mut spec: SearchSpec = serde_path_to_error::deserialize(de).map_err(|e| {
        Error::bad_file(
            path,
            format!(
                "search field `{}`: {}",
                e.path(),
                crate::error::one_line(&e.inner().to_string())
            ),
        )
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    spec.configs = spec
        .configs
        .iter()
        .map(|c| {
            if c.is_absolute() {
                c.clone()
            } else {
                base.join(c)
            }
        })
        .collect();
    spec.check().map_err(|m| Error::bad_file(path, m))?;
    Ok(spec)
}

impl SearchSpec {
    fn check(&self) -> std::result::Result<(), String> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "search field `name`: `{}` must be letters, digits, _ or -",
                self.name
            ));
        }
        if self.space.is_empty() {
            return Err("search field `space`: no parameters to search".into());
        }
        if let Some(d) = self.direction {
            if (d == Direction::Maximize) != self.metric.maximize() {
                return Err(format!(
                    "search field `direction`: {} is {}d, not {d:?}",
                    self.metric.name(),
                    if self.metric.maximize() {
                        "maximize"
                    } else {
                        "minimize"
                    }
                ));
            }
        }
        for (k, p) in &self.space {
            let kinds = [p.choice.is_some(), p.float.is_some(), p.int.is_some()];
            if kinds.iter().filter(|b| **b).count() != 1 {
                return Err(format!(
                    "search field `space.{k}`: give exactly one of choice, float, int"
                ));
            }
            if p.choice.as_ref().is_some_and(|c| c.is_empty()) {
                return Err(format!("search field `space.{k}.choice`: empty"));
            }
            let range = p.float.or(p.int.map(|[a, b]| [a as f64, b as f64]));
            if let Some([lo, hi]) = range {
                if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                    return Err(format!(
                        "search field `space.{k}`: range [{lo}, {hi}] is empty"
                    ));
                }
                if p.log && lo <= 0.0 {
                    return Err(format!(
                        "search field `space.{k}`: a log range must be positive"
                    ));
                }
            }
            if p.grid == 0 {
                return Err(format!("search field `space.{k}.grid`: at least 1 point"));
            }
            for c in p.when.iter().flat_map(|w| w.keys()) {
                if self.space.get(c).is_some_and(|q| q.when.is_some()) || c == k {
                    return Err(format!("search field `space.{k}.when`: `{c}` must be an unconditional parameter or a config field"));
                }
            }
            if k == "seed" || k == "train.epochs" && self.strategy == Strategy::Halving {
                return Err(format!("search field `space.{k}`: not searchable here (the budget and seeds are the search's own)"));
            }
        }
        let needs_trials = self.strategy == Strategy::Random
            || (self.strategy == Strategy::Halving
                && self.halving.candidates == Candidates::Random);
        if needs_trials && self.trials.is_none_or(|t| t == 0) {
            return Err("search field `trials`: give how many random draws".into());
        }
        if self.strategy == Strategy::Halving
            && (self.halving.eta < 2 || self.halving.min_epochs == 0)
        {
            return Err(
                "search field `halving`: eta must be at least 2 and min_epochs at least 1".into(),
            );
        }
        Ok(())
    }

    /// Unconditional parameters first, then conditional ones (each group by key).
    fn ordered(&self) -> Vec<(&String, &Param)> {
        let mut v: Vec<_> = self
            .space
            .iter()
            .filter(|(_, p)| p.when.is_none())
            .collect();
        v.extend(self.space.iter().filter(|(_, p)| p.when.is_some()));
        v
    }

    /// The trials of this search, in order. `base` is the flattened base config (dotted
    /// key → JSON value), for conditions on fields the space does not set.
    pub fn trials(&self, base: &BTreeMap<String, Value>) -> Vec<Trial> {
        let grid = match self.strategy {
            Strategy::Grid => true,
            Strategy::Random => false,
            Strategy::Halving => self.halving.candidates == Candidates::Grid,
        };
        let sets = if grid {
            let mut out = vec![BTreeMap::new()];
            for (k, p) in self.ordered() {
                let pts = grid_points(p);
                let mut next = Vec::new();
                for t in out {
                    if applies(p, &t, base) {
                        for v in &pts {
                            let mut t2 = t.clone();
                            t2.insert(k.clone(), v.clone());
                            next.push(t2);
                        }
                    } else {
                        next.push(t);
                    }
                }
                out = next;
            }
            out
        } else {
            let seeds = Seeds::new(self.seed);
            (0..self.trials.unwrap_or(0))
                .map(|i| {
                    let mut rng = seeds.stream("search", i as u64);
                    let mut t = BTreeMap::new();
                    for (k, p) in self.ordered() {
                        // Drawn even when unused, so a condition never shifts later draws.
                        let v = sample(p, &mut rng);
                        if applies(p, &t, base) {
                            t.insert(k.clone(), v);
                        }
                    }
                    t
                })
                .collect()
        };
        sets.into_iter()
            .enumerate()
            .map(|(index, values)| Trial { index, values })
            .collect()
    }
}

fn applies(p: &Param, trial: &BTreeMap<String, Value>, base: &BTreeMap<String, Value>) -> bool {
    p.when.as_ref().is_none_or(|w| {
        w.iter()
            .all(|(k, want)| trial.get(k).or_else(|| base.get(k)) == Some(want))
    })
}

/// Rounds to 4 significant digits (readable configs, same value every time).
fn round4(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let mag = x.abs().log10().floor() as i32;
    let f = 10f64.powi(3 - mag);
    (x * f).round() / f
}

fn num(x: f64) -> Value {
    serde_json::Number::from_f64(x)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn grid_points(p: &Param) -> Vec<Value> {
    if let Some(c) = &p.choice {
        return c.clone();
    }
    let n = p.grid;
    let (lo, hi, int) = match (p.float, p.int) {
        (Some([a, b]), _) => (a, b, false),
        (_, Some([a, b])) => (a as f64, b as f64, true),
        _ => unreachable!("checked on load"),
    };
    let at = |i: usize| -> f64 {
        if n == 1 {
            return if p.log {
                (lo * hi).sqrt()
            } else {
                (lo + hi) / 2.0
            };
        }
        let t = i as f64 / (n - 1) as f64;
        if p.log {
            (lo.ln() + t * (hi.ln() - lo.ln())).exp()
        } else {
            lo + t * (hi - lo)
        }
    };
    let mut out: Vec<Value> = Vec::new();
    for i in 0..n {
        let v = if int {
            Value::from(at(i).round() as i64)
        } else {
            num(round4(at(i)))
        };
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

fn sample(p: &Param, rng: &mut impl Rng) -> Value {
    if let Some(c) = &p.choice {
        return c[rng.random_range(0..c.len())].clone();
    }
    let u: f64 = rng.random();
    match (p.float, p.int) {
        (Some([lo, hi]), _) => num(round4(if p.log {
            (lo.ln() + u * (hi.ln() - lo.ln())).exp()
        } else {
            lo + u * (hi - lo)
        })),
        (_, Some([lo, hi])) => {
            let x = if p.log {
                (lo as f64).ln() + u * (((hi + 1) as f64).ln() - (lo as f64).ln())
            } else {
                lo as f64 + u * (hi - lo + 1) as f64
            };
            let x = if p.log { x.exp() } else { x };
            Value::from((x.floor() as i64).clamp(lo, hi))
        }
        _ => unreachable!("checked on load"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> SearchSpec {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.yaml");
        std::fs::write(&p, yaml).unwrap();
        load(&p).unwrap()
    }

    const BASE: &str = "name: t\nconfigs: []\nseed: 3\nmetric: valid_auc\n";

    #[test]
    fn grid_enumerates_every_combination_with_conditions() {
        let s = spec(&format!(
            "{BASE}strategy: grid\nspace:\n  model.kind: {{choice: [mlp, cnn]}}\n  train.lr: {{float: [1.0e-4, 1.0e-2], log: true, grid: 3}}\n  model.channels: {{choice: [[8, 16]], when: {{model.kind: cnn}}}}\n"
        ));
        let t = s.trials(&BTreeMap::new());
        assert_eq!(t.len(), 6);
        assert_eq!(t[0].overrides(), ["model.kind=\"mlp\"", "train.lr=0.0001"]);
        assert_eq!(t[1].values["train.lr"], serde_json::json!(0.001));
        let cnn: Vec<_> = t
            .iter()
            .filter(|t| t.values["model.kind"] == "cnn")
            .collect();
        assert!(cnn.iter().all(|t| t.values.contains_key("model.channels")));
        assert_eq!(
            t.iter()
                .filter(|t| t.values.contains_key("model.channels"))
                .count(),
            3
        );
        assert_eq!(
            t.iter().map(|t| t.index).collect::<Vec<_>>(),
            (0..6).collect::<Vec<_>>()
        );
    }

    #[test]
    fn random_draws_are_seeded_in_range_and_stable() {
        let y = format!("{BASE}strategy: random\ntrials: 20\nspace:\n  train.lr: {{float: [1.0e-4, 1.0e-1], log: true}}\n  train.batch_size: {{int: [16, 64]}}\n  model.dropout: {{float: [0.0, 0.5], when: {{model.kind: mlp}}}}\n");
        let a = spec(&y).trials(&BTreeMap::from([(
            "model.kind".into(),
            serde_json::json!("mlp"),
        )]));
        let b = spec(&y).trials(&BTreeMap::from([(
            "model.kind".into(),
            serde_json::json!("mlp"),
        )]));
        assert_eq!(a, b);
        assert_eq!(a.len(), 20);
        for t in &a {
            let lr = t.values["train.lr"].as_f64().unwrap();
            let bs = t.values["train.batch_size"].as_i64().unwrap();
            assert!(
                (1e-4..=1e-1).contains(&lr) && (16..=64).contains(&bs),
                "{t:?}"
            );
            assert!(t.values.contains_key("model.dropout"));
        }
        let other = spec(&y.replace("seed: 3", "seed: 4")).trials(&BTreeMap::new());
        assert_ne!(a[0].values["train.lr"], other[0].values["train.lr"]);
        // The condition only removes the value; the other draws stay the same.
        assert!(!other[0].values.contains_key("model.dropout"));
        let cnn = spec(&y).trials(&BTreeMap::from([(
            "model.kind".into(),
            serde_json::json!("cnn"),
        )]));
        assert_eq!(cnn[5].values["train.lr"], a[5].values["train.lr"]);
    }

    #[test]
    fn bad_definitions_name_the_field() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.yaml");
        for (body, needle) in [
            ("strategy: grid\nspace: {}\n", "space"),
            (
                "strategy: grid\nspace:\n  train.lr: {float: [1, 0]}\n",
                "empty",
            ),
            (
                "strategy: grid\nspace:\n  train.lr: {float: [0, 1], log: true}\n",
                "positive",
            ),
            (
                "strategy: grid\nspace:\n  train.lr: {float: [0, 1], choice: [1]}\n",
                "exactly one",
            ),
            (
                "strategy: random\nspace:\n  train.lr: {float: [0, 1]}\n",
                "trials",
            ),
            (
                "strategy: sideways\nspace:\n  train.lr: {float: [0, 1]}\n",
                "strategy",
            ),
            (
                "strategy: grid\nspace:\n  train.lr: {floats: [0, 1]}\n",
                "floats",
            ),
        ] {
            std::fs::write(&p, format!("{BASE}{body}")).unwrap();
            let e = load(&p).unwrap_err().to_string();
            assert!(e.contains("s.yaml") && e.contains(needle), "{body}: {e}");
        }
    }
}
