//! `pcam bench throughput`: images/s of the real inference path and of a training step, at
//! batch size 1 and over a sweep of batch sizes, with warm-up and repeated timing; a stage
//! breakdown (HDF5 read + decode, batch assembly, host→device copy, forward, backward,
//! optimiser step, device→host copy) and the compute-only bound (tensors already on the
//! device). The result file records where it ran: host, CPU, device, threads, Slurm job.
//!
//! The pipeline is the one `pcam predict` and training use: chunk-aligned block reads of
//! the x file (decoded to u8 once per block), `make_batch` (normalise, augment in training),
//! one copy to the device, the model. Reads wrap around the file, so any batch size can be
//! timed on a small split. A timed training batch then goes through `train::run_steps`,
//! the loop of `pcam train` (device copy, `Learner::step`, step record), and is augmented
//! when the config's `train.augment` says so, as in training.

use crate::config::{ModelConfig, ModelKind, RunConfig, TrainConfig};
use crate::data::hdf5::{Block, OpenOptions, Split};
use crate::data::loader::{self, NormStats, TensorBatch, Tiles};
use crate::data::{SplitName, TILE_BYTES};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::seed::Seeds;
use crate::train::checkpoint::TrainState;
use crate::train::run_steps;
use crate::train::step::{Learner, Stage};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tch::{Device, Tensor};

/// What to time (`configs/bench/throughput.yaml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThroughputSpec {
    /// Split whose x/y files are read (`train`, `valid` or `test`).
    #[serde(default = "default_split")]
    pub split: String,
    /// Batch sizes, each ≥ 1.
    pub batch_sizes: Vec<usize>,
    /// Batches run before each timed measurement.
    #[serde(default = "default_warmup")]
    pub warmup: usize,
    /// Timed repetitions per measurement; the median is reported.
    #[serde(default = "default_repeats")]
    pub repeats: usize,
    /// Each repetition runs whole batches until at least this many seconds have passed.
    #[serde(default = "default_min_seconds")]
    pub min_seconds: f64,
    /// `inference`, `train` or both.
    #[serde(default = "default_modes")]
    pub modes: Vec<Mode>,
    pub models: Vec<BenchModel>,
}

fn default_split() -> String {
    "valid".into()
}
fn default_warmup() -> usize {
    3
}
fn default_repeats() -> usize {
    5
}
fn default_min_seconds() -> f64 {
    0.25
}
fn default_modes() -> Vec<Mode> {
    vec![Mode::Inference, Mode::Train]
}

/// A model to time: a name for tables and plots, and its architecture.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchModel {
    pub name: String,
    pub kind: ModelKind,
    #[serde(default)]
    pub hidden: Vec<usize>,
    #[serde(default)]
    pub channels: Vec<usize>,
}

/// Inference (no gradients, evaluation mode, probabilities back on the host) or one
/// training step (forward, loss, backward, optimiser).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Inference,
    Train,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Inference => "inference",
            Mode::Train => "train",
        }
    }
}

/// The spec shipped in the binary (`configs/bench/throughput.yaml`).
pub fn default_spec() -> ThroughputSpec {
    serde_yaml_ng::from_str(include_str!("../../configs/bench/throughput.yaml"))
        .expect("the embedded bench spec parses (unit-tested)")
}

/// Reads and checks a throughput spec.
pub fn load_spec(path: &Path) -> Result<ThroughputSpec> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "reading", e))?;
    let de = serde_yaml_ng::Deserializer::from_str(&text);
    let spec: ThroughputSpec = serde_path_to_error::deserialize(de).map_err(|e| {
        Error::bad_file(
            path,
            format!(
                "bench field `{}`: {}",
                e.path(),
                crate::error::one_line(&e.inner().to_string())
            ),
        )
    })?;
    spec.check().map_err(|m| Error::bad_file(path, m))?;
    Ok(spec)
}

