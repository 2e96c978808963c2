//! Baselines the model must beat, measured with the same metrics on the same tiles: the
//! majority class (a constant score, the train split's positive rate), and a smartcore
//! logistic regression on cheap per-tile features (colour means and spreads, tissue
//! fraction, stain optical density overall and in the label-deciding centre, texture).
//! Each baseline's threshold is chosen on validation by the run's `eval.threshold_policy`,
//! like the model's, and applied once to the evaluated split.

use crate::data::features::{Logistic, TileFacts};
use crate::data::loader::Tiles;
use crate::data::{SplitName, TILE_BYTES};
use crate::error::Result;
use crate::eval::{choose_threshold, EvalReport, Threshold};
use crate::metrics::{self, Confusion};
use crate::progress::Progress;
use crate::run::RunDir;
use serde::Serialize;

/// One scorer's results on the evaluated split.
#[derive(Debug, Clone, Serialize)]
pub struct Scored {
    pub name: String,
    pub what: String,
    pub threshold: Threshold,
    pub roc_auc: Option<f64>,
    pub average_precision: Option<f64>,
    pub log_loss: f64,
    pub brier: f64,
    pub confusion: Confusion,
    pub accuracy: f64,
    pub recall: f64,
    pub precision: f64,
    pub f2: f64,
}

impl Scored {
    /// Metrics of `probs` on `labels` at `threshold`.
    pub fn of(
        name: &str,
        what: &str,
        threshold: Threshold,
        probs: &[f32],
        labels: &[u8],
    ) -> Scored {
        let cm = Confusion::at(probs, labels, threshold.threshold);
        Scored {
            name: name.into(),
            what: what.into(),
            roc_auc: metrics::roc_auc(probs, labels),
            average_precision: metrics::average_precision(probs, labels),
            log_loss: metrics::log_loss(probs, labels),
            brier: metrics::brier(probs, labels),
            accuracy: cm.accuracy(),
            recall: cm.recall(),
            precision: cm.precision(),
            f2: cm.f_beta(2.0),
            confusion: cm,
            threshold,
        }
    }
}

/// `baselines-<split>.json`.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineReport {
    pub run: std::path::PathBuf,
    pub split: SplitName,
    pub tiles: usize,
    pub baselines: Vec<Scored>,
    /// Names of the per-tile features of the logistic regression, in order.
    pub features: Vec<&'static str>,
    pub data_synthetic: Option<String>,
}

impl BaselineReport {
    /// What `pcam eval --baselines` prints: the model's row (from its evaluation on the
    /// same split) above each baseline's, as a Markdown table.
    pub fn to_markdown(&self, model: &EvalReport) -> String {
        let opt = crate::metrics::show;
        let mut o = format!(
            "| scorer ({}) | ROC-AUC | average precision | recall | precision | F2 | threshold |\n|---|---:|---:|---:|---:|---:|---:|\n",
            self.split
        );
        o.push_str(&format!(
            "| model ({}) | {} | {} | {:.4} | {:.4} | {:.4} | {} |\n",
            model.checkpoint,
            opt(model.roc_auc),
            opt(model.average_precision),
            model.recall,
            model.precision,
            model.f2,
            model.threshold.threshold
        ));
        for s in &self.baselines {
            o.push_str(&format!(
                "| {} | {} | {} | {:.4} | {:.4} | {:.4} | {} |\n",
                s.name,
                opt(s.roc_auc),
                opt(s.average_precision),
                s.recall,
                s.precision,
                s.f2,
                s.threshold.threshold
            ));
        }
        o
    }
}

/// Feature names of [`TileFacts::features`].
pub const FEATURES: [&str; 11] = [
    "mean R",
    "mean G",
    "mean B",
    "sd R",
    "sd G",
    "sd B",
    "tissue fraction",
    "optical density",
    "centre optical density",
    "centre dark fraction",
    "texture (AC energy)",
];

/// Per-tile features of every tile.
pub fn features(tiles: &Tiles) -> Vec<Vec<f64>> {
    tiles
        .pixels
        .chunks_exact(TILE_BYTES)
        .map(|t| TileFacts::of(t).features())
        .collect()
}

/// Fits both baselines on the run's train split, chooses their thresholds on its valid
/// split, and scores them on `split`; writes `baselines-<split>.json`.
pub fn evaluate(run: &RunDir, split: SplitName, progress: Progress) -> Result<BaselineReport> {
    let c = run.config()?;
    let opts = c.data.open_options(progress);
    let plan = c.data.plan()?;
    let train = plan.tiles(SplitName::Train, &opts)?;
    let valid = plan.tiles(SplitName::Valid, &opts)?;
    let target = if split == SplitName::Valid {
        valid.clone()
    } else {
        plan.tiles(split, &opts)?
    };
    let mut out = Vec::new();

    // Majority class: a constant score (the train positive rate); its label is the
    // majority at any threshold the policy can pick on constant scores.
    let rate = train.labels.iter().map(|&l| l as f64).sum::<f64>() / train.len().max(1) as f64;
    let constant = |n: usize| vec![rate as f32; n];
    let majority = (rate >= 0.5) as u8;
    let t = Threshold {
        threshold: if majority == 1 { 0.0 } else { 1.0 },
        source: format!(
            "majority class of train ({majority}), score = train positive rate {rate:.4}"
        ),
    };
    out.push(Scored::of(
        "majority class",
        "predicts the train split's majority label for every tile",
        t,
        &constant(target.len()),
        &target.labels,
    ));

    // Logistic regression on per-tile features.
    let bar = progress.bar(
        (train.len() + valid.len() + target.len()) as u64,
        "baseline features",
        "tiles",
    );
    let xt = features(&train);
    bar.inc(train.len() as u64);
    let xv = features(&valid);
    bar.inc(valid.len() as u64);
    let xs = if split == SplitName::Valid {
        xv.clone()
    } else {
        features(&target)
    };
    bar.finish_and_clear();
    let rows: Vec<usize> = (0..xt.len()).collect();
    let model = Logistic::fit(&xt, &train.labels, &rows)?;
    let pv: Vec<f32> = xv.iter().map(|x| model.prob(x) as f32).collect();
    let (t, _) = choose_threshold(&pv, &valid.labels, &c.eval, SplitName::Valid)?;
    let ps: Vec<f32> = xs.iter().map(|x| model.prob(x) as f32).collect();
    out.push(Scored::of(
        "logistic regression on tile features",
        "smartcore logistic regression (L2, standardised) on colour, stain and texture features",
        t,
        &ps,
        &target.labels,
    ));

    let report = BaselineReport {
        run: run.path.clone(),
        split,
        tiles: target.len(),
        baselines: out,
        features: FEATURES.to_vec(),
        data_synthetic: crate::data::synth::note(&c.data.dir),
    };
    run.write_json(&format!("baselines-{split}.json"), &report)?;
    Ok(report)
}
