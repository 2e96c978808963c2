//! Typed run configuration. Layers are merged as YAML values — the embedded base
//! (`configs/base.yaml` and the group files it names), then each `--config` file in
//! order (each may name its own `defaults:` files, relative to itself), then dotted
//! command-line overrides with YAML-typed values — deserialized once into
//! [`RunConfig`] with unknown keys rejected, and validated once. The resolved config
//! is serialised back to YAML and hashed; that hash identifies a configuration.
//! Its `data:` section is [`crate::data::DataConfig`] (paths are checked when the data
//! plan is built, not here). Depends on `data` (for that section), `error` and `fsutil`.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_yaml_ng::{Mapping, Value};
use std::path::{Path, PathBuf};

/// The embedded base layer and the group files it names, by their path under `configs/`.
const EMBEDDED: &[(&str, &str)] = &[
    ("base.yaml", include_str!("../configs/base.yaml")),
    (
        "data/default.yaml",
        include_str!("../configs/data/default.yaml"),
    ),
    ("model/mlp.yaml", include_str!("../configs/model/mlp.yaml")),
    (
        "train/default.yaml",
        include_str!("../configs/train/default.yaml"),
    ),
    (
        "eval/default.yaml",
        include_str!("../configs/eval/default.yaml"),
    ),
];

/// Everything a run needs to know, fully resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Master seed for training streams (init, order, augment, dropout).
    pub seed: u64,
    pub data: crate::data::DataConfig,
    pub model: ModelConfig,
    pub train: TrainConfig,
    /// Threshold choice and confidence intervals (runs made before it existed get the defaults).
    #[serde(default)]
    pub eval: EvalConfig,
    pub run: RunSection,
}

/// How evaluation chooses the decision threshold and computes intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    pub threshold_policy: ThresholdPolicy,
    /// For `min_recall`: the recall the threshold must reach on validation.
    pub min_recall: f64,
    /// For `fixed`.
    pub fixed_threshold: f32,
    /// Bootstrap resamples for confidence intervals (0: none).
    pub bootstrap: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            threshold_policy: ThresholdPolicy::MaxF2,
            min_recall: 0.95,
            fixed_threshold: 0.5,
            bootstrap: 1000,
        }
    }
}

/// Rules for choosing the decision threshold on validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdPolicy {
    /// The threshold with the highest F2 (recall weighted 4× precision: missed tumours cost more).
    MaxF2,
    MaxF1,
    /// The threshold with the highest recall + specificity − 1.
    Youden,
    /// The highest threshold whose recall is at least `eval.min_recall`.
    MinRecall,
    /// `eval.fixed_threshold`.
    Fixed,
}

/// Model family and size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub kind: ModelKind,
    /// Hidden layer widths of the MLP, or of the CNN's head.
    pub hidden: Vec<usize>,
    /// Dropout probability before each hidden layer, in [0, 1).
    pub dropout: f64,
    /// Output channels of the CNN's conv blocks.
    pub channels: Vec<usize>,
}

/// The model families pcam trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Mlp,
    Cnn,
}

/// Optimisation and run-time settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub optimizer: OptimizerKind,
    pub momentum: f64,
    pub weight_decay: f64,
    pub scheduler: SchedulerKind,
    pub warmup_steps: usize,
    /// Intra-op CPU threads; pinned so results do not depend on the machine.
    pub threads: usize,
    pub device: DeviceChoice,
    /// Class-balanced sampling with replacement (the course's weighted sampler).
    pub balanced: bool,
    /// Seeded flips, 90° rotations and colour jitter on training tiles.
    pub augment: bool,
    /// Clip the global gradient norm to this value; `None` = no clipping.
    pub clip_grad_norm: Option<f64>,
    /// `step` scheduler: epochs between decays, and the decay factor.
    pub step_size: usize,
    pub gamma: f64,
    /// `plateau` scheduler: epochs without validation-loss improvement before the LR is
    /// multiplied by `plateau_factor`.
    pub plateau_patience: usize,
    pub plateau_factor: f64,
    /// Stop after this many epochs without improvement of `select`; `None` = never.
    pub early_stop_patience: Option<usize>,
    /// Validation metric that picks the best checkpoint and drives early stopping.
    pub select: SelectMetric,
}

