//! Experiment tracking with MLflow, offline-first. The run folder is always the complete
//! record; a tracking server gets a copy — live during training when it answers, later
//! with `pcam tracking sync` when it did not. `<run>/tracking.json` is the cursor of each
//! server's copy. Downstream of train and eval: it only reads run folders, through `run`.
//!
//! Where to log: `run.tracking_uri` in the config, else `MLFLOW_TRACKING_URI`; the MLflow
//! experiment is `MLFLOW_EXPERIMENT_NAME`, else the config's `run.experiment`.

pub mod client;
pub mod push;
pub mod server;
pub mod state;

pub use client::{Client, Metric, RemoteRun};
pub use push::{Phase, Pushed};
pub use state::{ServerState, TrackingFile};

use crate::error::{Error, Result};
use crate::run::RunDir;
use std::path::{Path, PathBuf};

/// Attempts per request while training (a dead server costs under a second per epoch).
const LIVE_ATTEMPTS: u32 = 3;
/// Attempts per request in `sync`.
const SYNC_ATTEMPTS: u32 = 5;

/// Where a run is logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub uri: String,
    pub experiment: String,
}

impl Target {
    /// The target of a run with `config`, from the config or the environment; `Ok(None)`
    /// when tracking is off. A URI that is not http(s) is an error naming its source.
    pub fn resolve(config: &crate::config::RunConfig) -> Result<Option<Target>> {
        let (uri, source) = match &config.run.tracking_uri {
            Some(u) => (u.clone(), "config field `run.tracking_uri`"),
            None => match std::env::var("MLFLOW_TRACKING_URI") {
                Ok(u) => (u, "MLFLOW_TRACKING_URI"),
                Err(_) => return Ok(None),
            },
        };
        let uri = uri.trim().trim_end_matches('/').to_string();
        if uri.is_empty() {
            return Ok(None);
        }
        if !(uri.starts_with("http://") || uri.starts_with("https://")) {
            return Err(Error::Usage(format!(
                "{source} is `{uri}`: pcam logs to an MLflow tracking server (http:// or https://); every run is recorded in its own folder anyway, so leave it unset to track offline"
            )));
        }
        let experiment = std::env::var("MLFLOW_EXPERIMENT_NAME")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| config.run.experiment.clone());
        Ok(Some(Target { uri, experiment }))
    }
}

/// Live logging of one training run. Never fails the training: when the server does not
/// answer, the run is marked unsynced in `tracking.json` and training goes on.
pub struct Tracker {
    live: Option<Live>,
    quiet: bool,
}

struct Live {
    client: Client,
    target: Target,
    /// Gave up for the rest of training after a failure.
    offline: bool,
}

impl Tracker {
    /// No tracking.
    pub fn off() -> Tracker {
        Tracker {
            live: None,
            quiet: true,
        }
    }

    /// Tracks `run` when its config or the environment names a server.
    pub fn start(run: &RunDir, quiet: bool) -> Result<Tracker> {
        let Some(target) = Target::resolve(&run.config()?)? else {
            return Ok(Tracker::off());
        };
        let client = Client::new(&target.uri, LIVE_ATTEMPTS)?;
        // Record the intent before anything is sent: a crash leaves the run unsynced.
        let mut tf = TrackingFile::load(&run.path)?;
        let st = tf.servers.entry(target.uri.clone()).or_default();
        st.synced = false;
        if st.experiment.is_empty() {
            st.experiment = target.experiment.clone();
        }
        tf.save(&run.path)?;
        Ok(Tracker {
            live: Some(Live {
                client,
                target,
                offline: false,
            }),
            quiet,
        })
    }

    /// The server being logged to, if any.
    pub fn uri(&self) -> Option<&str> {
        self.live.as_ref().map(|l| l.target.uri.as_str())
    }

    /// Whether the server stopped answering during this run.
    pub fn is_offline(&self) -> bool {
        self.live.as_ref().is_some_and(|l| l.offline)
    }

    fn push(&mut self, run: &RunDir, phase: Phase) {
        let quiet = self.quiet;
        let Some(live) = self.live.as_mut() else {
            return;
        };
        if live.offline && phase == Phase::Epoch {
            return;
        }
        let result = TrackingFile::load(&run.path).and_then(|mut tf| {
            push::push(run, &live.client, &mut tf, &live.target.experiment, phase)
        });
        match result {
            Ok(_) => live.offline = false,
            Err(e) => {
                if !live.offline && !quiet {
                    eprintln!(
                        "warning: {e}; the run is complete in {} and marked unsynced — push it later with `pcam tracking sync {}`",
                        run.path.display(),
                        run.path.display()
                    );
                }
                live.offline = true;
            }
        }
    }

