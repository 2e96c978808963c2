//! Slicing: where does the model fail? Reads a run's `predictions-<split>.csv` (written by
//! `pcam eval`) and the same tiles, puts every tile into slices — confidence band,
//! brightness and stain-intensity quartiles, tissue fraction, slide (meta `wsi`), label,
//! and the audit's flags when the run uses a clean index — and reports per-slice metrics
//! with seeded bootstrap intervals, ranked by their gap to the global value. Writes
//! `slices-<split>.json` and `slices-<split>.md` into the run folder. [`figures`] draws the
//! slice and error figures and saves every evaluation figure of a run.

pub mod figures;

use crate::data::clean::CleanIndex;
use crate::data::features::TileFacts;
use crate::data::hdf5::Split;
use crate::data::{SplitName, TILE_BYTES};
use crate::error::{Error, Result};
use crate::metrics::{self, Confusion};
use crate::progress::Progress;
use crate::run::RunDir;
use crate::seed::Seeds;
use serde::Serialize;
use std::collections::BTreeMap;

/// Slices smaller than this are reported but not ranked.
pub const MIN_RANKED: usize = 20;
/// Bootstrap resamples for slice intervals.
const RESAMPLES: usize = 300;

/// Metrics of one slice (or of everything).
#[derive(Debug, Clone, Serialize)]
pub struct SliceMetrics {
    /// Slice family, e.g. `brightness quartile`.
    pub family: String,
    /// The slice within it, e.g. `Q1 (darkest)`.
    pub slice: String,
    pub tiles: usize,
    pub positives: usize,
    pub accuracy: f64,
    /// `None` without positives.
    pub recall: Option<f64>,
    pub precision: f64,
    pub roc_auc: Option<f64>,
    pub accuracy_ci95: Option<(f64, f64)>,
    pub recall_ci95: Option<(f64, f64)>,
    /// File positions (split, index) of the slice's tiles.
    #[serde(skip)]
    pub members: Vec<usize>,
}

/// The slicing report.
#[derive(Debug, Clone, Serialize)]
pub struct SliceReport {
    pub run: std::path::PathBuf,
    pub split: SplitName,
    pub threshold: f32,
    pub global: SliceMetrics,
    pub slices: Vec<SliceMetrics>,
    /// Slices with at least [`MIN_RANKED`] tiles, worst first by recall gap to global
    /// (accuracy gap where recall is undefined).
    pub worst: Vec<Worst>,
    pub data_synthetic: Option<String>,
}

/// One ranked slice.
#[derive(Debug, Clone, Serialize)]
pub struct Worst {
    pub family: String,
    pub slice: String,
    pub tiles: usize,
    pub metric: &'static str,
    pub value: f64,
    pub global: f64,
    pub gap: f64,
}

fn slice_metrics(
    family: &str,
    slice: &str,
    members: Vec<usize>,
    probs: &[f32],
    labels: &[u8],
    t: f32,
    seeds: &Seeds,
) -> SliceMetrics {
    let p: Vec<f32> = members.iter().map(|&i| probs[i]).collect();
    let l: Vec<u8> = members.iter().map(|&i| labels[i]).collect();
    let cm = Confusion::at(&p, &l, t);
    let positives = l.iter().filter(|&&x| x == 1).count();
    let key = format!("{family}/{slice}");
    let index =
        u64::from_str_radix(&crate::fsutil::sha256_hex(key.as_bytes())[..16], 16).unwrap_or(0);
    let mut rng = seeds.stream("slicing/bootstrap", index);
    let acc = |p: &[f32], l: &[u8]| Some(Confusion::at(p, l, t).accuracy());
    let rec = |p: &[f32], l: &[u8]| l.contains(&1).then(|| Confusion::at(p, l, t).recall());
    SliceMetrics {
        family: family.into(),
        slice: slice.into(),
        tiles: members.len(),
        positives,
        accuracy: cm.accuracy(),
        recall: (positives > 0).then(|| cm.recall()),
        precision: cm.precision(),
        roc_auc: metrics::roc_auc(&p, &l),
        accuracy_ci95: metrics::bootstrap_ci(&p, &l, &acc, RESAMPLES, 0.95, &mut rng),
        recall_ci95: if positives > 0 {
            metrics::bootstrap_ci(&p, &l, &rec, RESAMPLES, 0.95, &mut rng)
        } else {
            None
        },
        members,
    }
}

/// A named group of tile positions.
type Named = (String, Vec<usize>);