/// Validation metric for model selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectMetric {
    ValidAuc,
    ValidLoss,
}

/// Where runs are written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// Runs go to `<root>/<experiment>/<run-id>/`.
    pub experiment: String,
    pub root: PathBuf,
    /// MLflow tracking server to log to (`http(s)://…`); when absent, the environment's
    /// `MLFLOW_TRACKING_URI`. Absent from the canonical YAML (and hash) unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_uri: Option<String>,
}

/// Optimisers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    Adam,
    Adamw,
}

/// Learning-rate schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedulerKind {
    None,
    Step,
    Cosine,
    Onecycle,
    Plateau,
}

/// Which device to train on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    Cpu,
    Cuda,
    Auto,
}

/// One source of configuration values, kept so errors can say where a value came from.
#[derive(Debug, Clone)]
struct Layer {
    name: String,
    value: Value,
}

/// A validated configuration with its canonical YAML and hash.
#[derive(Debug, Clone)]
pub struct ResolvedConfig {
    pub config: RunConfig,
    /// Canonical YAML of `config` (field order fixed by the struct definitions).
    pub yaml: String,
    /// SHA-256 of `yaml`.
    pub sha256: String,
    /// The layers merged, in order.
    pub sources: Vec<String>,
    layers: Vec<Layer>,
}

/// One resolved field and the layer that set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldSource {
    /// Dotted path, e.g. `train.lr`.
    pub key: String,
    /// The value, as YAML.
    pub value: String,
    /// The last layer that set it (embedded file, config file or override).
    pub layer: String,
}

impl ResolvedConfig {
    /// Every leaf field with its value and the layer that set it, in definition order.
    pub fn fields(&self) -> Vec<FieldSource> {
        fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
            match v {
                Value::Mapping(m) => {
                    for (k, child) in m {
                        let k = k.as_str().unwrap_or_default();
                        let key = if prefix.is_empty() {
                            k.to_string()
                        } else {
                            format!("{prefix}.{k}")
                        };
                        walk(&key, child, out);
                    }
                }
                Value::Sequence(items) => {
                    let parts: Vec<String> = items.iter().map(scalar).collect();
                    out.push((prefix.to_string(), format!("[{}]", parts.join(", "))));
                }
                other => out.push((prefix.to_string(), scalar(other))),
            }
        }
        fn scalar(v: &Value) -> String {
            serde_yaml_ng::to_string(v)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        }
        let value = serde_yaml_ng::to_value(&self.config).unwrap_or(Value::Null);
        let mut leaves = vec![];
        walk("", &value, &mut leaves);
        leaves
            .into_iter()
            .map(|(key, value)| FieldSource {
                layer: origin_of(&self.layers, &key).unwrap_or_default(),
                key,
                value,
            })
            .collect()
    }

    /// Writes `config.yaml` and `config.sha256` into `dir`, each atomically.
    pub fn write_to(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "creating folder", e))?;
        crate::fsutil::write_atomic(&dir.join("config.yaml"), self.yaml.as_bytes())?;
        crate::fsutil::write_atomic(
            &dir.join("config.sha256"),
            format!("{}  config.yaml\n", self.sha256).as_bytes(),
        )
    }
}

/// Builds the configuration from the embedded base, `files` in order, and `overrides`
/// (`a.b=value`), then validates values. Paths are not checked here: see
/// [`DataConfig::plan`](crate::data::DataConfig::plan).
pub fn resolve(files: &[PathBuf], overrides: &[String]) -> Result<ResolvedConfig> {
    let mut layers = embedded_layers()?;
    for f in files {
        file_layers(f, &mut layers, 0)?;
    }
    for o in overrides {
        layers.push(override_layer(o)?);
    }
    let mut merged = Value::Mapping(Mapping::new());
    for l in &layers {
        merge(&mut merged, l.value.clone());
    }
    let config: RunConfig = serde_path_to_error::deserialize(merged).map_err(|e| {
        let field = e.path().to_string();
        let msg = crate::error::one_line(&e.inner().to_string());
        let (field, msg) = describe_serde_error(&field, &msg);
        Error::ConfigField {
            origin: origin_of(&layers, &field),
            field,
            msg,
        }
    })?;
    config.validate().map_err(|e| match e {
        Error::ConfigField { field, msg, .. } => Error::ConfigField {
            origin: origin_of(&layers, &field),
            field,
            msg,
        },
        other => other,
    })?;
    let yaml =
        serde_yaml_ng::to_string(&config).map_err(|e| Error::failed("serialising config", e))?;
    Ok(ResolvedConfig {
        sha256: crate::fsutil::sha256_hex(yaml.as_bytes()),
        yaml,
        config,
        sources: layers.iter().map(|l| l.name.clone()).collect(),
        layers,
    })
}

