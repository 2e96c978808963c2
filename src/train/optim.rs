//! Optimisers written out over tch tensors — SGD with momentum, Adam, AdamW — so that
//! their state is explicit, saved in checkpoints and restored exactly on resume (tch's
//! built-in optimisers cannot export their state). Parameters are updated in place
//! under `no_grad`, in the fixed order of their names.
//!
//! The update is bitwise the allocating tensor expression it replaces
//! (`m * β1 + g * (1 - β1)` and so on; the test below keeps that form and compares):
//! - on the CPU, for contiguous float32 tensors, in passes over host memory in Rust
//!   (`host_update`) doing, per element, the same IEEE single-precision operations in
//!   the same order as libtorch's element-wise kernels (a scalar is rounded to f32 once;
//!   an addition with alpha ±1 is exact either way), split over the configured threads.
//!   Adam's square root stays libtorch's own `sqrt_` on a whole scratch tensor: it goes
//!   through MKL's vector maths, which is not correctly rounded, so Rust's `f32::sqrt`
//!   would differ in the last bit. About 13 words of memory traffic per weight for Adam
//!   (3 for SGD) instead of about 45, and no allocation per step;
//! - elsewhere (CUDA, other layouts) the same operations as in-place tensor ops through
//!   two scratch tensors per parameter, allocated on first use.
//!
//! A fused libtorch kernel (`_fused_adam_`) would be faster still but rounds differently,
//! so it would change every trained number.

use crate::config::{OptimizerKind, TrainConfig};
use tch::{Device, Kind, Tensor};

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;
/// Below this many weights a parameter is updated on one thread.
const SPLIT_MIN: usize = 1 << 16;

/// libtorch's pinned intra-op thread count (at least 1): how many pieces a pass over host
/// memory is split into.
pub(super) fn pinned_threads() -> usize {
    usize::try_from(tch::get_num_threads()).unwrap_or(1).max(1)
}

/// The piece length of a pass over `n` elements split over `threads` (the whole of it
/// below [`SPLIT_MIN`] or on one thread).
pub(super) fn chunk_len(n: usize, threads: usize) -> usize {
    if threads < 2 || n < SPLIT_MIN {
        n
    } else {
        n.div_ceil(threads)
    }
}

/// Runs `work` on every piece: the first on the calling thread, the others on scoped
/// threads (one piece, the common case for small parameters, starts no thread).
pub(super) fn run_pieces<T: Send>(pieces: impl Iterator<Item = T>, work: impl Fn(T) + Sync) {
    let work = &work;
    let mut pieces = pieces;
    let Some(first) = pieces.next() else {
        return;
    };
    std::thread::scope(|sc| {
        for p in pieces {
            sc.spawn(move || work(p));
        }
        work(first);
    });
}

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
    /// Scratch tensors per parameter, allocated on first use (not state: never saved):
    /// none for SGD on the host, one for Adam on the host, two for the tensor-op path.
    scratch: Vec<Vec<Tensor>>,
    /// Whether CPU float32 parameters take the one-pass host loop (tests turn it off to
    /// compare the two paths).
    host_loop: bool,
}

/// The constants of one update, each rounded to f32 once, as libtorch rounds a Python
/// or C++ scalar operand of a float32 tensor operation.
#[derive(Clone, Copy)]
struct Coefficients {
    kind: OptimizerKind,
    first: bool,
    /// L2 penalty added to the gradient (SGD, Adam); 0 = none.
    l2: f32,
    /// AdamW's decoupled decay factor 1 − lr·wd; `None` = none.
    decay: Option<f32>,
    momentum: f32,
    lr: f32,
    b1: f32,
    c1: f32,
    b2: f32,
    c2: f32,
    bc1: f32,
    bc2: f32,
    eps: f32,
}

impl Coefficients {
    /// The gradient with the L2 penalty, if any.
    fn grad(&self, g: f32, p: f32) -> f32 {
        if self.l2 != 0.0 {
            g + p * self.l2
        } else {
            g
        }
    }

    /// SGD: updates the weights `p` and momentum `m` from the gradient `g`.
    fn sgd(&self, p: &mut [f32], g: &[f32], m: &mut [f32]) {
        for i in 0..p.len() {
            let gi = self.grad(g[i], p[i]);
            m[i] = if self.first {
                gi
            } else {
                m[i] * self.momentum + gi
            };
            p[i] -= m[i] * self.lr;
        }
    }

