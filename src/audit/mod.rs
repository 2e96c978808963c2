//! `pcam data audit DIR`: leakage and poisoning, computed from the files (journal Q2).
//! One streaming pass per split through chunk-aligned blocks keeps a few hundred bytes
//! per tile ([`TileFacts`]); everything else — duplicate groups, near-duplicate
//! search, slides shared between splits, the label-noise model, normalisation checks
//! of runs — works on those facts. Writes `audit.json`, `audit.md` and example grids
//! into the report folder, and optionally a clean index (never touching the data).

pub mod independent;
pub mod labelnoise;

use crate::data::clean::{CleanIndex, Dropped};
use crate::data::features::{self, phash, TileFacts};
use crate::data::hdf5::{OpenOptions, Split};
use crate::data::loader::{NormAccumulator, NormStats};
use crate::data::{InvalidPolicy, SplitFiles, SplitName, TILE_BYTES};
use crate::error::{Error, Result};
use crate::seed::Seeds;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Decision rules, all reported with the results.
#[derive(Debug, Clone, Serialize)]
pub struct Thresholds {
    /// Blank: mean intensity below this (the course's filter used 5).
    pub blank_mean_below: f32,
    /// Saturated: mean intensity above this (the course's filter used 250).
    pub saturated_mean_above: f32,
    /// Low tissue: fraction of tissue pixels (optical density > `tissue_od`) below this.
    pub low_tissue_below: f32,
    pub tissue_od: f32,
    /// Trigger / artefact: a region of at least this many pixels that stained tissue cannot
    /// make (implausible colour, black next to white, a flat stamped rectangle:
    /// `data::features::artefact`) …
    pub trigger_min_pixels: u32,
    /// … inside a box no larger than this many pixels on a side.
    pub trigger_max_side: u32,
    /// The artefact rules' near-black and near-white levels (fixed; reported).
    pub near_black_max: u8,
    pub near_white_min: u8,
    /// Near duplicates: perceptual-hash distance (of 63 bits, any flip/rotation, shift by
    /// up to a block, zoom by 4.5%) at most this.
    pub near_distance: u32,
    /// … and confirmed by a Pearson correlation of 32×32 luma thumbnails, aligned over
    /// orientations, zooms and sub-block shifts, of at least this.
    pub near_min_correlation: f64,
    /// Tiles this flat (AC energy of the low DCT) are not hashed for near duplicates.
    pub min_ac_energy: f32,
    /// Label-noise candidates: out-of-fold probability of the other class at least this.
    pub label_noise_probability: f64,
    pub label_noise_folds: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            blank_mean_below: 5.0,
            saturated_mean_above: 250.0,
            low_tissue_below: 0.05,
            tissue_od: features::TISSUE_OD,
            trigger_min_pixels: 5,
            trigger_max_side: 16,
            near_black_max: features::BLACK,
            near_white_min: features::WHITE,
            near_distance: phash::DEFAULT_DISTANCE,
            near_min_correlation: phash::DEFAULT_MIN_CORRELATION,
            min_ac_energy: 0.02,
            label_noise_probability: 0.98,
            label_noise_folds: 5,
        }
    }
}

/// How to audit.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    pub thresholds: Thresholds,
    /// Seed of the label-noise folds (the `audit/folds` stream).
    pub seed: u64,
    /// Report folder (audit.json, audit.md, figures/).
    pub out: PathBuf,
    /// Also write a clean index here.
    pub write_clean: Option<PathBuf>,
    /// Check the normalisation statistics of every run under this folder.
    pub runs: Option<PathBuf>,
    /// Example tiles per figure.
    pub examples: usize,
    /// Out-of-fold probabilities of a trained model for the train tiles (`pcam data oof`):
    /// label noise by confident learning on these instead of the cheap model.
    pub oof: Option<Oof>,
}

/// Out-of-fold probabilities of label 1 for train tiles, read from an `oof.json`.
#[derive(Debug, Clone)]
pub struct Oof {
    pub source: PathBuf,
    /// SHA-256 of the train x file they were computed on (checked against the audited one).
    pub train_x_sha256: String,
    /// Train file index -> probability.
    pub probability: BTreeMap<usize, f32>,
}

/// A tile named by split and file index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TileRef {
    pub split: SplitName,
    pub index: usize,
}

/// Two tiles found to be (near) copies.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Pair {
    pub a: TileRef,
    pub b: TileRef,
    /// Perceptual-hash distance (0 for exact copies).
    pub distance: u32,
    pub labels: (u8, u8),
}

/// One kind of finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub kind: &'static str,
    pub what: &'static str,
    /// Tiles flagged (for pair findings: the later-split tile of each pair, or both).
    pub tiles: Vec<TileRef>,
    pub by_split: BTreeMap<SplitName, usize>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pairs: Vec<Pair>,
    /// For region findings (trigger patches): the region's box in each tile, inclusive
    /// (row0, col0, row1, col1), in the order of `tiles`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub boxes: Vec<[u8; 4]>,
    /// Example grid, relative to the report folder.
    pub figure: Option<String>,
    /// Whether the clean index drops these tiles (otherwise it lists them for review).
    pub dropped_by_clean_index: bool,
}

