//! Hyperparameter search: grid, seeded random and successive halving over a space
//! defined in YAML. Every trial is a normal run folder (`<sweep>/trials/tNNN/`, tagged
//! with the sweep id, logged to MLflow when tracking is on); trials are compared on a
//! validation metric only, and the champion alone is evaluated on test, at a threshold
//! chosen on validation. The sweep folder `runs/<experiment>/search-<name>/` holds the
//! frozen trial list (`search.json`), the leaderboard and the summary; everything in it
//! is recomputed from the trial folders, so a rerun after an interruption skips finished
//! trials, resumes paused or interrupted ones from their last checkpoint (bitwise) and
//! reruns the rest — and ends with the same leaderboard.
//!
//! Successive halving is synchronous (rung by rung), not asynchronous as in ASHA: which
//! trials are promoted then depends only on their scores, never on which finished first.

pub mod report;
pub mod space;

pub use space::{load, Objective, SearchSpec, Strategy, Trial};

use crate::config::ResolvedConfig;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::run::RunDir;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A prepared sweep: its folder, definition and trials.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub dir: PathBuf,
    pub spec: SearchSpec,
    pub trials: Vec<Trial>,
    /// The base config's `train.epochs` (the full budget of one trial).
    pub max_epochs: usize,
}

/// What `search.json` freezes.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
struct Frozen {
    spec: SearchSpec,
    trials: Vec<Trial>,
}

/// Reads the definition, expands and validates every trial's config, and creates (or
/// reopens) the sweep folder. Refuses a folder that holds a different search.
pub fn prepare(spec_path: &Path) -> Result<Sweep> {
    let spec = space::load(spec_path)?;
    let base = crate::config::resolve(&spec.configs, &spec.overrides)?;
    let flat = crate::config::flat_values(&base.config)?;
    let trials = spec.trials(&flat);
    let dir = base
        .config
        .run
        .root
        .join(&base.config.run.experiment)
        .join(format!("search-{}", spec.name));
    let sweep = Sweep {
        dir,
        spec,
        trials,
        max_epochs: base.config.train.epochs,
    };
    for t in &sweep.trials {
        let cfg = sweep.config(t.index).map_err(|e| {
            Error::bad_file(
                spec_path,
                format!("trial {} ({}): {e}", t.index, t.overrides().join(" ")),
            )
        })?;
        cfg.config.data.plan()?;
    }
    let frozen = Frozen {
        spec: sweep.spec.clone(),
        trials: sweep.trials.clone(),
    };
    let record = sweep.dir.join("search.json");
    if record.is_file() {
        let text =
            std::fs::read_to_string(&record).map_err(|e| Error::io(&record, "reading", e))?;
        let old: Frozen = serde_json::from_str(&text)
            .map_err(|e| Error::bad_file(&record, format!("invalid sweep record: {e}")))?;
        if old != frozen {
            return Err(Error::bad_file(
                &record,
                "this sweep folder holds a different search (definition or trials changed); give the search another `name` or remove the folder",
            ));
        }
    } else {
        std::fs::create_dir_all(&sweep.dir).map_err(|e| Error::io(&sweep.dir, "creating", e))?;
        let text = serde_json::to_string_pretty(&frozen)
            .map_err(|e| Error::failed("serialising sweep", e))?;
        crate::fsutil::write_atomic(&record, format!("{text}\n").as_bytes())?;
    }
    Ok(sweep)
}

/// Reopens a prepared sweep folder (what a worker or a Slurm array task does).
pub fn open(dir: &Path) -> Result<Sweep> {
    let record = dir.join("search.json");
    let text = std::fs::read_to_string(&record).map_err(|e| Error::io(&record, "reading", e))?;
    let f: Frozen = serde_json::from_str(&text)
        .map_err(|e| Error::bad_file(&record, format!("invalid sweep record: {e}")))?;
    let base = crate::config::resolve(&f.spec.configs, &f.spec.overrides)?;
    Ok(Sweep {
        dir: dir.to_path_buf(),
        max_epochs: base.config.train.epochs,
        spec: f.spec,
        trials: f.trials,
    })
}

/// Where a trial stands, read from its folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TrialState {
    Missing,
    /// Stopped after this many epochs with a checkpoint to resume from.
    Paused(usize),
    Finished,
}

