//! Copies a run folder to a tracking server: what to send is read from the folder
//! (config, manifest, history CSVs, evaluations, files), so a live push during training
//! and a later `sync` send the very same points. Metric timestamps are derived from the
//! run's recorded start and epoch durations, never from the clock of the push: a point
//! re-sent by a retry or a second sync is identical and the server keeps one copy.

use super::client::{Client, Metric, RemoteRun};
use super::state::{ServerState, TrackingFile, FILE};
use crate::data::SplitName;
use crate::error::{Error, Result};
use crate::eval::EvalReport;
use crate::run::{Manifest, RunDir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How far a push goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// During training: parameters, tags and the metrics written so far.
    Epoch,
    /// Training ended (`ok` or failed): everything, then the final status.
    Final { ok: bool },
    /// A later upload of whatever the folder holds now.
    Sync,
}

/// What one push sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pushed {
    pub created_run: bool,
    pub params: usize,
    pub metrics: usize,
    pub artifacts: usize,
    pub artifact_bytes: u64,
}

/// Extra tags a run carries in `<run>/tags.json` (multi-seed group, sweep id), written
/// by whoever created the run ([`write_extra_tags`]), so every push and sync sends them.
pub const EXTRA_TAGS: &str = "tags.json";

/// Writes `tags` as the run's extra tags (`tags.json`: one string per tag name).
pub fn write_extra_tags(run: &RunDir, tags: &[(&str, &str)]) -> Result<()> {
    let map: BTreeMap<&str, &str> = tags.iter().copied().collect();
    run.write_json(EXTRA_TAGS, &map)
}

/// The run folder's content, in the server's terms.
struct Snapshot {
    key: String,
    name: String,
    start_ms: i64,
    end_ms: i64,
    finished: bool,
    params: Vec<(String, String)>,
    tags: Vec<(String, String)>,
    /// One entry per row of steps.csv / epochs.csv.
    steps: Vec<Vec<Metric>>,
    epochs: Vec<Vec<Metric>>,
}

/// A stable identity of the run folder on any server: config hash, start stamp and
/// folder name (tag `pcam.run_key`; how `sync` finds a run created by a lost response).
fn run_key(manifest: &Manifest, name: &str) -> String {
    let sha = &manifest.config_sha256;
    format!(
        "{}-{}-{}",
        &sha[..sha.len().min(16)],
        manifest.started_utc,
        name
    )
    .replace(['\'', '"', '\\'], "_")
}

