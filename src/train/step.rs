//! The training step, written once: forward with seeded dropout, binary cross-entropy,
//! backward, global and per-layer gradient norms, optional clipping, the optimiser update
//! and the loss read back to the host. Training (`train::fit`) and both benchmarks
//! (`bench::train_throughput`, `bench::throughput`) run it through `train::run_steps`, so
//! what the benchmarks time is the loop users train with.

use super::checkpoint::{self, TrainState};
use super::optim::Optimizer;
use crate::config::TrainConfig;
use crate::error::Result;
use crate::model::Model;
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use tch::{Kind, Reduction, Tensor};

/// Where a step is when it calls its observer (the throughput bench times each stage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Forward pass and loss computed.
    Forward,
    /// Gradients computed.
    Backward,
    /// Gradient norms, clipping, the optimiser update and the loss read back done.
    Update,
}

/// What one step measured.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutcome {
    /// Mean binary cross-entropy of the batch before the update.
    pub loss: f64,
    /// L2 norm of all gradients (before clipping).
    pub grad_norm: f64,
    /// L2 norm of each layer's gradients, in the order of [`Learner::layers`].
    pub layer_norms: Vec<f64>,
}

/// A model with its trainable parameters in the optimiser's fixed order (sorted by
/// name), their layers, the optimiser built from the train config, and the clipping
/// threshold.
pub struct Learner {
    pub model: Model,
    /// Trainable variables, sorted by name (checkpoints store the optimiser state in
    /// this order).
    pub named: Vec<(String, Tensor)>,
    /// Layer names (a variable's name without its last segment), in order, once each.
    pub layers: Vec<String>,
    pub opt: Optimizer,
    params: Vec<Tensor>,
    clip_grad_norm: Option<f64>,
    /// Per parameter, a float64 buffer for its squared gradient (the norm's input),
    /// allocated on first use and kept, so a step allocates none.
    squares: Vec<Option<Tensor>>,
}

/// Layer of a variable: its name without the last segment (`conv0.weight` → `conv0`).
pub fn layer_of(name: &str) -> &str {
    name.rsplit_once('.').map(|(l, _)| l).unwrap_or(name)
}

impl Learner {
    /// `model` with a fresh optimiser from `train` (optimizer, momentum, weight_decay)
    /// and its clip_grad_norm.
    pub fn new(model: Model, train: &TrainConfig) -> Learner {
        let named: Vec<(String, Tensor)> = model
            .named_variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        let params: Vec<Tensor> = named.iter().map(|(_, t)| t.shallow_clone()).collect();
        let mut layers: Vec<String> = named.iter().map(|(n, _)| layer_of(n).to_string()).collect();
        layers.dedup();
        let opt = Optimizer::from_config(train, &params);
        Learner {
            model,
            named,
            layers,
            opt,
            squares: params.iter().map(|_| None).collect(),
            params,
            clip_grad_norm: train.clip_grad_norm,
        }
    }

    /// One training step on the batch `x` (images) and `y` (labels as floats) at
    /// learning rate `lr`, dropout drawn from `dropout`; `observe` is called after each
    /// [`Stage`].
    pub fn step(
        &mut self,
        x: &Tensor,
        y: &Tensor,
        dropout: &mut ChaCha8Rng,
        lr: f64,
        observe: &mut dyn FnMut(Stage),
    ) -> StepOutcome {
        let logits = self.model.forward(x, Some(dropout));
        let loss =
            logits.binary_cross_entropy_with_logits::<Tensor>(y, None, None, Reduction::Mean);
        observe(Stage::Forward);
        // The gradients as backward computes them, handed over rather than accumulated
        // into `.grad` buffers (which would need a zero fill and an addition per step):
        // the same values, except that a gradient of −0 stays −0 where `0 + (−0)` made it
        // +0, which no update below can tell apart (Adam's moments start at +0 and
        // `+0·β + (±0)` is +0; the squares and norms do not see signs; SGD's first
        // momentum copy may keep a −0, which moves no weight that is not itself −0).
        let mut grads = Tensor::run_backward(&[&loss], &self.params, false, false);
        observe(Stage::Backward);
        let (grad_norm, layer_norms) = self.grad_norms(&grads);
        if let Some(max) = self.clip_grad_norm {
            if grad_norm > max {
                tch::no_grad(|| {
                    for g in grads.iter_mut().filter(|g| g.defined()) {
                        let _ = g.g_mul_scalar_(max / (grad_norm + 1e-12));
                    }
                });
            }
        }
        self.opt.step(&mut self.params, &grads, lr);
        let loss = loss.double_value(&[]);
        observe(Stage::Update);
        StepOutcome {
            loss,
            grad_norm,
            layer_norms,
        }
    }