impl Sweep {
    /// The sweep id (MLflow tag `pcam.sweep`).
    pub fn id(&self) -> String {
        format!("search-{}", self.spec.name)
    }

    pub fn trial_dir(&self, index: usize) -> PathBuf {
        self.dir.join("trials").join(format!("t{index:03}"))
    }

    /// The resolved config of trial `index`.
    pub fn config(&self, index: usize) -> Result<ResolvedConfig> {
        let t = self.trials.get(index).ok_or_else(|| {
            Error::Usage(format!(
                "{}: no trial {index} (0..{})",
                self.dir.display(),
                self.trials.len()
            ))
        })?;
        let mut o = self.spec.overrides.clone();
        o.extend(t.overrides());
        crate::config::resolve(&self.spec.configs, &o)
    }

    pub fn state(&self, index: usize) -> TrialState {
        let d = self.trial_dir(index);
        if d.join("metrics.json").is_file() {
            TrialState::Finished
        } else if d.join("checkpoints/last.ckpt").is_file() {
            TrialState::Paused(crate::run::history::epochs_done(&d))
        } else {
            TrialState::Missing
        }
    }

    /// Whether trial `index` has finished or trained at least `budget` epochs.
    pub fn reached(&self, index: usize, budget: usize) -> bool {
        match self.state(index) {
            TrialState::Finished => true,
            TrialState::Paused(done) => done >= budget,
            TrialState::Missing => false,
        }
    }

    /// Trains trial `index` until `budget` epochs (or to the end): skips it when already
    /// there, resumes it from its last checkpoint when it has one, else starts it afresh.
    pub fn run_trial(&self, index: usize, budget: usize, progress: Progress) -> Result<()> {
        let cfg = self.config(index)?;
        let dir = self.trial_dir(index);
        if self.reached(index, budget) {
            return Ok(());
        }
        let resume = match self.state(index) {
            TrialState::Finished => unreachable!("reached above"),
            TrialState::Paused(_) => {
                let recorded =
                    std::fs::read_to_string(dir.join("config.sha256")).unwrap_or_default();
                if recorded.split_whitespace().next() != Some(cfg.sha256.as_str()) {
                    return Err(Error::bad_file(&dir, "trial folder holds another config"));
                }
                true
            }
            TrialState::Missing => {
                if dir.exists() {
                    // Killed before its first checkpoint: start again.
                    std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, "removing", e))?;
                }
                false
            }
        };
        let run = if resume {
            RunDir::open(&dir)?
        } else {
            let run = RunDir::create(&cfg, Some(&dir))?;
            crate::tracking::push::write_extra_tags(
                &run,
                &[
                    ("pcam.sweep", &self.id()),
                    ("pcam.trial", &index.to_string()),
                ],
            )?;
            run
        };
        let mut tracker = crate::tracking::Tracker::start(&run, true)?;
        let pause = (budget < self.max_epochs).then_some(budget);
        let fitted = crate::train::fit(
            &cfg,
            &run,
            crate::train::FitOptions {
                resume,
                progress,
                pause_after: pause,
                after_epoch: Some(&mut |r| tracker.epoch(r)),
            },
        );
        tracker.finish(&run, fitted.is_ok());
        fitted.map(|_| ())
    }

    /// Score of trial `index` on the search metric: the best value over its first
    /// `within` epochs (all when `None`), with that epoch.
    pub fn score(&self, index: usize, within: Option<usize>) -> Option<(f64, usize)> {
        let h = crate::run::read_history(&self.trial_dir(index)).ok()?;
        let obj = self.spec.metric;
        h.epochs
            .iter()
            .take(within.unwrap_or(usize::MAX))
            .filter_map(|e| {
                let v = match obj {
                    Objective::ValidAuc => e.valid_auc?,
                    Objective::ValidLoss => e.valid_loss,
                    Objective::ValidAccuracy => e.valid_accuracy,
                };
                v.is_finite().then_some((v, e.epoch))
            })
            .reduce(|a, b| if better(obj, b.0, a.0) { b } else { a })
    }
}

fn better(obj: Objective, a: f64, b: f64) -> bool {
    if obj.maximize() {
        a > b
    } else {
        a < b
    }
}