/// Per-split facts.
#[derive(Debug, Clone, Serialize)]
pub struct SplitFacts {
    pub split: SplitName,
    pub tiles: usize,
    pub positives: usize,
    pub slides: Option<usize>,
    pub x_sha256: String,
}

/// A slide present in more than one split.
#[derive(Debug, Clone, Serialize)]
pub struct SharedSlide {
    pub wsi: String,
    pub tiles: BTreeMap<SplitName, usize>,
}

/// Whether a run's stored normalisation statistics are the train split's.
#[derive(Debug, Clone, Serialize)]
pub struct NormCheck {
    pub run: PathBuf,
    pub stored: NormStats,
    pub recomputed_train: NormStats,
    pub from_train_only: bool,
    /// The same statistics over valid and over test, for comparison.
    pub valid: Option<NormStats>,
    pub test: Option<NormStats>,
}

/// One artefact stamp (identical pixels in its box) found in several tiles: a pattern
/// that recurs is placed, and one that comes with one label is a backdoor.
#[derive(Debug, Clone, Serialize)]
pub struct StampGroup {
    /// Height and width of the stamp's box.
    pub size: [usize; 2],
    pub causes: Vec<&'static str>,
    pub tiles: usize,
    pub labelled_positive: usize,
    /// Distinct positions (boxes) it was found at.
    pub boxes: usize,
    pub example: TileRef,
}

/// The audit's result.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub dataset: PathBuf,
    pub data_synthetic: Option<String>,
    pub splits: Vec<SplitFacts>,
    pub thresholds: Thresholds,
    pub findings: Vec<Finding>,
    pub shared_slides: Vec<SharedSlide>,
    /// Confident learning's thresholds and joint, when out-of-fold probabilities were given.
    pub label_noise_confident: Option<labelnoise::Confident>,
    /// Where the out-of-fold probabilities came from (`oof.json`), if given.
    pub label_noise_source: Option<PathBuf>,
    /// Trigger stamps found in two or more tiles, most frequent first.
    pub recurring_stamps: Vec<StampGroup>,
    /// For every non-degenerate tile, the distance to its nearest tile in another split
    /// when that is ≤ 7: `nearest_cross_split_distance[d]` tiles at distance d.
    pub nearest_cross_split_distance: Vec<usize>,
    pub norm_checks: Vec<NormCheck>,
    pub tiles: usize,
    pub seconds: f64,
    pub tiles_per_second: f64,
    /// Where the time went: reading and measuring the tiles (scan), exact and near
    /// duplicates, slides and the label-noise model, example figures, run checks.
    pub stage_seconds: Vec<(&'static str, f64)>,
    pub clean_index: Option<PathBuf>,
}

/// How one finding kind compares with a synthetic dataset's ground truth.
#[derive(Debug, Clone, Serialize)]
pub struct Score {
    pub kind: &'static str,
    pub injected: usize,
    pub found: usize,
    pub recall: f64,
    pub precision: f64,
}

