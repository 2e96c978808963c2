//! Models built from [`ModelConfig`]: the course's baseline MLP and a small CNN
//! (conv–BN–ReLU–pool blocks, global average pooling, an MLP head). Dropout masks are
//! drawn from a pcam RNG stream passed in by the caller, not from libtorch's global
//! generator, so a training step is a pure function of (weights, batch, step) and a
//! resumed run needs no hidden RNG state. Depends on `config`, `data` (tile layout) and
//! `seed` only.

use crate::config::{ModelConfig, ModelKind};
use crate::data::{CHANNELS, TILE};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::{nn, Device, Kind, Tensor};

/// A network and the variables it owns.
pub struct Model {
    pub vs: nn::VarStore,
    pub config: ModelConfig,
    net: Net,
}

enum Net {
    Mlp {
        hidden: Vec<nn::Linear>,
        out: nn::Linear,
    },
    Cnn {
        blocks: Vec<(nn::Conv2D, nn::BatchNorm)>,
        head: Vec<nn::Linear>,
        out: nn::Linear,
    },
}

impl ModelConfig {
    /// Builds the model on `device`. Initial weights come from libtorch's generator,
    /// which `Seeds::apply_to_torch` has seeded.
    pub fn build(&self, device: Device) -> Model {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let net = match self.kind {
            ModelKind::Mlp => {
                let (hidden, width) =
                    linear_stack(&root, "fc", (TILE * TILE * CHANNELS) as i64, &self.hidden);
                Net::Mlp {
                    hidden,
                    out: nn::linear(&root / "out", width, 1, Default::default()),
                }
            }
            ModelKind::Cnn => {
                let mut chans = CHANNELS as i64;
                let mut blocks = vec![];
                for (i, &c) in self.channels.iter().enumerate() {
                    let conv = nn::ConvConfig {
                        padding: 1,
                        bias: false,
                        ..Default::default()
                    };
                    blocks.push((
                        nn::conv2d(&root / format!("conv{i}"), chans, c as i64, 3, conv),
                        nn::batch_norm2d(&root / format!("bn{i}"), c as i64, Default::default()),
                    ));
                    chans = c as i64;
                }
                let (head, width) = linear_stack(&root, "head", chans, &self.hidden);
                Net::Cnn {
                    blocks,
                    head,
                    out: nn::linear(&root / "out", width, 1, Default::default()),
                }
            }
        };
        Model {
            vs,
            config: self.clone(),
            net,
        }
    }
}

/// 2×2 max pooling with stride 2 (floor mode) as the elementwise maximum of the four
/// strided views of `x`. Max is exact, so the values equal `max_pool2d`'s bit for bit
/// (NaN propagates in both), but on the CPU this is ~5–10× faster than libtorch's NCHW
/// `max_pool2d` kernel (measured: 16×96×96 at batch 1, 37 µs against 465 µs). Used in
/// evaluation only: its gradient at exactly tied inputs differs from `max_pool2d`'s, and
/// training keeps libtorch's kernel so its results stay what they were.
pub fn max_pool_2x2(x: &Tensor) -> Tensor {
    let size = x.size();
    let (h, w) = (size[2] - size[2] % 2, size[3] - size[3] % 2);
    let view = |r: i64, c: i64| x.slice(2, r, h, 2).slice(3, c, w, 2);
    view(0, 0)
        .maximum(&view(0, 1))
        .maximum(&view(1, 0).maximum(&view(1, 1)))
}

/// The CNN's input in the memory layout its kernels are fastest on. On the CPU that is
/// channels-last (NHWC strides, same shape): libtorch's oneDNN convolutions, batch norm
/// and max pooling then run without reordering and vectorise over channels, and every
/// activation after the first convolution stays channels-last. Measured on 2 cores
/// (`pcam bench train --config configs/model/cnn.yaml train.batch_size=32`): 467 → 725
/// img/s for training, bitwise repeatable as before, but not the same bits as NCHW
/// (convolution and batch-norm sums run in another order), so every CPU CNN result
/// changed with it. On CUDA the input stays NCHW: not measured there yet, and the
/// committed H200 results were made that way.
fn cnn_layout(xs: &Tensor) -> Tensor {
    if xs.device() == Device::Cpu {
        // permute–contiguous–permute: NHWC bytes behind an NCHW shape, the strides
        // libtorch recognises as channels-last (tch has no memory-format argument).
        xs.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
    } else {
        xs.shallow_clone()
    }
}