impl ThroughputSpec {
    /// Checks every field; the message names the field.
    pub fn check(&self) -> std::result::Result<(), String> {
        self.split.parse::<SplitName>().map_err(|_| {
            format!(
                "bench field `split`: `{}` is not train, valid or test",
                self.split
            )
        })?;
        if self.batch_sizes.is_empty() || self.batch_sizes.iter().any(|&b| b == 0 || b > 65536) {
            return Err("bench field `batch_sizes`: give one or more sizes in 1..=65536".into());
        }
        if self.repeats == 0 || self.repeats > 1000 {
            return Err("bench field `repeats`: must be in 1..=1000".into());
        }
        if !(self.min_seconds.is_finite() && self.min_seconds >= 0.0 && self.min_seconds <= 600.0) {
            return Err("bench field `min_seconds`: must be in 0..=600".into());
        }
        if self.modes.is_empty() {
            return Err("bench field `modes`: name inference, train or both".into());
        }
        if self.models.is_empty() {
            return Err("bench field `models`: name at least one model".into());
        }
        for (i, m) in self.models.iter().enumerate() {
            if m.name.is_empty() {
                return Err(format!("bench field `models[{i}].name`: must not be empty"));
            }
            if m.kind == ModelKind::Cnn && m.channels.is_empty() {
                return Err(format!(
                    "bench field `models[{i}].channels`: a cnn needs conv channels"
                ));
            }
            if m.hidden.iter().chain(&m.channels).any(|&w| w == 0) {
                return Err(format!(
                    "bench field `models[{i}]`: layer widths must be ≥ 1"
                ));
            }
        }
        Ok(())
    }

    /// The split to read.
    pub fn split_name(&self) -> SplitName {
        self.split.parse().unwrap_or(SplitName::Valid)
    }
}

/// Seconds per image in each stage (means over one timed pass with a device
/// synchronisation between stages, so stages do not overlap).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stages {
    /// Inference: the HDF5 chunk read and decode. Training (which reads its split into
    /// memory before the first epoch, as `pcam train` does): taking the tiles from memory.
    pub read_decode: f64,
    pub assemble: f64,
    pub to_device: f64,
    pub forward: f64,
    /// Training only.
    pub backward: f64,
    /// Training only: gradient norms, clipping, the optimiser update and the loss read
    /// back (`train::step::Stage::Update`).
    pub optimizer: f64,
    /// Inference only: probabilities back to the host.
    pub to_host: f64,
}

impl Stages {
    /// (name, seconds per image), in pipeline order, stages of `mode` only.
    pub fn named(&self, mode: Mode) -> Vec<(&'static str, f64)> {
        let mut v = vec![
            ("HDF5 read + decode", self.read_decode),
            ("batch assembly", self.assemble),
            ("host→device", self.to_device),
            ("forward", self.forward),
        ];
        match mode {
            Mode::Inference => v.push(("device→host", self.to_host)),
            Mode::Train => {
                v.push(("backward", self.backward));
                v.push(("optimiser step", self.optimizer));
            }
        }
        v
    }

    fn total(&self) -> f64 {
        self.read_decode
            + self.assemble
            + self.to_device
            + self.forward
            + self.backward
            + self.optimizer
            + self.to_host
    }

    fn add(&mut self, o: &Stages) {
        self.read_decode += o.read_decode;
        self.assemble += o.assemble;
        self.to_device += o.to_device;
        self.forward += o.forward;
        self.backward += o.backward;
        self.optimizer += o.optimizer;
        self.to_host += o.to_host;
    }

    fn scaled(&self, k: f64) -> Stages {
        Stages {
            read_decode: self.read_decode * k,
            assemble: self.assemble * k,
            to_device: self.to_device * k,
            forward: self.forward * k,
            backward: self.backward * k,
            optimizer: self.optimizer * k,
            to_host: self.to_host * k,
        }
    }

    /// The stage taking the largest share of the time.
    pub fn bottleneck(&self, mode: Mode) -> (&'static str, f64) {
        let total = self.total();
        self.named(mode)
            .into_iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(n, s)| (n, if total > 0.0 { s / total } else { 0.0 }))
            .unwrap_or(("none", 0.0))
    }
}

/// One (model, mode, batch size) measurement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub model: String,
    pub architecture: String,
    pub mode: Mode,
    pub batch_size: usize,
    /// Median images/s of the whole pipeline over the repetitions.
    pub images_per_second: f64,
    /// Every repetition's images/s, in the order run.
    pub repetitions: Vec<f64>,
    /// Median images/s with the batch already on the device (compute only).
    pub compute_only_images_per_second: f64,
    pub compute_only_repetitions: Vec<f64>,
    /// Seconds per image in each stage.
    pub stages: Stages,
}

