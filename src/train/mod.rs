//! Training: the fit loop over the input pipeline, with hand-written optimisers,
//! per-step LR schedules, global and per-layer gradient norms, optional clipping,
//! best-model and early-stopping policies, atomic checkpoints and bitwise resume.
//! Reads `config`, `data`, `model`, `metrics`, `run`; writes only into its run folder.

pub mod checkpoint;
pub mod optim;
pub mod policy;
pub mod schedule;
pub mod step;

use crate::config::ResolvedConfig;
use crate::data::loader::{self, NormStats, Tiles};
use crate::data::SplitName;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::progress::Progress;
use crate::run::history::{EpochRecord, StepRecord};
pub use crate::run::FitSummary;
use crate::run::{Manifest, RunDir};
use crate::seed::Seeds;
use checkpoint::TrainState;
use std::sync::Arc;
use step::Learner;

impl FitSummary {
    /// What `pcam train` prints after the run folder: the final weights' hash and the
    /// best epoch's validation scores.
    pub fn to_text(&self) -> String {
        let mut o = format!("final weights sha256 {}\n", self.final_weights_sha256);
        if let Some(b) = &self.best {
            o.push_str(&format!(
                "best epoch {}: valid AUC {}, valid loss {:.4}, accuracy {:.4}{}\n",
                b.epoch + 1,
                crate::metrics::show(b.valid_auc),
                b.valid_loss,
                b.valid_accuracy,
                crate::data::synth::suffix(self.data_synthetic.is_some())
            ));
        }
        o
    }
}

/// How [`fit`] runs: fresh or resumed, quiet or with progress, paused, observed.
#[derive(Default)]
pub struct FitOptions<'a> {
    /// Continue from the run's `last` checkpoint (a run without one starts afresh).
    pub resume: bool,
    pub progress: Progress,
    /// Stop once this many epochs are done — without `metrics.json`, so the run is not
    /// finished — and a later resume continues it bitwise as if it had never stopped
    /// (how successive halving gives a trial more epochs).
    pub pause_after: Option<usize>,
    /// Called once each epoch's checkpoint and history are on disk (how tracking
    /// follows a run without training depending on it).
    pub after_epoch: Option<&'a mut dyn FnMut(&RunDir)>,
}

impl<'a> FitOptions<'a> {
    /// A fresh run, without progress bars or per-epoch lines (what notebooks use).
    pub fn quiet() -> FitOptions<'a> {
        FitOptions {
            progress: Progress { quiet: true },
            ..FitOptions::default()
        }
    }
}

