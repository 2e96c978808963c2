//! Evaluation of a finished run on a split: rebuilds the model from the run's own
//! config, loads a checkpoint, predicts every tile and writes
//! `eval-<split>.json` and `predictions-<split>.csv` into the run folder. Thresholds
//! other than 0.5, baselines and slicing build on this (journal Q5/Q6). [`figures`] draws
//! the prediction figures (ROC, PR, threshold curves, calibration, confusion).

pub mod figures;

use crate::data::SplitName;
use crate::error::Error;
use crate::error::Result;
use crate::metrics::Confusion;
use crate::progress::Progress;
pub use crate::run::Predictions;
use crate::run::RunDir;
use crate::seed::Seeds;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The default decision threshold, used while a run has no `threshold.json`.
pub const DEFAULT_THRESHOLD: f32 = 0.5;

/// A run's decision threshold and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub threshold: f32,
    /// How it was chosen (e.g. a selection policy on validation), or `default`.
    pub source: String,
}

/// The run's threshold: `threshold.json` in the run folder when a threshold was chosen
/// and stored there, else [`DEFAULT_THRESHOLD`].
pub fn run_threshold(run: &RunDir) -> Result<Threshold> {
    let p = run.path.join("threshold.json");
    if !p.exists() {
        return Ok(Threshold {
            threshold: DEFAULT_THRESHOLD,
            source: "default".into(),
        });
    }
    let t: Threshold = run.read_json("threshold.json")?;
    check_threshold(t.threshold).map_err(|m| Error::bad_file(&p, m))?;
    Ok(t)
}

/// A threshold must lie in [0, 1].
pub fn check_threshold(t: f32) -> std::result::Result<(), String> {
    if (0.0..=1.0).contains(&t) {
        Ok(())
    } else {
        Err(format!("threshold {t} is outside [0, 1]"))
    }
}

/// What `pcam eval` reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    pub run: std::path::PathBuf,
    pub split: SplitName,
    pub checkpoint: String,
    /// Tiles evaluated (after the run's `data.invalid` policy).
    pub tiles: usize,
    pub positives: usize,
    pub threshold: Threshold,
    #[serde(deserialize_with = "crate::run::nan_if_null")]
    pub log_loss: f64,
    pub roc_auc: Option<f64>,
    #[serde(deserialize_with = "crate::run::nan_if_null")]
    pub accuracy: f64,
    /// Counts at the threshold.
    pub confusion: crate::metrics::Confusion,
    #[serde(deserialize_with = "crate::run::nan_if_null")]
    pub precision: f64,
    #[serde(deserialize_with = "crate::run::nan_if_null")]
    pub recall: f64,
    #[serde(deserialize_with = "crate::run::nan_if_null")]
    pub specificity: f64,
    #[serde(deserialize_with = "crate::run::nan_if_null")]
    pub f1: f64,
    #[serde(deserialize_with = "crate::run::nan_if_null")]
    pub f2: f64,
    pub average_precision: Option<f64>,
    pub pr_auc: Option<f64>,
    #[serde(deserialize_with = "crate::run::nan_if_null")]
    pub brier: f64,
    /// Expected calibration error over 10 equal-width bins.
    #[serde(deserialize_with = "crate::run::nan_if_null")]
    pub ece: f64,
    /// 95% bootstrap intervals (`eval.bootstrap` resamples, seeded): roc_auc,
    /// average_precision, recall, precision.
    #[serde(deserialize_with = "crate::run::nan_pairs_if_null")]
    pub ci95: BTreeMap<String, (f64, f64)>,
    pub data_synthetic: Option<String>,
}

impl EvalReport {
    /// What `pcam eval` prints: the threshold-free scores, then the scores and the
    /// confusion matrix at the run's threshold.
    pub fn to_text(&self) -> String {
        let opt = crate::metrics::show;
        format!(
            "{} {} ({} checkpoint, {} tiles): ROC-AUC {}, average precision {}, log loss {:.4}, Brier {:.4}, ECE {:.4}{}\n  at threshold {} ({}): accuracy {:.4}, recall {:.4}, precision {:.4}, specificity {:.4}, F1 {:.4}, F2 {:.4}; TP {} FP {} TN {} FN {}\n",
            self.run.display(),
            self.split,
            self.checkpoint,
            self.tiles,
            opt(self.roc_auc),
            opt(self.average_precision),
            self.log_loss,
            self.brier,
            self.ece,
            crate::data::synth::suffix(self.data_synthetic.is_some()),
            self.threshold.threshold,
            self.threshold.source,
            self.accuracy,
            self.recall,
            self.precision,
            self.specificity,
            self.f1,
            self.f2,
            self.confusion.tp,
            self.confusion.fp,
            self.confusion.tn,
            self.confusion.fn_
        )
    }

