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
        for p in self.params.iter_mut() {
            p.zero_grad();
        }
        let logits = self.model.forward(x, Some(dropout));
        let loss =
            logits.binary_cross_entropy_with_logits::<Tensor>(y, None, None, Reduction::Mean);
        observe(Stage::Forward);
        loss.backward();
        observe(Stage::Backward);
        let (grad_norm, layer_norms) = self.grad_norms();
        if let Some(max) = self.clip_grad_norm {
            if grad_norm > max {
                tch::no_grad(|| {
                    for p in self.params.iter() {
                        let mut g = p.grad();
                        if g.defined() {
                            let _ = g.g_mul_scalar_(max / (grad_norm + 1e-12));
                        }
                    }
                });
            }
        }
        self.opt.step(&mut self.params, lr);
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
    fn grad_norms(&self) -> (f64, Vec<f64>) {
        let mut per_layer = vec![0.0f64; self.layers.len()];
        for (n, p) in &self.named {
            let g = p.grad();
            if !g.defined() {
                continue;
            }
            let sq = g.pow_tensor_scalar(2).sum(Kind::Double).double_value(&[]);
            if let Some(i) = self.layers.iter().position(|l| l == layer_of(n)) {
                per_layer[i] += sq;
            }
        }
        let global = per_layer.iter().sum::<f64>().sqrt();
        (global, per_layer.into_iter().map(f64::sqrt).collect())
    }
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
    fn a_step_reports_its_stages_in_order_and_the_norms_add_up() {
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
