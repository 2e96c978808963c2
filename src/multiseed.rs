//! Multi-seed results: one config trained with several master seeds, each run evaluated
//! on validation (where its threshold is chosen) and on test, and a table of mean ± sd
//! across seeds. Each seed is a normal run folder (tracked like any other, tagged with
//! the group); the group's folder `seeds-<time>-<hash8>/` lists them and holds the table.
//! Downstream of train, eval and tracking.

use crate::config::ResolvedConfig;
use crate::data::SplitName;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::report::Table;
use crate::run::RunDir;
use crate::tracking::Tracker;
use crate::train::FitOptions;
use polars::prelude::{Column, DataFrame};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The metrics summarised across seeds (threshold-dependent ones at the threshold chosen
/// on validation).
pub const METRICS: [&str; 4] = ["f1", "f2", "roc_auc", "pr_auc"];

/// One seed's evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct SeedRow {
    pub seed: u64,
    pub run: PathBuf,
    pub threshold: f64,
    /// In the order of [`METRICS`] (NaN where undefined).
    pub values: Vec<f64>,
}

/// Mean and sample standard deviation of one metric across seeds.
#[derive(Debug, Clone, Serialize)]
pub struct Stat {
    pub metric: String,
    pub mean: f64,
    pub sd: f64,
    pub min: f64,
    pub max: f64,
}

/// The runs of several seeds on one split.
#[derive(Debug, Clone, Serialize)]
pub struct SeedSummary {
    pub split: SplitName,
    pub rows: Vec<SeedRow>,
    pub stats: Vec<Stat>,
    pub data_synthetic: Option<String>,
}

/// Mean and sample (n − 1) standard deviation; sd is 0 for one value.
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (mean, 0.0);
    }
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// The value of one of [`METRICS`] in an evaluation (NaN where undefined).
fn metric(e: &crate::eval::EvalReport, name: &str) -> f64 {
    match name {
        "f1" => e.f1,
        "f2" => e.f2,
        "roc_auc" => e.roc_auc.unwrap_or(f64::NAN),
        "pr_auc" => e.pr_auc.unwrap_or(f64::NAN),
        _ => f64::NAN,
    }
}

/// Reads `eval-<split>.json` of each run and summarises.
pub fn summarize(runs: &[PathBuf], split: SplitName) -> Result<SeedSummary> {
    if runs.is_empty() {
        return Err(Error::Usage("no runs to summarise".into()));
    }
    let mut rows = Vec::new();
    let mut synthetic = None;
    for r in runs {
        let run = RunDir::open(r)?;
        let e = crate::eval::read_report(&run, split)?;
        if e.data_synthetic.is_some() {
            synthetic = e.data_synthetic.clone();
        }
        rows.push(SeedRow {
            seed: run.config()?.seed,
            run: r.clone(),
            // As the JSON stores it: the f32's shortest text, read as an f64.
            threshold: e
                .threshold
                .threshold
                .to_string()
                .parse()
                .unwrap_or(f64::NAN),
            values: METRICS.iter().map(|m| metric(&e, m)).collect(),
        });
    }
    let stats = METRICS
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let v: Vec<f64> = rows.iter().map(|r| r.values[i]).collect();
            let (mean, sd) = mean_sd(&v);
            Stat {
                metric: m.to_string(),
                mean,
                sd,
                min: v.iter().cloned().fold(f64::INFINITY, f64::min),
                max: v.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
            }
        })
        .collect();
    Ok(SeedSummary {
        split,
        rows,
        stats,
        data_synthetic: synthetic,
    })
}

fn label(metric: &str) -> &str {
    match metric {
        "f1" => "F1",
        "f2" => "F2",
        "roc_auc" => "ROC-AUC",
        "pr_auc" => "PR-AUC",
        other => other,
    }
}

