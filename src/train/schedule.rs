//! Learning-rate schedules as a pure function of the step (plus the plateau state, which
//! only changes at epoch ends), so the LR of any step can be recomputed after a resume
//! and every LR is logged per step.

use crate::config::{SchedulerKind, TrainConfig};
use serde::{Deserialize, Serialize};

/// A schedule and its (small, serialisable) state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub kind: SchedulerKind,
    pub base_lr: f64,
    pub warmup_steps: usize,
    pub steps_per_epoch: usize,
    pub total_steps: usize,
    pub step_size: usize,
    pub gamma: f64,
    pub plateau_patience: usize,
    pub plateau_factor: f64,
    /// Plateau state: current factor, best validation loss, epochs without improvement.
    pub plateau_scale: f64,
    pub plateau_best: Option<f64>,
    pub plateau_bad: usize,
}

impl Schedule {
    /// The schedule of `t` for `steps_per_epoch` steps per epoch.
    pub fn new(t: &TrainConfig, steps_per_epoch: usize) -> Schedule {
        Schedule {
            kind: t.scheduler,
            base_lr: t.lr,
            warmup_steps: t.warmup_steps,
            steps_per_epoch: steps_per_epoch.max(1),
            total_steps: (steps_per_epoch * t.epochs).max(1),
            step_size: t.step_size,
            gamma: t.gamma,
            plateau_patience: t.plateau_patience,
            plateau_factor: t.plateau_factor,
            plateau_scale: 1.0,
            plateau_best: None,
            plateau_bad: 0,
        }
    }

    /// Learning rate for global step `step` (0-based).
    pub fn lr(&self, step: usize) -> f64 {
        use std::f64::consts::PI;
        let lr = self.base_lr;
        let frac = step as f64 / self.total_steps as f64;
        let base = match self.kind {
            SchedulerKind::None => lr,
            SchedulerKind::Step => {
                lr * self
                    .gamma
                    .powi((step / self.steps_per_epoch / self.step_size) as i32)
            }
            SchedulerKind::Cosine => lr * 0.5 * (1.0 + (PI * frac).cos()),
            SchedulerKind::Onecycle => {
                // Up from lr/25 to lr over the first 30% of steps, then cosine down to lr/1e4.
                let (start, end, peak) = (lr / 25.0, lr / 1e4, 0.3);
                if frac < peak {
                    start + (lr - start) * 0.5 * (1.0 - (PI * frac / peak).cos())
                } else {
                    end + (lr - end) * 0.5 * (1.0 + (PI * (frac - peak) / (1.0 - peak)).cos())
                }
            }
            SchedulerKind::Plateau => lr * self.plateau_scale,
        };
        if step < self.warmup_steps {
            base * (step + 1) as f64 / self.warmup_steps as f64
        } else {
            base
        }
    }

    /// Feeds an epoch's validation loss to the plateau rule (other schedules ignore it).
    pub fn end_epoch(&mut self, valid_loss: f64) {
        if self.kind != SchedulerKind::Plateau {
            return;
        }
        match self.plateau_best {
            Some(b) if valid_loss >= b - 1e-4 => {
                self.plateau_bad += 1;
                if self.plateau_bad > self.plateau_patience {
                    self.plateau_scale *= self.plateau_factor;
                    self.plateau_bad = 0;
                }
            }
            _ => {
                self.plateau_best = Some(valid_loss);
                self.plateau_bad = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(kind: SchedulerKind, warmup: usize) -> Schedule {
        let mut t = crate::config::resolve(&[], &[]).unwrap().config.train;
        t.scheduler = kind;
        t.lr = 0.1;
        t.epochs = 4;
        t.warmup_steps = warmup;
        t.step_size = 1;
        t.gamma = 0.5;
        t.plateau_patience = 0;
        t.plateau_factor = 0.1;
        Schedule::new(&t, 10)
    }

    #[test]
    fn shapes_of_the_schedules() {
        let s = sched(SchedulerKind::Step, 0);
        assert_eq!(
            (s.lr(0), s.lr(9), s.lr(10), s.lr(25)),
            (0.1, 0.1, 0.05, 0.025)
        );
        let c = sched(SchedulerKind::Cosine, 0);
        assert_eq!(c.lr(0), 0.1);
        assert!((c.lr(20) - 0.05).abs() < 1e-12);
        assert!(c.lr(39) < 0.001);
        let o = sched(SchedulerKind::Onecycle, 0);
        assert!((o.lr(0) - 0.004).abs() < 1e-12);
        assert!((o.lr(12) - 0.1).abs() < 1e-12);
        assert!(o.lr(39) < 0.001);
        assert_eq!(sched(SchedulerKind::None, 0).lr(33), 0.1);
    }

    #[test]
    fn warmup_ramps_linearly() {
        let s = sched(SchedulerKind::None, 4);
        assert_eq!(
            (s.lr(0), s.lr(1), s.lr(3), s.lr(4)),
            (0.025, 0.05, 0.1, 0.1)
        );
    }

    #[test]
    fn plateau_cuts_after_patience() {
        let mut p = sched(SchedulerKind::Plateau, 0);
        p.end_epoch(1.0);
        assert_eq!(p.lr(0), 0.1);
        p.end_epoch(1.0);
        assert!((p.lr(0) - 0.01).abs() < 1e-12);
        p.end_epoch(0.5);
        assert!((p.lr(0) - 0.01).abs() < 1e-12);
    }
}