    /// The scores of `probs` against `labels` at `threshold` (no intervals, no data note).
    pub fn score(
        run: &std::path::Path,
        split: SplitName,
        checkpoint: &str,
        threshold: Threshold,
        probs: &[f32],
        labels: &[u8],
    ) -> EvalReport {
        let cm = Confusion::at(probs, labels, threshold.threshold);
        EvalReport {
            run: run.to_path_buf(),
            split,
            checkpoint: checkpoint.to_string(),
            tiles: probs.len(),
            positives: labels.iter().filter(|&&l| l == 1).count(),
            threshold,
            log_loss: crate::metrics::log_loss(probs, labels),
            roc_auc: crate::metrics::roc_auc(probs, labels),
            accuracy: cm.accuracy(),
            confusion: cm,
            precision: cm.precision(),
            recall: cm.recall(),
            specificity: cm.specificity(),
            f1: cm.f1(),
            f2: cm.f_beta(2.0),
            average_precision: crate::metrics::average_precision(probs, labels),
            pr_auc: crate::metrics::pr_auc(probs, labels),
            brier: crate::metrics::brier(probs, labels),
            ece: crate::metrics::calibration(probs, labels, 10).ece,
            ci95: BTreeMap::new(),
            data_synthetic: None,
        }
    }
}

/// A finished run's model, rebuilt from its own config and a checkpoint, ready to predict.
pub struct Trained {
    pub config: crate::config::RunConfig,
    pub model: crate::model::Model,
    /// The checkpoint's train state (normalisation statistics among it).
    pub state: crate::train::checkpoint::TrainState,
    pub device: tch::Device,
}

impl Trained {
    /// Loads checkpoint `which` (`best` or `last`) of `run`, with the run's seed, thread
    /// and determinism settings applied.
    pub fn load(run: &RunDir, which: &str) -> Result<Trained> {
        Self::load_on(run, which, None)
    }

    /// [`Trained::load`] on `device` instead of the run's `train.device` when given.
    pub fn load_on(
        run: &RunDir,
        which: &str,
        device: Option<crate::config::DeviceChoice>,
    ) -> Result<Trained> {
        let config = run.config()?;
        Seeds::new(config.seed).apply_to_torch(config.train.threads);
        let device = crate::device::select(device.unwrap_or(config.train.device))?;
        let model = config.model.build(device);
        let state = crate::train::checkpoint::load_weights(&run.checkpoint(which), &model)?;
        Ok(Trained {
            config,
            model,
            state,
            device,
        })
    }
}

/// Chooses the decision threshold on (validation) probabilities by `cfg.threshold_policy`;
/// returns it with the confusion it gives there.
pub fn choose_threshold(
    probs: &[f32],
    labels: &[u8],
    cfg: &crate::config::EvalConfig,
    split: SplitName,
) -> Result<(Threshold, Confusion)> {
    use crate::config::ThresholdPolicy as P;
    let name = serde_json::to_value(cfg.threshold_policy)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let (t, cm) = if cfg.threshold_policy == P::Fixed {
        (
            cfg.fixed_threshold,
            Confusion::at(probs, labels, cfg.fixed_threshold),
        )
    } else {
        if !labels.contains(&1) {
            return Err(Error::Usage(format!(
                "cannot choose a threshold by {name}: split {split} has no positive tile"
            )));
        }
        let sweep = crate::metrics::threshold_sweep(probs, labels);
        let pick = match cfg.threshold_policy {
            P::MinRecall => sweep
                .iter()
                .find(|(_, c)| c.recall() >= cfg.min_recall)
                .copied(),
            p => {
                let score = |c: &Confusion| match p {
                    P::MaxF1 => c.f1(),
                    P::Youden => c.youden(),
                    _ => c.f_beta(2.0),
                };
                // The highest threshold among equal scores: the first in the sweep.
                sweep
                    .iter()
                    .copied()
                    .fold(None, |best: Option<(f32, Confusion)>, x| match best {
                        Some(b) if score(&b.1) >= score(&x.1) => Some(b),
                        _ => Some(x),
                    })
            }
        };
        pick.ok_or_else(|| Error::Usage(format!("no threshold satisfies {name} on {split}")))?
    };
    let source = format!(
        "{name} on {split} (recall {:.4}, precision {:.4}, F2 {:.4}, specificity {:.4})",
        cm.recall(),
        cm.precision(),
        cm.f_beta(2.0),
        cm.specificity()
    );
    Ok((
        Threshold {
            threshold: t,
            source,
        },
        cm,
    ))
}