    /// Writes the weights, the optimiser state and `state` to the checkpoint `path`.
    pub fn save(&self, path: &Path, state: &TrainState) -> Result<()> {
        checkpoint::save(path, &self.model, &self.named, &self.opt, state)
    }

    /// Restores the weights and the optimiser state from the checkpoint `path`.
    pub fn load(&mut self, path: &Path) -> Result<TrainState> {
        checkpoint::load(path, &self.model, &self.named, &mut self.opt)
    }

    /// Global and per-layer L2 norms of the current gradients.
    fn grad_norms(&mut self, grads: &[Tensor]) -> (f64, Vec<f64>) {
        let mut per_layer = vec![0.0f64; self.layers.len()];
        for (i, ((n, _), g)) in self.named.iter().zip(grads).enumerate() {
            if !g.defined() {
                continue;
            }
            let sq = sum_of_squares(g, &mut self.squares[i]);
            if let Some(i) = self.layers.iter().position(|l| l == layer_of(n)) {
                per_layer[i] += sq;
            }
        }
        let global = per_layer.iter().sum::<f64>().sqrt();
        (global, per_layer.into_iter().map(f64::sqrt).collect())
    }
}

/// Σ g², as libtorch's `g.pow(2).sum(Double)` computes it, bit for bit: each square in
/// float32 (`pow` with exponent 2 is `x * x`, IEEE single precision, as in Rust), widened
/// to float64 (exact), then libtorch's own double sum over a tensor of g's shape. For a
/// contiguous float32 gradient on the CPU the squares are written by Rust straight into a
/// kept float64 buffer (one pass, split over the pinned threads, no allocation) instead of
/// libtorch's pow, a cast copy and two temporaries.
fn sum_of_squares(g: &Tensor, buffer: &mut Option<Tensor>) -> f64 {
    let Some((src, n)) = super::optim::host_f32(g) else {
        return g.pow_tensor_scalar(2).sum(Kind::Double).double_value(&[]);
    };
    let shape = g.size();
    let fits = |b: &Tensor| b.size() == shape;
    if !buffer.as_ref().is_some_and(fits) {
        *buffer = Some(Tensor::empty(
            shape.as_slice(),
            (Kind::Double, tch::Device::Cpu),
        ));
    }
    let Some(out) = buffer.as_ref() else {
        unreachable!("set above")
    };
    if n > 0 {
        // SAFETY: `g` is a contiguous float32 CPU tensor of n elements and `out` a
        // contiguous float64 CPU tensor of the same shape that only this learner holds;
        // both stay alive for this call and nothing else touches them meanwhile (the step
        // is single-threaded outside libtorch, and libtorch reads `out` only after the
        // slices are gone).
        let (g, o) = unsafe {
            (
                std::slice::from_raw_parts(src as *const f32, n),
                std::slice::from_raw_parts_mut(out.data_ptr() as *mut f64, n),
            )
        };
        let chunk = super::optim::chunk_len(n, super::optim::pinned_threads());
        super::optim::run_pieces(g.chunks(chunk).zip(o.chunks_mut(chunk)), |(g, o)| {
            for (o, &x) in o.iter_mut().zip(g) {
                *o = f64::from(x * x);
            }
        });
    }
    out.sum(Kind::Double).double_value(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::Seeds;
    use tch::Device;

    fn learner(clip: Option<f64>) -> Learner {
        let mut ov = vec![
            "train.optimizer=sgd".to_string(),
            "train.momentum=0.0".to_string(),
            "model.kind=mlp".to_string(),
            "model.hidden=[4]".to_string(),
            "model.dropout=0.0".to_string(),
        ];
        ov.extend(clip.map(|c| format!("train.clip_grad_norm={c}")));
        let c = crate::config::resolve(&[], &ov)
            .expect("embedded defaults")
            .config;
        tch::manual_seed(3);
        Learner::new(c.model.build(Device::Cpu), &c.train)
    }

    fn batch() -> (Tensor, Tensor) {
        tch::manual_seed(5);
        let x = Tensor::rand([8, 3, 96, 96], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[0f32, 1., 0., 1., 1., 0., 0., 1.]);
        (x, y)
    }

    #[test]
    fn sums_of_squares_are_bitwise_libtorchs() {
        // Values from a seeded stream, not libtorch's global generator (tests run in
        // parallel and others seed it); mixed signs and magnitudes, so the order of the
        // additions matters to the last bit. Sizes below and above the threaded split.
        use rand::Rng;
        let mut buffer = None;
        let mut rng = Seeds::new(9).stream("test/squares", 0);
        for n in [0usize, 1, 7, 1001, 65_536, 3 * 65_536 + 7, 1_769_472] {
            let v: Vec<f32> = (0..n)
                .map(|_| rng.random_range(-1.0f32..1.0) * 10f32.powi(rng.random_range(-8..4)))
                .collect();
            let g = Tensor::from_slice(&v);
            let reference = g.pow_tensor_scalar(2).sum(Kind::Double).double_value(&[]);
            let ours = sum_of_squares(&g, &mut buffer);
            assert_eq!(
                ours.to_bits(),
                reference.to_bits(),
                "n {n}: {ours} vs {reference}"
            );
            // A 2-d gradient (as a linear layer's) too.
            if n >= 64 && n % 64 == 0 {
                let g2 = g.view([64, (n / 64) as i64]);
                let r2 = g2.pow_tensor_scalar(2).sum(Kind::Double).double_value(&[]);
                assert_eq!(
                    sum_of_squares(&g2, &mut buffer).to_bits(),
                    r2.to_bits(),
                    "n {n} 2-d"
                );
            }
        }
    }

    #[test]
    fn a_step_reports_its_stages_in_order_and_the_norms_add_up() {
        let _g = crate::seed::torch_test_lock();
        let mut l = learner(None);
        let (x, y) = batch();
        let mut seen = vec![];
        let mut rng = Seeds::new(1).stream("dropout", 0);
        let out = l.step(&x, &y, &mut rng, 0.01, &mut |s| seen.push(s));
        assert_eq!(seen, [Stage::Forward, Stage::Backward, Stage::Update]);
        assert_eq!(l.layers.len(), out.layer_norms.len());
        let sum: f64 = out.layer_norms.iter().map(|n| n * n).sum();
        assert!((sum.sqrt() - out.grad_norm).abs() < 1e-9 * out.grad_norm.max(1.0));
        assert!(out.loss.is_finite() && out.loss > 0.0);
        assert_eq!(l.opt.steps, 1);
    }

    #[test]
    fn clipping_scales_the_update_to_the_threshold() {
        // learner() and batch() seed libtorch's global generator.
        let _g = crate::seed::torch_test_lock();
        // Plain SGD without momentum moves each weight by lr × gradient, so the update's
        // norm is lr × (clipped) gradient norm.
        let (x, y) = batch();
        let moved = |clip: Option<f64>| {
            let mut l = learner(clip);
            let before: Vec<Tensor> = l.named.iter().map(|(_, t)| t.copy()).collect();
            let mut rng = Seeds::new(1).stream("dropout", 0);
            let out = l.step(&x, &y, &mut rng, 0.5, &mut |_| {});
            let sq: f64 = l
                .named
                .iter()
                .zip(&before)
                .map(|((_, a), b)| {
                    (a - b)
                        .pow_tensor_scalar(2)
                        .sum(Kind::Double)
                        .double_value(&[])
                })
                .sum();
            (out.grad_norm, sq.sqrt() / 0.5)
        };
        let (norm, step) = moved(None);
        assert!((step - norm).abs() < 1e-4 * norm, "{step} vs {norm}");
        let cap = norm / 4.0;
        let (norm_clipped, step_clipped) = moved(Some(cap));
        assert_eq!(
            norm, norm_clipped,
            "the reported norm is the one before clipping"
        );
        assert!(
            (step_clipped - cap).abs() < 1e-4 * cap,
            "{step_clipped} vs {cap}"
        );
    }
}