    /// After each epoch (history written): parameters once, then the new metric points.
    pub fn epoch(&mut self, run: &RunDir) {
        self.push(run, Phase::Epoch);
    }

    /// When training (and any evaluation that follows it) is over: evaluations,
    /// artifacts and the final status. Tries again even after a failure mid-run.
    pub fn finish(&mut self, run: &RunDir, ok: bool) {
        self.push(run, Phase::Final { ok });
    }
}

/// After `pcam eval` on a run: sends the new evaluation to every server the run was
/// logged to (and the configured one). Failures only mark the run unsynced.
pub fn after_eval(run: &RunDir, quiet: bool) -> Result<()> {
    let tf = TrackingFile::load(&run.path)?;
    let mut uris: Vec<String> = tf.servers.keys().cloned().collect();
    let target = Target::resolve(&run.config()?)?;
    if let Some(t) = &target {
        if !uris.contains(&t.uri) {
            uris.push(t.uri.clone());
        }
    }
    for uri in uris {
        let experiment = experiment_for(&tf, &uri, target.as_ref(), run)?;
        let client = Client::new(&uri, LIVE_ATTEMPTS)?;
        let mut tf = TrackingFile::load(&run.path)?;
        if let Err(e) = push::push(run, &client, &mut tf, &experiment, Phase::Sync) {
            if !quiet {
                eprintln!(
                    "warning: {e}; evaluation kept in {} — push it later with `pcam tracking sync`",
                    run.path.display()
                );
            }
        }
    }
    Ok(())
}

fn experiment_for(
    tf: &TrackingFile,
    uri: &str,
    target: Option<&Target>,
    run: &RunDir,
) -> Result<String> {
    if let Some(s) = tf.servers.get(uri).filter(|s| !s.experiment.is_empty()) {
        return Ok(s.experiment.clone());
    }
    if let Some(t) = target {
        return Ok(t.experiment.clone());
    }
    Ok(run.config()?.run.experiment)
}

/// Run folders (holding `config.yaml` and `manifest.json`) given directly or found
/// under the given folders, sorted.
pub fn find_runs(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<()> {
        if dir.join("config.yaml").is_file() && dir.join("manifest.json").is_file() {
            out.push(dir.to_path_buf());
        }
        if depth == 0 {
            return Ok(());
        }
        let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, "listing", e))?;
        for e in rd.flatten() {
            let p = e.path();
            let hidden = e.file_name().to_string_lossy().starts_with('.');
            if p.is_dir()
                && !hidden
                && !["checkpoints", "history", "figures"]
                    .contains(&&*e.file_name().to_string_lossy())
            {
                walk(&p, depth - 1, out)?;
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if !p.is_dir() {
            return Err(Error::NotFound { path: p.clone() });
        }
        walk(p, 4, &mut out)?;
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// What `sync` did to one run on one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOutcome {
    pub run: PathBuf,
    pub server: Option<String>,
    /// `pushed`, `already synced`, `no server` or `failed`.
    pub action: &'static str,
    pub pushed: Pushed,
    pub run_id: Option<String>,
    pub error: Option<String>,
}

impl SyncOutcome {
    /// Whether the run could not be synced (it stays marked unsynced).
    pub fn failed(&self) -> bool {
        self.action == "failed"
    }

    /// What `pcam tracking sync` prints for this run.
    pub fn to_line(&self) -> String {
        let (run, server) = (self.run.display(), self.server.as_deref().unwrap_or("-"));
        let id = self.run_id.as_deref().unwrap_or("?");
        let p = &self.pushed;
        match self.action {
            "pushed" => format!(
                "{run}: pushed to {server} (run {id}{}): {} params, {} metric points, {} artifacts ({} bytes)",
                if p.created_run { ", created" } else { "" },
                p.params,
                p.metrics,
                p.artifacts,
                p.artifact_bytes
            ),
            "failed" => format!("{run}: FAILED on {server}: {}", self.error.as_deref().unwrap_or("")),
            "no server" => {
                format!("{run}: no tracking server (give --uri or set MLFLOW_TRACKING_URI)")
            }
            other => format!("{run}: {other} on {server} (run {id})"),
        }
    }
}

/// One run's tracking state on one server (or none), as [`status`] finds it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStatus {
    pub run: PathBuf,
    /// `None`: the run was never pushed anywhere.
    pub server: Option<String>,
    pub state: ServerState,
}