/// Evaluates checkpoint `which` (`best` or `last`) of `run` on `split`.
pub fn evaluate(
    run: &RunDir,
    split: SplitName,
    which: &str,
    progress: Progress,
) -> Result<EvalReport> {
    evaluate_with(run, split, which, false, progress)
}

/// [`evaluate`], and with `choose` (validation only) first choose the run's threshold by
/// the config's `eval.threshold_policy` and store it in `threshold.json`.
pub fn evaluate_with(
    run: &RunDir,
    split: SplitName,
    which: &str,
    choose: bool,
    progress: Progress,
) -> Result<EvalReport> {
    if choose && split != SplitName::Valid {
        return Err(Error::Usage(format!(
            "--choose-threshold works on the validation split only (got --split {split}): \
             a threshold tuned on test would overstate test performance"
        )));
    }
    let Trained {
        config: c,
        model,
        state,
        device,
    } = Trained::load(run, which)?;
    let opts = c.data.open_options(progress);
    let tiles = c.data.plan()?.tiles(split, &opts)?;
    let probs = crate::train::predict(&model, &tiles, &state.norm, c.train.batch_size, device);
    let threshold = if choose {
        let (t, _) = choose_threshold(&probs, &tiles.labels, &c.eval, split)?;
        run.write_json("threshold.json", &t)?;
        t
    } else {
        run_threshold(run)?
    };
    write_threshold_table(run, split, &probs, &tiles.labels)?;
    let ci = if c.eval.bootstrap > 0 {
        intervals(&probs, &tiles.labels, threshold.threshold, &c, split)
    } else {
        BTreeMap::new()
    };
    let report = EvalReport {
        ci95: ci,
        data_synthetic: crate::data::synth::note(&c.data.dir),
        ..EvalReport::score(&run.path, split, which, threshold, &probs, &tiles.labels)
    };
    let at = (0..tiles.len())
        .map(|i| {
            let file = tiles.file_split[i].map(|s| s.to_string());
            (file.unwrap_or_default(), tiles.file_index[i])
        })
        .collect();
    let labels = tiles.labels;
    run.write_predictions(split, &Predictions { at, labels, probs })?;
    run.write_json(&format!("eval-{split}.json"), &report)?;
    Ok(report)
}

/// `thresholds-<split>.csv`: the confusion and its rates at every distinct probability.
fn write_threshold_table(
    run: &RunDir,
    split: SplitName,
    probs: &[f32],
    labels: &[u8],
) -> Result<()> {
    let header = [
        "threshold",
        "tp",
        "fp",
        "tn",
        "fn",
        "precision",
        "recall",
        "specificity",
        "f1",
        "f2",
    ]
    .map(String::from);
    let rows: Vec<Vec<String>> = crate::metrics::threshold_sweep(probs, labels)
        .iter()
        .map(|(t, c)| {
            vec![
                format!("{t:e}"),
                c.tp.to_string(),
                c.fp.to_string(),
                c.tn.to_string(),
                c.fn_.to_string(),
                format!("{:.6}", c.precision()),
                format!("{:.6}", c.recall()),
                format!("{:.6}", c.specificity()),
                format!("{:.6}", c.f1()),
                format!("{:.6}", c.f_beta(2.0)),
            ]
        })
        .collect();
    run.write_csv(&format!("thresholds-{split}.csv"), &header, &rows)
}

