//! Throughput benchmarks (`pcam bench train`): training images/s of the loop `pcam train`
//! runs (`train::run_steps` over `train::epoch_batches`: in-memory tiles → background
//! batch assembly with the run's augmentation → `train::step::Learner::step` → step
//! records), beside the same loop over batches already in memory as tensors (compute
//! only). The ratio says whether the pipeline keeps the model fed; the per-step split
//! (waiting for a batch, the step, logging) says where a slow epoch's time goes.

pub mod report;
pub mod throughput;

use crate::config::ResolvedConfig;
use crate::data::loader::{self, NormStats, TensorBatch, Tiles};
use crate::seed::Seeds;
use crate::train::checkpoint::TrainState;
use crate::train::step::Learner;
use crate::train::{run_steps, StepSeconds};
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

/// Steps run before timing starts in each round.
const WARM_UP: usize = 5;
/// Alternating rounds of the two measurements.
pub const ROUNDS: usize = 5;

/// One benchmark row.
#[derive(Debug, Clone, Serialize)]
pub struct TrainThroughput {
    pub model: String,
    pub batch_size: usize,
    pub threads: usize,
    pub steps: usize,
    pub pipeline_images_per_second: f64,
    pub compute_only_images_per_second: f64,
    /// Batch assembly alone (the loader's `make_tensor_batch`: normalise, augment when
    /// the config does, into a tensor), one thread, no training.
    pub assembly_images_per_second: f64,
    /// pipeline / compute-only.
    pub ratio: f64,
    /// Where a pipeline step's time went (best round): waiting for the loader's next
    /// batch, the training step, logging it.
    pub waiting_ms_per_step: f64,
    pub step_ms_per_step: f64,
    pub logging_ms_per_step: f64,
}

impl TrainThroughput {
    /// What `pcam bench train` prints: one Markdown row per model, under a header.
    pub fn markdown(rows: &[TrainThroughput]) -> String {
        let mut o = String::from(
            "| model | batch | threads | pipeline img/s | compute-only img/s | pipeline / compute | assembly alone img/s | per step: wait / step / log ms |\n\
             |---|---:|---:|---:|---:|---:|---:|---|\n",
        );
        for r in rows {
            o += &format!(
                "| {} | {} | {} | {:.1} | {:.1} | {:.1}% | {:.0} | {:.2} / {:.2} / {:.3} |\n",
                r.model,
                r.batch_size,
                r.threads,
                r.pipeline_images_per_second,
                r.compute_only_images_per_second,
                100.0 * r.ratio,
                r.assembly_images_per_second,
                r.waiting_ms_per_step,
                r.step_ms_per_step,
                r.logging_ms_per_step
            );
        }
        o
    }
}