/// How trials are executed.
#[derive(Debug, Clone)]
pub enum Executor {
    /// In this process, one after another.
    Inline,
    /// Up to `n` child processes `pcam search trial …` at once, started from the pcam
    /// executable `exe` (the CLI passes itself; a notebook passes `target/release/pcam`).
    Workers { exe: PathBuf, n: usize },
    /// Each round as one batch of `pcam search trial …` commands at `place`: a Slurm job
    /// array through `slurm/submit.sh array` (under `root`), or here one after another.
    Offload {
        place: crate::offload::Place,
        exe: PathBuf,
        root: PathBuf,
    },
    /// A Slurm job array per round (`sbatch --wait`), each task one trial.
    Slurm {
        script: PathBuf,
        sbatch_args: Vec<String>,
        parallel: usize,
    },
}

/// Runs `indices` to `budget` epochs. Failures are collected, not fatal: the round
/// returns the trials that failed, with their one-line errors.
fn execute(
    sweep: &Sweep,
    indices: &[usize],
    budget: usize,
    exec: &Executor,
    progress: Progress,
    round: &str,
) -> Result<Vec<(usize, String)>> {
    let todo: Vec<usize> = indices
        .iter()
        .copied()
        .filter(|&i| !sweep.reached(i, budget))
        .collect();
    let mut failed = Vec::new();
    if todo.is_empty() {
        return Ok(failed);
    }
    let bar = progress.bar(
        todo.len() as u64,
        format!("{round}: trials to {budget} epochs"),
        "trials",
    );
    match exec {
        Executor::Inline => {
            for &i in &todo {
                let quiet = Progress { quiet: true };
                if let Err(e) = sweep.run_trial(i, budget, quiet) {
                    failed.push((i, e.to_string()));
                }
                bar.inc(1);
            }
        }
        Executor::Workers { exe, n } => {
            let mut queue = todo.iter().copied();
            let mut running: Vec<(usize, std::process::Child)> = Vec::new();
            loop {
                while running.len() < (*n).max(1) {
                    let Some(i) = queue.next() else { break };
                    let child = std::process::Command::new(exe)
                        .args(["-q", "search", "trial", "--sweep"])
                        .arg(&sweep.dir)
                        .args(["--index", &i.to_string(), "--epochs", &budget.to_string()])
                        .stdin(std::process::Stdio::null())
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::piped())
                        .spawn()
                        .map_err(|e| Error::io(exe, "starting a trial worker", e))?;
                    running.push((i, child));
                }
                if running.is_empty() {
                    break;
                }
                let mut k = 0;
                while k < running.len() {
                    if let Some(status) = running[k]
                        .1
                        .try_wait()
                        .map_err(|e| Error::io(exe, "waiting for a worker", e))?
                    {
                        let (i, child) = running.swap_remove(k);
                        if !status.success() {
                            let out = child
                                .wait_with_output()
                                .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                                .unwrap_or_default();
                            failed.push((
                                i,
                                crate::error::one_line(
                                    out.lines().last().unwrap_or("worker failed"),
                                ),
                            ));
                        }
                        bar.inc(1);
                    } else {
                        k += 1;
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        Executor::Offload { place, exe, root } => {
            let batch = crate::offload::Batch {
                name: round.to_string(),
                root: root.clone(),
                exe: exe.clone(),
                dir: sweep.dir.clone(),
                tasks: todo
                    .iter()
                    .map(|i| {
                        let mut t: Vec<String> = ["-q", "search", "trial", "--sweep"]
                            .map(String::from)
                            .to_vec();
                        t.push(sweep.dir.display().to_string());
                        t.extend([
                            "--index".into(),
                            i.to_string(),
                            "--epochs".into(),
                            budget.to_string(),
                        ]);
                        t
                    })
                    .collect(),
            };
            let ran = crate::offload::run(place, &batch, progress)?;
            for (k, why) in ran.failed {
                failed.push((todo[k], why));
            }
            bar.inc(todo.len() as u64);
        }
        Executor::Slurm {
            script,
            sbatch_args,
            parallel,
        } => {
            let list = sweep.dir.join(format!("{round}.txt"));
            let text: String = todo.iter().map(|i| format!("{i}\n")).collect();
            crate::fsutil::write_atomic(&list, text.as_bytes())?;
            let sbatch = std::env::var("PCAM_SBATCH").unwrap_or_else(|_| "sbatch".into());
            let out = std::process::Command::new(&sbatch)
                .arg("--wait")
                .arg("--parsable")
                .arg(format!(
                    "--array=0-{}%{}",
                    todo.len() - 1,
                    (*parallel).max(1)
                ))
                .arg(format!("--job-name=pcam-{}", sweep.id()))
                .args(sbatch_args)
                .arg(script)
                .arg(&sweep.dir)
                .arg(&list)
                .arg(budget.to_string())
                .stdin(std::process::Stdio::null())
                .output()
                .map_err(|e| Error::io(&sbatch, "submitting the trial array", e))?;
            // Array tasks that failed are found below from the trial folders.
            if !out.status.success() && !progress.quiet {
                eprintln!(
                    "warning: {sbatch} ended with {}: {}",
                    out.status,
                    crate::error::one_line(&String::from_utf8_lossy(&out.stderr))
                );
            }
            for &i in &todo {
                if !sweep.reached(i, budget) {
                    failed.push((
                        i,
                        "array task did not complete the trial (see its Slurm log)".into(),
                    ));
                }
            }
            bar.inc(todo.len() as u64);
        }
    }
    bar.finish_and_clear();
    Ok(failed)
}

/// One row of the leaderboard.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub rank: usize,
    pub trial: usize,
    pub values: BTreeMap<String, Value>,
    /// Epochs this trial trained.
    pub epochs: usize,
    /// Halving rung reached (0-based); 0 for grid and random.
    pub rung: usize,
    pub score: Option<f64>,
    pub best_epoch: Option<usize>,
    pub state: String,
}

/// A finished (or partly failed) search.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub sweep: String,
    pub dir: PathBuf,
    pub strategy: Strategy,
    pub metric: &'static str,
    pub trials: usize,
    /// Epochs trained over all trials (the search's cost).
    pub epochs_total: usize,
    /// What a full grid over the same candidates would train: trials × train.epochs.
    pub epochs_full: usize,
    pub rows: Vec<Row>,
    pub failed: Vec<(usize, String)>,
    /// The champion's test evaluation at its validation-chosen threshold.
    pub champion: Option<Champion>,
    pub data_synthetic: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Champion {
    pub trial: usize,
    pub run: PathBuf,
    pub valid_score: f64,
    pub threshold: f32,
    pub test: BTreeMap<String, f64>,
}

impl Outcome {
    /// What `pcam search run` prints after the leaderboard: the champion's test scores at
    /// its validation-chosen threshold, the search's cost in epochs, the sweep folder, and
    /// one line per failed trial.
    pub fn summary_text(&self) -> String {
        let mut o = String::new();
        if let Some(c) = &self.champion {
            let t = |k: &str| c.test.get(k).copied().unwrap_or(f64::NAN);
            o += &format!(
                "champion t{:03}: valid {} {:.4}; test at its valid-chosen threshold {}: ROC-AUC {:.4}, PR-AUC {:.4}, F1 {:.4}, F2 {:.4}, recall {:.4}, precision {:.4}{}\n",
                c.trial,
                self.metric,
                c.valid_score,
                c.threshold,
                t("roc_auc"),
                t("pr_auc"),
                t("f1"),
                t("f2"),
                t("recall"),
                t("precision"),
                crate::data::synth::suffix(self.data_synthetic.is_some())
            );
        }
        o += &format!(
            "epochs trained {} (full grid of these trials {}); sweep {}\n",
            self.epochs_total,
            self.epochs_full,
            self.dir.display()
        );
        for (i, e) in &self.failed {
            o += &format!("trial t{i:03} failed: {e}\n");
        }
        o
    }
}

/// Runs the whole search (or the rest of it) with `exec`, evaluates the champion on
/// test, and writes `leaderboard.{csv,md}` and `summary.json` into the sweep folder.
pub fn run(sweep: &Sweep, exec: &Executor, progress: Progress) -> Result<Outcome> {
    let all: Vec<usize> = (0..sweep.trials.len()).collect();
    let mut failed = Vec::new();
    let mut rung_of = vec![0usize; all.len()];
    if sweep.spec.strategy == Strategy::Halving {
        let h = &sweep.spec.halving;
        let mut budgets = Vec::new();
        let mut b = h.min_epochs;
        loop {
            budgets.push(b.min(sweep.max_epochs));
            if b >= sweep.max_epochs {
                break;
            }
            b *= h.eta;
        }
        let mut pop = all.clone();
        for (k, &b) in budgets.iter().enumerate() {
            let f = execute(sweep, &pop, b, exec, progress, &format!("rung-{k}"))?;
            pop.retain(|i| !f.iter().any(|(j, _)| j == i));
            failed.extend(f);
            for &i in &pop {
                rung_of[i] = k;
            }
            if k + 1 == budgets.len() {
                break;
            }
            let keep = pop.len().div_ceil(h.eta).max(1);
            pop = rank(sweep, &pop, Some(b));
            pop.truncate(keep);
        }
    } else {
        failed = execute(sweep, &all, sweep.max_epochs, exec, progress, "all")?;
    }

    let order = {
        let scored: Vec<usize> = all
            .iter()
            .copied()
            .filter(|i| sweep.score(*i, None).is_some())
            .collect();
        // Best first on the metric; a stable sort then puts higher rungs first.
        let mut out = rank(sweep, &scored, None);
        out.sort_by_key(|&i| std::cmp::Reverse(rung_of[i]));
        out.extend(all.iter().copied().filter(|i| !scored.contains(i)));
        out
    };
    let rows: Vec<Row> = order
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let s = sweep.score(i, None);
            Row {
                rank: k + 1,
                trial: i,
                values: sweep.trials[i].values.clone(),
                epochs: crate::run::history::epochs_done(&sweep.trial_dir(i)),
                rung: rung_of[i],
                score: s.map(|x| x.0),
                best_epoch: s.map(|x| x.1),
                state: match sweep.state(i) {
                    TrialState::Finished => "finished".into(),
                    TrialState::Paused(d) => {
                        format!("stopped at {d} of {} epochs", sweep.max_epochs)
                    }
                    TrialState::Missing => "failed".into(),
                },
            }
        })
        .collect();
    let champion = match rows.first() {
        Some(r) if r.state == "finished" => Some(evaluate_champion(sweep, r, progress)?),
        _ => None,
    };
    let out = Outcome {
        sweep: sweep.id(),
        dir: sweep.dir.clone(),
        strategy: sweep.spec.strategy,
        metric: sweep.spec.metric.name(),
        trials: all.len(),
        epochs_total: rows.iter().map(|r| r.epochs).sum(),
        epochs_full: all.len() * sweep.max_epochs,
        rows,
        failed,
        champion,
        data_synthetic: sweep
            .config(0)
            .ok()
            .and_then(|c| crate::data::synth::note(&c.config.data.dir)),
    };
    write_outcome(sweep, &out)?;
    Ok(out)
}

