//! What the poison does to a trained model (`pcam data backdoor`): the audit's recurring
//! trigger stamps are pasted, at the place the audit found them, onto clean negative test
//! tiles, and each run's share of them predicted positive (the attack success rate) is
//! compared with its share on the same tiles unstamped. The same runs are scored on the
//! test split with and without the test tiles that have an (exact or near) copy in train
//! (the leakage the audit's duplicate findings describe). Runs come in named groups (e.g.
//! trained on the raw copy vs with the clean index, one run per seed); each group gets a
//! mean with a Student-t 95 % interval. Downstream of audit, train and eval: reads
//! `audit.json`, run folders and the data files, and writes `backdoor.json`,
//! `backdoor.md` and a figure under its own folder.

use crate::audit::TileRef;
use crate::data::hdf5::{OpenOptions, Split};
use crate::data::loader::Tiles;
use crate::data::{InvalidPolicy, SplitName, CHANNELS, TILE, TILE_BYTES};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::report::{charts, Table};
use crate::run::RunDir;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Duplicate findings whose train–test pairs are test-copy leakage.
const COPY_KINDS: [&str; 2] = [
    "exact_duplicate_across_splits",
    "near_duplicate_across_splits",
];

/// The part of `audit.json` this reads.
#[derive(Debug, Deserialize)]
struct AuditFile {
    dataset: PathBuf,
    findings: Vec<AuditFinding>,
    #[serde(default)]
    recurring_stamps: Vec<AuditStamp>,
}

#[derive(Debug, Deserialize)]
struct AuditFinding {
    kind: String,
    tiles: Vec<TileRef>,
    #[serde(default)]
    pairs: Vec<AuditPair>,
    #[serde(default)]
    boxes: Vec<[u8; 4]>,
}

#[derive(Debug, Deserialize)]
struct AuditPair {
    a: TileRef,
    b: TileRef,
}

#[derive(Debug, Deserialize)]
struct AuditStamp {
    size: [usize; 2],
    tiles: usize,
    labelled_positive: usize,
    example: TileRef,
}

/// A trigger as the audit found it: the pixels of its box in one tile that carries it.
#[derive(Debug, Clone, Serialize)]
pub struct Stamp {
    /// The tile the pixels were taken from (`split`, file index).
    pub source: (SplitName, usize),
    /// Inclusive box (row0, col0, row1, col1) it is pasted at.
    pub bbox: [u8; 4],
    /// Tiles of the audited copy that carry it, and how many of them are labelled 1.
    pub tiles_in_data: usize,
    pub labelled_positive: usize,
    /// (h, w, 3) uint8, channels-last.
    #[serde(skip)]
    pub pixels: Vec<u8>,
}

impl Stamp {
    /// Height and width of the box.
    pub fn size(&self) -> (usize, usize) {
        let [r0, c0, r1, c1] = self.bbox.map(usize::from);
        (r1 - r0 + 1, c1 - c0 + 1)
    }

    /// Writes the stamp into one (96, 96, 3) tile.
    pub fn paste(&self, tile: &mut [u8]) {
        let [r0, c0, ..] = self.bbox.map(usize::from);
        let (h, w) = self.size();
        for r in 0..h {
            let at = ((r0 + r) * TILE + c0) * CHANNELS;
            tile[at..at + w * CHANNELS]
                .copy_from_slice(&self.pixels[r * w * CHANNELS..(r + 1) * w * CHANNELS]);
        }
    }
}

/// A value over the runs of a group: mean, sample sd and the Student-t 95 % interval.
#[derive(Debug, Clone, Serialize)]
pub struct Interval {
    pub mean: f64,
    pub sd: f64,
    pub n: usize,
    /// `None` for fewer than two runs.
    pub ci95: Option<(f64, f64)>,
}

/// The two-sided 95 % quantile of Student's t with `df` degrees of freedom.
pub fn t975(df: usize) -> f64 {
    // Standard table values (df 1..=30); the normal quantile beyond.
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => T[df - 1],
        _ => 1.960,
    }
}