/// What `pcam tracking status` prints: one Markdown row per run and server.
pub fn status_markdown(rows: &[RunStatus]) -> String {
    let mut o = String::from(
        "| run | server | state | run id | steps | epochs | artifacts | last error |\n\
         |---|---|---|---|---:|---:|---:|---|\n",
    );
    for r in rows {
        let s = &r.state;
        let state = match (&r.server, s.synced) {
            (None, _) => "untracked",
            (Some(_), true) => "synced",
            (Some(_), false) => "unsynced",
        };
        o += &format!(
            "| {} | {} | {state} | {} | {} | {} | {} | {} |\n",
            r.run.display(),
            r.server.as_deref().unwrap_or("-"),
            s.run_id.as_deref().unwrap_or("-"),
            s.steps_pushed,
            s.epochs_pushed,
            s.artifacts.len(),
            s.last_error.as_deref().unwrap_or("")
        );
    }
    o
}

/// What `pcam tracking list` prints: the server's runs of `experiment` as a Markdown table
/// (latest `valid_auc` and `test/roc_auc`, seed and synthetic-data tags), then a count.
pub fn runs_markdown(runs: &[RemoteRun], experiment: &str, uri: &str) -> String {
    let mut o = String::from(
        "| run id | name | status | seed | valid_auc | test/roc_auc | synthetic |\n\
         |---|---|---|---:|---:|---:|---|\n",
    );
    for r in runs {
        let m = |k: &str| {
            r.metrics
                .get(k)
                .map(|v| format!("{v:.4}"))
                .unwrap_or_default()
        };
        let synthetic = r
            .tags
            .get("pcam.synthetic_data")
            .map(|s| if s.starts_with("yes") { "yes" } else { "no" })
            .unwrap_or("");
        o += &format!(
            "| {} | {} | {} | {} | {} | {} | {synthetic} |\n",
            r.run_id,
            r.run_name,
            r.status,
            r.tags.get("pcam.seed").map(String::as_str).unwrap_or(""),
            m("valid_auc"),
            m("test/roc_auc"),
        );
    }
    o += &format!(
        "{} run(s) in experiment `{experiment}` on {uri}\n",
        runs.len()
    );
    o
}