/// Quartile slices of `values` (cut points from the evaluated tiles themselves).
fn quartiles(values: &[f32], names: [&str; 4]) -> Vec<(String, Vec<usize>)> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f32::total_cmp);
    let cut = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let (a, b, c) = (cut(0.25), cut(0.5), cut(0.75));
    let mut out: Vec<(String, Vec<usize>)> = names
        .iter()
        .enumerate()
        .map(|(k, n)| {
            let range = match k {
                0 => format!("≤ {a:.3}"),
                1 => format!("{a:.3}–{b:.3}"),
                2 => format!("{b:.3}–{c:.3}"),
                _ => format!("> {c:.3}"),
            };
            (format!("{n} ({range})"), Vec::new())
        })
        .collect();
    for (i, &v) in values.iter().enumerate() {
        let k = if v <= a {
            0
        } else if v <= b {
            1
        } else if v <= c {
            2
        } else {
            3
        };
        out[k].1.push(i);
    }
    out
}

/// Slices `split` of `run` (run `pcam eval` on that split first).
pub fn slice(run: &RunDir, split: SplitName, progress: Progress) -> Result<SliceReport> {
    let c = run.config()?;
    let pred_path = run.path.join(format!("predictions-{split}.csv"));
    let crate::eval::Predictions { at, labels, probs } = crate::eval::read_predictions(run, split)?;
    let threshold = crate::eval::run_threshold(run)?.threshold;
    let opts = c.data.open_options(progress);
    let tiles = c.data.plan()?.tiles(split, &opts)?;
    let same = tiles.len() == at.len()
        && (0..at.len()).all(|i| {
            tiles.file_index[i] == at[i].1
                && tiles.file_split[i]
                    .map(|s| s.to_string())
                    .unwrap_or_default()
                    == at[i].0
        });
    if !same {
        return Err(Error::bad_file(
            &pred_path,
            "does not match the run's current tiles: rerun `pcam eval` on this split",
        ));
    }
    let bar = progress.bar(tiles.len() as u64, format!("slice {split}"), "tiles");
    let facts: Vec<TileFacts> = tiles
        .pixels
        .chunks_exact(TILE_BYTES)
        .map(|t| {
            bar.inc(1);
            TileFacts::of(t)
        })
        .collect();
    bar.finish_and_clear();
    let seeds = Seeds::new(c.seed);
    let all: Vec<usize> = (0..tiles.len()).collect();
    let global = slice_metrics("all", "all tiles", all, &probs, &labels, threshold, &seeds);

    let mut families: Vec<(&str, Vec<Named>)> = Vec::new();
    // Confidence: distance of the probability from the threshold.
    let mut conf: Vec<(String, Vec<usize>)> = [
        "uncertain (p within 0.1 of t)",
        "moderate (0.1–0.3 from t)",
        "confident (≥ 0.3 from t)",
    ]
    .iter()
    .map(|s| (s.to_string(), Vec::new()))
    .collect();
    for (i, &p) in probs.iter().enumerate() {
        let d = (p - threshold).abs();
        conf[if d < 0.1 {
            0
        } else if d < 0.3 {
            1
        } else {
            2
        }]
        .1
        .push(i);
    }
    families.push(("confidence band", conf));
    let bright: Vec<f32> = facts.iter().map(|f| f.brightness()).collect();
    families.push((
        "brightness quartile",
        quartiles(&bright, ["Q1 darkest", "Q2", "Q3", "Q4 brightest"]),
    ));
    let stain: Vec<f32> = facts.iter().map(|f| f.od_mean).collect();
    families.push((
        "stain intensity quartile",
        quartiles(&stain, ["Q1 palest", "Q2", "Q3", "Q4 darkest stain"]),
    ));
    let mut tissue: Vec<(String, Vec<usize>)> = ["< 25%", "25–50%", "50–75%", "≥ 75%"]
        .iter()
        .map(|s| (format!("tissue {s}"), Vec::new()))
        .collect();
    for (i, f) in facts.iter().enumerate() {
        tissue[((f.tissue * 4.0) as usize).min(3)].1.push(i);
    }
    families.push(("tissue fraction", tissue));
    families.push((
        "label",
        vec![
            (
                "negative (0)".into(),
                (0..labels.len()).filter(|&i| labels[i] == 0).collect(),
            ),
            (
                "positive (1)".into(),
                (0..labels.len()).filter(|&i| labels[i] == 1).collect(),
            ),
        ],
    ));
    // Slides, from each source file's meta.csv.
    let mut metas: BTreeMap<SplitName, Option<Vec<String>>> = BTreeMap::new();
    let mut by_slide: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for i in 0..tiles.len() {
        let Some(src) = tiles.file_split[i] else {
            continue;
        };
        if let std::collections::btree_map::Entry::Vacant(e) = metas.entry(src) {
            e.insert(
                Split::open_dir(&c.data.dir, src, &opts)?
                    .meta
                    .map(|m| m.wsi),
            );
        }
        if let Some(Some(w)) = metas.get(&src) {
            by_slide
                .entry(w[tiles.file_index[i]].clone())
                .or_default()
                .push(i);
        }
    }
    if !by_slide.is_empty() {
        families.push(("slide", by_slide.into_iter().collect()));
    }
    // Audit flags kept for review in the run's clean index.
    if let Some(p) = &c.data.exclude {
        let idx = CleanIndex::read(p)?;
        let mut flags: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for i in 0..tiles.len() {
            let Some(src) = tiles.file_split[i] else {
                continue;
            };
            if let Some(list) = idx.review.get(&src) {
                if let Ok(k) = list.binary_search_by_key(&tiles.file_index[i], |d| d.index) {
                    for r in &list[k].reasons {
                        flags.entry(r.clone()).or_default().push(i);
                    }
                }
            }
        }
        if !flags.is_empty() {
            families.push(("audit flag", flags.into_iter().collect()));
        }
    }

    let mut slices = Vec::new();
    for (family, list) in families {
        for (name, members) in list {
            if !members.is_empty() {
                slices.push(slice_metrics(
                    family, &name, members, &probs, &labels, threshold, &seeds,
                ));
            }
        }
    }
    let mut worst: Vec<Worst> = slices
        .iter()
        .filter(|s| s.tiles >= MIN_RANKED)
        .map(|s| {
            let (metric, value, global_v) = match (s.recall, global.recall) {
                (Some(r), Some(g)) => ("recall", r, g),
                _ => ("accuracy", s.accuracy, global.accuracy),
            };
            Worst {
                family: s.family.clone(),
                slice: s.slice.clone(),
                tiles: s.tiles,
                metric,
                value,
                global: global_v,
                gap: global_v - value,
            }
        })
        .collect();
    worst.sort_by(|a, b| b.gap.total_cmp(&a.gap).then_with(|| a.slice.cmp(&b.slice)));
    let report = SliceReport {
        run: run.path.clone(),
        split,
        threshold,
        global,
        slices,
        worst,
        data_synthetic: crate::data::synth::note(&c.data.dir),
    };
    run.write_json(&format!("slices-{split}.json"), &report)?;
    crate::fsutil::write_atomic(
        &run.path.join(format!("slices-{split}.md")),
        report.to_markdown().as_bytes(),
    )?;
    Ok(report)
}

