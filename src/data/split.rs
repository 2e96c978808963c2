//! Splits. The provided PCAM splits are used as they are, or `pcam data split` builds
//! seeded, stratified splits that keep every slide (meta `wsi`) in one split — a
//! train/valid split or k folds — over a pool of provided splits (train + valid by
//! default; the provided test stays the untouched hold-out). The result is a split
//! manifest (tile lists per split and fold, the SHA-256 of those lists, the seed) that
//! runs reuse through `data.split_manifest` and `data.fold`. The split seed is
//! `data.split_seed`, separate from the training seed.

use super::hdf5::{OpenOptions, Split};
use super::SplitName;
use crate::error::{Error, Result};
use crate::seed::Seeds;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Tiles of one logical split: file indices per source split.
pub type Selection = BTreeMap<SplitName, Vec<usize>>;

/// One train/valid assignment (a fold).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fold {
    pub train: Selection,
    pub valid: Selection,
}

/// Per-fold facts, for the report and the notebook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldFacts {
    pub train_tiles: usize,
    pub valid_tiles: usize,
    pub train_positive_rate: f64,
    pub valid_positive_rate: f64,
    pub train_slides: usize,
    pub valid_slides: usize,
    /// Slides found in both train and valid of this fold (always 0 when built here).
    pub shared_slides: usize,
}

/// The split manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitManifest {
    pub dataset: String,
    pub seed: u64,
    /// `group-stratified` (slides kept whole, label balance matched).
    pub strategy: String,
    /// Provided splits pooled and re-split.
    pub pool: Vec<SplitName>,
    /// Share of the pool in valid (a train/valid split), or 1/k (k folds).
    pub valid_fraction: f64,
    /// The folds; a train/valid split is one fold.
    pub folds: Vec<Fold>,
    pub facts: Vec<FoldFacts>,
    /// The provided test split, untouched.
    pub test: Selection,
    /// SHA-256 of the canonical JSON of `folds` and `test`.
    pub sha256: String,
}

impl SplitManifest {
    /// Reads a manifest and checks its hash.
    pub fn read(path: &Path) -> Result<SplitManifest> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "reading", e))?;
        let m: SplitManifest = serde_json::from_str(&text).map_err(|e| {
            Error::bad_file(
                path,
                format!("not a split manifest written by `pcam data split`: {e}"),
            )
        })?;
        if m.sha256 != lists_sha256(&m.folds, &m.test) {
            return Err(Error::bad_file(
                path,
                "index lists do not match the manifest's sha256 (edited or corrupted)",
            ));
        }
        Ok(m)
    }

    /// Writes the manifest as JSON, atomically (creating the folder).
    pub fn write(&self, path: &Path) -> Result<()> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, "creating folder", e))?;
        }
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::failed("serialising split manifest", e))?;
        crate::fsutil::write_atomic(path, text.as_bytes())
    }

    /// The tiles of `split` in fold `fold`.
    pub fn selection(&self, split: SplitName, fold: usize) -> Result<&Selection> {
        let f = self.folds.get(fold).ok_or_else(|| Error::ConfigField {
            field: "data.fold".into(),
            msg: format!(
                "{fold} is out of range: the split manifest has {} fold(s)",
                self.folds.len()
            ),
            origin: None,
        })?;
        Ok(match split {
            SplitName::Train => &f.train,
            SplitName::Valid => &f.valid,
            SplitName::Test => &self.test,
        })
    }
}

fn lists_sha256(folds: &[Fold], test: &Selection) -> String {
    let canon = serde_json::to_vec(&(folds, test)).unwrap_or_default();
    crate::fsutil::sha256_hex(&canon)
}

/// One tile of the pool.
#[derive(Debug, Clone)]
struct PoolTile {
    split: SplitName,
    index: usize,
    label: u8,
    slide: usize,
}