/// Pushes every given run (or every run under the given folders) that a server does not
/// hold completely: to `uri` when given, else to the servers recorded as unsynced in the
/// run and the configured one. Running it again changes nothing on the server.
pub fn sync(
    paths: &[PathBuf],
    uri: Option<&str>,
    force: bool,
    progress: crate::progress::Progress,
) -> Result<Vec<SyncOutcome>> {
    let runs = find_runs(paths)?;
    let bar = progress.bar(runs.len() as u64, "syncing runs", "runs");
    let mut out = Vec::new();
    for path in runs {
        let run = RunDir::open(&path)?;
        let tf = TrackingFile::load(&path)?;
        let target = Target::resolve(&run.config()?)?;
        let mut uris: Vec<String> = match uri {
            Some(u) => vec![u.trim_end_matches('/').to_string()],
            None => {
                let mut v: Vec<String> = tf.servers.keys().cloned().collect();
                if let Some(t) = &target {
                    v.push(t.uri.clone());
                }
                v
            }
        };
        uris.sort();
        uris.dedup();
        if uris.is_empty() {
            out.push(SyncOutcome {
                run: path.clone(),
                server: None,
                action: "no server",
                pushed: Pushed::default(),
                run_id: None,
                error: None,
            });
        }
        for u in uris {
            let recorded = tf.servers.get(&u);
            if !force && recorded.is_some_and(|s| s.synced) {
                out.push(SyncOutcome {
                    run: path.clone(),
                    server: Some(u.clone()),
                    action: "already synced",
                    pushed: Pushed::default(),
                    run_id: recorded.and_then(|s| s.run_id.clone()),
                    error: None,
                });
                continue;
            }
            let experiment = experiment_for(&tf, &u, target.as_ref(), &run)?;
            let client = Client::new(&u, SYNC_ATTEMPTS)?;
            let mut tf = TrackingFile::load(&path)?;
            if force {
                if let Some(s) = tf.servers.get_mut(&u) {
                    let keep = (
                        s.experiment.clone(),
                        s.experiment_id.clone(),
                        s.run_id.clone(),
                    );
                    *s = ServerState {
                        experiment: keep.0,
                        experiment_id: keep.1,
                        run_id: keep.2,
                        ..Default::default()
                    };
                }
            }
            let r = push::push(&run, &client, &mut tf, &experiment, Phase::Sync);
            let run_id = tf.servers.get(&u).and_then(|s| s.run_id.clone());
            out.push(match r {
                Ok(p) => SyncOutcome {
                    run: path.clone(),
                    server: Some(u),
                    action: "pushed",
                    pushed: p,
                    run_id,
                    error: None,
                },
                Err(e) => SyncOutcome {
                    run: path.clone(),
                    server: Some(u),
                    action: "failed",
                    pushed: Pushed::default(),
                    run_id,
                    error: Some(e.to_string()),
                },
            });
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(out)
}

/// Tracking state of every run under `paths`: (run, server, state) with state
/// `synced`, `unsynced` or `untracked`.
pub fn status(paths: &[PathBuf]) -> Result<Vec<RunStatus>> {
    let mut out = Vec::new();
    for path in find_runs(paths)? {
        let tf = TrackingFile::load(&path)?;
        if tf.servers.is_empty() {
            out.push(RunStatus {
                run: path.clone(),
                server: None,
                state: ServerState::default(),
            });
        }
        for (u, s) in tf.servers {
            out.push(RunStatus {
                run: path.clone(),
                server: Some(u),
                state: s,
            });
        }
    }
    Ok(out)
}

/// Downloads every artifact of run `run_id` into `dest` (which must not hold files yet):
/// the run folder as it was logged — config, manifest, histories, checkpoints,
/// evaluations, figures — ready for `pcam eval` or `pcam predict`. Returns the file count.
pub fn fetch(client: &Client, run_id: &str, dest: &Path) -> Result<usize> {
    if dest.is_dir()
        && std::fs::read_dir(dest)
            .map_err(|e| Error::io(dest, "listing", e))?
            .next()
            .is_some()
    {
        return Err(Error::bad_file(
            dest,
            "already holds files; fetch into a new folder",
        ));
    }
    let run = client
        .get_run(run_id)?
        .ok_or_else(|| Error::tracking(client.uri(), format!("no run `{run_id}` on the server")))?;
    let files = client.list_artifacts(run_id)?;
    for (rel, _) in &files {
        let bytes = client.get_artifact(&run.artifact_uri, rel)?;
        let path = dest.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, "creating folder", e))?;
        }
        crate::fsutil::write_atomic(&path, &bytes)?;
    }
    Ok(files.len())
}

/// Logging throughput measured against a server.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogBench {
    pub points: usize,
    /// Metric points per request.
    pub batch: usize,
    pub requests: usize,
    pub seconds: f64,
    pub points_per_second: f64,
}

impl LogBench {
    /// What `pcam bench tracking` prints: one Markdown row per measurement, under a header.
    pub fn markdown(rows: &[LogBench]) -> String {
        let mut o = String::from(
            "| points | per request | requests | seconds | points/s |\n|---:|---:|---:|---:|---:|\n",
        );
        for r in rows {
            o += &format!(
                "| {} | {} | {} | {:.2} | {:.0} |\n",
                r.points, r.batch, r.requests, r.seconds, r.points_per_second
            );
        }
        o
    }
}

