//! Figures of an evaluation, drawn from what `pcam eval` left in the run folder
//! (predictions, threshold, slices): ROC, precision–recall, confusion matrix, threshold
//! curves, calibration, slice recall with intervals, and galleries of false positives and
//! false negatives. `pcam eval --slices` saves them into `<run>/figures/`; notebooks show
//! them inline and export them to `assets/`.

use super::charts::{self, Line, PALETTE};
use super::Figure;
use crate::data::hdf5::OpenOptions;
use crate::data::loader::Tiles;
use crate::data::{SplitName, TILE_BYTES};
use crate::error::Result;
use crate::eval::Predictions;
use crate::metrics::{self, Confusion};
use crate::run::RunDir;
use crate::slicing::SliceReport;

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

/// Recall per slice (accuracy where a slice has no positives) with 95% intervals, the
/// global value marked; slides only when there are at most 20 of them.
pub fn slice_recall(name: &str, s: &SliceReport) -> Result<Figure> {
    let slides = s.slices.iter().filter(|m| m.family == "slide").count();
    let shown: Vec<&crate::slicing::SliceMetrics> = s
        .slices
        .iter()
        .filter(|m| m.recall.is_some() && (m.family != "slide" || slides <= 20))
        .collect();
    let labels: Vec<String> = shown
        .iter()
        .map(|m| format!("{}: {} (n={})", m.family, m.slice, m.tiles))
        .collect();
    let values: Vec<f64> = shown.iter().map(|m| m.recall.unwrap_or(0.0)).collect();
    let cis: Vec<Option<(f64, f64)>> = shown.iter().map(|m| m.recall_ci95).collect();
    let g = s.global.recall.unwrap_or(f64::NAN);
    charts::bars_with_ci(
        name,
        &format!("Recall by slice, 95% bootstrap intervals — {}", s.split),
        "recall",
        &labels,
        &values,
        &cis,
        Some((g, &format!("global recall {g:.3}"))),
    )
}

/// Galleries of the most confident false positives and false negatives (up to `n` each):
/// top row false positives, bottom row false negatives.
pub fn error_gallery(
    name: &str,
    run: &RunDir,
    split: SplitName,
    p: &Predictions,
    threshold: f32,
    n: usize,
    opts: &OpenOptions,
) -> Result<Figure> {
    let all: Vec<usize> = (0..p.probs.len()).collect();
    let tiles = run.config()?.data.plan()?.tiles(split, opts)?;
    gallery_of(name, &tiles, &all, p, threshold, n)
}

/// [`error_gallery`] restricted to the tiles `among` (e.g. one slice's members).
fn gallery_of(
    name: &str,
    tiles: &Tiles,
    among: &[usize],
    p: &Predictions,
    threshold: f32,
    n: usize,
) -> Result<Figure> {
    let mut fp: Vec<usize> = among
        .iter()
        .copied()
        .filter(|&i| p.labels[i] == 0 && p.probs[i] >= threshold)
        .collect();
    let mut fn_: Vec<usize> = among
        .iter()
        .copied()
        .filter(|&i| p.labels[i] == 1 && p.probs[i] < threshold)
        .collect();
    fp.sort_by(|&a, &b| p.probs[b].total_cmp(&p.probs[a]).then(a.cmp(&b)));
    fn_.sort_by(|&a, &b| p.probs[a].total_cmp(&p.probs[b]).then(a.cmp(&b)));
    let tile = |i: usize| &tiles.pixels[i * TILE_BYTES..(i + 1) * TILE_BYTES];
    let cols = n.max(1).min(fp.len().max(fn_.len()).max(1));
    let blank = vec![255u8; TILE_BYTES];
    let columns: Vec<Vec<&[u8]>> = (0..cols)
        .map(|k| {
            vec![
                fp.get(k).map(|&i| tile(i)).unwrap_or(&blank[..]),
                fn_.get(k).map(|&i| tile(i)).unwrap_or(&blank[..]),
            ]
        })
        .collect();
    let shown = |v: &[usize]| v.iter().take(cols).copied().collect::<Vec<usize>>();
    let (fp, fn_) = (shown(&fp), shown(&fn_));
    let probs = |v: &[usize]| v.iter().map(|&i| p.probs[i] as f64).collect::<Vec<_>>();
    let index = |v: &[usize]| v.iter().map(|i| i.to_string()).collect::<Vec<_>>();
    Ok(
        Figure::from_png(name, crate::data::tile_png::grid(&columns)?)?
            .with_text("false positives: tile", index(&fp))
            .with_numbers("false positives: probability", probs(&fp))
            .with_text("false negatives: tile", index(&fn_))
            .with_numbers("false negatives: probability", probs(&fn_)),
    )
}

/// Every figure above for `split` of `run`, saved as `<run>/figures/<split>_<kind>.png`,
/// plus the error galleries of the three worst slices (`<split>_errors_worst{1,2,3}`).
pub fn save_all(
    run: &RunDir,
    split: SplitName,
    slices: &SliceReport,
    opts: &OpenOptions,
) -> Result<Vec<std::path::PathBuf>> {
    let p = crate::eval::read_predictions(run, split)?;
    let t = crate::eval::run_threshold(run)?.threshold;
    let what = format!(
        "{split}{}",
        if crate::data::synth::note(&run.config()?.data.dir).is_some() {
            " (SYNTHETIC data)"
        } else {
            ""
        }
    );
    let assets = super::Assets::at(run.path.join("figures"));
    let mut figs: Vec<Figure> = Vec::new();
    figs.extend(roc(&format!("{split}_roc"), &p, &what)?);
    figs.extend(pr(&format!("{split}_pr"), &p, &what)?);
    figs.push(confusion(&format!("{split}_confusion"), &p, t, &what)?);
    figs.push(threshold_curves(
        &format!("{split}_thresholds"),
        &p,
        t,
        &what,
    )?);
    figs.push(calibration(&format!("{split}_calibration"), &p, &what)?);
    figs.push(slice_recall(&format!("{split}_slices"), slices)?);
    let tiles = run.config()?.data.plan()?.tiles(split, opts)?;
    let all: Vec<usize> = (0..p.probs.len()).collect();
    figs.push(gallery_of(
        &format!("{split}_errors"),
        &tiles,
        &all,
        &p,
        t,
        8,
    )?);
    // The mistakes inside each of the three worst slices.
    for (k, w) in slices.worst.iter().take(3).enumerate() {
        let slice = slices
            .slices
            .iter()
            .find(|m| m.family == w.family && m.slice == w.slice);
        if let Some(m) = slice {
            let name = format!("{split}_errors_worst{}", k + 1);
            figs.push(gallery_of(&name, &tiles, &m.members, &p, t, 6)?);
        }
    }
    figs.iter().map(|f| f.save(&assets)).collect()
}
