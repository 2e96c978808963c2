//! Checkpoints: one file holding the model's variables, the optimiser's state, and the
//! training state (epoch, step, schedule, history, normalisation statistics, the
//! resolved config) as JSON in a byte tensor. Written to a temporary name and renamed,
//! so a crash never leaves a torn checkpoint under the final name.

use super::optim::Optimizer;
use super::schedule::Schedule;
use crate::data::loader::NormStats;
use crate::error::{Error, Result};
use crate::fsutil::TempPath;
use crate::model::Model;
use crate::run::history::{EpochRecord, StepRecord};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use tch::Tensor;

/// Everything besides tensors that a resumed run needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs completed.
    pub epochs_done: usize,
    /// Global steps completed.
    pub step: usize,
    pub schedule: Schedule,
    pub optimizer_steps: i64,
    pub history: Vec<EpochRecord>,
    pub steps: Vec<StepRecord>,
    /// Layer names, in the order of `StepRecord::layer_norms`.
    pub layers: Vec<String>,
    pub norm: NormStats,
    pub config_sha256: String,
    pub config_yaml: String,
    /// Checkpoint layout version ([`FORMAT`] when written by this pcam; absent = 0).
    #[serde(default)]
    pub format: u32,
    /// The pcam that wrote it.
    #[serde(default)]
    pub pcam_version: String,
}

impl TrainState {
    /// The state of a run before its first step: a fresh schedule of `train` for
    /// `steps_per_epoch`, the learner's layers, the normalisation statistics of the train
    /// split; the config's hash and text are left empty for the caller ([`super::fit`]
    /// sets the run's; the benchmarks, which never save, leave them).
    pub fn fresh(
        train: &crate::config::TrainConfig,
        learner: &super::step::Learner,
        norm: NormStats,
        steps_per_epoch: usize,
    ) -> TrainState {
        TrainState {
            epochs_done: 0,
            step: 0,
            schedule: super::schedule::Schedule::new(train, steps_per_epoch),
            optimizer_steps: 0,
            history: vec![],
            steps: vec![],
            layers: learner.layers.clone(),
            norm,
            config_sha256: String::new(),
            config_yaml: String::new(),
            format: FORMAT,
            pcam_version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// The checkpoint layout version (see [`crate::run::checkpoint::FORMAT`]).
pub use crate::run::checkpoint::FORMAT;

fn tensor_err<'a>(path: &'a Path, what: &'static str) -> impl Fn(tch::TchError) -> Error + 'a {
    move |e| Error::Torch {
        path: path.to_path_buf(),
        what,
        msg: crate::error::one_line(&e.to_string()),
    }
}

/// Writes a checkpoint to `path` atomically.
pub fn save(
    path: &Path,
    model: &Model,
    params: &[(String, Tensor)],
    opt: &Optimizer,
    state: &TrainState,
) -> Result<()> {
    let json =
        serde_json::to_vec(state).map_err(|e| Error::failed("serialising train state", e))?;
    let mut named: Vec<(String, Tensor)> = model
        .named_variables()
        .into_iter()
        .map(|(n, t)| (format!("model/{n}"), t))
        .collect();
    for (i, (n, _)) in params.iter().enumerate() {
        named.push((format!("opt_m/{n}"), opt.m[i].shallow_clone()));
        named.push((format!("opt_v/{n}"), opt.v[i].shallow_clone()));
    }
    named.push(("state".into(), Tensor::from_slice(&json)));
    let tmp = TempPath::for_target(path);
    Tensor::save_multi(&named, tmp.path()).map_err(tensor_err(path, "writing checkpoint"))?;
    stall_for_crash_test(tmp.path());
    tmp.commit()
}

/// Fault injection for the crash test (`tests/train.rs`): with
/// `PCAM_TEST_STALL_CHECKPOINT=<marker>` set, the process stops for good between writing a
/// checkpoint's temporary file and renaming it, after writing the temporary file's path to
/// `<marker>`, so the test can SIGKILL it at exactly that point on any machine. The marker
/// is written atomically: once the test sees it, it holds the whole path.
fn stall_for_crash_test(tmp: &Path) {
    if let Some(marker) = std::env::var_os("PCAM_TEST_STALL_CHECKPOINT") {
        let marker = Path::new(&marker);
        if crate::fsutil::write_atomic(marker, tmp.to_string_lossy().as_bytes()).is_ok() {
            loop {
                std::thread::park();
            }
        }
    }
}

/// Restores model variables and optimiser state from `path` and returns the train state.
pub fn load(
    path: &Path,
    model: &Model,
    params: &[(String, Tensor)],
    opt: &mut Optimizer,
) -> Result<TrainState> {
    let (state, mut rest) = load_model(path, model)?;
    tch::no_grad(|| -> Result<()> {
        for (i, (n, _)) in params.iter().enumerate() {
            opt.m[i].copy_(&take(path, &mut rest, &format!("opt_m/{n}"))?);
            opt.v[i].copy_(&take(path, &mut rest, &format!("opt_v/{n}"))?);
        }
        Ok(())
    })?;
    opt.steps = state.optimizer_steps;
    Ok(state)
}

/// Restores only the model's variables (for evaluation and prediction).
pub fn load_weights(path: &Path, model: &Model) -> Result<TrainState> {
    load_model(path, model).map(|(s, _)| s)
}

fn state_of(path: &Path, t: &mut HashMap<String, Tensor>) -> Result<TrainState> {
    let bytes = Vec::<u8>::try_from(&take(path, t, "state")?.to_device(tch::Device::Cpu))
        .map_err(tensor_err(path, "reading train state"))?;
    crate::run::checkpoint::parse_state(path, &bytes)
}

fn take(path: &Path, t: &mut HashMap<String, Tensor>, name: &str) -> Result<Tensor> {
    t.remove(name)
        .ok_or_else(|| Error::bad_file(path, format!("checkpoint has no tensor `{name}`")))
}

/// Reads the checkpoint, restores the model, returns the state and the other tensors.
fn load_model(path: &Path, model: &Model) -> Result<(TrainState, HashMap<String, Tensor>)> {
    if !path.exists() {
        return Err(Error::NotFound {
            path: path.to_path_buf(),
        });
    }
    let mut t: HashMap<String, Tensor> = Tensor::load_multi_with_device(path, model.vs.device())
        .map_err(tensor_err(path, "reading checkpoint"))?
        .into_iter()
        .collect();
    let state = state_of(path, &mut t)?;
    tch::no_grad(|| -> Result<()> {
        for (n, mut v) in model.named_variables() {
            let src = take(path, &mut t, &format!("model/{n}"))?;
            if src.size() != v.size() {
                return Err(Error::bad_file(
                    path,
                    format!("`{n}` has shape {:?}, the model {:?}", src.size(), v.size()),
                ));
            }
            v.copy_(&src);
        }
        Ok(())
    })?;
    Ok((state, t))
}