/// `indices` best first on the metric within `within` epochs; ties by trial index.
fn rank(sweep: &Sweep, indices: &[usize], within: Option<usize>) -> Vec<usize> {
    let obj = sweep.spec.metric;
    let mut v: Vec<(usize, f64)> = indices
        .iter()
        .map(|&i| {
            let s = sweep.score(i, within).map(|x| x.0);
            (
                i,
                s.unwrap_or(if obj.maximize() {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                }),
            )
        })
        .collect();
    v.sort_by(|a, b| {
        let ord = a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal);
        let ord = if obj.maximize() { ord.reverse() } else { ord };
        ord.then(a.0.cmp(&b.0))
    });
    v.into_iter().map(|x| x.0).collect()
}

fn evaluate_champion(sweep: &Sweep, row: &Row, progress: Progress) -> Result<Champion> {
    let run = RunDir::open(&sweep.trial_dir(row.trial))?;
    let quiet = Progress { quiet: true };
    let _ = progress;
    crate::eval::evaluate_with(&run, crate::data::SplitName::Valid, "best", true, quiet)?;
    let e = crate::eval::evaluate_with(&run, crate::data::SplitName::Test, "best", false, quiet)?;
    crate::tracking::after_eval(&run, true)?;
    let mut test = BTreeMap::new();
    for (k, v) in [
        ("roc_auc", e.roc_auc.unwrap_or(f64::NAN)),
        ("pr_auc", e.pr_auc.unwrap_or(f64::NAN)),
        ("f1", e.f1),
        ("f2", e.f2),
        ("recall", e.recall),
        ("precision", e.precision),
        ("accuracy", e.accuracy),
    ] {
        test.insert(k.to_string(), v);
    }
    Ok(Champion {
        trial: row.trial,
        run: run.path.clone(),
        valid_score: row.score.unwrap_or(f64::NAN),
        threshold: e.threshold.threshold,
        test,
    })
}