/// Every leaf of `config` by dotted key (`train.lr`), as JSON values (lists stay lists).
pub fn flat_values(
    config: &RunConfig,
) -> Result<std::collections::BTreeMap<String, serde_json::Value>> {
    fn walk(
        prefix: &str,
        v: serde_json::Value,
        out: &mut std::collections::BTreeMap<String, serde_json::Value>,
    ) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    let key = if prefix.is_empty() {
                        k
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, x, out);
                }
            }
            leaf => {
                out.insert(prefix.to_string(), leaf);
            }
        }
    }
    let v = serde_json::to_value(config).map_err(|e| Error::failed("config as JSON", e))?;
    let mut out = std::collections::BTreeMap::new();
    walk("", v, &mut out);
    Ok(out)
}

/// The resolved config stored in a run folder (`config.yaml`), re-validated and
/// re-hashed; the hash must match the one recorded beside it.
pub fn from_run(dir: &Path) -> Result<ResolvedConfig> {
    let r = resolve(&[dir.join("config.yaml")], &[])?;
    let recorded = std::fs::read_to_string(dir.join("config.sha256")).unwrap_or_default();
    if recorded.split_whitespace().next() != Some(r.sha256.as_str()) {
        return Err(Error::bad_file(
            dir.join("config.sha256"),
            "does not match config.yaml (edited after the run started?)",
        ));
    }
    Ok(r)
}

impl RunConfig {
    /// Rejects impossible values, naming the field and the rule.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, msg: String| {
            Err(Error::ConfigField {
                field: field.into(),
                msg,
                origin: None,
            })
        };
        if self.data.dir.as_os_str().is_empty() {
            return bad("data.dir", "must name a folder".into());
        }
        if self.data.chunk_cache_mb == 0 {
            return bad("data.chunk_cache_mb", "must be at least 1".into());
        }
        if let Some(u) = &self.run.tracking_uri {
            let u = u.trim();
            if !(u.is_empty() || u.starts_with("http://") || u.starts_with("https://")) {
                return bad(
                    "run.tracking_uri",
                    format!("`{u}` is not an MLflow server URI (http:// or https://)"),
                );
            }
        }
        let m = &self.model;
        if m.hidden.is_empty() {
            return bad("model.hidden", "must list at least one layer width".into());
        }
        if let Some(i) = m.hidden.iter().position(|&h| h == 0) {
            return bad(
                &format!("model.hidden[{i}]"),
                "layer width must be at least 1".into(),
            );
        }
        if m.kind == ModelKind::Cnn && m.channels.is_empty() {
            return bad(
                "model.channels",
                "a cnn needs at least one conv block".into(),
            );
        }
        if let Some(i) = m.channels.iter().position(|&c| c == 0) {
            return bad(
                &format!("model.channels[{i}]"),
                "channel count must be at least 1".into(),
            );
        }
        if !(0.0..1.0).contains(&m.dropout) {
            return bad("model.dropout", format!("{} is outside [0, 1)", m.dropout));
        }
        let t = &self.train;
        if t.epochs == 0 {
            return bad("train.epochs", "must be at least 1".into());
        }
        if t.batch_size == 0 {
            return bad("train.batch_size", "must be at least 1".into());
        }
        if !(t.lr.is_finite() && t.lr > 0.0) {
            return bad("train.lr", format!("{} must be a finite number > 0", t.lr));
        }
        if !(0.0..1.0).contains(&t.momentum) {
            return bad(
                "train.momentum",
                format!("{} is outside [0, 1)", t.momentum),
            );
        }
        if !(t.weight_decay.is_finite() && t.weight_decay >= 0.0) {
            return bad(
                "train.weight_decay",
                format!("{} must be a finite number >= 0", t.weight_decay),
            );
        }
        if t.threads == 0 {
            return bad("train.threads", "must be at least 1".into());
        }
        if let Some(c) = t.clip_grad_norm {
            if !(c.is_finite() && c > 0.0) {
                return bad(
                    "train.clip_grad_norm",
                    format!("{c} must be a finite number > 0 (or null)"),
                );
            }
        }
        if t.step_size == 0 {
            return bad("train.step_size", "must be at least 1".into());
        }
        for (field, v) in [
            ("train.gamma", t.gamma),
            ("train.plateau_factor", t.plateau_factor),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return bad(field, format!("{v} is outside (0, 1]"));
            }
        }
        if t.early_stop_patience == Some(0) {
            return bad(
                "train.early_stop_patience",
                "must be at least 1 (or null)".into(),
            );
        }
        let ev = &self.eval;
        if !(ev.min_recall > 0.0 && ev.min_recall <= 1.0) {
            return bad(
                "eval.min_recall",
                format!("{} is outside (0, 1]", ev.min_recall),
            );
        }
        if !(0.0..=1.0).contains(&ev.fixed_threshold) {
            return bad(
                "eval.fixed_threshold",
                format!("{} is outside [0, 1]", ev.fixed_threshold),
            );
        }
        let e = &self.run.experiment;
        if e.is_empty()
            || !e
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return bad(
                "run.experiment",
                format!("`{e}` must be letters, digits, `_` or `-`"),
            );
        }
        Ok(())
    }
}