impl AuditReport {
    /// Recall and precision of each finding kind that the generator injects, against the
    /// ground truth in the dataset's `synthetic.json` (course variant); `None` for data
    /// without a ground truth.
    pub fn score_against_ground_truth(&self) -> Option<Vec<Score>> {
        let m = crate::data::synth::read_manifest(&self.dataset)?;
        let c = m.get("corruptions")?;
        let ids = |key: &str, split: SplitName| -> BTreeSet<TileRef> {
            c[key]
                .as_array()
                .map(|v| {
                    v.iter()
                        .filter_map(|x| x.as_u64().or_else(|| x.get(0).and_then(|y| y.as_u64())))
                        .map(|i| TileRef {
                            split,
                            index: i as usize,
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let truth = [
            ("invalid_values", ids("out_of_range", SplitName::Train)),
            ("blank", ids("blank", SplitName::Train)),
            ("saturated", ids("saturated", SplitName::Train)),
            ("trigger_patch", ids("trigger", SplitName::Train)),
            (
                "exact_duplicate_across_splits",
                ids("exact_duplicate_of_test", SplitName::Train),
            ),
            (
                "near_duplicate_across_splits",
                ids("near_duplicate_of_test", SplitName::Train),
            ),
            (
                "slide_in_several_splits",
                ids("valid_on_train_slides", SplitName::Valid),
            ),
        ];
        Some(
            truth
                .into_iter()
                .map(|(kind, want)| {
                    let got: BTreeSet<TileRef> = self
                        .finding(kind)
                        .map(|f| f.tiles.iter().copied().collect())
                        .unwrap_or_default();
                    let tp = got.intersection(&want).count() as f64;
                    Score {
                        kind,
                        injected: want.len(),
                        found: got.len(),
                        recall: if want.is_empty() {
                            1.0
                        } else {
                            tp / want.len() as f64
                        },
                        precision: if got.is_empty() {
                            1.0
                        } else {
                            tp / got.len() as f64
                        },
                    }
                })
                .collect(),
        )
    }

    /// The finding of `kind`.
    pub fn finding(&self, kind: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.kind == kind)
    }
}

/// One near-duplicate query's result: the tile's nearest distance to another split, and
/// the pairs (row indices, smaller first) it confirmed with their distance.
type QueryResult = (Option<u32>, Vec<((usize, usize), u32)>);

/// A tile of an example figure, with the box to outline.
type Example = (TileRef, Option<[u8; 4]>);

/// One scanned tile.
struct Row {
    at: TileRef,
    label: u8,
    invalid: bool,
    wsi: Option<u32>,
    facts: TileFacts,
}

/// Audits the PCAM folder `dir`.
pub fn audit(dir: &Path, opts: &AuditOptions, open: &OpenOptions) -> Result<AuditReport> {
    let t0 = std::time::Instant::now();
    let th = &opts.thresholds;
    if th.near_distance > phash::MAX_DISTANCE {
        return Err(Error::Usage(format!(
            "--near-distance {} is above {}, the largest the index searches exhaustively",
            th.near_distance,
            phash::MAX_DISTANCE
        )));
    }
    let present = SplitFiles::present(dir);
    if present.is_empty() {
        return Err(Error::bad_file(
            dir,
            "no PCAM split files (camelyonpatch_level_2_split_*_x.h5[.gz])",
        ));
    }
    let mut rows: Vec<Row> = Vec::new();
    let mut splits = Vec::new();
    let mut slide_names: Vec<String> = Vec::new();
    let mut slide_ids: HashMap<String, u32> = HashMap::new();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for &name in &present {
        let s = Split::open_dir(dir, name, open)?;
        let bar = open
            .progress
            .bar(s.len() as u64, format!("audit {name}"), "tiles");
        // The file's hash (for the clean index) is computed beside the scan: a core is
        // idle while a block is read.
        let x_sha256 = std::thread::scope(|sc| -> Result<String> {
            let hasher = sc.spawn(|| crate::fsutil::sha256_file(&s.files.x));
            for range in s.block_ranges() {
                let b = s.read_block(range.clone(), InvalidPolicy::Clip)?;
                let facts = facts_parallel(&b.pixels, threads);
                for (k, f) in facts.into_iter().enumerate() {
                    let i = b.indices[k];
                    let wsi = s.meta.as_ref().map(|m| {
                        let w = &m.wsi[i];
                        *slide_ids.entry(w.clone()).or_insert_with(|| {
                            slide_names.push(w.clone());
                            (slide_names.len() - 1) as u32
                        })
                    });
                    rows.push(Row {
                        at: TileRef {
                            split: name,
                            index: i,
                        },
                        label: b.labels[k],
                        invalid: b.invalid.binary_search(&i).is_ok(),
                        wsi,
                        facts: f,
                    });
                }
                bar.inc(range.len() as u64);
            }
            hasher.join().expect("hash worker")
        })?;
        bar.finish_and_clear();
        splits.push(SplitFacts {
            split: name,
            tiles: s.len(),
            positives: s.labels.iter().filter(|&&l| l == 1).count(),
            slides: s.meta.as_ref().map(|m| m.slides()),
            x_sha256,
        });
    }

    let mut stages: Vec<(&'static str, f64)> = vec![("scan", t0.elapsed().as_secs_f64())];
    let lap = |stages: &mut Vec<(&'static str, f64)>, name: &'static str| {
        let so_far: f64 = stages.iter().map(|s| s.1).sum();
        stages.push((name, t0.elapsed().as_secs_f64() - so_far));
    };
    // Poisoning, tile by tile, in priority order: each tile gets at most one of these.
    let mut kind_of: Vec<Option<&'static str>> = vec![None; rows.len()];
    for (k, r) in rows.iter().enumerate() {
        let f = &r.facts;
        let b = f.brightness();
        kind_of[k] = if r.invalid {
            Some("invalid_values")
        } else if b < th.blank_mean_below {
            Some("blank")
        } else if b > th.saturated_mean_above {
            Some("saturated")
        } else if is_trigger(f, th) {
            Some("trigger_patch")
        } else if f.tissue < th.low_tissue_below {
            Some("low_tissue")
        } else {
            None
        };
    }
    let degenerate = |k: usize| {
        matches!(kind_of[k], Some("invalid_values" | "blank" | "saturated"))
            || rows[k].facts.ac_energy < th.min_ac_energy
    };

    // Exact copies: groups of equal content.
    let mut groups: HashMap<[u8; 16], Vec<usize>> = HashMap::new();
    for (k, r) in rows.iter().enumerate() {
        if !degenerate(k) {
            groups.entry(r.facts.content).or_default().push(k);
        }
    }
    let mut exact: BTreeSet<(usize, usize)> = BTreeSet::new();
    for g in groups.values() {
        for (x, &a) in g.iter().enumerate() {
            for &b in &g[x + 1..] {
                exact.insert((a.min(b), a.max(b)));
            }
        }
    }
    // Near copies: every tile against the index of all others.
    let members: Vec<u32> = (0..rows.len() as u32)
        .filter(|&k| !degenerate(k as usize))
        .collect();
    let hashes: Vec<phash::Hashes> = rows.iter().map(|r| r.facts.hashes).collect();
    let index = phash::Index::new(&hashes, &members);
    let bar = open
        .progress
        .bar(members.len() as u64, "near duplicates", "tiles");
    // Queries run on all threads; each returns its tile's nearest distance to another split
    // and the pairs it confirmed, merged in member order (the result does not depend on
    // the thread count).
    let query = |q: u32| -> QueryResult {
        let found = index.near(&hashes, q, phash::MAX_DISTANCE);
        let qs = rows[q as usize].at.split;
        let nearest = found
            .iter()
            .filter(|(m, _)| rows[*m as usize].at.split != qs)
            .map(|&(_, d)| d)
            .min();
        let mut confirmed = Vec::new();
        for (m, d) in found {
            let (a, b) = ((q.min(m)) as usize, (q.max(m)) as usize);
            if d <= th.near_distance && !exact.contains(&(a, b)) {
                let (fa, fb) = (&rows[a].facts, &rows[b].facts);
                let corr =
                    features::thumb_correlation((&fa.hashes, &fa.thumb), (&fb.hashes, &fb.thumb));
                if corr >= th.near_min_correlation {
                    confirmed.push(((a, b), d));
                }
            }
        }
        (nearest, confirmed)
    };
    let per = members.len().div_ceil(threads.max(1)).max(1);
    let results: Vec<QueryResult> = std::thread::scope(|sc| {
        let handles: Vec<_> = members
            .chunks(per)
            .map(|part| {
                let (query, bar) = (&query, &bar);
                sc.spawn(move || {
                    part.iter()
                        .map(|&q| {
                            let r = query(q);
                            bar.inc(1);
                            r
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("near-duplicate worker"))
            .collect()
    });
    let mut near: BTreeMap<(usize, usize), u32> = BTreeMap::new();
    let mut nearest = vec![0usize; phash::MAX_DISTANCE as usize + 1];
    for (d, confirmed) in results {
        if let Some(d) = d {
            nearest[d as usize] += 1;
        }
        near.extend(confirmed);
    }
    bar.finish_and_clear();
    let pair = |a: usize, b: usize, d: u32| Pair {
        a: rows[a].at,
        b: rows[b].at,
        distance: d,
        labels: (rows[a].label, rows[b].label),
    };
    let exact_pairs: Vec<Pair> = exact.iter().map(|&(a, b)| pair(a, b, 0)).collect();
    let near_pairs: Vec<Pair> = near.iter().map(|(&(a, b), &d)| pair(a, b, d)).collect();
    let cross = |p: &&Pair| p.a.split != p.b.split;
    let exact_cross: Vec<Pair> = exact_pairs.iter().filter(cross).cloned().collect();
    let near_cross: Vec<Pair> = near_pairs.iter().filter(cross).cloned().collect();
    let conflicting: Vec<Pair> = exact_pairs
        .iter()
        .chain(&near_pairs)
        .filter(|p| p.labels.0 != p.labels.1)
        .cloned()
        .collect();

    lap(&mut stages, "duplicates");
    // Slides in several splits: tiles of a later split on a slide an earlier split has.
    let mut slide_splits: BTreeMap<u32, BTreeMap<SplitName, usize>> = BTreeMap::new();
    for r in &rows {
        if let Some(w) = r.wsi {
            *slide_splits
                .entry(w)
                .or_default()
                .entry(r.at.split)
                .or_default() += 1;
        }
    }
    let shared_slides: Vec<SharedSlide> = slide_splits
        .iter()
        .filter(|(_, m)| m.len() > 1)
        .map(|(&w, m)| SharedSlide {
            wsi: slide_names[w as usize].clone(),
            tiles: m.clone(),
        })
        .collect();
    let on_shared: Vec<TileRef> = rows
        .iter()
        .filter(|r| {
            r.wsi.is_some_and(|w| {
                slide_splits[&w]
                    .keys()
                    .next()
                    .is_some_and(|&first| first < r.at.split)
            })
        })
        .map(|r| r.at)
        .collect();

    // Label-noise candidates on train: confident learning on a trained model's out-of-fold
    // probabilities when given (`pcam data oof`), else a cheap cross-validated model.
    let train_rows: Vec<usize> = (0..rows.len())
        .filter(|&k| rows[k].at.split == SplitName::Train && !degenerate(k))
        .collect();
    let mut noisy: Vec<TileRef> = Vec::new();
    let mut confident = None;
    if let Some(oof) = &opts.oof {
        let train_sha = splits
            .iter()
            .find(|s| s.split == SplitName::Train)
            .map(|s| s.x_sha256.as_str());
        if train_sha != Some(oof.train_x_sha256.as_str()) {
            return Err(Error::bad_file(
                &oof.source,
                "holds probabilities for another train file (its train_x_sha256 differs)",
            ));
        }
        let with_p: Vec<(usize, f64)> = train_rows
            .iter()
            .filter_map(|&k| {
                oof.probability
                    .get(&rows[k].at.index)
                    .map(|&p| (k, p as f64))
            })
            .collect();
        let p: Vec<f64> = with_p.iter().map(|w| w.1).collect();
        let y: Vec<u8> = with_p.iter().map(|w| rows[w.0].label).collect();
        let c = labelnoise::confident_learning(&p, &y);
        noisy = c
            .flagged
            .iter()
            .map(|&(j, _)| rows[with_p[j].0].at)
            .collect();
        confident = Some(c);
    } else if train_rows.len() >= 2 * th.label_noise_folds {
        let x: Vec<Vec<f64>> = train_rows
            .iter()
            .map(|&k| rows[k].facts.features())
            .collect();
        let y: Vec<u8> = train_rows.iter().map(|&k| rows[k].label).collect();
        let p = labelnoise::out_of_fold(&x, &y, th.label_noise_folds, &Seeds::new(opts.seed))?;
        for (j, &k) in train_rows.iter().enumerate() {
            let other = if y[j] == 1 { 1.0 - p[j] } else { p[j] };
            if other >= th.label_noise_probability {
                noisy.push(rows[k].at);
            }
        }
    }

    lap(&mut stages, "slides and label noise");
    // Assemble findings.
    let tiles_of = |kind: &str| -> Vec<TileRef> {
        (0..rows.len())
            .filter(|&k| kind_of[k] == Some(kind))
            .map(|k| rows[k].at)
            .collect()
    };
    let earlier = |p: &Pair| if p.a.split > p.b.split { p.b } else { p.a };
    let both = |ps: &[Pair]| -> Vec<TileRef> {
        let s: BTreeSet<TileRef> = ps.iter().flat_map(|p| [p.a, p.b]).collect();
        s.into_iter().collect()
    };
    let mut findings = vec![
        finding("invalid_values", "NaN or values outside 0..=255 in the stored dtype", tiles_of("invalid_values"), vec![], true),
        finding("blank", "(nearly) all-black tiles", tiles_of("blank"), vec![], true),
        finding("saturated", "(nearly) all-white tiles", tiles_of("saturated"), vec![], true),
        finding("trigger_patch", "a small region stained tissue cannot make: implausible colour, black next to white, or a flat stamped rectangle (backdoor trigger, pen mark)", tiles_of("trigger_patch"), vec![], true),
        finding("low_tissue", "little tissue (mostly background or fat)", tiles_of("low_tissue"), vec![], false),
        finding("exact_duplicate_across_splits", "identical pixels in two splits (the earlier split's copy is dropped)", exact_cross.iter().map(earlier).collect(), exact_cross.clone(), true),
        finding("near_duplicate_across_splits", "the same tile up to flips, rotations, brightness and noise in two splits (the earlier split's copy is dropped)", near_cross.iter().map(earlier).collect(), near_cross.clone(), true),
        finding("slide_in_several_splits", "a tile whose slide (meta wsi) also appears in an earlier split", on_shared, vec![], true),
        finding("conflicting_duplicate_labels", "exact or near copies that carry different labels", both(&conflicting), conflicting.clone(), false),
        finding("label_noise_candidate", if confident.is_some() { "confident learning on a trained model's out-of-fold probabilities (pcam data oof): the label is confidently contradicted (review, not proof)" } else { "out-of-fold probability strongly contradicts the label (cheap model; review, not proof)" }, noisy, vec![], false),
    ];
    // Where each artefact is, and stamps that recur: the same pixels in many tiles.
    let row_of: HashMap<TileRef, usize> = rows.iter().enumerate().map(|(k, r)| (r.at, k)).collect();
    let mut stamps: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for f in findings.iter_mut().filter(|f| f.kind == "trigger_patch") {
        f.boxes = f
            .tiles
            .iter()
            .filter_map(|t| rows[row_of[t]].facts.artefact.map(|a| a.bbox))
            .collect();
        for t in &f.tiles {
            let k = row_of[t];
            if let Some(a) = rows[k].facts.artefact {
                stamps.entry(a.stamp).or_default().push(k);
            }
        }
    }
    let mut recurring_stamps: Vec<StampGroup> = stamps
        .values()
        .filter(|ks| ks.len() >= 2)
        .map(|ks| {
            let a = rows[ks[0]].facts.artefact.expect("grouped by artefact");
            let (h, w) = a.size();
            StampGroup {
                size: [h, w],
                causes: a.cause_names(),
                tiles: ks.len(),
                labelled_positive: ks.iter().filter(|&&k| rows[k].label == 1).count(),
                example: rows[ks[0]].at,
                boxes: ks
                    .iter()
                    .filter_map(|&k| rows[k].facts.artefact.map(|a| a.bbox))
                    .collect::<BTreeSet<_>>()
                    .len(),
            }
        })
        .collect();
    recurring_stamps.sort_by(|a, b| b.tiles.cmp(&a.tiles).then(a.example.cmp(&b.example)));
    std::fs::create_dir_all(opts.out.join("figures"))
        .map_err(|e| Error::io(&opts.out, "creating report folder", e))?;
    let data_synthetic = crate::data::synth::note(dir);
    let synthetic = crate::data::synth::suffix(data_synthetic.is_some());
    let title = |f: &Finding| {
        let (shown, of, what) = if f.pairs.is_empty() {
            (opts.examples.min(f.tiles.len()), f.tiles.len(), "tiles")
        } else {
            let pairs = f.pairs.len();
            (opts.examples.div_ceil(2).min(pairs), pairs, "pairs")
        };
        format!(
            "{}: {shown} of {of} {what}{synthetic}",
            f.kind.replace('_', " ")
        )
    };
    for f in &mut findings {
        if f.tiles.is_empty() {
            continue;
        }
        let name = format!("figures/{}.png", f.kind);
        let png = if f.pairs.is_empty() {
            let pick: Vec<Vec<Example>> = f
                .tiles
                .iter()
                .enumerate()
                .take(opts.examples)
                .map(|(j, &t)| vec![(t, f.boxes.get(j).copied())])
                .collect();
            grid(dir, open, &pick, f.kind, &title(f), &[])?
        } else {
            // Pairs take two rows: half as many columns keep the figure small.
            let pick: Vec<Vec<Example>> = f
                .pairs
                .iter()
                .take(opts.examples.div_ceil(2))
                .map(|p| vec![(p.a, None), (p.b, None)])
                .collect();
            let rows = ["tile".to_string(), "its copy".to_string()];
            grid(dir, open, &pick, f.kind, &title(f), &rows)?
        };
        crate::fsutil::write_atomic(&opts.out.join(&name), &png)?;
        f.figure = Some(name);
    }

    lap(&mut stages, "figures");
    let norm_checks = match &opts.runs {
        Some(runs) => norm_checks(dir, runs, open)?,
        None => Vec::new(),
    };
    let n = rows.len();
    let seconds = t0.elapsed().as_secs_f64();
    lap(&mut stages, "run checks");
    let mut report = AuditReport {
        dataset: dir.to_path_buf(),
        data_synthetic,
        splits,
        thresholds: th.clone(),
        findings,
        shared_slides,
        recurring_stamps,
        label_noise_confident: confident,
        label_noise_source: opts.oof.as_ref().map(|o| o.source.clone()),
        nearest_cross_split_distance: nearest,
        norm_checks,
        tiles: n,
        seconds,
        tiles_per_second: n as f64 / seconds.max(1e-9),
        stage_seconds: stages,
        clean_index: opts.write_clean.clone(),
    };
    if let Some(p) = &opts.write_clean {
        if let Some(parent) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, "creating folder", e))?;
        }
        let idx = clean_index(&report);
        let text = serde_json::to_string_pretty(&idx)
            .map_err(|e| Error::failed("serialising the clean index", e))?;
        crate::fsutil::write_atomic(p, text.as_bytes())?;
    }
    report.seconds = t0.elapsed().as_secs_f64();
    let json = serde_json::to_string_pretty(&report)
        .map_err(|e| Error::failed("serialising audit.json", e))?;
    crate::fsutil::write_atomic(&opts.out.join("audit.json"), json.as_bytes())?;
    crate::fsutil::write_atomic(&opts.out.join("audit.md"), report.to_markdown().as_bytes())?;
    Ok(report)
}

fn finding(
    kind: &'static str,
    what: &'static str,
    mut tiles: Vec<TileRef>,
    pairs: Vec<Pair>,
    dropped: bool,
) -> Finding {
    tiles.sort();
    tiles.dedup();
    let mut by_split = BTreeMap::new();
    for t in &tiles {
        *by_split.entry(t.split).or_insert(0) += 1;
    }
    Finding {
        kind,
        what,
        tiles,
        by_split,
        pairs,
        boxes: Vec::new(),
        figure: None,
        dropped_by_clean_index: dropped,
    }
}

fn is_trigger(f: &TileFacts, th: &Thresholds) -> bool {
    f.artefact.is_some_and(|a| {
        let (h, w) = a.size();
        a.pixels as u32 >= th.trigger_min_pixels
            && h as u32 <= th.trigger_max_side
            && w as u32 <= th.trigger_max_side
    })
}

/// Measures the tiles of a block on `threads` threads, in order.
fn facts_parallel(pixels: &[u8], threads: usize) -> Vec<TileFacts> {
    let tiles: Vec<&[u8]> = pixels.chunks_exact(TILE_BYTES).collect();
    let per = tiles.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = tiles
            .chunks(per)
            .map(|part| s.spawn(move || part.iter().map(|t| TileFacts::of(t)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("audit worker"))
            .collect()
    })
}

/// A PNG of example tiles under `title`: one column per example, one row per tile of it
/// (pairs give two rows, named by `rows`); a box, when given, is outlined in red just
/// outside the region.
fn grid(
    dir: &Path,
    open: &OpenOptions,
    examples: &[Vec<Example>],
    name: &str,
    title: &str,
    rows: &[String],
) -> Result<Vec<u8>> {
    let mut open_splits: BTreeMap<SplitName, Split> = BTreeMap::new();
    let mut pixels: Vec<Vec<Vec<u8>>> = Vec::new();
    for ex in examples {
        let mut col = Vec::new();
        for (t, bbox) in ex {
            if let std::collections::btree_map::Entry::Vacant(e) = open_splits.entry(t.split) {
                e.insert(Split::open_dir(dir, t.split, open)?);
            }
            let s = &open_splits[&t.split];
            let mut px = s.read_tile(t.index)?;
            if let Some(b) = bbox {
                outline(&mut px, *b);
            }
            col.push(px);
        }
        pixels.push(col);
    }
    let columns: Vec<Vec<&[u8]>> = pixels
        .iter()
        .map(|c| c.iter().map(|t| &t[..TILE_BYTES]).collect())
        .collect();
    Ok(
        crate::report::Figure::tile_grid(name, title, rows, &columns)?
            .png()
            .to_vec(),
    )
}

/// Draws a red rectangle one pixel outside box `b` (inclusive) of a u8 tile, clipped to
/// the tile.
fn outline(tile: &mut [u8], b: [u8; 4]) {
    let t = crate::data::TILE as isize;
    let [r0, c0, r1, c1] = b.map(|v| v as isize);
    let (r0, c0, r1, c1) = (r0 - 1, c0 - 1, r1 + 1, c1 + 1);
    for r in r0..=r1 {
        for c in c0..=c1 {
            let edge = r == r0 || r == r1 || c == c0 || c == c1;
            if edge && (0..t).contains(&r) && (0..t).contains(&c) {
                let o = ((r * t + c) * 3) as usize;
                tile[o..o + 3].copy_from_slice(&[255, 0, 0]);
            }
        }
    }
}

/// The clean index for `report`: dropped tiles with their reasons, and tiles to review.
pub fn clean_index(report: &AuditReport) -> CleanIndex {
    let mut drop: BTreeMap<SplitName, BTreeMap<usize, Vec<String>>> = BTreeMap::new();
    let mut review: BTreeMap<SplitName, BTreeMap<usize, Vec<String>>> = BTreeMap::new();
    for f in &report.findings {
        let target = if f.dropped_by_clean_index {
            &mut drop
        } else {
            &mut review
        };
        for t in &f.tiles {
            target
                .entry(t.split)
                .or_default()
                .entry(t.index)
                .or_default()
                .push(f.kind.to_string());
        }
    }
    let flatten = |m: BTreeMap<SplitName, BTreeMap<usize, Vec<String>>>| {
        m.into_iter()
            .map(|(s, v)| {
                (
                    s,
                    v.into_iter()
                        .map(|(index, reasons)| Dropped { index, reasons })
                        .collect(),
                )
            })
            .collect()
    };
    CleanIndex {
        dataset: report.dataset.display().to_string(),
        created_by: format!("pcam {} data audit", env!("CARGO_PKG_VERSION")),
        x_sha256: report
            .splits
            .iter()
            .map(|s| (s.split, s.x_sha256.clone()))
            .collect(),
        drop: flatten(drop),
        review: flatten(review),
    }
}

/// Finds run folders under `runs` that trained on `dir` and compares their stored
/// normalisation statistics with the train split's, recomputed under each run's policy.
fn norm_checks(dir: &Path, runs: &Path, open: &OpenOptions) -> Result<Vec<NormCheck>> {
    let want = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, "resolving", e))?;
    let mut found = Vec::new();
    find_runs(runs, 4, &mut found);
    found.sort();
    // Every split's statistics over all its tiles (clip), for comparison.
    let plain = |split: SplitName| -> Result<NormStats> {
        let s = Split::open_dir(dir, split, open)?;
        let mut acc = NormAccumulator::default();
        for range in s.block_ranges() {
            acc.add(&s.read_block(range, InvalidPolicy::Clip)?.pixels);
        }
        Ok(acc.finish())
    };
    let present = SplitFiles::present(dir);
    let mut valid = None;
    let mut test = None;
    let mut out = Vec::new();
    for run in found {
        let Ok(rd) = crate::run::RunDir::open(&run) else {
            continue;
        };
        let Ok(c) = rd.config() else { continue };
        if std::fs::canonicalize(&c.data.dir).ok().as_ref() != Some(&want) {
            continue;
        }
        let Ok(state) = rd.checkpoint_summary("best") else {
            continue;
        };
        // The train split exactly as the run read it (policy, clean index, split manifest).
        let mut acc = NormAccumulator::default();
        c.data
            .plan()?
            .visit(SplitName::Train, open, &mut |_, _, _, px| acc.add(px))?;
        let train = acc.finish();
        if valid.is_none() && present.contains(&SplitName::Valid) {
            valid = Some(plain(SplitName::Valid)?);
        }
        if test.is_none() && present.contains(&SplitName::Test) {
            test = Some(plain(SplitName::Test)?);
        }
        out.push(NormCheck {
            run,
            stored: state.norm,
            recomputed_train: train,
            from_train_only: state.norm == train,
            valid,
            test,
        });
    }
    Ok(out)
}

fn find_runs(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if dir.join("config.yaml").is_file() && dir.join("checkpoints").is_dir() {
        out.push(dir.to_path_buf());
        return;
    }
    if depth == 0 {
        return;
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                find_runs(&e.path(), depth - 1, out);
            }
        }
    }
}

impl AuditReport {
    /// A few lines for the terminal.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{}: {} tiles audited in {:.1} s ({:.0} tiles/s){}\n",
            self.dataset.display(),
            self.tiles,
            self.seconds,
            self.tiles_per_second,
            crate::data::synth::suffix(self.data_synthetic.is_some())
        );
        for f in &self.findings {
            s.push_str(&format!("  {:<30} {:>6}\n", f.kind, f.tiles.len()));
        }
        s.push_str(&format!(
            "  slides in several splits       {:>6}\n",
            self.shared_slides.len()
        ));
        for c in &self.norm_checks {
            s.push_str(&format!(
                "  run {}: normalisation from train only: {}\n",
                c.run.display(),
                if c.from_train_only { "yes" } else { "NO" }
            ));
        }
        if let Some(scores) = self.score_against_ground_truth() {
            s.push_str("against the SYNTHETIC ground truth (synthetic.json):\n");
            for sc in scores {
                s.push_str(&format!(
                    "  {:<30} injected {:>5}, found {:>5}: recall {:.3}, precision {:.3}\n",
                    sc.kind, sc.injected, sc.found, sc.recall, sc.precision
                ));
            }
        }
        if let Some(p) = &self.clean_index {
            s.push_str(&format!("clean index: {}\n", p.display()));
        }
        s
    }

    /// The report as Markdown (`audit.md`).
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!("# Data audit of `{}`\n\n", self.dataset.display()));
        if let Some(note) = &self.data_synthetic {
            s.push_str(&format!("**SYNTHETIC data**: {note}\n\n"));
        }
        s.push_str(&format!(
            "{} tiles in {:.1} s ({:.0} tiles/s).\n\n| split | tiles | positives | slides |\n|---|---:|---:|---:|\n",
            self.tiles, self.seconds, self.tiles_per_second
        ));
        for sp in &self.splits {
            s.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                sp.split,
                sp.tiles,
                sp.positives,
                sp.slides
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "no meta".into())
            ));
        }
        s.push_str("\n## Findings\n\n| finding | what | tiles | by split | clean index |\n|---|---|---:|---|---|\n");
        for f in &self.findings {
            let by: Vec<String> = f.by_split.iter().map(|(k, v)| format!("{k} {v}")).collect();
            s.push_str(&format!(
                "| `{}` | {} | {} | {} | {} |\n",
                f.kind,
                f.what,
                f.tiles.len(),
                if by.is_empty() {
                    "—".into()
                } else {
                    by.join(", ")
                },
                if f.dropped_by_clean_index {
                    "drop"
                } else {
                    "review"
                }
            ));
        }
        for f in self.findings.iter().filter(|f| f.figure.is_some()) {
            s.push_str(&format!(
                "\n**{}** ({} tiles{}): ![{}]({})\n",
                f.kind,
                f.tiles.len(),
                if f.pairs.is_empty() {
                    ""
                } else {
                    "; columns are pairs"
                },
                f.kind,
                f.figure.as_deref().unwrap_or_default()
            ));
        }
        if !self.recurring_stamps.is_empty() {
            s.push_str("\n## Trigger stamps that recur\n\nThe same pixels in the artefact's box in several tiles: placed, not chance; a stamp that comes with one label is a backdoor.\n\n| size | found by | tiles | labelled positive | positions | example |\n|---|---|---:|---:|---:|---|\n");
            for g in &self.recurring_stamps {
                s.push_str(&format!(
                    "| {}×{} | {} | {} | {} | {} | {} {} |\n",
                    g.size[0],
                    g.size[1],
                    g.causes.join(", "),
                    g.tiles,
                    g.labelled_positive,
                    g.boxes,
                    g.example.split,
                    g.example.index
                ));
            }
        }
        s.push_str("\n## Leakage\n\n");
        s.push_str(&format!(
            "Slides in more than one split: {}.\n\nNearest tile in another split, by perceptual-hash distance (0–7 of 63 bits; threshold {}): {:?}.\n",
            self.shared_slides.len(),
            self.thresholds.near_distance,
            self.nearest_cross_split_distance
        ));
        if !self.norm_checks.is_empty() {
            s.push_str(
                "\n## Normalisation statistics of runs\n\n| run | from train only |\n|---|---|\n",
            );
            for c in &self.norm_checks {
                s.push_str(&format!(
                    "| `{}` | {} |\n",
                    c.run.display(),
                    if c.from_train_only { "yes" } else { "**no**" }
                ));
            }
        }
        s.push_str(&format!(
            "\n## Thresholds\n\n```json\n{}\n```\n",
            serde_json::to_string_pretty(&self.thresholds).unwrap_or_default()
        ));
        s
    }
}
