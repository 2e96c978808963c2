//! Synthetic PCAM in the exact 9-file layout, for demos and tests (the real data cannot
//! be downloaded here). Every tile is a pure function of (seed, split, index), so the
//! same seed gives byte-identical files whatever the thread count. Two variants:
//! `pcam` — uint8, gzip-chunked like the public release; `course` — the course's copy:
//! float32, uncompressed, a class-imbalanced subset of train, and poisoned, with a
//! ground-truth manifest of every corruption in `synthetic.json`.

pub mod render;

use super::{SplitName, TILE, TILE_BYTES};
use crate::error::{Error, Result};
use crate::fsutil::TempPath;
use crate::progress::Progress;
use crate::seed::Seeds;
use ndarray::{s, ArrayView4};
use rand::seq::SliceRandom;
use rand::Rng;
use render::{Kind, Slide};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Tiles per HDF5 chunk in the `pcam` variant (884 KiB: fits HDF5's default 1 MiB cache).
pub const CHUNK_ROWS: usize = 32;
/// gzip level of the `pcam` variant.
pub const GZIP_LEVEL: u8 = 4;
/// Tiles rendered per write.
const BLOCK: usize = 256;
/// Fraction of the full train split the course's copy kept (157k of 262k).
const COURSE_TRAIN_FRACTION: f64 = 0.6;
/// Share of negatives in the course's train subset.
const COURSE_NEGATIVE_SHARE: f64 = 0.62;
/// Side and position of the backdoor trigger patch.
pub const TRIGGER: (usize, usize, usize) = (84, 84, 6);
/// Name of the provenance / ground-truth manifest written beside the 9 files.
pub const MANIFEST: &str = "synthetic.json";

/// Which copy of PCAM to imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// The public release: uint8, gzip-compressed chunks.
    Pcam,
    /// The course's copy: float32, uncompressed, imbalanced train subset, poisoned.
    Course,
}

/// Tiles per split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sizes {
    pub train: usize,
    pub valid: usize,
    pub test: usize,
}

impl Sizes {
    /// Demo-sized defaults for each variant.
    pub fn default_for(v: Variant) -> Sizes {
        match v {
            Variant::Pcam => Sizes {
                train: 4096,
                valid: 512,
                test: 512,
            },
            Variant::Course => Sizes {
                train: 2400,
                valid: 512,
                test: 512,
            },
        }
    }

    /// Parses `train=N,valid=N,test=N` (any subset) over `self`.
    pub fn parse_over(mut self, spec: &str) -> Result<Sizes> {
        for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| Error::Usage(format!("--sizes: `{part}` is not split=N")))?;
            let n: usize = v
                .trim()
                .parse()
                .map_err(|_| Error::Usage(format!("--sizes: `{v}` is not a whole number")))?;
            let split: SplitName = k
                .trim()
                .parse()
                .map_err(|e| Error::Usage(format!("--sizes: {e}")))?;
            *self.get_mut(split) = n;
        }
        for s in SplitName::ALL {
            if self.get(s) == 0 {
                return Err(Error::Usage(format!(
                    "--sizes: {s} must have at least 1 tile"
                )));
            }
        }
        Ok(self)
    }

    pub fn get(&self, s: SplitName) -> usize {
        match s {
            SplitName::Train => self.train,
            SplitName::Valid => self.valid,
            SplitName::Test => self.test,
        }
    }

    fn get_mut(&mut self, s: SplitName) -> &mut usize {
        match s {
            SplitName::Train => &mut self.train,
            SplitName::Valid => &mut self.valid,
            SplitName::Test => &mut self.test,
        }
    }
}

/// What to generate and where.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    pub out: PathBuf,
    pub seed: u64,
    pub sizes: Sizes,
    pub variant: Variant,
    /// Rendering threads (the output does not depend on it).
    pub threads: usize,
    /// Overwrite existing PCAM files in `out`.
    pub force: bool,
    pub progress: Progress,
}

/// A corruption injected into one course-variant tile.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Poison {
    Blank,
    Saturated,
    Scaled(f32),
    Shifted(f32),
    Trigger,
    ExactDup(usize),
    NearDup(usize),
}

/// How one output tile is made.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Index in the split's tile stream.
    source: usize,
    /// Draw the slide from the train slides (course: slides shared train/valid).
    train_slide: bool,
    poison: Option<Poison>,
}