fn parse_yaml(name: &str, text: &str) -> Result<Value> {
    let v: Value = serde_yaml_ng::from_str(text).map_err(|e| Error::ConfigSyntax {
        source_name: name.into(),
        msg: format!("invalid YAML: {}", crate::error::one_line(&e.to_string())),
    })?;
    match v {
        Value::Mapping(_) => Ok(v),
        Value::Null => Ok(Value::Mapping(Mapping::new())),
        _ => Err(Error::ConfigSyntax {
            source_name: name.into(),
            msg: "top level must be a mapping of keys to values".into(),
        }),
    }
}

/// Removes and returns the `defaults:` list of a layer.
fn take_defaults(name: &str, v: &mut Value) -> Result<Vec<String>> {
    let Some(m) = v.as_mapping_mut() else {
        return Ok(vec![]);
    };
    match m.remove("defaults") {
        None => Ok(vec![]),
        Some(Value::Sequence(items)) => items
            .into_iter()
            .map(|i| match i {
                Value::String(s) => Ok(s),
                _ => Err(Error::ConfigSyntax {
                    source_name: name.into(),
                    msg: "`defaults` must be a list of file paths".into(),
                }),
            })
            .collect(),
        Some(_) => Err(Error::ConfigSyntax {
            source_name: name.into(),
            msg: "`defaults` must be a list of file paths".into(),
        }),
    }
}

fn embedded_layers() -> Result<Vec<Layer>> {
    let get = |name: &str| {
        EMBEDDED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .ok_or_else(|| Error::Usage(format!("embedded config {name} is missing")))
    };
    let mut base = parse_yaml("embedded configs/base.yaml", get("base.yaml")?)?;
    let mut layers = vec![];
    for d in take_defaults("embedded configs/base.yaml", &mut base)? {
        let name = format!("embedded configs/{d}");
        layers.push(Layer {
            value: parse_yaml(&name, get(&d)?)?,
            name,
        });
    }
    layers.push(Layer {
        name: "embedded configs/base.yaml".into(),
        value: base,
    });
    Ok(layers)
}

fn file_layers(path: &Path, out: &mut Vec<Layer>, depth: usize) -> Result<()> {
    if depth > 8 {
        return Err(Error::bad_file(
            path,
            "`defaults` nest more than 8 deep (a cycle?)",
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "reading config", e))?;
    let name = path.display().to_string();
    let mut value = parse_yaml(&name, &text)?;
    let base = path.parent().unwrap_or(Path::new("."));
    for d in take_defaults(&name, &mut value)? {
        file_layers(&normalize(&base.join(d)), out, depth + 1)?;
    }
    out.push(Layer { name, value });
    Ok(())
}

/// Removes `.` and `dir/..` segments without touching the filesystem, so layer names
/// read `configs/model/cnn.yaml` rather than `configs/experiment/../model/cnn.yaml`.
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = vec![];
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.is_empty() {
        PathBuf::from(".")
    } else {
        out.iter().collect()
    }
}

