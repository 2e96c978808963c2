//! Figures of an evaluation's slices and errors: recall per slice with intervals, and
//! galleries of false positives and false negatives; [`save_all`] draws them with the
//! prediction figures of [`crate::eval::figures`] into `<run>/figures/` (`pcam eval
//! --slices`).

use super::SliceReport;
use crate::data::hdf5::OpenOptions;
use crate::data::loader::Tiles;
use crate::data::{SplitName, TILE_BYTES};
use crate::error::Result;
use crate::eval::figures::{calibration, confusion, pr, roc, threshold_curves};
use crate::eval::Predictions;
use crate::report::charts;
use crate::report::Figure;
use crate::run::RunDir;

/// Recall per slice (accuracy where a slice has no positives) with 95% intervals, the
/// global value marked; slides only when there are at most 20 of them.
pub fn slice_recall(name: &str, s: &SliceReport) -> Result<Figure> {
    let slides = s.slices.iter().filter(|m| m.family == "slide").count();
    let shown: Vec<&super::SliceMetrics> = s
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
    let synthetic = crate::data::synth::suffix(s.data_synthetic.is_some());
    charts::bars_with_ci(
        name,
        &format!(
            "Recall by slice, 95% bootstrap intervals — {}{synthetic}",
            s.split
        ),
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
    let what = format!("{split}{}", synthetic_note(run)?);
    gallery_of(name, &what, &tiles, &all, p, threshold, n)
}

/// " (SYNTHETIC data)" when the run's data folder was made by `pcam data synth`.
fn synthetic_note(run: &RunDir) -> Result<&'static str> {
    Ok(crate::data::synth::suffix(
        crate::data::synth::note(&run.config()?.data.dir).is_some(),
    ))
}

/// [`error_gallery`] restricted to the tiles `among` (e.g. one slice's members); `what`
/// names the split (and slice) in the title.
fn gallery_of(
    name: &str,
    what: &str,
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
    let title = format!("Most confident errors at threshold {threshold:.3} — {what}");
    let rows = [
        "false positives (highest p)".to_string(),
        "false negatives (lowest p)".to_string(),
    ];
    Ok(Figure::tile_grid(name, &title, &rows, &columns)?
        .with_text("false positives: tile", index(&fp))
        .with_numbers("false positives: probability", probs(&fp))
        .with_text("false negatives: tile", index(&fn_))
        .with_numbers("false negatives: probability", probs(&fn_)))
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
    let what = format!("{split}{}", synthetic_note(run)?);
    let assets = crate::report::Assets::at(run.path.join("figures"));
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
        &what,
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
            let inside = format!("{what}, slice {}: {}", m.family, m.slice);
            figs.push(gallery_of(&name, &inside, &tiles, &m.members, &p, t, 6)?);
        }
    }
    figs.iter().map(|f| f.save(&assets)).collect()
}