/// Builds a split manifest for `dir`: `folds` = 1 gives one train/valid split with
/// `valid_fraction` of the pool in valid; `folds` = k ≥ 2 gives k folds, each slide in
/// exactly one fold's valid part.
pub fn build(
    dir: &Path,
    pool: &[SplitName],
    valid_fraction: f64,
    folds: usize,
    seed: u64,
    opts: &OpenOptions,
) -> Result<SplitManifest> {
    if folds == 1 && !(valid_fraction > 0.0 && valid_fraction < 1.0) {
        return Err(Error::Usage(format!(
            "--valid-fraction {valid_fraction} is outside (0, 1)"
        )));
    }
    if folds == 0 || folds > 100 {
        return Err(Error::Usage(format!("--folds {folds} is outside 1..=100")));
    }
    if pool.is_empty() {
        return Err(Error::Usage("--pool names no split".into()));
    }
    let mut tiles = Vec::new();
    let mut slide_ids: BTreeMap<String, usize> = BTreeMap::new();
    for &s in pool {
        let sp = Split::open_dir(dir, s, opts)?;
        let meta = sp.meta.clone().ok_or_else(|| {
            Error::bad_file(
                dir.join(s.file_name("meta")),
                "missing: slide-grouped splits need each tile's slide (meta.csv, column wsi)",
            )
        })?;
        for (i, w) in meta.wsi.iter().enumerate() {
            let n = slide_ids.len();
            let slide = *slide_ids.entry(w.clone()).or_insert(n);
            tiles.push(PoolTile {
                split: s,
                index: i,
                label: sp.labels[i],
                slide,
            });
        }
    }
    // Per slide: tile count and positives.
    let n_slides = slide_ids.len();
    let mut size = vec![0usize; n_slides];
    let mut pos = vec![0usize; n_slides];
    for t in &tiles {
        size[t.slide] += 1;
        pos[t.slide] += t.label as usize;
    }
    let bins = if folds == 1 { 2 } else { folds };
    if n_slides < bins {
        return Err(Error::bad_file(
            dir,
            format!("{n_slides} slides cannot fill {bins} slide-disjoint parts"),
        ));
    }
    let share: Vec<f64> = if folds == 1 {
        vec![1.0 - valid_fraction, valid_fraction]
    } else {
        vec![1.0 / folds as f64; folds]
    };
    let bin_of = assign(&size, &pos, &share, &Seeds::new(seed));

    let select = |keep: &dyn Fn(usize) -> bool| -> Selection {
        let mut s: Selection = BTreeMap::new();
        for t in tiles.iter().filter(|t| keep(bin_of[t.slide])) {
            s.entry(t.split).or_default().push(t.index);
        }
        s
    };
    let fold_list: Vec<Fold> = if folds == 1 {
        vec![Fold {
            train: select(&|b| b == 0),
            valid: select(&|b| b == 1),
        }]
    } else {
        (0..folds)
            .map(|k| Fold {
                train: select(&|b| b != k),
                valid: select(&|b| b == k),
            })
            .collect()
    };
    let facts = fold_list
        .iter()
        .map(|f| fold_facts(f, &tiles))
        .collect::<Vec<_>>();
    let test = if pool.contains(&SplitName::Test) {
        Selection::new()
    } else {
        match Split::open_dir(dir, SplitName::Test, opts) {
            Ok(t) => BTreeMap::from([(SplitName::Test, (0..t.len()).collect())]),
            Err(_) => Selection::new(),
        }
    };
    let sha256 = lists_sha256(&fold_list, &test);
    Ok(SplitManifest {
        dataset: dir.display().to_string(),
        seed,
        strategy: "group-stratified".into(),
        pool: pool.to_vec(),
        valid_fraction: if folds == 1 {
            valid_fraction
        } else {
            1.0 / folds as f64
        },
        folds: fold_list,
        facts,
        test,
        sha256,
    })
}