/// Where a benchmark ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub host: Option<String>,
    pub cpu: String,
    /// `cpu` or `cuda:0`.
    pub device: String,
    /// The GPU's name (from nvidia-smi) on CUDA; the CPU model otherwise.
    pub device_name: String,
    pub cuda_available: bool,
    pub threads: usize,
    pub torch_version: String,
    pub pcam_version: String,
    pub omp_wait_policy: Option<String>,
    pub slurm_job_id: Option<String>,
    pub slurm_partition: Option<String>,
    /// `CUDA_VISIBLE_DEVICES` as the job saw it (a Slurm GPU allocation sets it).
    pub cuda_visible_devices: Option<String>,
}

impl Machine {
    /// Where it ran: the Slurm partition, else the host name, else `local`.
    pub fn place(&self) -> String {
        self.slurm_partition
            .clone()
            .or_else(|| self.host.clone())
            .unwrap_or_else(|| "local".into())
    }
}

/// A benchmark result file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub kind: String,
    pub created_utc: String,
    pub machine: Machine,
    /// The data read (`synthetic.json`'s note when synthetic).
    pub data: String,
    pub data_synthetic: Option<String>,
    pub spec: ThroughputSpec,
    pub rows: Vec<Row>,
}

/// The file kind written into every report.
pub const REPORT_KIND: &str = "pcam-bench-throughput";

impl Report {
    /// Reads a result file.
    pub fn read(path: &Path) -> Result<Report> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "reading", e))?;
        let r: Report = serde_json::from_str(&text).map_err(|e| {
            Error::bad_file(
                path,
                format!(
                    "not a pcam bench result: {}",
                    crate::error::one_line(&e.to_string())
                ),
            )
        })?;
        if r.kind != REPORT_KIND {
            return Err(Error::bad_file(
                path,
                format!("kind is `{}`, expected `{REPORT_KIND}`", r.kind),
            ));
        }
        Ok(r)
    }

    /// A short label for plots and tables: partition (or host) and device.
    pub fn label(&self) -> String {
        format!("{} · {}", self.machine.place(), self.machine.device)
    }

    /// The row for (model, mode, batch size).
    pub fn row(&self, model: &str, mode: Mode, batch: usize) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.model == model && r.mode == mode && r.batch_size == batch)
    }
}

/// The tiles of one split, read one HDF5 chunk at a time (decoded to u8 once per chunk)
/// and served as consecutive batches that wrap around the file. Reads happen in a reader
/// thread that stays up to two chunks ahead (the pipeline, as `pcam predict` overlaps
/// reading and computing) or inline in the caller (the stage breakdown, which must see
/// each stage's own cost).
struct TileStream {
    /// The x file read.
    path: std::path::PathBuf,
    /// The file's chunks, in order and round and round, read ahead or inline.
    blocks: Box<dyn Iterator<Item = Result<Block>>>,
    block: Block,
    pos: usize,
}

impl TileStream {
    fn open(
        dir: &Path,
        name: SplitName,
        opts: &OpenOptions,
        reader_thread: bool,
    ) -> Result<TileStream> {
        let split = Split::open_dir(dir, name, opts)?;
        let path = split.images.path.clone();
        // One chunk per read, so the decode cost is spread evenly over the batches.
        let ranges = split
            .images
            .ranges(split.images.chunk_rows().unwrap_or(32))
            .into_iter()
            .cycle();
        let read = move |r| split.read_block(r, crate::data::InvalidPolicy::Clip);
        let blocks: Box<dyn Iterator<Item = Result<Block>>> = if reader_thread {
            Box::new(loader::read_ahead(ranges, 2, read).0.into_iter())
        } else {
            Box::new(ranges.map(read))
        };
        let mut s = TileStream {
            path,
            blocks,
            block: Block::default(),
            pos: 0,
        };
        s.refill()?;
        Ok(s)
    }