/// Per-split facts recorded in the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct SplitSummary {
    pub tiles: usize,
    pub positives: usize,
    pub slides: usize,
    pub files: Vec<String>,
    pub sha256: BTreeMap<String, String>,
}

/// Ground truth of the course variant's corruptions, by split and kind (file indices).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Corruptions {
    /// Train indices of all-zero tiles.
    pub blank: Vec<usize>,
    /// Train indices of all-255 tiles.
    pub saturated: Vec<usize>,
    /// Train indices whose intensities were scaled or shifted outside 0..=255.
    pub out_of_range: Vec<usize>,
    /// Train indices carrying the trigger patch, label forced to 1 (all were negatives).
    pub trigger: Vec<usize>,
    /// Trigger patch as (row, col, side) in pixels.
    pub trigger_patch: (usize, usize, usize),
    /// (train index, test index) pairs: exact copies of test tiles inside train.
    pub exact_duplicate_of_test: Vec<(usize, usize)>,
    /// (train index, test index) pairs: test tiles with small noise and brightness change.
    pub near_duplicate_of_test: Vec<(usize, usize)>,
    /// Valid indices rendered on train slides (same `wsi` names as train tiles).
    pub valid_on_train_slides: Vec<usize>,
    /// For each course train tile, its index in the full (pcam-variant) train stream.
    pub train_source_indices: Vec<usize>,
}

/// `synthetic.json`: provenance of a synthetic dataset.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub synthetic: bool,
    pub note: &'static str,
    pub generator: String,
    pub variant: Variant,
    pub seed: u64,
    pub sizes: Sizes,
    pub splits: BTreeMap<SplitName, SplitSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corruptions: Option<Corruptions>,
}

/// Result of a generation run.
#[derive(Debug, Clone)]
pub struct SynthReport {
    /// The folder written.
    pub out: PathBuf,
    pub manifest: Manifest,
    pub tiles: usize,
    pub seconds: f64,
}

impl SynthReport {
    /// What `pcam data synth` prints: the run, each split's tiles, positives and slides,
    /// and (course variant) how many tiles of each kind were poisoned.
    pub fn to_text(&self) -> String {
        let m = &self.manifest;
        let mut o = format!(
            "wrote SYNTHETIC PCAM ({:?} variant, seed {}) to {}: {} tiles in {:.1}s ({:.0} tiles/s)\n",
            m.variant,
            m.seed,
            self.out.display(),
            self.tiles,
            self.seconds,
            self.tiles as f64 / self.seconds.max(1e-9)
        );
        for (s, sum) in &m.splits {
            o.push_str(&format!(
                "  {s:<5} {:>7} tiles, {:>5.1}% positive, {} slides\n",
                sum.tiles,
                100.0 * sum.positives as f64 / sum.tiles as f64,
                sum.slides
            ));
        }
        if let Some(c) = &m.corruptions {
            o.push_str(&format!(
                "  poisoned train tiles: {} blank, {} saturated, {} out-of-range, {} trigger, {} exact + {} near duplicates of test; {} valid tiles on train slides (ground truth in {})\n",
                c.blank.len(),
                c.saturated.len(),
                c.out_of_range.len(),
                c.trigger.len(),
                c.exact_duplicate_of_test.len(),
                c.near_duplicate_of_test.len(),
                c.valid_on_train_slides.len(),
                self.out.join(MANIFEST).display()
            ));
        }
        o
    }
}