/// Measures `steps` training steps of the config's model both ways, alternating, best of [`ROUNDS`],
/// through [`crate::train::run_steps`], the loop `pcam train` runs: the pipeline reads
/// the epochs' batches as training does ([`crate::train::epoch_batches`]: seeded order,
/// background assembly and augmentation), compute-only replays eight of those batches
/// already in memory. Step records and the (hidden) progress bar are kept as in training.
pub fn train_throughput(cfg: &ResolvedConfig, train: &Arc<Tiles>, steps: usize) -> TrainThroughput {
    let c = &cfg.config;
    let model = &c.model;
    let seeds = Seeds::new(c.seed);
    seeds.apply_to_torch(c.train.threads);
    let device = tch::Device::Cpu;
    let bs = c.train.batch_size;
    let norm = NormStats::of(train);
    let mut learner = Learner::new(model.build(device), &c.train);
    let mut state = TrainState::fresh(&c.train, &learner, norm, train.len().div_ceil(bs));
    let bar = indicatif::ProgressBar::hidden();
    let copy = |b: &TensorBatch| TensorBatch {
        x: b.x.shallow_clone(),
        y: b.y.shallow_clone(),
        tiles: b.tiles.clone(),
    };
    let in_memory: Vec<TensorBatch> = crate::train::epoch_batches(train, &seeds, 0, &c.train, norm)
        .into_iter()
        .take(8)
        .collect();
    let replay = |n: usize| (0..n).map(|k| copy(&in_memory[k % in_memory.len()]));
    // Epoch after epoch, as training draws them (each epoch's loader starts when the
    // previous epoch's steps are done; training then validates while it fills).
    let mut epochs =
        (0usize..).flat_map(|e| crate::train::epoch_batches(train, &seeds, e, &c.train, norm));
    let mut run = |batches: &mut dyn Iterator<Item = TensorBatch>| {
        let t0 = Instant::now();
        let done = run_steps(
            &mut learner,
            &mut state,
            batches,
            &seeds,
            device,
            &bar,
            "bench",
        );
        (done, t0.elapsed().as_secs_f64())
    };
    // The first few dozen steps of a fresh process are slow (allocator, kernels, caches),
    // so the two measurements alternate over ROUNDS rounds and each keeps its best.
    let mut pipeline = (0.0f64, StepSeconds::default(), 0usize);
    let mut compute = 0.0f64;
    for _ in 0..ROUNDS {
        run(&mut replay(WARM_UP));
        let (done, secs) = run(&mut replay(steps));
        compute = compute.max(done.seen as f64 / secs);

        run(&mut epochs.by_ref().take(WARM_UP));
        let (done, secs) = run(&mut epochs.by_ref().take(steps));
        let rate = done.seen as f64 / secs;
        if rate > pipeline.0 {
            pipeline = (rate, done.seconds, done.batches.max(1));
        }
    }
    let order: Vec<usize> = (0..steps * bs).map(|i| i % train.len()).collect();
    let aug = c.train.augment.then_some((&seeds, 0));
    let t0 = Instant::now();
    for idx in order.chunks(bs) {
        let _ = std::hint::black_box(loader::make_tensor_batch(train, idx, &norm, aug));
    }
    let assembly = (steps * bs) as f64 / t0.elapsed().as_secs_f64();
    let (rate, per, n) = pipeline;
    let ms = |s: f64| 1000.0 * s / n as f64;
    TrainThroughput {
        model: match model.kind {
            crate::config::ModelKind::Mlp => format!("mlp {:?}", model.hidden),
            crate::config::ModelKind::Cnn => format!("cnn {:?}", model.channels),
        },
        batch_size: bs,
        threads: c.train.threads,
        steps,
        pipeline_images_per_second: rate,
        compute_only_images_per_second: compute,
        assembly_images_per_second: assembly,
        ratio: rate / compute,
        waiting_ms_per_step: ms(per.waiting),
        step_ms_per_step: ms(per.stepping),
        logging_ms_per_step: ms(per.logging),
    }
}

/// ROC-AUC and average precision on `n` seeded synthetic scores: best-of-`rounds` seconds
/// for each, with the values (for the comparison with scikit-learn in `bench/`).
#[derive(Debug, Clone, Serialize)]
pub struct MetricsTiming {
    pub n: usize,
    pub roc_auc: f64,
    pub roc_auc_seconds: f64,
    pub average_precision: f64,
    pub average_precision_seconds: f64,
}

impl MetricsTiming {
    /// What `pcam bench metrics` prints.
    pub fn to_line(&self) -> String {
        format!(
            "pcam on {} scores: ROC-AUC {:.12} in {:.3} s, average precision {:.12} in {:.3} s",
            self.n,
            self.roc_auc,
            self.roc_auc_seconds,
            self.average_precision,
            self.average_precision_seconds
        )
    }
}

/// `n` continuous scores in [0, 1) and labels from the `bench/metrics` stream of `seed`
/// (positives score higher on average; f32 resolution makes some ties).
pub fn metrics_data(n: usize, seed: u64) -> (Vec<f32>, Vec<u8>) {
    use rand::Rng;
    let mut rng = Seeds::new(seed).stream("bench/metrics", 0);
    let labels: Vec<u8> = (0..n).map(|_| rng.random_bool(0.3) as u8).collect();
    let scores = labels
        .iter()
        .map(|&l| rng.random::<f32>() * 0.7 + 0.3 * l as f32)
        .collect();
    (scores, labels)
}

/// Times [`crate::metrics::roc_auc`] and [`crate::metrics::average_precision`].
pub fn metrics_throughput(scores: &[f32], labels: &[u8], rounds: usize) -> MetricsTiming {
    let time = |f: &dyn Fn() -> Option<f64>| {
        let mut best = f64::INFINITY;
        let mut v = f64::NAN;
        for _ in 0..rounds.max(1) {
            let t0 = Instant::now();
            v = f().unwrap_or(f64::NAN);
            best = best.min(t0.elapsed().as_secs_f64());
        }
        (v, best)
    };
    let (auc, auc_s) = time(&|| crate::metrics::roc_auc(scores, labels));
    let (ap, ap_s) = time(&|| crate::metrics::average_precision(scores, labels));
    MetricsTiming {
        n: scores.len(),
        roc_auc: auc,
        roc_auc_seconds: auc_s,
        average_precision: ap,
        average_precision_seconds: ap_s,
    }
}