/// Logs `points` metric points to a new run of `experiment` (tagged `pcam.bench`), in
/// requests of `batch` points, and times it.
pub fn bench_logging(
    client: &Client,
    experiment: &str,
    points: usize,
    batch: usize,
) -> Result<LogBench> {
    if batch == 0 || batch > client::MAX_METRICS {
        return Err(Error::Usage(format!(
            "--batch must be 1..={} (the server's log-batch limit)",
            client::MAX_METRICS
        )));
    }
    let exp = client.experiment_id(experiment)?;
    let t_base = 1_700_000_000_000i64;
    let run = client.create_run(
        &exp,
        &format!("logging-bench-{points}x{batch}"),
        t_base,
        &[("pcam.bench".into(), "logging".into())],
    )?;
    let all: Vec<Metric> = (0..points)
        .map(|i| Metric {
            key: "bench/loss".into(),
            value: 1.0 / (1.0 + i as f64),
            timestamp: t_base + i as i64,
            step: i as i64,
        })
        .collect();
    let t0 = std::time::Instant::now();
    let mut requests = 0;
    for chunk in all.chunks(batch) {
        client.log_batch(&run.run_id, &[], &[], chunk)?;
        requests += 1;
    }
    let seconds = t0.elapsed().as_secs_f64();
    client.update_run(&run.run_id, "FINISHED", Some(t_base + points as i64))?;
    Ok(LogBench {
        points,
        batch,
        requests,
        seconds,
        points_per_second: points as f64 / seconds.max(1e-9),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_comes_from_config_and_rejects_non_http() {
        let mut c = crate::config::resolve(&[], &[]).unwrap().config;
        c.run.tracking_uri = Some("http://127.0.0.1:5000/".into());
        let t = Target::resolve(&c).unwrap().unwrap();
        assert_eq!(t.uri, "http://127.0.0.1:5000");
        c.run.tracking_uri = Some("file:///tmp/mlruns".into());
        let e = Target::resolve(&c).unwrap_err().to_string();
        assert!(e.contains("run.tracking_uri") && e.contains("http"), "{e}");
        c.run.tracking_uri = Some(" ".into());
        assert_eq!(Target::resolve(&c).unwrap(), None);
    }

    #[test]
    fn sync_status_and_list_text_name_each_run_and_its_state() {
        let o = |action| SyncOutcome {
            run: "runs/a".into(),
            server: Some("http://h:1".into()),
            action,
            pushed: Pushed {
                created_run: true,
                params: 3,
                metrics: 40,
                artifacts: 2,
                artifact_bytes: 512,
            },
            run_id: Some("r1".into()),
            error: Some("HTTP 500".into()),
        };
        assert_eq!(
            o("pushed").to_line(),
            "runs/a: pushed to http://h:1 (run r1, created): 3 params, 40 metric points, 2 artifacts (512 bytes)"
        );
        assert!(o("failed").failed() && !o("pushed").failed());
        assert_eq!(
            o("failed").to_line(),
            "runs/a: FAILED on http://h:1: HTTP 500"
        );
        assert_eq!(
            o("already synced").to_line(),
            "runs/a: already synced on http://h:1 (run r1)"
        );

        let state = ServerState {
            run_id: Some("r1".into()),
            steps_pushed: 7,
            synced: true,
            ..ServerState::default()
        };
        let rows = [
            RunStatus {
                run: "runs/a".into(),
                server: None,
                state: ServerState::default(),
            },
            RunStatus {
                run: "runs/b".into(),
                server: Some("http://h:1".into()),
                state,
            },
        ];
        let t = status_markdown(&rows);
        assert!(
            t.contains("| runs/a | - | untracked | - | 0 | 0 | 0 |  |\n"),
            "{t}"
        );
        assert!(
            t.contains("| runs/b | http://h:1 | synced | r1 | 7 | 0 | 0 |  |\n"),
            "{t}"
        );

        let run = RemoteRun {
            run_id: "r1".into(),
            run_name: "seed-3".into(),
            experiment_id: "1".into(),
            status: "FINISHED".into(),
            artifact_uri: String::new(),
            start_time: None,
            end_time: None,
            deleted: false,
            tags: [("pcam.seed".to_string(), "3".to_string())].into(),
            params: Default::default(),
            metrics: [("valid_auc".to_string(), 0.91234)].into(),
        };
        let t = runs_markdown(&[run], "q5", "http://h:1");
        assert!(
            t.contains("| r1 | seed-3 | FINISHED | 3 | 0.9123 |  |  |\n"),
            "{t}"
        );
        assert!(
            t.ends_with("1 run(s) in experiment `q5` on http://h:1\n"),
            "{t}"
        );
    }

    #[test]
    fn tracking_uri_stays_out_of_the_hash_unless_set() {
        let a = crate::config::resolve(&[], &[]).unwrap();
        assert!(!a.yaml.contains("tracking_uri"));
        let b = crate::config::resolve(&[], &["run.tracking_uri=http://h:1".into()]).unwrap();
        assert!(b.yaml.contains("tracking_uri: http://h:1"));
        assert_ne!(a.sha256, b.sha256);
    }
}
