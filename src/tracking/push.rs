//! Copies a run folder to a tracking server: what to send is read from the folder
//! (config, manifest, history CSVs, evaluations, files), so a live push during training
//! and a later `sync` send the very same points. Metric timestamps are derived from the
//! run's recorded start and epoch durations, never from the clock of the push: a point
//! re-sent by a retry or a second sync is identical and the server keeps one copy.

use super::client::{Client, Metric, RemoteRun};
use super::state::{ServerState, TrackingFile, FILE};
use crate::error::{Error, Result};
use crate::run::{Manifest, RunDir};
use serde_json::Value;
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
/// by whoever created the run, so every push and sync sends them.
pub const EXTRA_TAGS: &str = "tags.json";

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

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "reading", e))?;
    serde_json::from_str(&text).map_err(|e| Error::bad_file(path, format!("invalid JSON: {e}")))
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
    let extra = p.join(EXTRA_TAGS);
    if extra.is_file() {
        if let Value::Object(m) = read_json(&extra)? {
            for (k, v) in m {
                let v = v.as_str().map(str::to_string).unwrap_or(v.to_string());
                tags.push((k, v));
            }
        }
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

/// Scalar metrics of `eval-<split>.json`, keyed `<split>/<metric>`.
fn eval_metrics(path: &Path, at_ms: i64) -> Result<Vec<Metric>> {
    let v = read_json(path)?;
    let split = v["split"].as_str().unwrap_or("eval").to_string();
    let mut out = Vec::new();
    let mut put = |k: &str, x: f64| {
        out.push(Metric {
            key: format!("{split}/{k}"),
            value: x,
            timestamp: at_ms,
            step: 0,
        })
    };
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
    Ok(out)
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

    let mut evals: Vec<PathBuf> = std::fs::read_dir(&run.path)
        .map_err(|e| Error::io(&run.path, "listing", e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("eval-") && n.ends_with(".json"))
        })
        .collect();
    evals.sort();
    for e in evals {
        let sha = crate::fsutil::sha256_file(&e)?;
        let name = e
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if st.evals.get(&name) != Some(&sha) {
            let m = eval_metrics(&e, snap.end_ms)?;
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