/// Linear layers `<prefix>0, <prefix>1, …` of the given widths after an input of
/// `input` features; returns them and the last width.
fn linear_stack(
    root: &nn::Path,
    prefix: &str,
    input: i64,
    widths: &[usize],
) -> (Vec<nn::Linear>, i64) {
    let mut width = input;
    let mut layers = vec![];
    for (i, &h) in widths.iter().enumerate() {
        layers.push(nn::linear(
            root / format!("{prefix}{i}"),
            width,
            h as i64,
            Default::default(),
        ));
        width = h as i64;
    }
    (layers, width)
}

impl Model {
    /// Logits, shape (B), for normalised tiles `xs` of shape (B, 3, 96, 96).
    /// `dropout` is `Some(rng)` in training (masks drawn from `rng`), `None` in evaluation.
    pub fn forward(&self, xs: &Tensor, dropout: Option<&mut ChaCha8Rng>) -> Tensor {
        self.forward_in(xs, dropout, cnn_layout)
    }

    /// [`Model::forward`] with the CNN's input put in memory by `layout`.
    fn forward_in(
        &self,
        xs: &Tensor,
        mut dropout: Option<&mut ChaCha8Rng>,
        layout: fn(&Tensor) -> Tensor,
    ) -> Tensor {
        let train = dropout.is_some();
        let p = self.config.dropout;
        let mut drop = |t: Tensor| match dropout.as_deref_mut() {
            Some(rng) if p > 0.0 => apply_dropout(t, p, rng),
            _ => t,
        };
        match &self.net {
            Net::Mlp { hidden, out } => {
                let mut h = xs.flatten(1, -1); // (B, 27648)
                for l in hidden {
                    h = drop(h.apply(l).relu()); // (B, h_i)
                }
                h.apply(out).squeeze_dim(1) // (B)
            }
            Net::Cnn { blocks, head, out } => {
                let mut h = layout(xs); // (B, 3, 96, 96)
                for (conv, bn) in blocks {
                    // (B, c_i, H/2^i, W/2^i)
                    let a = h.apply(conv).apply_t(bn, train);
                    h = if train {
                        a.relu().max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false)
                    } else {
                        // relu(max(·)) = max(relu(·)) exactly (relu is monotone): pooling
                        // first leaves a quarter of the values for relu, done in place.
                        max_pool_2x2(&a).relu_()
                    };
                }
                let mut h = h.adaptive_avg_pool2d([1, 1]).flatten(1, -1); // (B, c_last)
                for l in head {
                    h = drop(h.apply(l).relu()); // (B, h_i)
                }
                h.apply(out).squeeze_dim(1) // (B)
            }
        }
    }

    /// Trainable parameters.
    pub fn parameter_count(&self) -> i64 {
        self.vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum()
    }

    /// Variables sorted by name (weights, biases, BatchNorm running statistics).
    pub fn named_variables(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// SHA-256 over every variable's name, shape and raw little-endian f32 values, in
    /// name order: equal hashes mean bitwise-equal weights.
    pub fn weights_sha256(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for (name, t) in self.named_variables() {
            h.update(name.as_bytes());
            for d in t.size() {
                h.update(d.to_le_bytes());
            }
            let flat = t.to_device(Device::Cpu).to_kind(Kind::Float).flatten(0, -1);
            let vals = Vec::<f32>::try_from(&flat).expect("float tensor converts to Vec<f32>");
            for v in vals {
                h.update(v.to_le_bytes());
            }
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Inverted dropout with a mask drawn from `rng`: kept units are scaled by 1/(1-p).
fn apply_dropout(t: Tensor, p: f64, rng: &mut ChaCha8Rng) -> Tensor {
    let n = t.numel();
    let keep = 1.0 - p;
    let scale = (1.0 / keep) as f32;
    let mask: Vec<f32> = (0..n)
        .map(|_| {
            if rng.random::<f64>() < keep {
                scale
            } else {
                0.0
            }
        })
        .collect();
    let m = Tensor::from_slice(&mask)
        .view(t.size().as_slice())
        .to_device(t.device());
    t * m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::Seeds;

    #[test]
    fn pool_then_relu_equals_relu_then_libtorch_max_pool2d_exactly() {
        let _g = crate::seed::torch_test_lock();
        tch::manual_seed(3);
        for (h, w) in [(96, 96), (7, 10), (5, 5), (2, 3)] {
            let x = Tensor::randn([2, 3, h, w], (Kind::Float, Device::Cpu));
            let _ = x.get(1).get(2).get(0).get(0).fill_(f64::NAN);
            let a = x.relu().max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
            let b = max_pool_2x2(&x).relu_();
            assert_eq!(a.size(), b.size(), "{h}x{w}");
            assert!(a.isnan().equal(&b.isnan()), "NaN placement {h}x{w}");
            let zero = |t: &Tensor| t.nan_to_num(0.0, None, None);
            assert!(zero(&a).equal(&zero(&b)), "values {h}x{w}");
        }
    }

    #[test]
    fn the_channels_last_cnn_computes_what_the_nchw_one_does() {
        let _g = crate::seed::torch_test_lock();
        tch::manual_seed(5);
        let xs = Tensor::randn([3, 3, 96, 96], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[1f32, 0.0, 1.0]);
        // Logits in training mode, the trainable weights' gradients, then logits in
        // evaluation mode (after the batch-norm statistics' update), with either layout,
        // each on its own copy of the same initial weights.
        let run = |layout: fn(&Tensor) -> Tensor| {
            Seeds::new(2).apply_to_torch(1);
            let m = cfg(ModelKind::Cnn).build(Device::Cpu);
            let mut rng = Seeds::new(1).stream("dropout", 0);
            let logits = m.forward_in(&xs, Some(&mut rng), layout);
            logits
                .binary_cross_entropy_with_logits::<Tensor>(&y, None, None, tch::Reduction::Mean)
                .backward();
            let grads: Vec<(String, Tensor)> = m
                .named_variables()
                .into_iter()
                .filter(|(_, v)| v.requires_grad())
                .map(|(n, v)| {
                    // Gradients keep the weights' own (contiguous) layout, so the
                    // optimiser's host-memory passes see them element for element.
                    assert!(v.grad().is_contiguous(), "{n}");
                    (n, v.grad().copy())
                })
                .collect();
            let eval = tch::no_grad(|| m.forward_in(&xs, None, layout));
            (logits, eval, grads)
        };
        let (nchw, nchw_eval, nchw_grads) = run(Tensor::shallow_clone);
        let (nhwc, nhwc_eval, nhwc_grads) = run(cnn_layout);
        assert!(nhwc.allclose(&nchw, 1e-4, 1e-5, false), "{nhwc} {nchw}");
        assert!(nhwc_eval.allclose(&nchw_eval, 1e-4, 1e-5, false));
        assert_eq!(nhwc_grads.len(), 10); // 2 convs, 2 batch norms and 2 linears (2 each)
        for ((name, a), (_, b)) in nhwc_grads.iter().zip(&nchw_grads) {
            assert!(a.abs().max().double_value(&[]) > 0.0, "{name}");
            assert!(a.allclose(b, 1e-3, 1e-5, false), "{name}: {a} {b}");
        }
    }

    fn cfg(kind: ModelKind) -> ModelConfig {
        ModelConfig {
            kind,
            hidden: vec![8],
            dropout: 0.5,
            channels: vec![4, 8],
        }
    }

    #[test]
    fn both_models_give_one_logit_per_tile() {
        let _g = crate::seed::torch_test_lock();
        for kind in [ModelKind::Mlp, ModelKind::Cnn] {
            Seeds::new(1).apply_to_torch(1);
            let m = cfg(kind).build(Device::Cpu);
            let xs = Tensor::zeros([2, 3, 96, 96], (Kind::Float, Device::Cpu));
            assert_eq!(m.forward(&xs, None).size(), vec![2]);
            let mut rng = Seeds::new(1).stream("dropout", 0);
            assert_eq!(m.forward(&xs, Some(&mut rng)).size(), vec![2]);
            assert!(m.parameter_count() > 0);
        }
    }

    #[test]
    fn same_seed_same_weights_other_seed_other_weights() {
        let _g = crate::seed::torch_test_lock();
        let hash = |seed| {
            Seeds::new(seed).apply_to_torch(1);
            cfg(ModelKind::Cnn).build(Device::Cpu).weights_sha256()
        };
        assert_eq!(hash(3), hash(3));
        assert_ne!(hash(3), hash(4));
    }

    #[test]
    fn dropout_masks_follow_the_stream() {
        let t = Tensor::ones([4, 100], (Kind::Float, Device::Cpu));
        let a = apply_dropout(
            t.shallow_clone(),
            0.5,
            &mut Seeds::new(1).stream("dropout", 7),
        );
        let b = apply_dropout(
            t.shallow_clone(),
            0.5,
            &mut Seeds::new(1).stream("dropout", 7),
        );
        assert!(a.equal(&b));
        let kept = a.ne(0.0).sum(Kind::Int64).int64_value(&[]);
        assert!((120..280).contains(&kept), "{kept}");
        assert_eq!(a.max().double_value(&[]), 2.0);
    }
}