impl SeedSummary {
    /// One row per seed, then mean ± sd.
    pub fn table(&self) -> Result<Table> {
        let mut seed: Vec<String> = self.rows.iter().map(|r| r.seed.to_string()).collect();
        seed.push("mean ± sd".into());
        let mut cols = vec![Column::new("seed".into(), seed)];
        let mut thr: Vec<String> = self
            .rows
            .iter()
            .map(|r| format!("{:.4}", r.threshold))
            .collect();
        thr.push(String::new());
        cols.push(Column::new("threshold (valid)".into(), thr));
        for (i, s) in self.stats.iter().enumerate() {
            let mut v: Vec<String> = self
                .rows
                .iter()
                .map(|r| format!("{:.4}", r.values[i]))
                .collect();
            v.push(format!("{:.4} ± {:.4}", s.mean, s.sd));
            cols.push(Column::new(label(&s.metric).into(), v));
        }
        let df = DataFrame::new(self.rows.len() + 1, cols)
            .map_err(|e| Error::failed("seed table", e))?;
        Ok(Table::new(df).caption(format!(
            "{} split, {} seeds, mean ± sample sd{}",
            self.split,
            self.rows.len(),
            crate::data::synth::suffix(self.data_synthetic.is_some())
        )))
    }
}

/// A finished multi-seed group.
#[derive(Debug, Clone, Serialize)]
pub struct SeedGroup {
    pub dir: PathBuf,
    pub runs: Vec<PathBuf>,
    pub valid: SeedSummary,
    pub test: SeedSummary,
}

/// Parses `1,2,3` (or `1-5`) into distinct seeds, in order.
pub fn parse_seeds(spec: &str) -> Result<Vec<u64>> {
    let bad = |m: String| Error::Usage(format!("--seeds `{spec}`: {m}"));
    let mut out: Vec<u64> = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let n = |s: &str| {
            s.trim()
                .parse::<u64>()
                .map_err(|_| bad(format!("`{s}` is not a seed")))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (n(a)?, n(b)?);
                if b < a || b - a >= 1000 {
                    return Err(bad(format!("range `{part}` is empty or too long")));
                }
                out.extend(a..=b);
            }
            None => out.push(n(part)?),
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(d) = out.iter().find(|s| !seen.insert(**s)) {
        return Err(bad(format!("seed {d} repeats")));
    }
    if out.len() < 2 {
        return Err(bad("give at least two seeds".into()));
    }
    Ok(out)
}

/// The folder of a seed group: `explicit`, or `<run.root>/<experiment>/seeds-<time>-<hash8>`
/// for the config of the first seed.
pub fn group_dir(first: &ResolvedConfig, explicit: Option<&Path>) -> PathBuf {
    match explicit {
        Some(p) => p.to_path_buf(),
        None => first
            .config
            .run
            .root
            .join(&first.config.run.experiment)
            .join(format!(
                "seeds-{}-{}",
                crate::run::utc_stamp(),
                &first.sha256[..8]
            )),
    }
}

/// The run folder of `seed` in the group folder `group`: `<group>/<group name>-seed<seed>`.
/// Its name is also the run's name on the tracking server, so it names the group too.
pub fn seed_run_dir(group: &Path, seed: u64) -> PathBuf {
    group.join(format!("{}-seed{seed}", group_name(group)))
}

/// A group's name: its folder's name (`seeds` for a folder without one, such as `.`); the
/// `pcam.seed_group` tag of its runs.
fn group_name(group: &Path) -> String {
    group
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "seeds".into())
}

/// The config of each seed: `files` + `overrides` + `seed=<seed>`, every one checked (data
/// plan, tracking target) before anything trains.
fn seed_configs(
    files: &[PathBuf],
    overrides: &[String],
    seeds: &[u64],
) -> Result<Vec<ResolvedConfig>> {
    seeds
        .iter()
        .map(|seed| {
            let mut o = overrides.to_vec();
            o.push(format!("seed={seed}"));
            let cfg = crate::config::resolve(files, &o)?;
            cfg.config.data.plan()?;
            crate::tracking::Target::resolve(&cfg.config)?;
            Ok(cfg)
        })
        .collect()
}