/// Trains the run in `run` as `options` say (fresh, or from its `last` checkpoint).
pub fn fit(cfg: &ResolvedConfig, run: &RunDir, options: FitOptions) -> Result<FitSummary> {
    let FitOptions {
        resume,
        progress,
        pause_after,
        mut after_epoch,
    } = options;
    let c = &cfg.config;
    let plan = c.data.plan()?;
    // A run stopped before its first checkpoint has nothing to resume: it starts again
    // from the beginning in the same folder (the same seed gives the same run).
    let resume = resume && {
        let has = run.checkpoint("last").exists();
        if !has && !progress.quiet {
            eprintln!(
                "{}: no checkpoint yet; training from the first epoch",
                run.path.display()
            );
        }
        has
    };
    let seeds = Seeds::new(c.seed);
    let pins = seeds.apply_to_torch(c.train.threads);
    let device = crate::device::select(c.train.device)?;
    let opts = c.data.open_options(progress);
    let loading = std::time::Instant::now();
    let train = Arc::new(plan.tiles(SplitName::Train, &opts)?);
    let valid = plan.tiles(SplitName::Valid, &opts)?;
    let load_seconds = loading.elapsed().as_secs_f64();
    if train.is_empty() || valid.is_empty() {
        return Err(Error::bad_file(
            &c.data.dir,
            "no train or valid tiles left after the data.invalid policy",
        ));
    }
    if !resume {
        let files: Vec<_> = [SplitName::Train, SplitName::Valid]
            .iter()
            .flat_map(|s| ["x", "y", "meta"].map(|k| c.data.dir.join(s.file_name(k))))
            .filter(|p| p.exists())
            .collect();
        let mut manifest = Manifest::collect(cfg, pins, device, &files)?;
        if let Some(s) = manifest.startup_seconds.as_mut() {
            s.load = load_seconds;
        }
        run.write_json("manifest.json", &manifest)?;
    }

    let mut learner = Learner::new(c.model.build(device), &c.train);
    let steps_per_epoch = train.len().div_ceil(c.train.batch_size);
    let mut state = if resume {
        let s = learner.load(&run.checkpoint("last"))?;
        if s.config_sha256 != cfg.sha256 {
            return Err(Error::bad_file(
                run.checkpoint("last"),
                "checkpoint belongs to a different config",
            ));
        }
        s
    } else {
        TrainState {
            config_sha256: cfg.sha256.clone(),
            config_yaml: cfg.yaml.clone(),
            ..TrainState::fresh(&c.train, &learner, NormStats::of(&train), steps_per_epoch)
        }
    };
    let norm = state.norm;
    let mut stopped_early = false;

    let mut paused = false;
    // The next epoch's loader, started before this epoch's validation: its batches
    // depend only on the seeds and the epoch, and its thread (idle scheduling class)
    // fills the queue in the cycles validation and the checkpoint leave free.
    let mut next: Option<std::sync::mpsc::Receiver<loader::TensorBatch>> = None;
    let pauses_before = |epoch: usize| pause_after.is_some_and(|p| epoch >= p);
    for epoch in state.epochs_done..c.train.epochs {
        if pauses_before(epoch) {
            paused = true;
            break;
        }
        if policy::should_stop(&state.history, c.train.select, c.train.early_stop_patience) {
            stopped_early = true;
            break;
        }
        let t0 = std::time::Instant::now();
        let rx = next
            .take()
            .unwrap_or_else(|| epoch_batches(&train, &seeds, epoch, &c.train, norm));
        let label = format!("epoch {}/{}", epoch + 1, c.train.epochs);
        let bar = progress.bar(steps_per_epoch as u64, label.clone(), "steps");
        let done = run_steps(&mut learner, &mut state, rx, &seeds, device, &bar, &label);
        bar.finish_and_clear();
        let train_secs = t0.elapsed().as_secs_f64();
        if epoch + 1 < c.train.epochs && !pauses_before(epoch + 1) {
            next = Some(epoch_batches(&train, &seeds, epoch + 1, &c.train, norm));
        }
        let (valid_loss, valid_auc, valid_accuracy) =
            evaluate(&learner.model, &valid, &norm, c.train.batch_size, device);
        state.schedule.end_epoch(valid_loss);
        state.history.push(EpochRecord {
            epoch,
            steps: steps_per_epoch,
            train_loss: done.loss_sum / done.seen.max(1) as f64,
            valid_loss,
            valid_auc,
            valid_accuracy,
            lr_end: state.schedule.lr(state.step.saturating_sub(1)),
            seconds: t0.elapsed().as_secs_f64(),
            images_per_second: done.seen as f64 / train_secs.max(1e-9),
        });
        state.epochs_done = epoch + 1;
        state.optimizer_steps = learner.opt.steps;
        learner.save(&run.checkpoint("last"), &state)?;
        if policy::is_new_best(&state.history, c.train.select) {
            learner.save(&run.checkpoint("best"), &state)?;
        }
        run.write_history(&state.history, &state.steps, &state.layers)?;
        if let Some(f) = after_epoch.as_mut() {
            f(run);
        }
        if !progress.quiet {
            let e = state.history.last().expect("just pushed");
            eprintln!(
                "epoch {}/{}: train loss {:.4}, valid loss {:.4}, valid AUC {}, {:.0} img/s",
                epoch + 1,
                c.train.epochs,
                e.train_loss,
                e.valid_loss,
                crate::metrics::show(e.valid_auc),
                e.images_per_second
            );
        }
    }
    let best_epoch = policy::best_epoch(&state.history, c.train.select);
    let summary = FitSummary {
        run: run.path.clone(),
        epochs_run: state.epochs_done,
        steps: state.step,
        final_weights_sha256: learner.model.weights_sha256(),
        best_epoch,
        best: best_epoch.map(|b| state.history[b].clone()),
        stopped_early,
        data_synthetic: crate::data::synth::note(&c.data.dir),
    };
    if !paused {
        run.write_json("metrics.json", &summary)?;
    }
    Ok(summary)
}