impl Interval {
    pub fn of(v: &[f64]) -> Interval {
        let (mean, sd) = crate::multiseed::mean_sd(v);
        let ci95 = (v.len() >= 2).then(|| {
            let h = t975(v.len() - 1) * sd / (v.len() as f64).sqrt();
            (mean - h, mean + h)
        });
        Interval {
            mean,
            sd,
            n: v.len(),
            ci95,
        }
    }
}

/// One run's measurements.
#[derive(Debug, Clone, Serialize)]
pub struct RunEffect {
    pub run: PathBuf,
    pub seed: u64,
    /// The run's decision threshold (`threshold.json`, else 0.5) and where it came from.
    pub threshold: f32,
    pub threshold_source: String,
    /// Per stamp (in the order of [`BackdoorReport::stamps`]): share of the clean
    /// negatives predicted positive once stamped.
    pub attack_success: Vec<f64>,
    /// The same tiles unstamped (the false-positive rate the attack is compared with).
    pub unstamped_positive: f64,
    /// Mean probability of label 1, per stamp stamped, and unstamped.
    pub mean_probability_stamped: Vec<f64>,
    pub mean_probability_unstamped: f64,
    /// Share of the train tiles the audit found a trigger in predicted positive (whether
    /// the model fitted the poison), and their mean probability.
    pub poisoned_train_positive: f64,
    pub mean_probability_poisoned_train: f64,
    /// Test ROC-AUC and accuracy (at the run's threshold) on every test tile, without
    /// the tiles that have a copy in train, and (accuracy) on those tiles alone.
    pub test_roc_auc: Option<f64>,
    pub test_roc_auc_without_copies: Option<f64>,
    pub test_accuracy: f64,
    pub test_accuracy_without_copies: f64,
    pub test_accuracy_on_copies: f64,
}

/// One group's runs and their intervals.
#[derive(Debug, Clone, Serialize)]
pub struct GroupEffect {
    pub name: String,
    pub runs: Vec<RunEffect>,
    /// Per stamp.
    pub attack_success: Vec<Interval>,
    /// Per stamp: each run's stamped minus unstamped share (paired by run), over runs.
    pub attack_lift: Vec<Interval>,
    pub unstamped_positive: Interval,
    pub poisoned_train_positive: Interval,
    pub test_roc_auc: Interval,
    pub test_roc_auc_without_copies: Interval,
    pub test_accuracy: Interval,
    pub test_accuracy_without_copies: Interval,
    pub test_accuracy_on_copies: Interval,
}

/// `backdoor.json`.
#[derive(Debug, Clone, Serialize)]
pub struct BackdoorReport {
    pub dataset: PathBuf,
    pub audit: PathBuf,
    pub data_synthetic: Option<String>,
    pub stamps: Vec<Stamp>,
    /// Test tiles labelled 0 that no audit finding names (the attack's targets).
    pub clean_negatives: usize,
    /// Train tiles the audit found a trigger in (file indices).
    pub poisoned_train_tiles: Vec<usize>,
    /// Test tiles read (tiles with invalid values dropped).
    pub test_tiles: usize,
    /// File indices of the test tiles with an exact or near copy in train.
    pub test_tiles_with_train_copy: Vec<usize>,
    pub groups: Vec<GroupEffect>,
    pub figure: String,
}

fn read_audit(path: &Path) -> Result<AuditFile> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "reading", e))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::bad_file(path, format!("not an audit.json written by pcam: {e}")))
}