    /// Adam's first pass: the moments `m`, `v` from the gradient `g`, AdamW's decay of
    /// `p`, and `s` = v / (1 − β2^t), whose square root libtorch takes next.
    fn adam_moments(&self, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: &mut [f32]) {
        for i in 0..p.len() {
            let gi = self.grad(g[i], p[i]);
            if let Some(d) = self.decay {
                p[i] *= d;
            }
            m[i] = m[i] * self.b1 + gi * self.c1;
            v[i] = v[i] * self.b2 + (gi * gi) * self.c2;
            s[i] = v[i] / self.bc2;
        }
    }

    /// Adam's second pass: p ← p − (m / (1 − β1^t)) / (s + ε) · lr, s = the square root.
    fn adam_apply(&self, p: &mut [f32], m: &[f32], s: &[f32]) {
        for i in 0..p.len() {
            p[i] -= (m[i] / self.bc1) / (s[i] + self.eps) * self.lr;
        }
    }
}

/// The first `n` scratch tensors of a parameter shaped like `p`, allocating what is missing.
fn scratch_of<'a>(s: &'a mut Vec<Tensor>, p: &Tensor, n: usize) -> &'a mut [Tensor] {
    while s.len() < n {
        s.push(p.empty_like());
    }
    &mut s[..n]
}

