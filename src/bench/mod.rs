//! Throughput benchmarks (`pcam bench train`): training images/s through the whole input
//! pipeline (in-memory tiles → background batch assembly with augmentation → the training
//! step, `train::step::Learner::step`) beside the same steps on batches already in memory
//! as tensors (compute only). The ratio says whether the pipeline keeps the model fed.

pub mod report;
pub mod throughput;

use crate::config::{ModelConfig, RunConfig};
use crate::data::loader::{self, NormStats, Tiles};
use crate::seed::Seeds;
use crate::train::step::Learner;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;
use tch::Tensor;

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
    /// Batch assembly alone (normalise + augment + tensor), one thread, no training.
    pub assembly_images_per_second: f64,
    /// pipeline / compute-only.
    pub ratio: f64,
}

impl TrainThroughput {
    /// What `pcam bench train` prints: one Markdown row per model, under a header.
    pub fn markdown(rows: &[TrainThroughput]) -> String {
        let mut o = String::from(
            "| model | batch | threads | pipeline img/s | compute-only img/s | pipeline / compute | assembly alone img/s |\n\
             |---|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in rows {
            o += &format!(
                "| {} | {} | {} | {:.1} | {:.1} | {:.1}% | {:.0} |\n",
                r.model,
                r.batch_size,
                r.threads,
                r.pipeline_images_per_second,
                r.compute_only_images_per_second,
                100.0 * r.ratio,
                r.assembly_images_per_second
            );
        }
        o
    }
}

/// Measures `steps` training steps of `model` both ways, alternating, best of [`ROUNDS`].
pub fn train_throughput(
    cfg: &RunConfig,
    model: &ModelConfig,
    train: &Arc<Tiles>,
    steps: usize,
) -> TrainThroughput {
    let seeds = Seeds::new(cfg.seed);
    seeds.apply_to_torch(cfg.train.threads);
    let device = tch::Device::Cpu;
    let bs = cfg.train.batch_size;
    let norm = NormStats::of(train);
    let mut learner = Learner::new(model.build(device), &cfg.train);
    let mut step = |x: &Tensor, y: &Tensor, k: usize| {
        let mut rng = seeds.stream("dropout", k as u64);
        learner.step(x, y, &mut rng, cfg.train.lr, &mut |_| {});
    };
    let order: Vec<usize> = (0..(steps + WARM_UP) * bs)
        .map(|i| i % train.len())
        .collect();
    let batches: Vec<(Tensor, Tensor)> = order
        .chunks(bs)
        .take(8)
        .map(|idx| loader::make_batch(train, idx, &norm, Some((&seeds, 0))).to_tensors(device))
        .collect();
    // The first few dozen steps of a fresh process are slow (allocator, kernels, caches),
    // so the two measurements alternate over ROUNDS rounds and each keeps its best.
    let mut pipeline = 0.0f64;
    let mut compute = 0.0f64;
    for _ in 0..ROUNDS {
        let mut t0 = Instant::now();
        for k in 0..steps + WARM_UP {
            if k == WARM_UP {
                t0 = Instant::now();
            }
            let (x, y) = &batches[k % batches.len()];
            step(x, y, k);
        }
        compute = compute.max((steps * bs) as f64 / t0.elapsed().as_secs_f64());

        let rx = loader::batches(Arc::clone(train), order.clone(), bs, norm, Some((seeds, 0)));
        let mut t0 = Instant::now();
        for (k, b) in rx.iter().enumerate() {
            if k == WARM_UP {
                t0 = Instant::now();
            }
            let (x, y) = b.to_device(device);
            step(&x, &y, k);
        }
        pipeline = pipeline.max((steps * bs) as f64 / t0.elapsed().as_secs_f64());
    }
    let t0 = Instant::now();
    for idx in order.chunks(bs).take(steps) {
        let b = loader::make_batch(train, idx, &norm, Some((&seeds, 0)));
        let _ = std::hint::black_box(b.to_tensors(device));
    }
    let assembly = (steps * bs) as f64 / t0.elapsed().as_secs_f64();
    TrainThroughput {
        model: match model.kind {
            crate::config::ModelKind::Mlp => format!("mlp {:?}", model.hidden),
            crate::config::ModelKind::Cnn => format!("cnn {:?}", model.channels),
        },
        batch_size: bs,
        threads: cfg.train.threads,
        steps,
        pipeline_images_per_second: pipeline,
        compute_only_images_per_second: compute,
        assembly_images_per_second: assembly,
        ratio: pipeline / compute,
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