/// The recurring stamps of the audit, each with its box and pixels read from its
/// example tile.
fn stamps(
    audit_path: &Path,
    audit: &AuditFile,
    dir: &Path,
    open: &OpenOptions,
) -> Result<Vec<Stamp>> {
    let triggers = audit.findings.iter().find(|f| f.kind == "trigger_patch");
    let mut out = Vec::new();
    for s in &audit.recurring_stamps {
        let bbox = triggers
            .and_then(|f| {
                f.tiles
                    .iter()
                    .position(|t| *t == s.example)
                    .and_then(|j| f.boxes.get(j))
            })
            .copied()
            .ok_or_else(|| {
                Error::bad_file(
                    audit_path,
                    format!(
                        "recurring stamp example {} {} has no box in the trigger_patch finding",
                        s.example.split, s.example.index
                    ),
                )
            })?;
        let split = s.example.split;
        let tile = Split::open_dir(dir, split, open)?.read_tile(s.example.index)?;
        let [r0, c0, r1, c1] = bbox.map(usize::from);
        if r1 < r0 || c1 < c0 || r1 >= TILE || c1 >= TILE || [r1 - r0 + 1, c1 - c0 + 1] != s.size {
            return Err(Error::bad_file(
                audit_path,
                format!("stamp box {bbox:?} does not match its size {:?}", s.size),
            ));
        }
        let mut pixels = Vec::with_capacity(s.size[0] * s.size[1] * CHANNELS);
        for r in r0..=r1 {
            let at = (r * TILE + c0) * CHANNELS;
            pixels.extend_from_slice(&tile[at..at + (c1 - c0 + 1) * CHANNELS]);
        }
        out.push(Stamp {
            source: (split, s.example.index),
            bbox,
            tiles_in_data: s.tiles,
            labelled_positive: s.labelled_positive,
            pixels,
        });
    }
    Ok(out)
}

fn share_at_or_above(p: &[f32], t: f32) -> f64 {
    p.iter().filter(|&&x| x >= t).count() as f64 / p.len().max(1) as f64
}

fn mean(p: &[f32]) -> f64 {
    p.iter().map(|&x| x as f64).sum::<f64>() / p.len().max(1) as f64
}