fn snapshot(run: &RunDir) -> Result<Snapshot> {
    let p = &run.path;
    let manifest_path = p.join("manifest.json");
    if !manifest_path.is_file() {
        return Err(Error::bad_file(
            p,
            "run has not started training (no manifest.json); nothing to track",
        ));
    }
    let manifest = run.manifest()?;
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    let start_ms = crate::run::parse_utc_stamp(&manifest.started_utc)
        .map(|s| s * 1000)
        .ok_or_else(|| Error::bad_file(&manifest_path, "no valid started_utc"))?;
    let params = flatten_config(&crate::config::from_run(p)?.config)?;

    let key = run_key(&manifest, &name);
    let m = &manifest;
    let mut tags: Vec<(String, String)> = vec![
        ("mlflow.runName".into(), name.clone()),
        ("mlflow.source.name".into(), "pcam".into()),
        ("mlflow.source.type".into(), "LOCAL".into()),
        ("pcam.run_key".into(), key.clone()),
        ("pcam.run_dir".into(), absolute(p).display().to_string()),
        ("pcam.version".into(), m.pcam_version.clone()),
        ("pcam.seed".into(), m.seed.to_string()),
        ("pcam.config_sha256".into(), m.config_sha256.clone()),
        ("pcam.device".into(), m.device.clone()),
        ("pcam.torch".into(), m.torch_version.clone()),
        (
            "pcam.synthetic_data".into(),
            m.data_synthetic
                .as_ref()
                .map(|n| format!("yes: {n}"))
                .unwrap_or_else(|| "no".into()),
        ),
    ];
    if let Some(c) = &m.git_commit {
        tags.push(("mlflow.source.git.commit".into(), c.clone()));
        tags.push(("pcam.git_commit".into(), c.clone()));
    }
    if let Some(d) = m.git_dirty {
        tags.push(("pcam.git_dirty".into(), d.to_string()));
    }
    if let Some(h) = &m.hostname {
        tags.push(("pcam.host".into(), h.clone()));
    }
    if let Some(j) = &m.slurm_job_id {
        tags.push(("pcam.slurm_job_id".into(), j.clone()));
    }
    if p.join(EXTRA_TAGS).is_file() {
        let extra: BTreeMap<String, String> = run.read_json(EXTRA_TAGS)?;
        tags.extend(extra);
    }

    let h = crate::run::read_history(p)?;
    let mut epoch_start = Vec::with_capacity(h.epochs.len());
    let mut t = start_ms;
    let mut epochs = Vec::with_capacity(h.epochs.len());
    for e in &h.epochs {
        epoch_start.push(t);
        t += (e.seconds * 1000.0).round() as i64;
        let step = e.epoch as i64;
        let m = |k: &str, v: f64| Metric {
            key: k.into(),
            value: v,
            timestamp: t,
            step,
        };
        epochs.push(vec![
            m("train_loss", e.train_loss),
            m("valid_loss", e.valid_loss),
            m("valid_auc", e.valid_auc.unwrap_or(f64::NAN)),
            m("valid_accuracy", e.valid_accuracy),
            m("lr_end", e.lr_end),
            m("epoch_seconds", e.seconds),
            m("images_per_second", e.images_per_second),
        ]);
    }
    let end_ms = t;
    let mut steps = Vec::with_capacity(h.steps.len());
    let mut i = 0;
    while i < h.steps.len() {
        let ep = h.steps[i].epoch;
        let n = h.steps[i..].iter().take_while(|r| r.epoch == ep).count();
        let (t0, dur) = match h.epochs.iter().position(|e| e.epoch == ep) {
            Some(k) => (
                epoch_start[k],
                (h.epochs[k].seconds * 1000.0).round() as i64,
            ),
            None => (end_ms, 0),
        };
        for (j, r) in h.steps[i..i + n].iter().enumerate() {
            let ts = t0 + dur * (j as i64 + 1) / n as i64;
            let step = r.step as i64;
            let m = |k: String, v: f64| Metric {
                key: k,
                value: v,
                timestamp: ts,
                step,
            };
            let mut row = vec![
                m("step/loss".into(), r.loss),
                m("step/lr".into(), r.lr),
                m("step/grad_norm".into(), r.grad_norm),
            ];
            for (l, v) in h.layers.iter().zip(&r.layer_norms) {
                row.push(m(format!("step/grad_norm/{l}"), *v));
            }
            steps.push(row);
        }
        i += n;
    }
    Ok(Snapshot {
        key,
        name,
        start_ms,
        end_ms,
        finished: p.join("metrics.json").is_file(),
        params,
        tags,
        steps,
        epochs,
    })
}