/// Greedy balanced assignment of slides to bins with target shares `share`: slides in a
/// seeded random order, larger size classes first, each to the bin whose squared relative shortfall
/// in tiles and in positives falls most.
fn assign(size: &[usize], pos: &[usize], share: &[f64], seeds: &Seeds) -> Vec<usize> {
    let n = size.len();
    let total: f64 = size.iter().sum::<usize>() as f64;
    let total_pos: f64 = pos.iter().sum::<usize>().max(1) as f64;
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut seeds.stream("split", 0));
    // Large slides first (coarse size classes, powers of two), random within a class: the
    // greedy fill stays balanced and the seed still decides.
    order.sort_by_key(|&s| std::cmp::Reverse(usize::BITS - size[s].leading_zeros()));
    let mut tiles_in = vec![0f64; share.len()];
    let mut pos_in = vec![0f64; share.len()];
    let mut bin_of = vec![0usize; n];
    let cost = |t: f64, p: f64, b: usize| {
        let (tt, tp) = (share[b] * total, share[b] * total_pos);
        ((t - tt) / tt).powi(2) + ((p - tp) / tp.max(1.0)).powi(2)
    };
    for s in order {
        let (st, sp) = (size[s] as f64, pos[s] as f64);
        let best = (0..share.len())
            .min_by(|&a, &b| {
                let da =
                    cost(tiles_in[a] + st, pos_in[a] + sp, a) - cost(tiles_in[a], pos_in[a], a);
                let db =
                    cost(tiles_in[b] + st, pos_in[b] + sp, b) - cost(tiles_in[b], pos_in[b], b);
                da.total_cmp(&db)
            })
            .unwrap_or(0);
        bin_of[s] = best;
        tiles_in[best] += st;
        pos_in[best] += sp;
    }
    bin_of
}

fn fold_facts(f: &Fold, tiles: &[PoolTile]) -> FoldFacts {
    let lookup: BTreeMap<(SplitName, usize), &PoolTile> =
        tiles.iter().map(|t| ((t.split, t.index), t)).collect();
    let side = |s: &Selection| {
        let ts: Vec<&PoolTile> = s
            .iter()
            .flat_map(|(&sp, v)| v.iter().map(move |&i| (sp, i)))
            .filter_map(|k| lookup.get(&k).copied())
            .collect();
        let slides: std::collections::BTreeSet<usize> = ts.iter().map(|t| t.slide).collect();
        let rate = ts.iter().map(|t| t.label as f64).sum::<f64>() / ts.len().max(1) as f64;
        (ts.len(), rate, slides)
    };
    let (tn, tr, ts) = side(&f.train);
    let (vn, vr, vs) = side(&f.valid);
    FoldFacts {
        train_tiles: tn,
        valid_tiles: vn,
        train_positive_rate: tr,
        valid_positive_rate: vr,
        train_slides: ts.len(),
        valid_slides: vs.len(),
        shared_slides: ts.intersection(&vs).count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slides_stay_whole_and_shares_and_balance_are_met() {
        // 60 slides of uneven sizes and positive rates.
        let size: Vec<usize> = (0..60).map(|i| 20 + (i * 37) % 90).collect();
        let pos: Vec<usize> = size
            .iter()
            .enumerate()
            .map(|(i, &n)| n * ((i * 13) % 10) / 10)
            .collect();
        let share = [0.8, 0.2];
        let bins = assign(&size, &pos, &share, &Seeds::new(5));
        assert_eq!(bins, assign(&size, &pos, &share, &Seeds::new(5)));
        assert_ne!(bins, assign(&size, &pos, &share, &Seeds::new(6)));
        let total: usize = size.iter().sum();
        let total_pos: usize = pos.iter().sum();
        let valid: usize = (0..60).filter(|&s| bins[s] == 1).map(|s| size[s]).sum();
        let valid_pos: usize = (0..60).filter(|&s| bins[s] == 1).map(|s| pos[s]).sum();
        let frac = valid as f64 / total as f64;
        assert!((frac - 0.2).abs() < 0.03, "valid share {frac}");
        let (rv, rall) = (
            valid_pos as f64 / valid as f64,
            total_pos as f64 / total as f64,
        );
        assert!(
            (rv - rall).abs() < 0.03,
            "valid positive rate {rv} vs {rall}"
        );
    }

    #[test]
    fn k_folds_cover_every_slide_once() {
        let size: Vec<usize> = (0..50).map(|i| 10 + i % 7).collect();
        let pos: Vec<usize> = size.iter().map(|&n| n / 2).collect();
        let bins = assign(&size, &pos, &[0.2; 5], &Seeds::new(1));
        for k in 0..5 {
            let n: usize = (0..50).filter(|&s| bins[s] == k).map(|s| size[s]).sum();
            let total: usize = size.iter().sum();
            assert!(
                (n as f64 / total as f64 - 0.2).abs() < 0.03,
                "fold {k}: {n}"
            );
        }
    }
}