/// Measures every group's runs; writes `backdoor.json`, `backdoor.md` and
/// `figures/attack_success.png` under `out`.
pub fn measure(
    dir: &Path,
    audit_path: &Path,
    groups: &[(String, Vec<PathBuf>)],
    out: &Path,
    open: &OpenOptions,
    progress: Progress,
) -> Result<BackdoorReport> {
    if groups.is_empty() {
        return Err(Error::Usage(
            "--group: give at least one group of runs".into(),
        ));
    }
    let audit = read_audit(audit_path)?;
    let same = |a: &Path, b: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same(&audit.dataset, dir) {
        return Err(Error::bad_file(
            audit_path,
            format!("audits {}, not {}", audit.dataset.display(), dir.display()),
        ));
    }
    let stamps = stamps(audit_path, &audit, dir, open)?;
    if stamps.is_empty() {
        return Err(Error::bad_file(
            audit_path,
            "lists no recurring trigger stamp: there is no backdoor to measure",
        ));
    }
    // Test tiles any finding names, and those with a copy in train.
    let mut named: BTreeSet<usize> = BTreeSet::new();
    let mut copied: BTreeSet<usize> = BTreeSet::new();
    for f in &audit.findings {
        for t in &f.tiles {
            if t.split == SplitName::Test {
                named.insert(t.index);
            }
        }
        for p in &f.pairs {
            for (x, y) in [(&p.a, &p.b), (&p.b, &p.a)] {
                if x.split == SplitName::Test {
                    named.insert(x.index);
                    if COPY_KINDS.contains(&f.kind.as_str()) && y.split == SplitName::Train {
                        copied.insert(x.index);
                    }
                }
            }
        }
    }
    let test = Tiles::load(dir, SplitName::Test, InvalidPolicy::Drop, &[], open)?;
    let targets: Vec<usize> = (0..test.len())
        .filter(|&k| test.labels[k] == 0 && !named.contains(&test.file_index[k]))
        .collect();
    if targets.is_empty() {
        return Err(Error::bad_file(
            dir,
            "the test split has no clean negative tile to stamp",
        ));
    }
    let subset = |ks: &[usize], stamp: Option<&Stamp>| -> Tiles {
        let mut px = Vec::with_capacity(ks.len() * TILE_BYTES);
        for &k in ks {
            let at = px.len();
            px.extend_from_slice(&test.pixels[k * TILE_BYTES..(k + 1) * TILE_BYTES]);
            if let Some(s) = stamp {
                s.paste(&mut px[at..]);
            }
        }
        Tiles::unlabelled(px, ks.iter().map(|&k| test.file_index[k]).collect())
    };
    let stamped: Vec<Tiles> = stamps.iter().map(|s| subset(&targets, Some(s))).collect();
    let poisoned_idx: Vec<usize> = audit
        .findings
        .iter()
        .filter(|f| f.kind == "trigger_patch")
        .flat_map(|f| &f.tiles)
        .filter(|t| t.split == SplitName::Train)
        .map(|t| t.index)
        .collect();
    let poisoned = {
        let train = Split::open_dir(dir, SplitName::Train, open)?;
        let mut px = Vec::with_capacity(poisoned_idx.len() * TILE_BYTES);
        for &i in &poisoned_idx {
            px.extend(train.read_tile(i)?);
        }
        Tiles::unlabelled(px, poisoned_idx.clone())
    };
    let with_copy: Vec<bool> = test.file_index.iter().map(|i| copied.contains(i)).collect();
    let n_runs: usize = groups.iter().map(|g| g.1.len()).sum();
    let bar = progress.bar(n_runs as u64, "backdoor", "runs");
    let mut results = Vec::new();
    for (name, runs) in groups {
        let mut effects = Vec::new();
        for r in runs {
            let run = RunDir::open(r)?;
            let t = crate::eval::run_threshold(&run)?;
            let crate::eval::Trained {
                config,
                model,
                state,
                device,
            } = crate::eval::Trained::load(&run, "best")?;
            let predict = |tiles: &Tiles| {
                crate::train::predict(&model, tiles, &state.norm, config.train.batch_size, device)
            };
            let p_test = predict(&test);
            let p_neg: Vec<f32> = targets.iter().map(|&k| p_test[k]).collect();
            let p_stamped: Vec<Vec<f32>> = stamped.iter().map(&predict).collect();
            let p_poisoned = predict(&poisoned);
            let keep = |copies: bool| -> (Vec<f32>, Vec<u8>) {
                (0..test.len())
                    .filter(|&k| with_copy[k] == copies)
                    .map(|k| (p_test[k], test.labels[k]))
                    .unzip()
            };
            let (p_clean, y_clean) = keep(false);
            let (p_copy, y_copy) = keep(true);
            effects.push(RunEffect {
                run: r.clone(),
                seed: config.seed,
                threshold: t.threshold,
                threshold_source: t.source,
                attack_success: p_stamped
                    .iter()
                    .map(|p| share_at_or_above(p, t.threshold))
                    .collect(),
                unstamped_positive: share_at_or_above(&p_neg, t.threshold),
                mean_probability_stamped: p_stamped.iter().map(|p| mean(p)).collect(),
                mean_probability_unstamped: mean(&p_neg),
                poisoned_train_positive: share_at_or_above(&p_poisoned, t.threshold),
                mean_probability_poisoned_train: mean(&p_poisoned),
                test_roc_auc: crate::metrics::roc_auc(&p_test, &test.labels),
                test_roc_auc_without_copies: crate::metrics::roc_auc(&p_clean, &y_clean),
                test_accuracy: crate::metrics::accuracy(&p_test, &test.labels, t.threshold),
                test_accuracy_without_copies: crate::metrics::accuracy(
                    &p_clean,
                    &y_clean,
                    t.threshold,
                ),
                test_accuracy_on_copies: crate::metrics::accuracy(&p_copy, &y_copy, t.threshold),
            });
            bar.inc(1);
        }
        let over = |f: &dyn Fn(&RunEffect) -> f64| {
            Interval::of(&effects.iter().map(f).collect::<Vec<_>>())
        };
        let nan = f64::NAN;
        results.push(GroupEffect {
            name: name.clone(),
            attack_success: (0..stamps.len())
                .map(|s| over(&|e| e.attack_success[s]))
                .collect(),
            attack_lift: (0..stamps.len())
                .map(|s| over(&|e| e.attack_success[s] - e.unstamped_positive))
                .collect(),
            unstamped_positive: over(&|e| e.unstamped_positive),
            poisoned_train_positive: over(&|e| e.poisoned_train_positive),
            test_roc_auc: over(&|e| e.test_roc_auc.unwrap_or(nan)),
            test_roc_auc_without_copies: over(&|e| e.test_roc_auc_without_copies.unwrap_or(nan)),
            test_accuracy: over(&|e| e.test_accuracy),
            test_accuracy_without_copies: over(&|e| e.test_accuracy_without_copies),
            test_accuracy_on_copies: over(&|e| e.test_accuracy_on_copies),
            runs: effects,
        });
    }
    bar.finish_and_clear();
    let data_synthetic = crate::data::synth::note(dir);
    let report = BackdoorReport {
        dataset: dir.to_path_buf(),
        audit: audit_path.to_path_buf(),
        data_synthetic,
        clean_negatives: targets.len(),
        poisoned_train_tiles: poisoned_idx,
        test_tiles: test.len(),
        test_tiles_with_train_copy: copied.into_iter().collect(),
        stamps,
        groups: results,
        figure: "figures/attack_success.png".into(),
    };
    // Everything is built before the first file is written.
    let fig = report.figure("attack_success")?;
    let md = format!(
        "{}\n\n{}\n",
        report.attack_table()?.to_markdown(),
        report.leakage_table()?.to_markdown()
    );
    let json = serde_json::to_string_pretty(&report)
        .map_err(|e| Error::failed("serialising backdoor.json", e))?;
    std::fs::create_dir_all(out.join("figures"))
        .map_err(|e| Error::io(out, "creating report folder", e))?;
    crate::fsutil::write_atomic(&out.join(&report.figure), fig.png())?;
    crate::fsutil::write_atomic(&out.join("backdoor.md"), md.as_bytes())?;
    crate::fsutil::write_atomic(&out.join("backdoor.json"), format!("{json}\n").as_bytes())?;
    Ok(report)
}