/// Seeded 95% bootstrap intervals of the headline metrics.
fn intervals(
    probs: &[f32],
    labels: &[u8],
    t: f32,
    c: &crate::config::RunConfig,
    split: SplitName,
) -> BTreeMap<String, (f64, f64)> {
    let metrics: [(&str, &crate::metrics::MetricFn<'_>); 4] = [
        ("roc_auc", &|p, l| crate::metrics::roc_auc(p, l)),
        ("average_precision", &|p, l| {
            crate::metrics::average_precision(p, l)
        }),
        ("recall", &|p, l| Some(Confusion::at(p, l, t).recall())),
        ("precision", &|p, l| {
            Some(Confusion::at(p, l, t).precision())
        }),
    ];
    let seeds = Seeds::new(c.seed);
    metrics
        .iter()
        .enumerate()
        .filter_map(|(k, (name, f))| {
            let mut rng = seeds.stream("eval/bootstrap", ((split as u64) << 8) | k as u64);
            crate::metrics::bootstrap_ci(probs, labels, *f, c.eval.bootstrap, 0.95, &mut rng)
                .map(|ci| (name.to_string(), ci))
        })
        .collect()
}

/// How closely a re-evaluation must agree with a reference evaluation of the same
/// checkpoint (see [`agreement`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Largest allowed |Δ probability| of one tile.
    pub probability: f64,
    /// Largest allowed |Δ| of a threshold-free metric (ROC-AUC, AP, log loss, Brier).
    pub metric: f64,
    /// Tiles whose reference probability lies within this distance of the threshold may
    /// change their decision; no other tile may.
    pub margin: f64,
}

/// What [`agreement`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Agreement {
    pub tiles: usize,
    pub max_probability_diff: f64,
    /// (metric, reference, fresh), for the threshold-free metrics.
    pub metrics: Vec<(&'static str, f64, f64)>,
    /// Tiles within the margin of the threshold (allowed to flip).
    pub near_threshold: usize,
    /// Tiles whose decision differs, and of those, how many lie outside the margin.
    pub flipped: usize,
    pub flipped_outside_margin: usize,
    /// Reference and fresh confusion at the threshold.
    pub confusion: (Confusion, Confusion),
    /// Every violation of the tolerance, one line each (empty: agreement).
    pub failures: Vec<String>,
}

impl Agreement {
    /// A short report, one line per check.
    pub fn to_text(&self, tol: &Tolerance) -> String {
        let mut o = format!(
            "{} tiles: largest |Δp| {:.2e} (tolerance {:.0e})\n",
            self.tiles, self.max_probability_diff, tol.probability
        );
        for (m, a, b) in &self.metrics {
            o += &format!(
                "{m}: reference {a:.6}, now {b:.6}, |Δ| {:.2e} (tolerance {:.0e})\n",
                (a - b).abs(),
                tol.metric
            );
        }
        o += &format!(
            "decisions: {} of {} tiles differ, {} outside the margin ±{} of the threshold (tiles within it: {})\n",
            self.flipped, self.tiles, self.flipped_outside_margin, tol.margin, self.near_threshold
        );
        o += &format!(
            "confusion: reference {:?}, now {:?}\n",
            self.confusion.0, self.confusion.1
        );
        o
    }
}