/// The batches of epoch `epoch`: the epoch's seeded order (balanced or not), assembled
/// and augmented (when `train.augment`) by the background loader, two batches ahead.
pub fn epoch_batches(
    train: &Arc<Tiles>,
    seeds: &Seeds,
    epoch: usize,
    t: &crate::config::TrainConfig,
    norm: NormStats,
) -> std::sync::mpsc::Receiver<loader::TensorBatch> {
    let order = loader::epoch_order(seeds, epoch, &train.labels, t.balanced);
    let augment = t.augment.then_some((*seeds, epoch));
    loader::batches(Arc::clone(train), order, t.batch_size, norm, augment)
}

/// Where the seconds of [`run_steps`] went: waiting for the next batch from the input
/// pipeline, the training step itself ([`Learner::step`] with the batch moved to the
/// device and the loss read back), and logging it (step record, progress bar).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct StepSeconds {
    pub waiting: f64,
    pub stepping: f64,
    pub logging: f64,
}

/// What [`run_steps`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepsDone {
    pub batches: usize,
    /// Images trained on, and the sum of their batch losses weighted by batch size.
    pub seen: usize,
    pub loss_sum: f64,
    pub seconds: StepSeconds,
}

/// The training steps over `batches`, as one epoch of [`fit`] runs them: the LR of the
/// schedule at the global step, the step's own dropout stream, [`Learner::step`], then a
/// [`StepRecord`] and the progress bar. `pcam bench train` times this same function, so
/// the benchmark and training cannot drift apart.
pub fn run_steps(
    learner: &mut Learner,
    state: &mut TrainState,
    batches: impl IntoIterator<Item = loader::TensorBatch>,
    seeds: &Seeds,
    device: tch::Device,
    bar: &indicatif::ProgressBar,
    label: &str,
) -> StepsDone {
    use std::time::Instant;
    let mut done = StepsDone::default();
    let mut s = StepSeconds::default();
    let mut t = Instant::now();
    for batch in batches {
        let got = Instant::now();
        s.waiting += (got - t).as_secs_f64();
        let lr = state.schedule.lr(state.step);
        let (x, y) = batch.to_device(device);
        let mut drop_rng = seeds.stream("dropout", state.step as u64);
        let out = learner.step(&x, &y, &mut drop_rng, lr, &mut |_| {});
        let stepped = Instant::now();
        s.stepping += (stepped - got).as_secs_f64();
        let l = out.loss;
        done.loss_sum += l * batch.tiles.len() as f64;
        done.seen += batch.tiles.len();
        done.batches += 1;
        let epoch = state.epochs_done;
        state.steps.push(StepRecord {
            step: state.step,
            epoch,
            lr,
            loss: l,
            grad_norm: out.grad_norm,
            layer_norms: out.layer_norms,
        });
        state.step += 1;
        if !bar.is_hidden() {
            bar.set_message(format!("{label} loss {l:.4}"));
        }
        bar.inc(1);
        t = Instant::now();
        s.logging += (t - stepped).as_secs_f64();
    }
    done.seconds = s;
    done
}

/// Validation loss, ROC-AUC and accuracy at 0.5, in file order without augmentation.
pub fn evaluate(
    model: &Model,
    tiles: &Tiles,
    norm: &NormStats,
    batch_size: usize,
    device: tch::Device,
) -> (f64, Option<f64>, f64) {
    let probs = predict(model, tiles, norm, batch_size, device);
    (
        crate::metrics::log_loss(&probs, &tiles.labels),
        crate::metrics::roc_auc(&probs, &tiles.labels),
        crate::metrics::accuracy(&probs, &tiles.labels, 0.5),
    )
}

/// Probabilities for every tile, in order.
pub fn predict(
    model: &Model,
    tiles: &Tiles,
    norm: &NormStats,
    batch_size: usize,
    device: tch::Device,
) -> Vec<f32> {
    let order: Vec<usize> = (0..tiles.len()).collect();
    let mut out = Vec::with_capacity(tiles.len());
    tch::no_grad(|| {
        for idx in order.chunks(batch_size.max(1)) {
            let (x, _) = loader::make_batch(tiles, idx, norm, None).to_tensors(device);
            let p = model
                .forward(&x, None)
                .sigmoid()
                .to_device(tch::Device::Cpu);
            out.extend(Vec::<f32>::try_from(&p).expect("float probabilities"));
        }
    });
    out
}