impl SliceReport {
    /// What `pcam eval --slices` prints: how many slices, and the `n` worst (with at
    /// least [`MIN_RANKED`] tiles) by their gap to the global value.
    pub fn worst_text(&self, n: usize) -> String {
        let mut o = format!(
            "{} slices of {}; worst (>= {} tiles) by gap to global:\n",
            self.slices.len(),
            self.split,
            MIN_RANKED
        );
        for w in self.worst.iter().take(n) {
            o.push_str(&format!(
                "  {} / {} ({} tiles): {} {:.3} vs {:.3} global ({:+.3})\n",
                w.family, w.slice, w.tiles, w.metric, w.value, w.global, -w.gap
            ));
        }
        o
    }

    /// The per-slice table and the ranking as Markdown.
    pub fn to_markdown(&self) -> String {
        let f = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "—".into());
        let ci = |v: Option<(f64, f64)>| {
            v.map(|(a, b)| format!("[{a:.3}, {b:.3}]"))
                .unwrap_or_else(|| "—".into())
        };
        let mut s = format!(
            "# Slices of `{}` on {} (threshold {})\n\n{}",
            self.run.display(),
            self.split,
            self.threshold,
            if self.data_synthetic.is_some() {
                "**SYNTHETIC data.**\n\n"
            } else {
                ""
            }
        );
        s.push_str("| family | slice | tiles | positives | accuracy | 95% CI | recall | 95% CI | precision | ROC-AUC |\n|---|---|---:|---:|---:|---|---:|---|---:|---:|\n");
        for m in std::iter::once(&self.global).chain(&self.slices) {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {:.3} | {} | {} | {} | {:.3} | {} |\n",
                m.family,
                m.slice,
                m.tiles,
                m.positives,
                m.accuracy,
                ci(m.accuracy_ci95),
                f(m.recall),
                ci(m.recall_ci95),
                m.precision,
                f(m.roc_auc)
            ));
        }
        s.push_str(&format!("\n## Worst slices (≥ {MIN_RANKED} tiles, by gap to global)\n\n| family | slice | tiles | metric | slice | global | gap |\n|---|---|---:|---|---:|---:|---:|\n"));
        for w in self.worst.iter().take(10) {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {:.3} | {:.3} | {:+.3} |\n",
                w.family, w.slice, w.tiles, w.metric, w.value, w.global, w.gap
            ));
        }
        s
    }
}