/// Compares the evaluation of `fresh` on `split` (its `eval-<split>.json` and
/// `predictions-<split>.csv`) with the same files of `reference`: the same tiles, each
/// probability within `tol.probability`, the threshold-free metrics within `tol.metric`,
/// the same threshold, and the same decision for every tile except those within
/// `tol.margin` of the threshold. Across CPU families the same weights give probabilities
/// that differ in the last bits, so this is the check that holds on every machine.
pub fn agreement(
    fresh: &RunDir,
    reference: &RunDir,
    split: SplitName,
    tol: &Tolerance,
) -> Result<Agreement> {
    let (ra, rb) = (read_report(reference, split)?, read_report(fresh, split)?);
    let (pa, pb) = (
        read_predictions(reference, split)?,
        read_predictions(fresh, split)?,
    );
    let ref_csv = reference.path.join(format!("predictions-{split}.csv"));
    if pa.at != pb.at || pa.labels != pb.labels {
        return Err(Error::bad_file(
            ref_csv,
            format!(
                "not the same tiles and labels as {}: another data set",
                fresh.path.display()
            ),
        ));
    }
    let mut failures = vec![];
    let t = ra.threshold.threshold;
    if t != rb.threshold.threshold {
        failures.push(format!(
            "threshold {} differs from the reference {t}",
            rb.threshold.threshold
        ));
    }
    let (mut max_diff, mut near, mut flipped, mut outside) = (0.0f64, 0, 0, 0);
    for (i, (&a, &b)) in pa.probs.iter().zip(&pb.probs).enumerate() {
        let d = (a as f64 - b as f64).abs();
        max_diff = max_diff.max(d);
        let inside = (a as f64 - t as f64).abs() <= tol.margin;
        near += inside as usize;
        if (a >= t) != (b >= t) {
            flipped += 1;
            if !inside {
                outside += 1;
                failures.push(format!(
                    "tile {}:{} changed its decision: {a} -> {b} at threshold {t}",
                    pa.at[i].0, pa.at[i].1
                ));
            }
        }
    }
    if max_diff > tol.probability {
        failures.push(format!(
            "largest probability difference {max_diff:.2e} exceeds {:.0e}",
            tol.probability
        ));
    }
    let pairs = [
        ("roc_auc", ra.roc_auc, rb.roc_auc),
        (
            "average_precision",
            ra.average_precision,
            rb.average_precision,
        ),
        ("log_loss", Some(ra.log_loss), Some(rb.log_loss)),
        ("brier", Some(ra.brier), Some(rb.brier)),
    ];
    let mut metrics = vec![];
    for (m, a, b) in pairs {
        let (a, b) = (a.unwrap_or(f64::NAN), b.unwrap_or(f64::NAN));
        if !((a - b).abs() <= tol.metric || (a.is_nan() && b.is_nan())) {
            failures.push(format!(
                "{m}: {b} vs reference {a} (tolerance {})",
                tol.metric
            ));
        }
        metrics.push((m, a, b));
    }
    Ok(Agreement {
        tiles: pa.probs.len(),
        max_probability_diff: max_diff,
        metrics,
        near_threshold: near,
        flipped,
        flipped_outside_margin: outside,
        confusion: (ra.confusion, rb.confusion),
        failures,
    })
}

/// Reads `eval-<split>.json` of `run` (written by [`evaluate`]).
pub fn read_report(run: &RunDir, split: SplitName) -> Result<EvalReport> {
    let name = format!("eval-{split}.json");
    if !run.path.join(&name).is_file() {
        return Err(Error::bad_file(
            run.path.join(&name),
            format!(
                "missing: run `pcam eval --run {} --split {split}` first",
                run.path.display()
            ),
        ));
    }
    run.read_json(&name)
}