/// Cell text of a parameter value.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Outcome {
    /// The leaderboard as a table (rank, trial, each parameter, epochs, rung, score, state).
    pub fn table(&self, keys: &[String]) -> Result<crate::report::Table> {
        use polars::prelude::{Column, DataFrame};
        let n = self.rows.len();
        let mut cols = vec![
            Column::new(
                "rank".into(),
                self.rows.iter().map(|r| r.rank as u32).collect::<Vec<_>>(),
            ),
            Column::new(
                "trial".into(),
                self.rows
                    .iter()
                    .map(|r| format!("t{:03}", r.trial))
                    .collect::<Vec<_>>(),
            ),
        ];
        for k in keys {
            cols.push(Column::new(
                k.as_str().into(),
                self.rows
                    .iter()
                    .map(|r| {
                        r.values
                            .get(k)
                            .map(value_text)
                            .unwrap_or_else(|| "-".into())
                    })
                    .collect::<Vec<_>>(),
            ));
        }
        cols.push(Column::new(
            "epochs".into(),
            self.rows
                .iter()
                .map(|r| r.epochs as u32)
                .collect::<Vec<_>>(),
        ));
        if self.strategy == Strategy::Halving {
            cols.push(Column::new(
                "rung".into(),
                self.rows.iter().map(|r| r.rung as u32).collect::<Vec<_>>(),
            ));
        }
        cols.push(Column::new(
            self.metric.into(),
            self.rows
                .iter()
                .map(|r| r.score.map(|s| format!("{s:.4}")).unwrap_or_default())
                .collect::<Vec<_>>(),
        ));
        cols.push(Column::new(
            "state".into(),
            self.rows
                .iter()
                .map(|r| r.state.clone())
                .collect::<Vec<_>>(),
        ));
        let df = DataFrame::new(n, cols).map_err(|e| Error::failed("leaderboard", e))?;
        Ok(crate::report::Table::new(df).caption(format!(
            "{}: {} trials ({:?}), {} epochs trained (a full grid of these trials: {}), ranked on {}{}",
            self.sweep,
            self.trials,
            self.strategy,
            self.epochs_total,
            self.epochs_full,
            self.metric,
            crate::data::synth::suffix(self.data_synthetic.is_some())
        )))
    }
}