    /// Tiles already in memory, served in blocks of 32 as the file's chunks would be
    /// (train mode: what training reads from, without the HDF5 read).
    fn in_memory(tiles: Arc<Tiles>) -> TileStream {
        let n = tiles.len();
        let ranges = (0..n).step_by(32).map(move |a| a..(a + 32).min(n)).cycle();
        let blocks = ranges.map(move |r: std::ops::Range<usize>| {
            Ok(Block {
                indices: r.clone().collect(),
                pixels: tiles.pixels[r.start * TILE_BYTES..r.end * TILE_BYTES].to_vec(),
                labels: tiles.labels[r].to_vec(),
                ..Block::default()
            })
        });
        TileStream {
            path: "memory".into(),
            blocks: Box::new(blocks),
            block: Block::default(),
            pos: 0,
        }
    }

    fn refill(&mut self) -> Result<()> {
        self.block = self
            .blocks
            .next()
            .ok_or_else(|| Error::Usage(format!("reader of {} stopped", self.path.display())))??;
        self.pos = 0;
        Ok(())
    }

    /// The next `n` tiles (pixels and labels), reading blocks as needed.
    fn next(&mut self, n: usize) -> Result<Tiles> {
        let mut pixels = Vec::with_capacity(n * TILE_BYTES);
        let mut labels = Vec::with_capacity(n);
        while labels.len() < n {
            if self.pos == self.block.indices.len() {
                self.refill()?;
            }
            let take = (n - labels.len()).min(self.block.indices.len() - self.pos);
            let a = self.pos;
            pixels.extend_from_slice(&self.block.pixels[a * TILE_BYTES..(a + take) * TILE_BYTES]);
            labels.extend_from_slice(&self.block.labels[a..a + take]);
            self.pos += take;
        }
        let mut t = Tiles::unlabelled(pixels, (0..n).collect());
        t.labels = labels;
        Ok(t)
    }
}

/// Blocks until queued device work is done (no-op on the CPU).
fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// A model with its optimiser, timed one batch at a time. Timed training batches go
/// through [`crate::train::run_steps`], the loop of `pcam train` (device copy, step,
/// step record); the stage breakdown calls the same [`Learner::step`] with an observer.
struct Bench<'a> {
    cfg: &'a RunConfig,
    learner: Learner,
    /// What training keeps while it steps (schedule, step records).
    state: TrainState,
    bar: indicatif::ProgressBar,
    seeds: Seeds,
    device: Device,
    norm: NormStats,
    step: usize,
}

impl Bench<'_> {
    /// One batch through the whole pipeline; with `stages`, synchronises after each
    /// stage and adds its seconds there.
    fn batch(
        &mut self,
        mode: Mode,
        stream: &mut TileStream,
        b: usize,
        stages: Option<&mut Stages>,
    ) -> Result<usize> {
        let timed = stages.is_some();
        let mut lap = Lap::new(self.device, timed);
        let mut s = Stages::default();
        let tiles = stream.next(b)?;
        s.read_decode = lap.split();
        let idx: Vec<usize> = (0..b).collect();
        let aug = match mode {
            // As training augments: when the config says so, drawn per step here.
            Mode::Train => self.cfg.train.augment.then_some((&self.seeds, self.step)),
            Mode::Inference => None,
        };
        let host = loader::make_batch(&tiles, &idx, &self.norm, aug);
        s.assemble = lap.split();
        let (x, y) = host.to_tensors(self.device);
        s.to_device = lap.split();
        self.model_step(mode, &x, &y, &mut lap, &mut s)?;
        if let Some(acc) = stages {
            acc.add(&s);
        }
        Ok(b)
    }

    /// A training step as `pcam train` runs it; returns the batch's images.
    fn train_steps(&mut self, batch: TensorBatch) -> usize {
        let done = run_steps(
            &mut self.learner,
            &mut self.state,
            std::iter::once(batch),
            &self.seeds,
            self.device,
            &self.bar,
            "bench",
        );
        self.step += 1;
        done.seen
    }

    /// One step on a batch already on the device.
    fn compute(&mut self, mode: Mode, x: &Tensor, y: &Tensor) -> Result<usize> {
        let b = x.size()[0] as usize;
        if mode == Mode::Train {
            let (x, y) = (x.shallow_clone(), y.shallow_clone());
            return Ok(self.train_steps(TensorBatch {
                x,
                y,
                tiles: (0..b).collect(),
            }));
        }
        let mut lap = Lap::new(self.device, false);
        self.model_step(mode, x, y, &mut lap, &mut Stages::default())?;
        Ok(b)
    }

    /// The model's part of a batch: inference (forward, probabilities to the host) or a
    /// training step (`Learner::step`, the one training uses); each stage's time into `s`.
    fn model_step(
        &mut self,
        mode: Mode,
        x: &Tensor,
        y: &Tensor,
        lap: &mut Lap,
        s: &mut Stages,
    ) -> Result<()> {
        match mode {
            Mode::Inference => {
                let p = tch::no_grad(|| self.learner.model.forward(x, None).sigmoid());
                s.forward = lap.split();
                let v = Vec::<f32>::try_from(&p.to_device(Device::Cpu))
                    .map_err(|e| Error::failed("reading probabilities", e))?;
                std::hint::black_box(v);
                s.to_host = lap.split();
            }
            Mode::Train => {
                let mut rng = self.seeds.stream("bench/dropout", self.step as u64);
                self.learner
                    .step(x, y, &mut rng, self.cfg.train.lr, &mut |stage| {
                        let t = lap.split();
                        match stage {
                            Stage::Forward => s.forward = t,
                            Stage::Backward => s.backward = t,
                            Stage::Update => s.optimizer = t,
                        }
                    });
                self.step += 1;
            }
        }
        Ok(())
    }
}