/// Reads `predictions-<split>.csv` of `run` (written by [`evaluate`]; the file belongs to
/// [`crate::run`], which reads it).
pub fn read_predictions(run: &RunDir, split: SplitName) -> Result<Predictions> {
    run.predictions(split)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EvalConfig, ThresholdPolicy};

    fn cfg(p: ThresholdPolicy) -> EvalConfig {
        EvalConfig {
            threshold_policy: p,
            ..EvalConfig::default()
        }
    }

    #[test]
    fn policies_pick_the_threshold_they_promise() {
        // Sorted scores: 0.9(1) 0.8(1) 0.7(0) 0.6(1) 0.5(0) 0.4(1) 0.3(0) 0.2(0)
        let p = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2];
        let l = [1, 1, 0, 1, 0, 1, 0, 0];
        let s = SplitName::Valid;
        // Recall ≥ 0.75 first reached at 0.6 (3 of 4).
        let (t, c) = choose_threshold(
            &p,
            &l,
            &EvalConfig {
                min_recall: 0.75,
                ..cfg(ThresholdPolicy::MinRecall)
            },
            s,
        )
        .unwrap();
        assert_eq!((t.threshold, c.tp, c.fp), (0.6, 3, 1));
        assert!(t.source.starts_with("min_recall on valid"), "{}", t.source);
        // F2 favours recall: all four positives at 0.4 (F2 = 20/24 = 0.833) beats 0.6 (0.75).
        let (t, _) = choose_threshold(&p, &l, &cfg(ThresholdPolicy::MaxF2), s).unwrap();
        assert_eq!(t.threshold, 0.4);
        // Youden: 0.8 gives 0.5 + 1 − 1 = 0.5; 0.6 gives 0.75 + 0.75 − 1 = 0.5; 0.4 gives
        // 1 + 0.5 − 1 = 0.5: a tie, and the highest threshold wins.
        let (t, _) = choose_threshold(&p, &l, &cfg(ThresholdPolicy::Youden), s).unwrap();
        assert_eq!(t.threshold, 0.8);
        let (t, c) = choose_threshold(
            &p,
            &l,
            &EvalConfig {
                fixed_threshold: 0.55,
                ..cfg(ThresholdPolicy::Fixed)
            },
            s,
        )
        .unwrap();
        assert_eq!((t.threshold, c.tp), (0.55, 3));
        let e = choose_threshold(&p, &[0; 8], &cfg(ThresholdPolicy::MaxF2), s).unwrap_err();
        assert!(e.to_string().contains("no positive tile"), "{e}");
    }

    /// A run folder holding only what [`agreement`] reads: an evaluation on test with
    /// these probabilities (labels alternate) at threshold 0.5.
    fn fake_eval(dir: &std::path::Path, probs: &[f32]) -> RunDir {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("config.yaml"), "seed: 1\n").unwrap();
        let labels: Vec<u8> = (0..probs.len()).map(|i| (i % 2) as u8).collect();
        let run = RunDir::open(dir).unwrap();
        let at = (0..probs.len()).map(|i| ("test".to_string(), i)).collect();
        let p = Predictions {
            at,
            labels: labels.clone(),
            probs: probs.to_vec(),
        };
        run.write_predictions(SplitName::Test, &p).unwrap();
        let t = Threshold {
            threshold: 0.5,
            source: "test".into(),
        };
        let r = EvalReport::score(dir, SplitName::Test, "best", t, probs, &labels);
        std::fs::write(
            dir.join("eval-test.json"),
            serde_json::to_string(&r).unwrap(),
        )
        .unwrap();
        run
    }

    #[test]
    fn an_evaluation_with_undefined_metrics_reads_back_as_nan() {
        let d = tempfile::tempdir().unwrap();
        let run = fake_eval(&d.path().join("r"), &[f32::NAN, 0.9, f32::NAN, 0.2]);
        let back = read_report(&run, SplitName::Test).unwrap();
        assert!(back.log_loss.is_nan() && back.brier.is_nan(), "{back:?}");
        assert_eq!(back.tiles, 4);
    }

    #[test]
    fn agreement_allows_last_bit_noise_and_flips_at_the_threshold_only() {
        let d = tempfile::tempdir().unwrap();
        let base = [0.1f32, 0.9, 0.2, 0.8, 0.3, 0.7, 0.49995, 0.6];
        let reference = fake_eval(&d.path().join("ref"), &base);
        let tol = Tolerance {
            probability: 1e-4,
            metric: 1e-4,
            margin: 1e-3,
        };
        let compare = |name: &str, p: &[f32]| {
            agreement(
                &fake_eval(&d.path().join(name), p),
                &reference,
                SplitName::Test,
                &tol,
            )
        };
        let same = fake_eval(&d.path().join("same"), &base);
        let a = agreement(&same, &reference, SplitName::Test, &tol).unwrap();
        assert!(a.failures.is_empty(), "{:?}", a.failures);
        assert_eq!(
            (a.max_probability_diff, a.flipped, a.near_threshold),
            (0.0, 0, 1)
        );

        // Last-bit noise, and the tile at 0.49995 crossing 0.5: within the margin, allowed.
        let mut p = base;
        p[0] += 3e-5;
        p[6] = 0.50003;
        let a = compare("noise", &p).unwrap();
        assert!(a.failures.is_empty(), "{:?}", a.failures);
        assert_eq!((a.flipped, a.flipped_outside_margin), (1, 0));
        assert!(
            a.to_text(&tol).contains("1 of 8 tiles differ"),
            "{}",
            a.to_text(&tol)
        );

        // A probability off by more than the tolerance fails.
        let mut p = base;
        p[2] += 5e-4;
        let a = compare("off", &p).unwrap();
        assert!(
            a.failures
                .iter()
                .any(|f| f.contains("largest probability difference")),
            "{:?}",
            a.failures
        );

        // A decision far from the threshold changing fails (and so do the metrics).
        let mut p = base;
        p[4] = 0.55;
        let a = compare("flip", &p).unwrap();
        assert_eq!(a.flipped_outside_margin, 1);
        assert!(
            a.failures
                .iter()
                .any(|f| f.contains("test:4 changed its decision")),
            "{:?}",
            a.failures
        );

        // Other tiles are another data set: an error, not a comparison.
        let e = compare("short", &base[..6]).unwrap_err();
        assert!(e.to_string().contains("not the same tiles"), "{e}");
    }
}
