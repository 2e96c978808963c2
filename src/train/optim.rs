//! Optimisers written out over tch tensors — SGD with momentum, Adam, AdamW — so that
//! their state is explicit, saved in checkpoints and restored exactly on resume (tch's
//! built-in optimisers cannot export their state). Parameters are updated in place
//! under `no_grad`, in the fixed order of their names.

use crate::config::{OptimizerKind, TrainConfig};
use tch::Tensor;

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

/// An optimiser and its per-parameter state.
pub struct Optimizer {
    pub kind: OptimizerKind,
    pub momentum: f64,
    pub weight_decay: f64,
    /// Updates applied so far.
    pub steps: i64,
    /// First moment (momentum buffer for SGD), one per parameter.
    pub m: Vec<Tensor>,
    /// Second moment (Adam/AdamW only).
    pub v: Vec<Tensor>,
}

impl Optimizer {
    /// Fresh state for `params`.
    pub fn new(
        kind: OptimizerKind,
        momentum: f64,
        weight_decay: f64,
        params: &[Tensor],
    ) -> Optimizer {
        Optimizer {
            kind,
            momentum,
            weight_decay,
            steps: 0,
            m: params.iter().map(|p| p.zeros_like()).collect(),
            v: params.iter().map(|p| p.zeros_like()).collect(),
        }
    }

    /// Fresh state for `params`, of the kind and with the momentum and weight decay of
    /// the train config (the one place an optimiser is built from a config).
    pub fn from_config(train: &TrainConfig, params: &[Tensor]) -> Optimizer {
        Optimizer::new(train.optimizer, train.momentum, train.weight_decay, params)
    }

    /// One update of every parameter from its `.grad()` at learning rate `lr`.
    pub fn step(&mut self, params: &mut [Tensor], lr: f64) {
        self.steps += 1;
        let t = self.steps as i32;
        tch::no_grad(|| {
            for (i, p) in params.iter_mut().enumerate() {
                let mut g = p.grad();
                if !g.defined() {
                    continue;
                }
                match self.kind {
                    OptimizerKind::Sgd => {
                        if self.weight_decay > 0.0 {
                            g = &g + &*p * self.weight_decay;
                        }
                        let buf = if self.steps == 1 {
                            g.copy()
                        } else {
                            &self.m[i] * self.momentum + &g
                        };
                        self.m[i].copy_(&buf);
                        let _ = p.g_sub_(&(buf * lr));
                    }
                    OptimizerKind::Adam | OptimizerKind::Adamw => {
                        if self.kind == OptimizerKind::Adamw {
                            let _ = p.g_mul_scalar_(1.0 - lr * self.weight_decay);
                        } else if self.weight_decay > 0.0 {
                            g = &g + &*p * self.weight_decay;
                        }
                        let m = &self.m[i] * BETA1 + &g * (1.0 - BETA1);
                        let v = &self.v[i] * BETA2 + (&g * &g) * (1.0 - BETA2);
                        self.m[i].copy_(&m);
                        self.v[i].copy_(&v);
                        let m_hat = m / (1.0 - BETA1.powi(t));
                        let v_hat = v / (1.0 - BETA2.powi(t));
                        let _ = p.g_sub_(&(m_hat / (v_hat.sqrt() + EPS) * lr));
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// Minimises (p - 3)^2 from p = 0; every optimiser must get close.
    fn converges(kind: OptimizerKind, lr: f64) -> f64 {
        let mut p = vec![Tensor::zeros([1], (Kind::Float, Device::Cpu)).set_requires_grad(true)];
        let mut opt = Optimizer::new(kind, 0.9, 0.0, &p);
        for _ in 0..300 {
            p[0].zero_grad();
            let loss = (&p[0] - 3.0).pow_tensor_scalar(2).sum(Kind::Float);
            loss.backward();
            opt.step(&mut p, lr);
        }
        p[0].double_value(&[0])
    }

    #[test]
    fn each_optimiser_minimises_a_quadratic() {
        assert!((converges(OptimizerKind::Sgd, 0.05) - 3.0).abs() < 1e-3);
        assert!((converges(OptimizerKind::Adam, 0.1) - 3.0).abs() < 0.05);
        assert!((converges(OptimizerKind::Adamw, 0.1) - 3.0).abs() < 0.05);
    }

    #[test]
    fn first_adam_step_moves_by_lr() {
        // Bias correction makes the first Adam step exactly lr in the gradient's direction.
        let mut p = vec![Tensor::from_slice(&[1.0f32]).set_requires_grad(true)];
        let mut opt = Optimizer::new(OptimizerKind::Adam, 0.0, 0.0, &p);
        (&p[0] * 5.0).sum(Kind::Float).backward();
        opt.step(&mut p, 0.01);
        assert!((p[0].double_value(&[0]) - 0.99).abs() < 1e-6);
    }
}
