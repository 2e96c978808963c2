//! Figures of one split's predictions (what `pcam eval` left in the run folder): ROC,
//! precision–recall, threshold curves, calibration and the confusion matrix. The slice
//! figures and galleries are in [`crate::slicing::figures`], which saves all of them into
//! `<run>/figures/`; notebooks show them inline and export them to `assets/`.

use super::Predictions;
use crate::error::Result;
use crate::metrics::{self, Confusion};
use crate::report::charts::{self, Line, PALETTE};
use crate::report::Figure;

/// Keeps at most `n` points of a curve (evenly spaced, ends kept).
fn thin(points: Vec<(f64, f64)>, n: usize) -> Vec<(f64, f64)> {
    if points.len() <= n {
        return points;
    }
    let step = (points.len() - 1) as f64 / (n - 1) as f64;
    (0..n)
        .map(|k| points[(k as f64 * step).round() as usize])
        .collect()
}

/// The ROC curve with its AUC and the chance diagonal.
pub fn roc(name: &str, p: &Predictions, what: &str) -> Result<Option<Figure>> {
    let Some(c) = metrics::roc_curve(&p.probs, &p.labels) else {
        return Ok(None);
    };
    let auc = metrics::roc_auc(&p.probs, &p.labels).unwrap_or(f64::NAN);
    let pts = thin(
        c.fpr.iter().copied().zip(c.tpr.iter().copied()).collect(),
        800,
    );
    let lines = [
        Line {
            label: format!("ROC (AUC {auc:.4})"),
            points: pts,
            color: PALETTE[0],
        },
        Line {
            label: "chance".into(),
            points: vec![(0.0, 0.0), (1.0, 1.0)],
            color: PALETTE[3],
        },
    ];
    charts::lines(
        name,
        &format!("ROC curve — {what}"),
        "false positive rate",
        "true positive rate (recall)",
        &lines,
        false,
    )
    .map(Some)
}

/// The precision–recall curve with its average precision and the positive rate.
pub fn pr(name: &str, p: &Predictions, what: &str) -> Result<Option<Figure>> {
    let Some(c) = metrics::pr_curve(&p.probs, &p.labels) else {
        return Ok(None);
    };
    let ap = metrics::average_precision(&p.probs, &p.labels).unwrap_or(f64::NAN);
    let rate = p.labels.iter().map(|&l| l as f64).sum::<f64>() / p.labels.len().max(1) as f64;
    let pts = thin(
        c.recall
            .iter()
            .copied()
            .zip(c.precision.iter().copied())
            .collect(),
        800,
    );
    let lines = [
        Line {
            label: format!("PR (average precision {ap:.4})"),
            points: pts,
            color: PALETTE[0],
        },
        Line {
            label: format!("positive rate {rate:.3}"),
            points: vec![(0.0, rate), (1.0, rate)],
            color: PALETTE[3],
        },
    ];
    charts::lines(
        name,
        &format!("Precision–recall — {what}"),
        "recall",
        "precision",
        &lines,
        false,
    )
    .map(Some)
}

/// Precision, recall, F1 and F2 against the threshold, with the chosen threshold marked.
pub fn threshold_curves(name: &str, p: &Predictions, threshold: f32, what: &str) -> Result<Figure> {
    let sweep = metrics::threshold_sweep(&p.probs, &p.labels);
    let series = |f: &dyn Fn(&Confusion) -> f64| {
        thin(sweep.iter().map(|(t, c)| (*t as f64, f(c))).collect(), 600)
    };
    let lines = [
        Line {
            label: "precision".into(),
            points: series(&|c| c.precision()),
            color: PALETTE[0],
        },
        Line {
            label: "recall".into(),
            points: series(&|c| c.recall()),
            color: PALETTE[1],
        },
        Line {
            label: "F1".into(),
            points: series(&|c| c.f1()),
            color: PALETTE[2],
        },
        Line {
            label: "F2".into(),
            points: series(&|c| c.f_beta(2.0)),
            color: PALETTE[3],
        },
        Line {
            label: format!("chosen threshold {threshold:.3}"),
            points: vec![(threshold as f64, 0.0), (threshold as f64, 1.0)],
            color: PALETTE[5],
        },
    ];
    // The numbers behind the curves on a fixed grid of thresholds: the sweep's own points
    // are the distinct scores, whose count changes when two scores tie on another CPU.
    let grid: Vec<f32> = (0..=100).map(|i| i as f32 / 100.0).collect();
    let at: Vec<Confusion> = grid
        .iter()
        .map(|&t| Confusion::at(&p.probs, &p.labels, t))
        .collect();
    let metric = |f: fn(&Confusion) -> f64| at.iter().map(f).collect::<Vec<f64>>();
    Ok(charts::lines(
        name,
        &format!("Metrics by threshold — {what}"),
        "threshold (predict 1 when p ≥ threshold)",
        "value",
        &lines,
        false,
    )?
    .without_numbers()
    .with_numbers("threshold grid", grid.iter().map(|&t| t as f64))
    .with_numbers("precision", metric(Confusion::precision))
    .with_numbers("recall", metric(Confusion::recall))
    .with_numbers("F1", metric(Confusion::f1))
    .with_numbers("F2", metric(|c| c.f_beta(2.0)))
    .with_numbers("chosen threshold", [threshold as f64]))
}

/// Reliability diagram: fraction positive against mean predicted probability per bin.
pub fn calibration(name: &str, p: &Predictions, what: &str) -> Result<Figure> {
    let c = metrics::calibration(&p.probs, &p.labels, 10);
    let lines = [
        Line {
            label: format!("model (ECE {:.4})", c.ece),
            points: c
                .mean_predicted
                .iter()
                .copied()
                .zip(c.fraction_positive.iter().copied())
                .collect(),
            color: PALETTE[0],
        },
        Line {
            label: "perfectly calibrated".into(),
            points: vec![(0.0, 0.0), (1.0, 1.0)],
            color: PALETTE[3],
        },
    ];
    charts::lines(
        name,
        &format!("Calibration (10 bins) — {what}"),
        "mean predicted probability",
        "fraction positive",
        &lines,
        false,
    )
}

/// The confusion matrix at the threshold.
pub fn confusion(name: &str, p: &Predictions, threshold: f32, what: &str) -> Result<Figure> {
    let c = Confusion::at(&p.probs, &p.labels, threshold);
    charts::confusion_heatmap(
        name,
        &format!("Confusion at {threshold:.3} — {what}"),
        c.tn,
        c.fp,
        c.fn_,
        c.tp,
    )
}