/// Stage timer: seconds since the last split, after a device synchronisation when timed.
struct Lap {
    device: Device,
    timed: bool,
    t: Instant,
}

impl Lap {
    fn new(device: Device, timed: bool) -> Lap {
        Lap {
            device,
            timed,
            t: Instant::now(),
        }
    }
    fn split(&mut self) -> f64 {
        if !self.timed {
            return 0.0;
        }
        sync(self.device);
        let now = Instant::now();
        let s = (now - self.t).as_secs_f64();
        self.t = now;
        s
    }
}

/// Runs whole batches with `f` until `min_seconds` have passed (at least two batches),
/// then waits for the device; returns (images, seconds).
fn repeat_for(
    min_seconds: f64,
    device: Device,
    mut f: impl FnMut() -> Result<usize>,
) -> Result<(usize, f64)> {
    let t0 = Instant::now();
    let mut n = 0usize;
    let mut images = 0usize;
    while n < 2 || t0.elapsed().as_secs_f64() < min_seconds {
        images += f()?;
        n += 1;
    }
    sync(device);
    Ok((images, t0.elapsed().as_secs_f64()))
}

/// Images/s of the batches run by [`repeat_for`] (`f` returns each batch's images).
fn timed(min_seconds: f64, device: Device, f: impl FnMut() -> Result<usize>) -> Result<f64> {
    let (images, secs) = repeat_for(min_seconds, device, f)?;
    Ok(images as f64 / secs)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// The architecture in words, e.g. `mlp [64, 32]` or `cnn [16, 32, 64] head [64]`.
pub fn architecture(m: &ModelConfig) -> String {
    match m.kind {
        ModelKind::Mlp => format!("mlp {:?}", m.hidden),
        ModelKind::Cnn => format!("cnn {:?} head {:?}", m.channels, m.hidden),
    }
}

/// Runs the benchmark of `spec` on the data and device of `cfg`.
pub fn run(cfg: &RunConfig, spec: &ThroughputSpec, progress: Progress) -> Result<Report> {
    let device = crate::device::select(cfg.train.device)?;
    let seeds = Seeds::new(cfg.seed);
    let pins = seeds.apply_to_torch(cfg.train.threads);
    let opts = cfg.data.open_options(progress);
    let split = spec.split_name();
    let mut stream = TileStream::open(&cfg.data.dir, split, &opts, true)?;
    let mut inline = TileStream::open(&cfg.data.dir, split, &opts, false)?;
    let norm = NormStats::of(&stream.next(stream.block.indices.len().clamp(1, 256))?);
    // Training reads the split into memory first and draws its epochs from there, so
    // train mode does too (`train::epoch_batches`, the loader of `pcam train`).
    let mut memory = if spec.modes.contains(&Mode::Train) {
        let tiles = Arc::new(cfg.data.plan()?.tiles(split, &opts)?);
        if tiles.is_empty() {
            return Err(Error::bad_file(&stream.path, "no tiles to train on"));
        }
        let stream = TileStream::in_memory(Arc::clone(&tiles));
        Some((tiles, stream))
    } else {
        None
    };
    let jobs: usize = spec.models.len() * spec.modes.len() * spec.batch_sizes.len();
    let bar = progress.bar(jobs as u64, "bench throughput", "measurements");
    let mut rows = vec![];
    for m in &spec.models {
        let model = ModelConfig {
            kind: m.kind,
            hidden: m.hidden.clone(),
            channels: m.channels.clone(),
            dropout: cfg.model.dropout,
        };
        tch::manual_seed(pins.torch_seed);
        let learner = Learner::new(model.build(device), &cfg.train);
        let mut bench = Bench {
            cfg,
            state: TrainState::fresh(&cfg.train, &learner, norm, 1),
            bar: indicatif::ProgressBar::hidden(),
            learner,
            seeds,
            device,
            norm,
            step: 0,
        };
        for &mode in &spec.modes {
            for &b in &spec.batch_sizes {
                bar.set_message(format!("bench {} {} batch {b}", m.name, mode.as_str()));
                let mut reps = vec![];
                let staged = match (mode, memory.as_mut()) {
                    (Mode::Train, Some((tiles, in_memory))) => {
                        let t = TrainConfig {
                            batch_size: b,
                            ..cfg.train.clone()
                        };
                        let mut epochs = (0usize..)
                            .flat_map(|e| crate::train::epoch_batches(tiles, &seeds, e, &t, norm));
                        let mut next = || match epochs.next() {
                            Some(batch) => Ok(bench.train_steps(batch)),
                            None => Err(Error::Usage("the train loader stopped".into())),
                        };
                        for _ in 0..spec.warmup {
                            next()?;
                        }
                        for _ in 0..spec.repeats {
                            reps.push(timed(spec.min_seconds, device, &mut next)?);
                        }
                        in_memory
                    }
                    _ => {
                        for _ in 0..spec.warmup {
                            bench.batch(mode, &mut stream, b, None)?;
                        }
                        for _ in 0..spec.repeats {
                            reps.push(timed(spec.min_seconds, device, || {
                                bench.batch(mode, &mut stream, b, None)
                            })?);
                        }
                        &mut inline
                    }
                };
                let mut stages = Stages::default();
                let (n, _) = repeat_for(spec.min_seconds, device, || {
                    bench.batch(mode, staged, b, Some(&mut stages))
                })?;
                let stages = stages.scaled(1.0 / n as f64);
                let tiles = stream.next(b)?;
                let idx: Vec<usize> = (0..b).collect();
                let (x, y) = loader::make_batch(&tiles, &idx, &norm, None).to_tensors(device);
                for _ in 0..spec.warmup {
                    bench.compute(mode, &x, &y)?;
                }
                let mut compute = vec![];
                for _ in 0..spec.repeats {
                    compute.push(timed(spec.min_seconds, device, || {
                        bench.compute(mode, &x, &y)
                    })?);
                }
                rows.push(Row {
                    model: m.name.clone(),
                    architecture: architecture(&model),
                    mode,
                    batch_size: b,
                    images_per_second: median(&reps),
                    repetitions: reps,
                    compute_only_images_per_second: median(&compute),
                    compute_only_repetitions: compute,
                    stages,
                });
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    let cpu = crate::run::cpu_model();
    let cuda = matches!(device, Device::Cuda(_));
    Ok(Report {
        kind: REPORT_KIND.into(),
        created_utc: crate::run::utc_stamp(),
        machine: Machine {
            host: crate::run::hostname(),
            device_name: if cuda { gpu_name() } else { cpu.clone() },
            cpu,
            device: match device {
                Device::Cuda(i) => format!("cuda:{i}"),
                _ => "cpu".into(),
            },
            cuda_available: tch::Cuda::is_available(),
            threads: cfg.train.threads,
            torch_version: env!("PCAM_TORCH_VERSION").into(),
            pcam_version: env!("CARGO_PKG_VERSION").into(),
            omp_wait_policy: std::env::var("OMP_WAIT_POLICY").ok(),
            slurm_job_id: std::env::var("SLURM_JOB_ID").ok(),
            slurm_partition: std::env::var("SLURM_JOB_PARTITION").ok(),
            cuda_visible_devices: std::env::var("CUDA_VISIBLE_DEVICES").ok(),
        },
        data: stream.path.display().to_string(),
        data_synthetic: crate::data::synth::note(&cfg.data.dir),
        spec: spec.clone(),
        rows,
    })
}

/// `results/bench/throughput-<partition or host>-<job id or UTC time>.json`.
pub fn default_out(r: &Report) -> std::path::PathBuf {
    let m = &r.machine;
    let place = m.place();
    let when = m
        .slurm_job_id
        .clone()
        .unwrap_or_else(|| r.created_utc.clone());
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    Path::new("results").join("bench").join(format!(
        "throughput-{}-{}.json",
        clean(&place),
        clean(&when)
    ))
}

/// The GPU's name from `nvidia-smi`, or a generic one.
fn gpu_name() -> String {
    std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name", "--format=csv,noheader", "-i", "0"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "CUDA device 0".into())
}

impl Report {
    /// What `pcam bench throughput` prints: where it ran (device, threads, Slurm job and
    /// partition), whether the data is synthetic, then [`markdown`].
    pub fn to_text(&self) -> String {
        let m = &self.machine;
        let mut o = format!(
            "# {} on {} ({}), {} threads{}{}\n",
            self.kind,
            m.device,
            m.device_name,
            m.threads,
            m.slurm_job_id
                .as_ref()
                .map(|j| format!(", Slurm job {j}"))
                .unwrap_or_default(),
            m.slurm_partition
                .as_ref()
                .map(|p| format!(" in {p}"))
                .unwrap_or_default(),
        );
        if let Some(n) = &self.data_synthetic {
            o += &format!("# data: SYNTHETIC ({n})\n");
        }
        o + &markdown(self)
    }
}

/// The result table as Markdown: one line per measurement.
pub fn markdown(r: &Report) -> String {
    let mut s = String::from(
        "| model | mode | batch | img/s (median) | min–max | compute-only img/s | pipeline / compute | bottleneck |\n|---|---|---:|---:|---:|---:|---:|---|\n",
    );
    for row in &r.rows {
        let lo = row
            .repetitions
            .iter()
            .cloned()
            .fold(f64::INFINITY, f64::min);
        let hi = row
            .repetitions
            .iter()
            .cloned()
            .fold(f64::NEG_INFINITY, f64::max);
        let (stage, share) = row.stages.bottleneck(row.mode);
        s.push_str(&format!(
            "| {} | {} | {} | {:.1} | {:.1}–{:.1} | {:.1} | {:.0}% | {stage} ({:.0}%) |\n",
            row.architecture,
            row.mode.as_str(),
            row.batch_size,
            row.images_per_second,
            lo,
            hi,
            row.compute_only_images_per_second,
            100.0 * row.images_per_second / row.compute_only_images_per_second,
            100.0 * share
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ThroughputSpec {
        serde_yaml_ng::from_str(
            "batch_sizes: [1, 4]\nmodels:\n  - {name: m, kind: mlp, hidden: [8]}\n",
        )
        .unwrap()
    }

    #[test]
    fn defaults_and_checks_name_the_field() {
        let s = spec();
        assert_eq!(s.split_name(), SplitName::Valid);
        assert_eq!(s.modes, vec![Mode::Inference, Mode::Train]);
        s.check().unwrap();
        let mut bad = s.clone();
        bad.batch_sizes = vec![0];
        assert!(bad.check().unwrap_err().contains("batch_sizes"));
        let mut bad = s.clone();
        bad.split = "tset".into();
        assert!(bad.check().unwrap_err().contains("`split`"));
        let mut bad = s.clone();
        bad.models[0].kind = ModelKind::Cnn;
        assert!(bad.check().unwrap_err().contains("models[0].channels"));
    }

    #[test]
    fn embedded_spec_is_valid() {
        let s = default_spec();
        s.check().unwrap();
        assert_eq!(s.batch_sizes.first(), Some(&1));
        assert_eq!(s.batch_sizes.last(), Some(&512));
    }

    #[test]
    fn median_and_bottleneck() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        let s = Stages {
            read_decode: 1.0,
            forward: 3.0,
            to_host: 1.0,
            backward: 100.0, // not an inference stage
            ..Default::default()
        };
        let (name, _) = s.bottleneck(Mode::Inference);
        assert_eq!(name, "forward");
        assert_eq!(s.bottleneck(Mode::Train).0, "backward");
    }
}