/// Trains one seed of a group into [`seed_run_dir`] (tracked when a server is configured,
/// tagged with the group), chooses its threshold on validation and evaluates test. A
/// folder that already holds this config's test evaluation is reused as it is; one left
/// unfinished is trained again; one holding another config is an error.
pub fn train_seed(cfg: &ResolvedConfig, group: &Path, progress: Progress) -> Result<PathBuf> {
    let seed = cfg.config.seed;
    let dir = seed_run_dir(group, seed);
    if dir.join("config.yaml").exists() {
        let stored = crate::config::from_run(&dir)?;
        if stored.sha256 != cfg.sha256 {
            return Err(Error::bad_file(
                &dir,
                format!(
                    "seed {seed}'s folder holds another config; remove it or use another group"
                ),
            ));
        }
        if dir.join("eval-test.json").exists() {
            return Ok(dir);
        }
    }
    if dir.exists() {
        // Killed before its test evaluation: start again.
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, "removing", e))?;
    }
    let run = RunDir::create(cfg, Some(&dir))?;
    crate::tracking::push::write_extra_tags(&run, &[("pcam.seed_group", &group_name(group))])?;
    if !progress.quiet {
        eprintln!("seed {seed}: run folder {}", run.path.display());
    }
    let mut tracker = Tracker::start(&run, progress.quiet)?;
    let trained = crate::train::fit(
        cfg,
        &run,
        FitOptions {
            progress,
            after_epoch: Some(&mut |r| tracker.epoch(r)),
            ..FitOptions::default()
        },
    )
    .and_then(|_| crate::eval::evaluate_with(&run, SplitName::Valid, "best", true, progress))
    .and_then(|_| crate::eval::evaluate_with(&run, SplitName::Test, "best", false, progress));
    tracker.finish(&run, trained.is_ok());
    trained?;
    Ok(dir)
}

/// Summarises the finished runs of `seeds` in the group folder and writes its `runs.txt`,
/// `summary.json` and `summary.md`.
pub fn collect(group: &Path, seeds: &[u64]) -> Result<SeedGroup> {
    let runs: Vec<PathBuf> = seeds.iter().map(|s| seed_run_dir(group, *s)).collect();
    let valid = summarize(&runs, SplitName::Valid)?;
    let test = summarize(&runs, SplitName::Test)?;
    write_group(group, &runs, &valid, &test)?;
    Ok(SeedGroup {
        dir: group.to_path_buf(),
        runs,
        valid,
        test,
    })
}

/// The `pcam` commands that train the seeds of a group one per task (`pcam train --seeds
/// … --group G --only S`), for [`crate::offload::run`]; [`collect`] summarises them after.
pub fn tasks(
    files: &[PathBuf],
    overrides: &[String],
    seeds: &[u64],
    group: &Path,
) -> Vec<Vec<String>> {
    let spec = seeds
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    seeds
        .iter()
        .map(|s| {
            let mut t: Vec<String> = vec!["-q".into(), "train".into()];
            for f in files {
                t.extend(["--config".into(), f.display().to_string()]);
            }
            t.extend([
                "--seeds".into(),
                spec.clone(),
                "--group".into(),
                group.display().to_string(),
            ]);
            t.extend(["--only".into(), s.to_string()]);
            t.extend(overrides.iter().cloned());
            t
        })
        .collect()
}

/// Trains `files` + `overrides` once per seed into the group folder `group` (see
/// [`group_dir`]; finished seeds are reused), then summarises the group. Every seed's
/// config is checked before the first one trains; the first failing seed stops the group.
pub fn train_seeds(
    files: &[PathBuf],
    overrides: &[String],
    seeds: &[u64],
    group: Option<&Path>,
    progress: Progress,
) -> Result<SeedGroup> {
    let cfgs = seed_configs(files, overrides, seeds)?;
    let dir = group_dir(&cfgs[0], group);
    for cfg in &cfgs {
        train_seed(cfg, &dir, progress)?;
    }
    collect(&dir, seeds)
}