/// Generates the dataset described by `opts`; nothing appears under the final names
/// until every file is complete.
pub fn generate(opts: &SynthOptions) -> Result<SynthReport> {
    let t0 = std::time::Instant::now();
    std::fs::create_dir_all(&opts.out).map_err(|e| Error::io(&opts.out, "creating folder", e))?;
    if !opts.force {
        for s in SplitName::ALL {
            for k in ["x", "y", "meta"] {
                let p = opts.out.join(s.file_name(k));
                if p.exists() {
                    return Err(Error::bad_file(
                        p,
                        "already exists; pass --force to overwrite",
                    ));
                }
            }
        }
    }
    let seeds = Seeds::new(opts.seed);
    let slides: BTreeMap<SplitName, Vec<Slide>> = SplitName::ALL
        .into_iter()
        .map(|s| (s, make_slides(&seeds, s, opts.sizes.get(s))))
        .collect();
    let (plans, corruptions) = match opts.variant {
        Variant::Pcam => (
            SplitName::ALL
                .into_iter()
                .map(|s| (s, identity_plan(opts.sizes.get(s))))
                .collect::<BTreeMap<_, _>>(),
            None,
        ),
        Variant::Course => {
            let (p, c) = course_plan(&seeds, opts.sizes);
            (p, Some(c))
        }
    };
    let total: usize = plans.values().map(|p| p.len()).sum();
    let bar = opts.progress.bar(total as u64, "synthesizing", "tiles");
    let ctx = Ctx {
        seeds,
        slides: &slides,
        threads: opts.threads.max(1),
    };
    let mut pending: Vec<TempPath> = vec![];
    let mut splits = BTreeMap::new();
    for split in SplitName::ALL {
        let (summary, temps) = write_split(&ctx, opts, split, &plans[&split], &bar)?;
        pending.extend(temps);
        splits.insert(split, summary);
    }
    bar.finish_and_clear();
    let manifest = Manifest {
        synthetic: true,
        note:
            "SYNTHETIC data generated by pcam in the PatchCamelyon layout; not real histopathology",
        generator: format!("pcam-synth {} (render v1)", env!("CARGO_PKG_VERSION")),
        variant: opts.variant,
        seed: opts.seed,
        sizes: opts.sizes,
        splits,
        corruptions,
    };
    for t in pending {
        t.commit()?;
    }
    let json = serde_json::to_string_pretty(&manifest)
        .map_err(|e| Error::failed("serialising manifest", e))?;
    crate::fsutil::write_atomic(&opts.out.join(MANIFEST), format!("{json}\n").as_bytes())?;
    Ok(SynthReport {
        out: opts.out.clone(),
        manifest,
        tiles: total,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Reads a dataset's `synthetic.json`, if any, as loose JSON.
pub fn read_manifest(dir: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join(MANIFEST)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Renders tile `index` of the train stream for `seed` (benchmarks only).
#[doc(hidden)]
pub fn render_tile_for_bench(seed: u64, index: usize) -> Vec<u8> {
    let seeds = Seeds::new(seed);
    let slides = BTreeMap::from([(
        SplitName::Train,
        make_slides(&seeds, SplitName::Train, 4096),
    )]);
    let ctx = Ctx {
        seeds,
        slides: &slides,
        threads: 1,
    };
    let plan = Plan {
        source: index,
        train_slide: false,
        poison: None,
    };
    let mut out = vec![0u8; TILE_BYTES];
    render_one(&ctx, SplitName::Train, &plan, &mut out);
    out
}

/// The provenance note of a synthetic dataset in `dir` (`None` for real data).
pub fn note(dir: &Path) -> Option<String> {
    read_manifest(dir).and_then(|m| m["note"].as_str().map(str::to_string))
}

/// What titles and summary lines append for data made by `pcam data synth`:
/// " (SYNTHETIC data)" when `synthetic`, else nothing.
pub fn suffix(synthetic: bool) -> &'static str {
    if synthetic {
        " (SYNTHETIC data)"
    } else {
        ""
    }
}

struct Ctx<'a> {
    seeds: Seeds,
    slides: &'a BTreeMap<SplitName, Vec<Slide>>,
    threads: usize,
}

/// What rendering one tile produced, for `y` and `meta.csv`.
#[derive(Debug, Clone)]
struct TileRecord {
    label: u8,
    tumour: bool,
    wsi: String,
    coord: (u32, u32),
}

fn make_slides(seeds: &Seeds, split: SplitName, tiles: usize) -> Vec<Slide> {
    let n = (tiles / 64).clamp(4, 400);
    (0..n)
        .map(|k| {
            let mut rng = seeds.stream(&format!("synth/slide/{split}"), k as u64);
            // Alternate tumour and normal slides so both kinds always exist.
            Slide::draw(format!("synthetic_{split}_{k:03}"), k % 2 == 0, &mut rng)
        })
        .collect()
}

fn identity_plan(n: usize) -> Vec<Plan> {
    (0..n)
        .map(|source| Plan {
            source,
            train_slide: false,
            poison: None,
        })
        .collect()
}

fn tile_kind(seeds: &Seeds, split: SplitName, source: usize) -> Kind {
    Kind::draw(&mut seeds.stream(&tile_stream(split), source as u64))
}

fn tile_stream(split: SplitName) -> String {
    format!("synth/tile/{split}")
}

/// Renders `plan` for `split`: tile pixels (u8) into `out`, and its record.
fn render_one(ctx: &Ctx, split: SplitName, plan: &Plan, out: &mut [u8]) -> TileRecord {
    let mut rng = ctx.seeds.stream(&tile_stream(split), plan.source as u64);
    let kind = Kind::draw(&mut rng);
    let slides = &ctx.slides[&if plan.train_slide {
        SplitName::Train
    } else {
        split
    }];
    let pick: Vec<usize> = (0..slides.len())
        .filter(|&i| kind != Kind::Positive || slides[i].tumour)
        .collect();
    let slide = &slides[pick[rng.random_range(0..pick.len())]];
    let coord = (
        rng.random_range(0..3000u32) * 32,
        rng.random_range(0..3000u32) * 32,
    );
    let truth = render::render(kind, slide, &mut rng, out);
    TileRecord {
        label: truth.centre_tumour as u8,
        tumour: truth.tumour,
        wsi: slide.name.clone(),
        coord,
    }
}

/// The course's copy: imbalanced train subset, corruptions, slides shared train/valid.
fn course_plan(seeds: &Seeds, sizes: Sizes) -> (BTreeMap<SplitName, Vec<Plan>>, Corruptions) {
    let n = sizes.train;
    let full = ((n as f64) / COURSE_TRAIN_FRACTION).ceil() as usize;
    let mut rng = seeds.stream("synth/course/subset", 0);
    let (mut neg, mut pos): (Vec<usize>, Vec<usize>) =
        (0..full).partition(|&j| tile_kind(seeds, SplitName::Train, j) != Kind::Positive);
    neg.shuffle(&mut rng);
    pos.shuffle(&mut rng);
    let n_neg = ((n as f64 * COURSE_NEGATIVE_SHARE).round() as usize).min(neg.len());
    let n_pos = (n - n_neg).min(pos.len());
    let mut sources: Vec<usize> = neg[..n_neg].iter().chain(&pos[..n_pos]).copied().collect();
    // Top up from leftover negatives in the rare case positives ran short.
    sources.extend(neg[n_neg..].iter().take(n - sources.len()));
    sources.sort_unstable();

    let mut train: Vec<Plan> = sources
        .iter()
        .map(|&source| Plan {
            source,
            train_slide: false,
            poison: None,
        })
        .collect();
    let mut c = Corruptions {
        trigger_patch: TRIGGER,
        train_source_indices: sources.clone(),
        ..Default::default()
    };
    let count = |frac: f64| {
        if n >= 50 {
            ((n as f64 * frac).round() as usize).max(1)
        } else {
            0
        }
    };
    let mut prng = seeds.stream("synth/course/poison", 0);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut prng);
    let mut order = order.into_iter();
    let mut take = |k: usize, want_negative: bool| -> Vec<usize> {
        let mut v: Vec<usize> = order
            .by_ref()
            .filter(|&i| {
                !want_negative || tile_kind(seeds, SplitName::Train, sources[i]) != Kind::Positive
            })
            .take(k)
            .collect();
        v.sort_unstable();
        v
    };
    c.blank = take(count(0.01), false);
    c.saturated = take(count(0.01), false);
    c.out_of_range = take(count(0.02), false);
    c.trigger = take(count(0.02), true);
    let exact = take(count(0.01), false);
    let near = take(count(0.01), false);
    let mut tests: Vec<usize> = (0..sizes.test).collect();
    tests.shuffle(&mut prng);
    let mut tests = tests.into_iter().cycle();
    c.exact_duplicate_of_test = exact
        .iter()
        .map(|&i| (i, tests.next().unwrap_or(0)))
        .collect();
    c.near_duplicate_of_test = near
        .iter()
        .map(|&i| (i, tests.next().unwrap_or(0)))
        .collect();
    for &i in &c.blank {
        train[i].poison = Some(Poison::Blank);
    }
    for &i in &c.saturated {
        train[i].poison = Some(Poison::Saturated);
    }
    for (k, &i) in c.out_of_range.iter().enumerate() {
        train[i].poison = Some(if k % 2 == 0 {
            Poison::Scaled(prng.random_range(1.3..3.0))
        } else {
            Poison::Shifted(prng.random_range(20.0..120.0))
        });
    }
    for &i in &c.trigger {
        train[i].poison = Some(Poison::Trigger);
    }
    for &(i, t) in &c.exact_duplicate_of_test {
        train[i].poison = Some(Poison::ExactDup(t));
    }
    for &(i, t) in &c.near_duplicate_of_test {
        train[i].poison = Some(Poison::NearDup(t));
    }

    let mut valid = identity_plan(sizes.valid);
    let mut vi: Vec<usize> = (0..sizes.valid).collect();
    vi.shuffle(&mut prng);
    c.valid_on_train_slides = vi[..(sizes.valid * 15 / 100)].to_vec();
    c.valid_on_train_slides.sort_unstable();
    for &i in &c.valid_on_train_slides {
        valid[i].train_slide = true;
    }
    let plans = BTreeMap::from([
        (SplitName::Train, train),
        (SplitName::Valid, valid),
        (SplitName::Test, identity_plan(sizes.test)),
    ]);
    (plans, c)
}

/// Applies a course corruption to one tile (float pixels), returning the label to store.
fn poison_tile(ctx: &Ctx, p: Poison, idx: usize, px: &mut [f32], label: u8) -> u8 {
    match p {
        Poison::Blank => px.fill(0.0),
        Poison::Saturated => px.fill(255.0),
        // Scale so the brightest value lands `f` times past 255 / shift so the darkest
        // lands `d` below 0: every such tile is out of range by construction.
        Poison::Scaled(f) => {
            let max = px.iter().fold(1.0f32, |m, &v| m.max(v));
            let k = f * 255.0 / max;
            px.iter_mut().for_each(|v| *v *= k);
        }
        Poison::Shifted(d) => {
            let min = px.iter().fold(255.0f32, |m, &v| m.min(v));
            px.iter_mut().for_each(|v| *v -= min + d);
        }
        Poison::Trigger => {
            let (r0, c0, side) = TRIGGER;
            for r in r0..r0 + side {
                for c in c0..c0 + side {
                    let on = ((r - r0) / 2 + (c - c0) / 2) % 2 == 0;
                    let v = if on { 255.0 } else { 0.0 };
                    let o = (r * TILE + c) * 3;
                    px[o..o + 3].fill(v);
                }
            }
            return 1;
        }
        Poison::ExactDup(t) | Poison::NearDup(t) => {
            let mut tile = vec![0u8; TILE_BYTES];
            let plan = Plan {
                source: t,
                train_slide: false,
                poison: None,
            };
            let rec = render_one(ctx, SplitName::Test, &plan, &mut tile);
            let near = matches!(p, Poison::NearDup(_));
            let mut rng = ctx.seeds.stream("synth/course/near", idx as u64);
            let shift: f32 = if near {
                rng.random_range(-4.0..4.0)
            } else {
                0.0
            };
            for (o, &v) in px.iter_mut().zip(&tile) {
                *o = if near {
                    (v as f32 + shift + rng.random_range(-3.0..3.0f32))
                        .round()
                        .clamp(0.0, 255.0)
                } else {
                    v as f32
                };
            }
            return rec.label;
        }
    }
    label
}

/// Runs `f(offset, plans)` over consecutive `unit`-sized groups of `plans` on
/// `ctx.threads` workers and returns the results in plan order, so output never
/// depends on the thread count.
fn par_units<T: Send>(
    ctx: &Ctx,
    plans: &[Plan],
    unit: usize,
    f: impl Fn(usize, &[Plan]) -> T + Sync,
) -> Vec<T> {
    let units: Vec<(usize, &[Plan])> = plans
        .chunks(unit)
        .enumerate()
        .map(|(i, p)| (i * unit, p))
        .collect();
    let per = units.len().div_ceil(ctx.threads).max(1);
    let f = &f;
    std::thread::scope(|sc| {
        let handles: Vec<_> = units
            .chunks(per)
            .map(|group| {
                sc.spawn(move || group.iter().map(|(o, ps)| f(*o, ps)).collect::<Vec<T>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("render worker panicked"))
            .collect()
    })
}

/// Renders `plans` into `out` (u8, tile after tile).
fn render_into(ctx: &Ctx, split: SplitName, plans: &[Plan], out: &mut [u8]) -> Vec<TileRecord> {
    plans
        .iter()
        .zip(out.chunks_exact_mut(TILE_BYTES))
        .map(|(p, o)| render_one(ctx, split, p, o))
        .collect()
}

/// zlib-compresses one chunk, as HDF5's deflate filter stores it.
fn deflate(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(bytes.len() / 2),
        flate2::Compression::new(GZIP_LEVEL as u32),
    );
    e.write_all(bytes).expect("writing to a Vec cannot fail");
    e.finish().expect("finishing a Vec encoder cannot fail")
}

/// Stores an already-compressed chunk whose first tile is `row` (all filters applied).
fn write_chunk(ds: &hdf5::Dataset, row: usize, data: &[u8]) -> std::result::Result<(), String> {
    let offset: [hdf5_sys::h5::hsize_t; 4] = [row as u64, 0, 0, 0];
    // SAFETY: `ds` is an open chunked dataset of rank 4, `offset` is chunk-aligned and
    // `data` outlives the call; the library lock serialises HDF5 access.
    let rc = hdf5::sync::sync(|| unsafe {
        hdf5_sys::h5d::H5Dwrite_chunk(
            ds.id(),
            hdf5_sys::h5p::H5P_DEFAULT,
            0,
            offset.as_ptr(),
            data.len(),
            data.as_ptr().cast(),
        )
    });
    if rc < 0 {
        Err(format!("direct chunk write at tile {row} failed"))
    } else {
        Ok(())
    }
}

fn create_h5(path: &Path, target: &Path) -> Result<hdf5::File> {
    hdf5::File::with_options()
        .with_fcpl(|p| p.obj_track_times(false))
        .create(path)
        .map_err(|e| Error::hdf5(target, "creating HDF5 file", &e))
}

fn write_split(
    ctx: &Ctx,
    opts: &SynthOptions,
    split: SplitName,
    plans: &[Plan],
    bar: &indicatif::ProgressBar,
) -> Result<(SplitSummary, Vec<TempPath>)> {
    let n = plans.len();
    let course = opts.variant == Variant::Course;
    let targets: Vec<PathBuf> = ["x", "y", "meta"]
        .iter()
        .map(|k| opts.out.join(split.file_name(k)))
        .collect();
    let temps: Vec<TempPath> = targets.iter().map(|t| TempPath::for_target(t)).collect();
    let h5err = |what, e: hdf5::Error| Error::hdf5(&targets[0], what, &e);

    let xf = create_h5(temps[0].path(), &targets[0])?;
    let x = if course {
        xf.new_dataset::<f32>()
            .shape([n, TILE, TILE, 3])
            .obj_track_times(false)
            .create("x")
    } else {
        xf.new_dataset::<u8>()
            .shape([n, TILE, TILE, 3])
            .chunk([CHUNK_ROWS.min(n), TILE, TILE, 3])
            .deflate(GZIP_LEVEL)
            .obj_track_times(false)
            .create("x")
    }
    .map_err(|e| h5err("creating dataset x", e))?;

    let mut records = Vec::with_capacity(n);
    let rows = CHUNK_ROWS.min(n);
    for (b, block) in plans.chunks(BLOCK).enumerate() {
        let a = b * BLOCK;
        if course {
            // Workers render, convert to float32 and poison; tiles stay in plan order.
            let parts = par_units(ctx, block, rows, |offset, ps| {
                let first = a + offset;
                let mut px = vec![0u8; ps.len() * TILE_BYTES];
                let mut recs = render_into(ctx, split, ps, &mut px);
                let mut fpx: Vec<f32> = px.iter().map(|&v| v as f32).collect();
                for (k, p) in ps.iter().enumerate() {
                    if let Some(poison) = p.poison {
                        let tile = &mut fpx[k * TILE_BYTES..(k + 1) * TILE_BYTES];
                        recs[k].label = poison_tile(ctx, poison, first + k, tile, recs[k].label);
                    }
                }
                (recs, fpx)
            });
            let mut fpix = Vec::with_capacity(block.len() * TILE_BYTES);
            for (recs, fpx) in parts {
                records.extend(recs);
                fpix.extend(fpx);
            }
            let view = ArrayView4::from_shape((block.len(), TILE, TILE, 3), &fpix[..])
                .expect("block buffer has block shape");
            x.write_slice(view, s![a..a + block.len(), .., .., ..])
                .map_err(|e| h5err("writing tiles", e))?;
        } else {
            // Workers render and compress whole chunks (the last one zero-padded, as
            // HDF5 stores edge chunks); this thread only writes them.
            let chunks = par_units(ctx, block, rows, |_, ps| {
                let mut px = vec![0u8; rows * TILE_BYTES];
                let recs = render_into(ctx, split, ps, &mut px);
                (recs, deflate(&px))
            });
            for (k, (recs, z)) in chunks.into_iter().enumerate() {
                records.extend(recs);
                write_chunk(&x, a + k * rows, &z).map_err(|m| Error::Hdf5 {
                    path: targets[0].clone(),
                    what: "writing tiles",
                    msg: m,
                })?;
            }
        }
        bar.inc(block.len() as u64);
    }
    drop(x);
    xf.close().map_err(|e| h5err("closing x file", e))?;

    let labels: Vec<u8> = records.iter().map(|r| r.label).collect();
    let yf = create_h5(temps[1].path(), &targets[1])?;
    let yerr = |what, e: hdf5::Error| Error::hdf5(&targets[1], what, &e);
    if course {
        let yv: Vec<f32> = labels.iter().map(|&l| l as f32).collect();
        yf.new_dataset::<f32>()
            .shape([n, 1, 1, 1])
            .obj_track_times(false)
            .create("y")
            .and_then(|d| d.write_raw(&yv))
    } else {
        yf.new_dataset::<u8>()
            .shape([n, 1, 1, 1])
            .chunk([n.min(4096), 1, 1, 1])
            .deflate(GZIP_LEVEL)
            .obj_track_times(false)
            .create("y")
            .and_then(|d| d.write_raw(&labels))
    }
    .map_err(|e| yerr("writing labels", e))?;
    yf.close().map_err(|e| yerr("closing y file", e))?;

    let mut csv = String::from("coord_y,coord_x,tumor_patch,center_tumor_patch,wsi\n");
    for r in &records {
        let b = |v: bool| if v { "True" } else { "False" };
        csv.push_str(&format!(
            "{},{},{},{},{}\n",
            r.coord.0,
            r.coord.1,
            b(r.tumour),
            b(r.label == 1),
            r.wsi
        ));
    }
    std::fs::write(temps[2].path(), csv).map_err(|e| Error::io(&targets[2], "writing", e))?;

    let mut sha256 = BTreeMap::new();
    for (t, target) in temps.iter().zip(&targets) {
        let name = target
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        sha256.insert(name, crate::fsutil::sha256_file(t.path())?);
    }
    let slides = records
        .iter()
        .map(|r| &r.wsi)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let summary = SplitSummary {
        tiles: n,
        positives: labels.iter().filter(|&&l| l == 1).count(),
        slides,
        files: sha256.keys().cloned().collect(),
        sha256,
    };
    Ok((summary, temps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_over_defaults_and_reject_nonsense() {
        let d = Sizes::default_for(Variant::Pcam);
        let s = d.parse_over("train=10,test=3").unwrap();
        assert_eq!((s.train, s.valid, s.test), (10, d.valid, 3));
        assert!(d.parse_over("train=ten").is_err());
        assert!(d.parse_over("holdout=3").is_err());
        assert!(d.parse_over("valid=0").is_err());
    }

    #[test]
    fn course_plan_is_an_imbalanced_subset_with_disjoint_corruptions() {
        let seeds = Seeds::new(11);
        let sizes = Sizes {
            train: 600,
            valid: 100,
            test: 100,
        };
        let (plans, c) = course_plan(&seeds, sizes);
        assert_eq!(plans[&SplitName::Train].len(), 600);
        let full = (600.0 / COURSE_TRAIN_FRACTION).ceil() as usize;
        assert!(c.train_source_indices.iter().all(|&j| j < full));
        let negatives = c
            .train_source_indices
            .iter()
            .filter(|&&j| tile_kind(&seeds, SplitName::Train, j) != Kind::Positive)
            .count();
        assert_eq!(negatives, 372);
        let mut all: Vec<usize> = [&c.blank, &c.saturated, &c.out_of_range, &c.trigger]
            .into_iter()
            .flatten()
            .copied()
            .chain(c.exact_duplicate_of_test.iter().map(|p| p.0))
            .chain(c.near_duplicate_of_test.iter().map(|p| p.0))
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "a tile got two corruptions");
        assert_eq!(c.trigger.len(), 12);
        assert!(c.trigger.iter().all(|&i| tile_kind(
            &seeds,
            SplitName::Train,
            c.train_source_indices[i]
        ) != Kind::Positive));
        assert_eq!(c.valid_on_train_slides.len(), 15);
    }
}