/// The f32 data of a contiguous float tensor on the CPU.
pub(super) fn host_f32(t: &Tensor) -> Option<(*mut f32, usize)> {
    (t.device() == Device::Cpu && t.kind() == Kind::Float && t.is_contiguous())
        .then(|| (t.data_ptr() as *mut f32, t.numel()))
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
            scratch: params.iter().map(|_| Vec::new()).collect(),
            host_loop: true,
        }
    }

    /// Fresh state for `params`, of the kind and with the momentum and weight decay of
    /// the train config (the one place an optimiser is built from a config).
    pub fn from_config(train: &TrainConfig, params: &[Tensor]) -> Optimizer {
        Optimizer::new(train.optimizer, train.momentum, train.weight_decay, params)
    }

    /// One update of every parameter from its gradient (`grads[i]` for `params[i]`; an
    /// undefined gradient leaves its parameter as it is) at learning rate `lr`.
    pub fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], lr: f64) {
        self.steps += 1;
        let t = self.steps as i32;
        let adamw = self.kind == OptimizerKind::Adamw;
        let k = Coefficients {
            kind: self.kind,
            first: self.steps == 1,
            l2: if !adamw && self.weight_decay > 0.0 {
                self.weight_decay as f32
            } else {
                0.0
            },
            decay: adamw.then_some((1.0 - lr * self.weight_decay) as f32),
            momentum: self.momentum as f32,
            lr: lr as f32,
            b1: BETA1 as f32,
            c1: (1.0 - BETA1) as f32,
            b2: BETA2 as f32,
            c2: (1.0 - BETA2) as f32,
            bc1: (1.0 - BETA1.powi(t)) as f32,
            bc2: (1.0 - BETA2.powi(t)) as f32,
            eps: EPS as f32,
        };
        let threads = pinned_threads();
        tch::no_grad(|| {
            for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
                if !g.defined() {
                    continue;
                }
                if !(self.host_loop && self.host_update(i, p, g, &k, threads)) {
                    self.tensor_ops(i, p, g, lr, t);
                }
            }
        });
    }

    /// The update of parameter `i` in passes over host memory; false (nothing done)
    /// when a tensor is not contiguous float32 on the CPU or two of them share memory.
    fn host_update(
        &mut self,
        i: usize,
        p: &Tensor,
        g: &Tensor,
        k: &Coefficients,
        threads: usize,
    ) -> bool {
        // Adam keeps v / (1 − β2^t) in a scratch tensor for libtorch's sqrt; SGD needs none.
        let adam = k.kind != OptimizerKind::Sgd;
        let scratch = scratch_of(&mut self.scratch[i], p, usize::from(adam));
        let mut tensors = vec![p, g, &self.m[i], &self.v[i]];
        tensors.extend(scratch.iter());
        let Some(views) = tensors
            .into_iter()
            .map(host_f32)
            .collect::<Option<Vec<_>>>()
        else {
            return false;
        };
        let n = views[0].1;
        let distinct = views
            .iter()
            .enumerate()
            .all(|(a, x)| views[a + 1..].iter().all(|y| x.0 != y.0));
        if views.iter().any(|v| v.1 != n) || !distinct {
            return false;
        }
        if n == 0 {
            return true;
        }
        // SAFETY: four or five contiguous float32 CPU tensors of n elements each, with
        // distinct storages (checked above: weights, gradient, the two moments, scratch), alive
        // for this call; nothing else reads or writes them while the slices live (the
        // training step is single-threaded outside libtorch, under no_grad), and the
        // slices are dropped before libtorch touches the scratch tensor.
        let host = |j: usize| unsafe { std::slice::from_raw_parts_mut(views[j].0, n) };
        let chunk = chunk_len(n, threads);
        match k.kind {
            OptimizerKind::Sgd => {
                let (p, g, m) = (host(0), &*host(1), host(2));
                let pieces = p
                    .chunks_mut(chunk)
                    .zip(g.chunks(chunk))
                    .zip(m.chunks_mut(chunk));
                run_pieces(pieces, |((p, g), m)| k.sgd(p, g, m));
            }
            OptimizerKind::Adam | OptimizerKind::Adamw => {
                {
                    let (p, g, m, v, s) = (host(0), &*host(1), host(2), host(3), host(4));
                    let pieces = p
                        .chunks_mut(chunk)
                        .zip(g.chunks(chunk))
                        .zip(m.chunks_mut(chunk))
                        .zip(v.chunks_mut(chunk))
                        .zip(s.chunks_mut(chunk));
                    run_pieces(pieces, |((((p, g), m), v), s)| {
                        k.adam_moments(p, g, m, v, s)
                    });
                }
                let _ = self.scratch[i][0].sqrt_();
                let (p, m, s) = (host(0), &*host(2), &*host(4));
                let pieces = p
                    .chunks_mut(chunk)
                    .zip(m.chunks(chunk))
                    .zip(s.chunks(chunk));
                run_pieces(pieces, |((p, m), s)| k.adam_apply(p, m, s));
            }
        }
        true
    }

    /// The update of parameter `i` as in-place tensor operations (any device).
    fn tensor_ops(&mut self, i: usize, p: &mut Tensor, g: &Tensor, lr: f64, t: i32) {
        let [a, b] = scratch_of(&mut self.scratch[i], p, 2) else {
            unreachable!("scratch_of returns two tensors")
        };
        let (m, v) = (&mut self.m[i], &mut self.v[i]);
        // g + p·wd (L2 penalty in the gradient) into `b`; the gradient itself is left as
        // backward wrote it.
        let l2 = self.kind != OptimizerKind::Adamw && self.weight_decay > 0.0;
        if l2 {
            let _ = p.mul_scalar_out(a, self.weight_decay);
            let _ = g.add_out(b, a);
        }
        let g = if l2 { &*b } else { g };
        match self.kind {
            OptimizerKind::Sgd => {
                // m ← m·momentum + g (m ← g on the first step); p ← p − m·lr
                if self.steps == 1 {
                    m.copy_(g);
                } else {
                    let _ = m.g_mul_scalar_(self.momentum);
                    let _ = m.g_add_(g);
                }
                let _ = m.mul_scalar_out(a, lr);
                let _ = p.g_sub_(a);
            }
            OptimizerKind::Adam | OptimizerKind::Adamw => {
                if self.kind == OptimizerKind::Adamw {
                    let _ = p.g_mul_scalar_(1.0 - lr * self.weight_decay);
                }
                // m ← m·β1 + g·(1−β1)
                let _ = m.g_mul_scalar_(BETA1);
                let _ = g.mul_scalar_out(a, 1.0 - BETA1);
                let _ = m.g_add_(a);
                // v ← v·β2 + (g·g)·(1−β2)
                let _ = v.g_mul_scalar_(BETA2);
                let _ = g.mul_out(a, g);
                let _ = a.g_mul_scalar_(1.0 - BETA2);
                let _ = v.g_add_(a);
                // p ← p − (m / (1−β1^t)) / (sqrt(v / (1−β2^t)) + ε) · lr
                // (`b` may hold the penalised gradient, no longer needed here)
                let _ = v.div_scalar_out(b, 1.0 - BETA2.powi(t));
                let _ = b.sqrt_();
                let _ = b.g_add_scalar_(EPS);
                let _ = m.div_scalar_out(a, 1.0 - BETA1.powi(t));
                let _ = a.g_div_(b);
                let _ = a.g_mul_scalar_(lr);
                let _ = p.g_sub_(a);
            }
        }
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
            let g = p[0].grad();
            opt.step(&mut p, &[g], lr);
        }
        p[0].double_value(&[0])
    }

    #[test]
    fn each_optimiser_minimises_a_quadratic() {
        assert!((converges(OptimizerKind::Sgd, 0.05) - 3.0).abs() < 1e-3);
        assert!((converges(OptimizerKind::Adam, 0.1) - 3.0).abs() < 0.05);
        assert!((converges(OptimizerKind::Adamw, 0.1) - 3.0).abs() < 0.05);
    }

    /// The allocating form of each update (what the optimiser computed before it ran in
    /// place): the in-place update must give bitwise the same parameters and state.
    /// `state` is (weights, first moment, second moment).
    fn reference_step(
        kind: OptimizerKind,
        wd: f64,
        state: (&mut Tensor, &mut Tensor, &mut Tensor),
        g: &Tensor,
        t: i32,
        lr: f64,
    ) {
        let (p, m, v) = state;
        let mut g = g.shallow_clone();
        match kind {
            OptimizerKind::Sgd => {
                if wd > 0.0 {
                    g = &g + &*p * wd;
                }
                let buf = if t == 1 { g.copy() } else { &*m * 0.9 + &g };
                m.copy_(&buf);
                let _ = p.g_sub_(&(buf * lr));
            }
            OptimizerKind::Adam | OptimizerKind::Adamw => {
                if kind == OptimizerKind::Adamw {
                    let _ = p.g_mul_scalar_(1.0 - lr * wd);
                } else if wd > 0.0 {
                    g = &g + &*p * wd;
                }
                let m2 = &*m * BETA1 + &g * (1.0 - BETA1);
                let v2 = &*v * BETA2 + (&g * &g) * (1.0 - BETA2);
                m.copy_(&m2);
                v.copy_(&v2);
                let m_hat = m2 / (1.0 - BETA1.powi(t));
                let v_hat = v2 / (1.0 - BETA2.powi(t));
                let _ = p.g_sub_(&(m_hat / (v_hat.sqrt() + EPS) * lr));
            }
        }
    }

    #[test]
    fn in_place_updates_are_bitwise_those_of_the_allocating_form() {
        // Draws from libtorch's global generator: other tests seed it and build models
        // from it, so hold the lock (a draw here between their seeding and their model
        // once changed another test's weights).
        let _g = crate::seed::torch_test_lock();
        // both paths; a size with a vector-width remainder, and one split over threads
        let sizes = [1001, 3 * SPLIT_MIN + 7];
        let kinds = [
            OptimizerKind::Sgd,
            OptimizerKind::Adam,
            OptimizerKind::Adamw,
        ];
        for (kind, n, host_loop, wd) in kinds.into_iter().flat_map(|k| {
            sizes.into_iter().flat_map(move |n| {
                [(true, 0.0), (true, 0.01), (false, 0.0), (false, 0.01)]
                    .map(|(h, wd)| (k, n, h, wd))
            })
        }) {
            tch::manual_seed(7);
            let p0 = Tensor::randn([3, n as i64], (Kind::Float, Device::Cpu));
            let mut p = vec![p0.copy().set_requires_grad(true)];
            let mut opt = Optimizer::new(kind, 0.9, wd, &p);
            opt.host_loop = host_loop;
            let (mut rp, mut rm, mut rv) = (p0.copy(), p0.zeros_like(), p0.zeros_like());
            for t in 1..=5 {
                let target = Tensor::randn([3, n as i64], (Kind::Float, Device::Cpu));
                p[0].zero_grad();
                (&p[0] * &target).sum(Kind::Float).backward();
                let g = p[0].grad().copy();
                let grads = [p[0].grad()];
                opt.step(&mut p, &grads, 1e-2);
                reference_step(kind, wd, (&mut rp, &mut rm, &mut rv), &g, t, 1e-2);
                assert!(
                    p[0].detach().equal(&rp),
                    "{kind:?} wd {wd} n {n} host {host_loop}: weights differ at step {t}"
                );
                assert!(
                    opt.m[0].equal(&rm),
                    "{kind:?} wd {wd} n {n}: first moment differs at step {t}"
                );
                if kind != OptimizerKind::Sgd {
                    assert!(
                        opt.v[0].equal(&rv),
                        "{kind:?} wd {wd} n {n}: second moment differs at step {t}"
                    );
                }
                assert!(
                    p[0].grad().equal(&g),
                    "{kind:?} wd {wd}: the gradient was modified"
                );
            }
        }
    }

    #[test]
    fn first_adam_step_moves_by_lr() {
        // Bias correction makes the first Adam step exactly lr in the gradient's direction.
        let mut p = vec![Tensor::from_slice(&[1.0f32]).set_requires_grad(true)];
        let mut opt = Optimizer::new(OptimizerKind::Adam, 0.0, 0.0, &p);
        (&p[0] * 5.0).sum(Kind::Float).backward();
        let g = p[0].grad();
        opt.step(&mut p, &[g], 0.01);
        assert!((p[0].double_value(&[0]) - 0.99).abs() < 1e-6);
    }
}