/// The resolved config as MLflow parameters: dotted keys, values as strings (lists in
/// JSON flow style, so `model.hidden` reads `[64,32]`).
pub fn flatten_config(c: &crate::config::RunConfig) -> Result<Vec<(String, String)>> {
    Ok(crate::config::flat_values(c)?
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect())
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Scalar metrics of an evaluation (`eval-<split>.json`), keyed `<split>/<metric>`; an
/// undefined score (no positives, one class) is sent as NaN, an undefined interval is
/// left out.
fn eval_metrics(r: &EvalReport, at_ms: i64) -> Vec<Metric> {
    let opt = |x: Option<f64>| x.unwrap_or(f64::NAN);
    // The threshold is a float32 written in its shortest decimal form: sent as that
    // decimal, not as the float32's exact binary value widened.
    let threshold = r
        .threshold
        .threshold
        .to_string()
        .parse()
        .unwrap_or(f64::NAN);
    let mut scores = vec![
        ("roc_auc".to_string(), opt(r.roc_auc)),
        ("average_precision".into(), opt(r.average_precision)),
        ("pr_auc".into(), opt(r.pr_auc)),
        ("f1".into(), r.f1),
        ("f2".into(), r.f2),
        ("recall".into(), r.recall),
        ("precision".into(), r.precision),
        ("specificity".into(), r.specificity),
        ("accuracy".into(), r.accuracy),
        ("log_loss".into(), r.log_loss),
        ("brier".into(), r.brier),
        ("ece".into(), r.ece),
        ("tiles".into(), r.tiles as f64),
        ("positives".into(), r.positives as f64),
        ("threshold".into(), threshold),
    ];
    for (k, &(lo, hi)) in &r.ci95 {
        if lo.is_finite() && hi.is_finite() {
            scores.push((format!("{k}_ci95_low"), lo));
            scores.push((format!("{k}_ci95_high"), hi));
        }
    }
    scores
        .into_iter()
        .map(|(k, value)| Metric {
            key: format!("{}/{k}", r.split),
            value,
            timestamp: at_ms,
            step: 0,
        })
        .collect()
}

/// The evaluation files of a run: `eval-<split>.json` for each split that has one (read
/// typed by `eval::read_report` when their content changed; a malformed one is then an
/// error naming the file). Other `eval-*.json` files are not evaluations of pcam's and go
/// up as artifacts only.
fn evaluation_files(run: &RunDir) -> Vec<(SplitName, String)> {
    SplitName::ALL
        .into_iter()
        .map(|split| (split, format!("eval-{split}.json")))
        .filter(|(_, name)| run.path.join(name).is_file())
        .collect()
}

/// Files of the run folder to upload (relative, `/`-separated, sorted): everything but
/// the tracking cursor and temporary or hidden files.
fn artifact_files(root: &Path) -> Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
        let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, "listing", e))?;
        for entry in rd {
            let entry = entry.map_err(|e| Error::io(dir, "listing", e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name.ends_with(".tmp") {
                continue;
            }
            let path = entry.path();
            let ft = entry.file_type().map_err(|e| Error::io(&path, "stat", e))?;
            if ft.is_dir() {
                walk(root, &path, out)?;
            } else if ft.is_file() && !(dir == root && name == FILE) {
                let rel = path.strip_prefix(root).unwrap_or(&path);
                out.push(
                    rel.components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/"),
                );
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    out.sort();
    Ok(out)
}

/// Finds the server's copy of the run — the one recorded, else one tagged with the run's
/// key (created by a push whose answer was lost), else a new one. Cursors are reset
/// whenever the copy is not the recorded one.
fn ensure_run(
    client: &Client,
    st: &mut ServerState,
    snap: &Snapshot,
    pushed: &mut Pushed,
) -> Result<RemoteRun> {
    if let Some(id) = &st.run_id {
        if let Some(r) = client.get_run(id)? {
            if !r.deleted {
                return Ok(r);
            }
        }
    }
    let exp = match &st.experiment_id {
        Some(e) => e.clone(),
        None => client.experiment_id(&st.experiment)?,
    };
    let found = client.search_runs(&exp, &format!("tags.`pcam.run_key` = '{}'", snap.key))?;
    let remote = match found.into_iter().next() {
        Some(r) => r,
        None => {
            pushed.created_run = true;
            client.create_run(&exp, &snap.name, snap.start_ms, &snap.tags)?
        }
    };
    let experiment = std::mem::take(&mut st.experiment);
    *st = ServerState {
        experiment,
        experiment_id: Some(exp),
        run_id: Some(remote.run_id.clone()),
        ..Default::default()
    };
    Ok(remote)
}

/// Pushes what `phase` covers of `run` to `client`'s server, updating and saving the
/// cursor in `tf` after each part, so an interrupted push resumes where it stopped.
pub fn push(
    run: &RunDir,
    client: &Client,
    tf: &mut TrackingFile,
    experiment: &str,
    phase: Phase,
) -> Result<Pushed> {
    let uri = client.uri().to_string();
    let snap = snapshot(run)?;
    let mut pushed = Pushed::default();
    let st = tf.servers.entry(uri.clone()).or_default();
    if st.experiment.is_empty() {
        st.experiment = experiment.to_string();
    }
    st.last_attempt = Some(crate::run::utc_stamp());
    st.synced = false;
    let result = push_parts(run, client, st, &snap, phase, &mut pushed);
    let st = tf.servers.get_mut(&uri).expect("inserted above");
    match &result {
        Ok(()) => {
            st.last_error = None;
            st.synced =
                phase != Phase::Epoch && snap.finished && phase != (Phase::Final { ok: false });
        }
        Err(e) => st.last_error = Some(e.to_string()),
    }
    tf.save(&run.path)?;
    result.map(|()| pushed)
}

fn push_parts(
    run: &RunDir,
    client: &Client,
    st: &mut ServerState,
    snap: &Snapshot,
    phase: Phase,
    pushed: &mut Pushed,
) -> Result<()> {
    let remote = ensure_run(client, st, snap, pushed)?;
    let id = remote.run_id.clone();
    if !st.params_pushed {
        client.log_batch(&id, &snap.params, &snap.tags, &[])?;
        st.params_pushed = true;
        pushed.params = snap.params.len();
    }
    if st.status.is_none() || (phase == Phase::Epoch && st.status.as_deref() != Some("RUNNING")) {
        client.update_run(&id, "RUNNING", None)?;
        st.status = Some("RUNNING".into());
    }
    let new: Vec<Metric> = snap
        .steps
        .iter()
        .skip(st.steps_pushed)
        .chain(snap.epochs.iter().skip(st.epochs_pushed))
        .flatten()
        .cloned()
        .collect();
    client.log_batch(&id, &[], &[], &new)?;
    pushed.metrics += new.len();
    st.steps_pushed = snap.steps.len();
    st.epochs_pushed = snap.epochs.len();
    if phase == Phase::Epoch {
        return Ok(());
    }

    for (split, name) in evaluation_files(run) {
        let sha = crate::fsutil::sha256_file(&run.path.join(&name))?;
        if st.evals.get(&name) != Some(&sha) {
            let m = eval_metrics(&crate::eval::read_report(run, split)?, snap.end_ms);
            client.log_batch(&id, &[], &[], &m)?;
            pushed.metrics += m.len();
            st.evals.insert(name, sha);
        }
    }
    // Extra tags may have been added after the first push (e.g. by a search).
    client.log_batch(&id, &[], &snap.tags, &[])?;
    for rel in artifact_files(&run.path)? {
        let path = run.path.join(&rel);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, "reading", e))?;
        let sha = crate::fsutil::sha256_hex(&bytes);
        if st.artifacts.get(&rel) != Some(&sha) {
            client.put_artifact(&remote.artifact_uri, &rel, &bytes)?;
            pushed.artifacts += 1;
            pushed.artifact_bytes += bytes.len() as u64;
            st.artifacts.insert(rel, sha);
        }
    }
    let (status, end) = match phase {
        Phase::Final { ok: false } => ("FAILED", Some(snap.end_ms)),
        _ if snap.finished => ("FINISHED", Some(snap.end_ms)),
        // A folder whose training never finished (crashed or still being resumed).
        _ => ("KILLED", Some(snap.end_ms)),
    };
    if st.status.as_deref() != Some(status) {
        client.update_run(&id, status, end)?;
        st.status = Some(status.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The untyped reading this module did before evaluations were read typed: the
    /// reference the typed one must match point for point.
    fn eval_metrics_untyped(path: &Path, at_ms: i64) -> Vec<(String, u64)> {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let split = v["split"].as_str().unwrap().to_string();
        let mut out = Vec::new();
        let mut put = |k: &str, x: f64| out.push((format!("{split}/{k}"), x.to_bits()));
        for k in [
            "roc_auc",
            "average_precision",
            "pr_auc",
            "f1",
            "f2",
            "recall",
            "precision",
            "specificity",
            "accuracy",
            "log_loss",
            "brier",
            "ece",
            "tiles",
            "positives",
        ] {
            if let Some(x) = v.get(k) {
                put(k, x.as_f64().unwrap_or(f64::NAN));
            }
        }
        if let Some(t) = v["threshold"]["threshold"].as_f64() {
            put("threshold", t);
        }
        if let Some(Value::Object(ci)) = v.get("ci95") {
            for (k, pair) in ci {
                if let (Some(lo), Some(hi)) = (pair[0].as_f64(), pair[1].as_f64()) {
                    put(&format!("{k}_ci95_low"), lo);
                    put(&format!("{k}_ci95_high"), hi);
                }
            }
        }
        let _ = at_ms;
        out
    }

    fn points(m: &[Metric]) -> Vec<(String, u64)> {
        m.iter()
            .map(|m| (m.key.clone(), m.value.to_bits()))
            .collect()
    }

    #[test]
    fn evaluations_are_sent_as_the_untyped_reading_sent_them() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let gpu = root.join("results/gpu/h200-2026-11-30");
        let mut folders = vec![root.join("models/demo-cnn")];
        folders.extend(["eval-cpu", "eval-cuda", "eval-cpu-tf32"].map(|d| gpu.join(d)));
        let mut seen = 0;
        for dir in folders {
            let run = RunDir { path: dir.clone() };
            for (split, name) in evaluation_files(&run) {
                let report = crate::eval::read_report(&run, split).unwrap();
                let typed = eval_metrics(&report, 7);
                assert!(typed.iter().all(|m| m.timestamp == 7 && m.step == 0));
                assert_eq!(
                    points(&typed),
                    eval_metrics_untyped(&dir.join(&name), 7),
                    "{}/{name}",
                    dir.display()
                );
                seen += 1;
            }
        }
        assert!(seen >= 7, "only {seen} committed evaluations found");
    }

    #[test]
    fn undefined_scores_and_intervals_read_back_and_are_sent_as_before() {
        // One class only: no ROC-AUC, NaN precision, and a bootstrap interval that is
        // undefined (written [null, null] because JSON has no NaN).
        let d = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo-cnn/eval-test.json");
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(src).unwrap()).unwrap();
        v["roc_auc"] = Value::Null;
        v["precision"] = Value::Null;
        v["threshold"]["threshold"] = serde_json::json!(0.3);
        v["ci95"]["recall"] = serde_json::json!([null, null]);
        let path = d.path().join("eval-test.json");
        std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
        let run = RunDir {
            path: d.path().to_path_buf(),
        };
        let report = crate::eval::read_report(&run, SplitName::Test).unwrap();
        assert!(report.roc_auc.is_none() && report.precision.is_nan());
        let (lo, hi) = report.ci95["recall"];
        assert!(lo.is_nan() && hi.is_nan());
        let sent = eval_metrics(&report, 0);
        assert_eq!(points(&sent), eval_metrics_untyped(&path, 0));
        assert!(!sent.iter().any(|m| m.key.starts_with("test/recall_ci95")));
        let t = sent.iter().find(|m| m.key == "test/threshold").unwrap();
        assert_eq!(t.value, 0.3, "the threshold is sent as its decimal");
    }

    #[test]
    fn a_foreign_eval_file_is_not_an_evaluation_but_a_malformed_one_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let run = RunDir {
            path: d.path().to_path_buf(),
        };
        std::fs::write(d.path().join("eval-notes.json"), "{\"x\": 1}").unwrap();
        assert!(evaluation_files(&run).is_empty());
        std::fs::write(d.path().join("eval-valid.json"), "{\"split\": \"valid\"}").unwrap();
        assert_eq!(
            evaluation_files(&run),
            [(SplitName::Valid, "eval-valid.json".into())]
        );
        let e = crate::eval::read_report(&run, SplitName::Valid)
            .unwrap_err()
            .to_string();
        assert!(e.contains("eval-valid.json"), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }

    #[test]
    fn extra_tags_round_trip_as_strings() {
        let d = tempfile::tempdir().unwrap();
        let run = RunDir {
            path: d.path().to_path_buf(),
        };
        write_extra_tags(&run, &[("pcam.trial", "3"), ("pcam.sweep", "abc")]).unwrap();
        let back: BTreeMap<String, String> = run.read_json(EXTRA_TAGS).unwrap();
        assert_eq!(back["pcam.trial"], "3");
        assert_eq!(back.len(), 2);
    }

    #[test]
    fn artifact_list_skips_the_cursor_and_temporaries() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "config.yaml",
            FILE,
            ".x.tmp",
            "a.tmp",
            "figures/roc.png",
            "checkpoints/best.ckpt",
        ] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        assert_eq!(
            artifact_files(d.path()).unwrap(),
            ["checkpoints/best.ckpt", "config.yaml", "figures/roc.png"]
        );
    }

    #[test]
    fn run_keys_are_stable_and_quote_free() {
        let m: Manifest = serde_json::from_value(serde_json::json!({
            "pcam_version": "0.1.0", "seed": 1, "config_sha256": "0123456789abcdef0123",
            "data_sha256": {}, "torch_version": "2.11.0", "tch_version": "0.24",
            "device": "Cpu", "cpu": "x",
            "torch": {"torch_seed": 1, "threads": 2, "deterministic_algorithms": true, "cudnn_benchmark": false},
            "started_utc": "20261126T092703"
        }))
        .unwrap();
        assert_eq!(run_key(&m, "it's"), "0123456789abcdef-20261126T092703-it_s");
    }
}