/// Parses `a.b.c=value` into a nested mapping; the value is read as YAML.
fn override_layer(raw: &str) -> Result<Layer> {
    let usage = |msg: &str| Error::Usage(format!("override `{raw}`: {msg}"));
    let (key, val) = raw
        .split_once('=')
        .ok_or_else(|| usage("expected key=value, e.g. train.lr=3e-4"))?;
    let parts: Vec<&str> = key.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(usage("key has an empty segment"));
    }
    if val.trim().is_empty() {
        return Err(usage("value is empty"));
    }
    let mut value: Value = serde_yaml_ng::from_str(val).map_err(|e| {
        usage(&format!(
            "value is not valid YAML: {}",
            crate::error::one_line(&e.to_string())
        ))
    })?;
    for p in parts.iter().rev() {
        let mut m = Mapping::new();
        m.insert(Value::String((*p).to_string()), value);
        value = Value::Mapping(m);
    }
    Ok(Layer {
        name: format!("override {raw}"),
        value,
    })
}

/// Deep merge: mappings merge key by key, anything else is replaced.
fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// The last layer that sets `field` (or its closest parent), for error messages.
fn origin_of(layers: &[Layer], field: &str) -> Option<String> {
    let parts: Vec<&str> = field
        .split('.')
        .map(|p| p.split('[').next().unwrap_or(p))
        .filter(|p| !p.is_empty())
        .collect();
    for depth in (1..=parts.len()).rev() {
        for l in layers.iter().rev() {
            let mut cur = &l.value;
            let mut found = true;
            for p in &parts[..depth] {
                match cur.get(*p) {
                    Some(v) => cur = v,
                    None => {
                        found = false;
                        break;
                    }
                }
            }
            if found {
                return Some(l.name.clone());
            }
        }
    }
    None
}

