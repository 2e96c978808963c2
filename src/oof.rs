//! Out-of-fold probabilities of a trained model for every train tile (`pcam data oof`):
//! the train split is cut into k slide-grouped, stratified folds (`data::split`); for each
//! fold a normal run trains on the other folds with the given config and predicts the
//! held-out fold (its `predictions-valid.csv`). Every train tile thus gets one
//! probability from a model that never saw it — what label-noise detection needs
//! (`pcam data audit --oof`: confident learning on these instead of the cheap logistic
//! model). Each fold is a run folder like any other; `oof.json` lists them. Downstream of
//! train and eval.

use crate::data::split::SplitManifest;
use crate::data::SplitName;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::run::RunDir;
use crate::train::FitOptions;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One train tile's out-of-fold probability of label 1.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OofTile {
    pub index: usize,
    pub label: u8,
    pub fold: usize,
    pub probability: f32,
}

/// `oof.json`: the folds' runs and every train tile's out-of-fold probability.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OofReport {
    /// The data folder, as given.
    pub dataset: PathBuf,
    /// SHA-256 of the train split's x file (the audit checks it reads the same file).
    pub train_x_sha256: String,
    pub folds: usize,
    pub split_seed: u64,
    /// The config's hash (of the first fold; the folds differ only in `data.fold`).
    pub config_sha256: String,
    pub runs: Vec<PathBuf>,
    /// Sorted by index.
    pub tiles: Vec<OofTile>,
    pub data_synthetic: Option<String>,
}

impl OofReport {
    /// Reads `oof.json`, naming the file when it is not one.
    pub fn read(path: &Path) -> Result<OofReport> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "reading", e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::bad_file(path, format!("not an oof.json written by pcam: {e}")))
    }
}

/// Trains `files` + `overrides` on each of `folds` folds of `dir`'s train split (slide
/// groups drawn with `split_seed`), predicts each held-out fold, and writes the fold
/// manifest, the runs and `oof.json` under `out`.
pub fn out_of_fold(
    dir: &Path,
    files: &[PathBuf],
    overrides: &[String],
    folds: usize,
    split_seed: u64,
    out: &Path,
    progress: Progress,
) -> Result<OofReport> {
    if folds < 2 {
        return Err(Error::Usage(format!(
            "--folds {folds}: out-of-fold needs at least 2"
        )));
    }
    if out.join("oof.json").exists() {
        return Err(Error::bad_file(
            out,
            "already holds oof.json; choose another --out",
        ));
    }
    let mut base = overrides.to_vec();
    base.push(format!("data.dir={}", dir.display()));
    let open = crate::config::resolve(files, &base)?
        .config
        .data
        .open_options(progress);
    let manifest: SplitManifest =
        crate::data::split::build(dir, &[SplitName::Train], 0.0, folds, split_seed, &open)?;
    let manifest_path = out.join("folds.json");
    manifest.write(&manifest_path)?;
    let resolve = |fold: usize| {
        let mut o = overrides.to_vec();
        o.extend([
            format!("data.dir={}", dir.display()),
            format!("data.split_manifest={}", manifest_path.display()),
            format!("data.fold={fold}"),
            format!("run.root={}", out.display()),
            "run.experiment=folds".to_string(),
        ]);
        let cfg = crate::config::resolve(files, &o)?;
        cfg.config.data.plan()?;
        Ok::<_, Error>(cfg)
    };
    // Every fold's config is checked before the first one trains.
    let cfgs = (0..folds).map(resolve).collect::<Result<Vec<_>>>()?;
    let mut runs = Vec::new();
    let mut tiles = Vec::new();
    for (fold, cfg) in cfgs.iter().enumerate() {
        let run = RunDir::create(cfg, None)?;
        if !progress.quiet {
            eprintln!("fold {fold}/{folds}: run folder {}", run.path.display());
        }
        crate::train::fit(
            cfg,
            &run,
            FitOptions {
                progress,
                ..FitOptions::default()
            },
        )?;
        crate::eval::evaluate(&run, SplitName::Valid, "best", progress)?;
        let p = crate::eval::read_predictions(&run, SplitName::Valid)?;
        for ((at, &label), &probability) in p.at.iter().zip(&p.labels).zip(&p.probs) {
            if at.0 != SplitName::Train.to_string() {
                return Err(Error::bad_file(
                    run.path.join("predictions-valid.csv"),
                    format!("holds a {} tile; the folds are of train only", at.0),
                ));
            }
            tiles.push(OofTile {
                index: at.1,
                label,
                fold,
                probability,
            });
        }
        runs.push(run.path.clone());
    }
    tiles.sort_by_key(|t| t.index);
    if let Some(w) = tiles.windows(2).find(|w| w[0].index == w[1].index) {
        return Err(Error::Usage(format!(
            "train tile {} was held out by two folds: the fold manifest is broken",
            w[0].index
        )));
    }
    let train = crate::data::hdf5::Split::open_dir(dir, SplitName::Train, &open)?;
    let report = OofReport {
        dataset: dir.to_path_buf(),
        train_x_sha256: crate::fsutil::sha256_file(&train.files.x)?,
        folds,
        split_seed,
        config_sha256: cfgs[0].sha256.clone(),
        runs,
        tiles,
        data_synthetic: crate::data::synth::note(dir),
    };
    let text = serde_json::to_string_pretty(&report)
        .map_err(|e| Error::failed("serialising oof.json", e))?;
    crate::fsutil::write_atomic(&out.join("oof.json"), text.as_bytes())?;
    Ok(report)
}