fn write_outcome(sweep: &Sweep, out: &Outcome) -> Result<()> {
    let keys: Vec<String> = sweep.spec.space.keys().cloned().collect();
    let md = out.table(&keys)?.to_markdown();
    crate::fsutil::write_atomic(
        &sweep.dir.join("leaderboard.md"),
        format!("{md}\n").as_bytes(),
    )?;
    let mut csv = format!(
        "rank,trial,{},epochs,rung,{},state\n",
        keys.join(","),
        out.metric
    );
    for r in &out.rows {
        let vals: Vec<String> = keys
            .iter()
            .map(|k| {
                r.values
                    .get(k)
                    .map(value_text)
                    .unwrap_or_default()
                    .replace(',', ";")
            })
            .collect();
        csv.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            r.rank,
            r.trial,
            vals.join(","),
            r.epochs,
            r.rung,
            r.score.map(|s| format!("{s:e}")).unwrap_or_default(),
            r.state
        ));
    }
    crate::fsutil::write_atomic(&sweep.dir.join("leaderboard.csv"), csv.as_bytes())?;
    let json = serde_json::to_string_pretty(out)
        .map_err(|e| Error::failed("serialising search summary", e))?;
    crate::fsutil::write_atomic(
        &sweep.dir.join("summary.json"),
        format!("{json}\n").as_bytes(),
    )
}