/// Turns serde's message into (full field path, rule) in our words.
fn describe_serde_error(path: &str, msg: &str) -> (String, String) {
    let path = if path == "." {
        String::new()
    } else {
        path.to_string()
    };
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let (key, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let field = if path.is_empty() || path.ends_with(key) {
            if path.is_empty() {
                key.to_string()
            } else {
                path.clone()
            }
        } else {
            format!("{path}.{key}")
        };
        let expected = tail.trim_start_matches(',').trim();
        return (field, format!("unknown key; {expected}"));
    }
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let key = rest.split('`').next().unwrap_or(rest);
        let field = if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        };
        return (field, "required key is missing".into());
    }
    let msg = msg.split(" at line ").next().unwrap_or(msg).to_string();
    (path, format!("wrong type or value: {msg}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ov(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn embedded_defaults_resolve_and_validate() {
        let r = resolve(&[], &[]).unwrap();
        assert_eq!(r.config.model.kind, ModelKind::Mlp);
        assert_eq!(r.config.data.invalid, crate::data::InvalidPolicy::Clip);
        assert_eq!(r.sha256.len(), 64);
        assert!(r.sources[0].contains("data/default.yaml"));
    }

    #[test]
    fn overrides_are_yaml_typed() {
        let r = resolve(
            &[],
            &ov(&["train.lr=3e-4", "model.hidden=[128,64]", "model.kind=cnn"]),
        )
        .unwrap();
        assert_eq!(r.config.train.lr, 3e-4);
        assert_eq!(r.config.model.hidden, vec![128, 64]);
        assert_eq!(r.config.model.kind, ModelKind::Cnn);
    }

    #[test]
    fn hash_changes_with_any_value_and_only_then() {
        let a = resolve(&[], &[]).unwrap();
        let b = resolve(&[], &ov(&["seed=42"])).unwrap();
        let c = resolve(&[], &ov(&["seed=43"])).unwrap();
        assert_eq!(a.sha256, b.sha256);
        assert_ne!(a.sha256, c.sha256);
    }

    #[test]
    fn files_layer_in_order_with_defaults_relative_to_the_file() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("model")).unwrap();
        std::fs::write(
            d.path().join("model/big.yaml"),
            "model:\n  hidden: [1024]\n",
        )
        .unwrap();
        let exp = d.path().join("exp.yaml");
        std::fs::write(&exp, "defaults: [model/big.yaml]\ntrain:\n  epochs: 9\n").unwrap();
        let r = resolve(&[exp], &ov(&["train.epochs=3"])).unwrap();
        assert_eq!(r.config.model.hidden, vec![1024]);
        assert_eq!(r.config.train.epochs, 3);
    }

    fn err(overrides: &[&str]) -> String {
        resolve(&[], &ov(overrides)).unwrap_err().to_string()
    }

    #[test]
    fn impossible_values_name_field_rule_and_origin() {
        let e = err(&["train.lr=0"]);
        assert!(
            e.contains("train.lr") && e.contains("> 0") && e.contains("override"),
            "{e}"
        );
        assert!(err(&["train.batch_size=0"]).contains("train.batch_size"));
        assert!(err(&["model.dropout=1.0"]).contains("outside [0, 1)"));
        assert!(err(&["model.hidden=[]"]).contains("model.hidden"));
        assert!(err(&["model.hidden=[8,0]"]).contains("model.hidden[1]"));
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_rejected_with_path() {
        let e = err(&["train.lrr=1"]);
        assert!(e.contains("train.lrr") && e.contains("unknown key"), "{e}");
        let e = err(&["train.batch_size=many"]);
        assert!(
            e.contains("train.batch_size") && e.contains("wrong type"),
            "{e}"
        );
        let e = err(&["data.invalid=ignore"]);
        assert!(e.contains("data.invalid"), "{e}");
    }

    #[test]
    fn malformed_overrides_are_usage_errors() {
        assert!(err(&["train.lr"]).contains("expected key=value"));
        assert!(err(&["train..lr=1"]).contains("empty segment"));
        assert!(err(&["train.lr="]).contains("value is empty"));
    }

    #[test]
    fn missing_data_dir_is_reported_by_the_data_plan() {
        let r = resolve(&[], &ov(&["data.dir=/nonexistent/pcam"])).unwrap();
        let e = r.config.data.plan().unwrap_err().to_string();
        assert!(
            e.contains("data.dir") && e.contains("does not exist"),
            "{e}"
        );
    }

    #[test]
    fn layer_paths_are_normalised() {
        assert_eq!(
            normalize(Path::new("configs/experiment/../model/cnn.yaml")),
            Path::new("configs/model/cnn.yaml")
        );
        assert_eq!(normalize(Path::new("./a/../../b")), Path::new("../b"));
        assert_eq!(normalize(Path::new("a/..")), Path::new("."));
    }

    #[test]
    fn fields_name_the_layer_that_set_each_value() {
        let r = resolve(&[], &ov(&["train.lr=0.01"])).unwrap();
        let f = r.fields();
        let lr = f.iter().find(|f| f.key == "train.lr").unwrap();
        assert_eq!(
            (lr.value.as_str(), lr.layer.as_str()),
            ("0.01", "override train.lr=0.01")
        );
        let hidden = f.iter().find(|f| f.key == "model.hidden").unwrap();
        assert_eq!(hidden.value, "[512, 256]");
        assert_eq!(hidden.layer, "embedded configs/model/mlp.yaml");
        assert_eq!(f[0].key, "seed");
        assert!(f
            .iter()
            .any(|f| f.key == "data.cache_dir" && f.value == "null"));
    }

    #[test]
    fn write_to_stores_yaml_and_hash() {
        let d = tempfile::tempdir().unwrap();
        let r = resolve(&[], &[]).unwrap();
        r.write_to(d.path()).unwrap();
        let yaml = std::fs::read_to_string(d.path().join("config.yaml")).unwrap();
        assert_eq!(crate::fsutil::sha256_hex(yaml.as_bytes()), r.sha256);
        let back: RunConfig = serde_yaml_ng::from_str(&yaml).unwrap();
        assert_eq!(back, r.config);
    }
}