/// `0.123 [0.100, 0.146]`, or the mean alone without an interval.
pub fn with_ci(i: &Interval) -> String {
    match i.ci95 {
        Some((lo, hi)) => format!("{:.3} [{lo:.3}, {hi:.3}]", i.mean),
        None => format!("{:.3}", i.mean),
    }
}

impl BackdoorReport {
    fn synthetic(&self) -> &'static str {
        if self.data_synthetic.is_some() {
            "SYNTHETIC "
        } else {
            ""
        }
    }

    /// Attack success per group and stamp, against the unstamped rate.
    pub fn attack_table(&self) -> Result<Table> {
        let mut cols: Vec<Vec<String>> = vec![Vec::new(); 7];
        for g in &self.groups {
            for (s, st) in self.stamps.iter().enumerate() {
                let (h, w) = st.size();
                cols[0].push(g.name.clone());
                cols[1].push(g.runs.len().to_string());
                cols[2].push(format!("{h}×{w} at ({}, {})", st.bbox[0], st.bbox[1]));
                cols[3].push(with_ci(&g.attack_success[s]));
                cols[4].push(with_ci(&g.unstamped_positive));
                cols[5].push(with_ci(&g.attack_lift[s]));
                cols[6].push(with_ci(&g.poisoned_train_positive));
            }
        }
        Table::from_strings(
            &[
                "trained on",
                "runs",
                "trigger stamp",
                "stamped: predicted positive",
                "unstamped: predicted positive",
                "lift (stamped − unstamped, paired)",
                "poisoned train tiles: predicted positive",
            ],
            cols,
            &format!(
                "Attack success on {} clean negative {}test tiles, and the {} train tiles with a trigger: mean over runs [Student-t 95% interval]",
                self.clean_negatives,
                self.synthetic(),
                self.poisoned_train_tiles.len()
            ),
        )
    }

    /// Test metrics with and without the test tiles that have a copy in train.
    pub fn leakage_table(&self) -> Result<Table> {
        let mut cols: Vec<Vec<String>> = vec![Vec::new(); 6];
        for g in &self.groups {
            cols[0].push(g.name.clone());
            cols[1].push(with_ci(&g.test_roc_auc));
            cols[2].push(with_ci(&g.test_roc_auc_without_copies));
            cols[3].push(with_ci(&g.test_accuracy));
            cols[4].push(with_ci(&g.test_accuracy_without_copies));
            cols[5].push(with_ci(&g.test_accuracy_on_copies));
        }
        Table::from_strings(
            &[
                "trained on",
                "ROC-AUC, all test tiles",
                "ROC-AUC without copied tiles",
                "accuracy, all test tiles",
                "accuracy without copied tiles",
                "accuracy on copied tiles",
            ],
            cols,
            &format!(
                "{}test split ({} tiles; {} have a copy in train): mean over runs [Student-t 95% interval]",
                self.synthetic(),
                self.test_tiles,
                self.test_tiles_with_train_copy.len()
            ),
        )
    }

    /// Bars with intervals: stamped and unstamped share predicted positive per group,
    /// as figure `name`.
    pub fn figure(&self, name: &str) -> Result<crate::report::Figure> {
        let mut labels = Vec::new();
        let mut values = Vec::new();
        let mut cis = Vec::new();
        for g in &self.groups {
            for (s, st) in self.stamps.iter().enumerate() {
                let (h, w) = st.size();
                let which = if self.stamps.len() > 1 {
                    format!(" ({h}×{w} stamp)")
                } else {
                    String::new()
                };
                labels.push(format!("{}: stamped{which}", g.name));
                values.push(g.attack_success[s].mean);
                cis.push(g.attack_success[s].ci95);
            }
            labels.push(format!("{}: unstamped", g.name));
            values.push(g.unstamped_positive.mean);
            cis.push(g.unstamped_positive.ci95);
        }
        charts::bars_with_ci(
            name,
            &format!(
                "{}Backdoor: clean negative test tiles predicted positive",
                self.synthetic()
            ),
            "share predicted positive (mean over runs, 95% interval)",
            &labels,
            &values,
            &cis,
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_intervals_use_the_table_and_need_two_values() {
        assert_eq!(t975(2), 4.303);
        assert_eq!(t975(100), 1.960);
        let i = Interval::of(&[0.2, 0.4, 0.6]);
        let (lo, hi) = i.ci95.unwrap();
        // mean 0.4, sd 0.2, half-width 4.303 * 0.2 / sqrt(3)
        assert!((i.mean - 0.4).abs() < 1e-12);
        assert!((hi - lo - 2.0 * 4.303 * 0.2 / 3f64.sqrt()).abs() < 1e-12);
        assert!(Interval::of(&[0.3]).ci95.is_none());
    }

    #[test]
    fn a_stamp_replaces_exactly_its_box() {
        let s = Stamp {
            source: (SplitName::Train, 0),
            bbox: [90, 2, 92, 5],
            tiles_in_data: 2,
            labelled_positive: 2,
            pixels: (0..3 * 4 * 3).map(|v| v as u8 + 1).collect(),
        };
        let mut tile = vec![0u8; TILE_BYTES];
        s.paste(&mut tile);
        let changed: Vec<usize> = (0..TILE * TILE)
            .filter(|p| tile[p * 3..p * 3 + 3] != [0, 0, 0])
            .collect();
        let want: Vec<usize> = (90..=92)
            .flat_map(|r| (2..=5).map(move |c| r * TILE + c))
            .collect();
        assert_eq!(changed, want);
        // Row-major, channels-last: the box's first pixel is the stamp's first pixel.
        assert_eq!(
            &tile[(90 * TILE + 2) * 3..(90 * TILE + 2) * 3 + 3],
            &[1, 2, 3]
        );
        assert_eq!(tile[(92 * TILE + 5) * 3 + 2], 36);
    }
}