/// [`train_seed`] of one seed of a group (`pcam train --seeds … --group G --only S`): the
/// seed must be one of `seeds`, whose configs are all checked first.
pub fn train_one_seed(
    files: &[PathBuf],
    overrides: &[String],
    seeds: &[u64],
    only: u64,
    group: &Path,
    progress: Progress,
) -> Result<PathBuf> {
    let cfgs = seed_configs(files, overrides, seeds)?;
    let cfg = cfgs
        .iter()
        .find(|c| c.config.seed == only)
        .ok_or_else(|| Error::Usage(format!("--only {only}: not one of the group's seeds")))?;
    train_seed(cfg, group, progress)
}

/// The runs of a group: those a seed group folder lists in `runs.txt` (written by
/// [`write_group`]), or `dir` itself when it is one run folder.
pub fn group_runs(dir: &Path) -> Result<Vec<PathBuf>> {
    let list = dir.join("runs.txt");
    if !list.exists() {
        RunDir::open(dir)?;
        return Ok(vec![dir.to_path_buf()]);
    }
    let text = std::fs::read_to_string(&list).map_err(|e| Error::io(&list, "reading", e))?;
    let runs: Vec<PathBuf> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(PathBuf::from)
        .collect();
    if runs.is_empty() {
        return Err(Error::bad_file(&list, "lists no run"));
    }
    Ok(runs)
}

/// `runs.txt`, `summary.json` and `summary.md` of a group, each written atomically.
pub fn write_group(
    dir: &Path,
    runs: &[PathBuf],
    valid: &SeedSummary,
    test: &SeedSummary,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "creating folder", e))?;
    let list: String = runs.iter().map(|r| format!("{}\n", r.display())).collect();
    crate::fsutil::write_atomic(&dir.join("runs.txt"), list.as_bytes())?;
    let json = serde_json::to_string_pretty(&serde_json::json!({ "valid": valid, "test": test }))
        .map_err(|e| Error::failed("serialising seed summary", e))?;
    crate::fsutil::write_atomic(&dir.join("summary.json"), format!("{json}\n").as_bytes())?;
    let md = format!(
        "{}\n\n{}\n",
        valid.table()?.to_markdown(),
        test.table()?.to_markdown()
    );
    crate::fsutil::write_atomic(&dir.join("summary.md"), md.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_summarised_metric_is_read_from_the_evaluation() {
        let t = crate::eval::Threshold {
            threshold: 0.55,
            source: "test".into(),
        };
        let (p, y) = ([0.2f32, 0.7, 0.6, 0.9], [0u8, 1, 0, 1]);
        let e = crate::eval::EvalReport::score(Path::new("r"), SplitName::Test, "best", t, &p, &y);
        let got: Vec<f64> = METRICS.iter().map(|m| metric(&e, m)).collect();
        assert_eq!(got, [e.f1, e.f2, e.roc_auc.unwrap(), e.pr_auc.unwrap()]);
        assert!(got.iter().all(|v| v.is_finite()), "{got:?}");
    }

    #[test]
    fn seeds_parse_lists_and_ranges_and_refuse_nonsense() {
        assert_eq!(parse_seeds("1,2,3").unwrap(), vec![1, 2, 3]);
        assert_eq!(parse_seeds("5-7, 9").unwrap(), vec![5, 6, 7, 9]);
        for bad in ["1", "1,1", "a,b", "3-1", "", "1-5000"] {
            let e = parse_seeds(bad).unwrap_err().to_string();
            assert!(e.starts_with("--seeds"), "{bad}: {e}");
        }
    }

    #[test]
    fn mean_and_sample_sd() {
        let (m, s) = mean_sd(&[1.0, 2.0, 3.0]);
        assert_eq!(m, 2.0);
        assert!((s - 1.0).abs() < 1e-15);
        assert_eq!(mean_sd(&[4.0]), (4.0, 0.0));
    }
}
