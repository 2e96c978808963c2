//! What a checkpoint says about its run, read without building a model. `train::checkpoint`
//! writes each checkpoint with its train state as JSON in a byte tensor named `state`; the
//! layout version check lives here, so every reader refuses another pcam's checkpoint with
//! the same message. The optimiser, the schedule and the weights stay `train`'s business.

use super::RunDir;
use crate::data::loader::NormStats;
use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::Path;

/// The checkpoint layout this pcam writes and reads. Bump it when the tensors or the train
/// state change meaning; an older or newer checkpoint is then refused with a clear message
/// instead of being misread.
pub const FORMAT: u32 = 1;

/// The part of a checkpoint's train state that describes the run (other fields ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct CheckpointSummary {
    /// Epochs completed.
    pub epochs_done: usize,
    /// Global steps completed.
    pub step: usize,
    /// The normalisation statistics the model was trained with (from the train split).
    pub norm: NormStats,
    pub config_sha256: String,
}

/// Parses a checkpoint's `state` bytes: JSON written in this pcam's [`FORMAT`]. The version
/// is read first, so a checkpoint from another pcam is named as such even when its train
/// state no longer parses.
pub fn state_json(path: &Path, bytes: &[u8]) -> Result<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        Error::bad_file(
            path,
            format!(
                "corrupt train state (not JSON): {}",
                crate::error::one_line(&e.to_string())
            ),
        )
    })?;
    let format = v["format"].as_u64().unwrap_or(0);
    if format != FORMAT as u64 {
        let by = v["pcam_version"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("an older pcam");
        return Err(Error::bad_file(
            path,
            format!(
                "checkpoint format {format} (written by {by}); this pcam {} reads format {FORMAT}: retrain, or load it with the pcam that wrote it",
                env!("CARGO_PKG_VERSION")
            ),
        ));
    }
    Ok(v)
}

/// Parses a checkpoint's `state` bytes ([`state_json`]) into `T`: the whole train state
/// (`train::checkpoint`) or the [`CheckpointSummary`] part of it.
pub fn parse_state<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T> {
    serde_json::from_value(state_json(path, bytes)?).map_err(|e| {
        Error::bad_file(
            path,
            format!(
                "invalid train state: {}",
                crate::error::one_line(&e.to_string())
            ),
        )
    })
}

impl RunDir {
    /// The summary of checkpoint `which` (`best` or `last`).
    pub fn checkpoint_summary(&self, which: &str) -> Result<CheckpointSummary> {
        let path = self.checkpoint(which);
        if !path.exists() {
            return Err(Error::NotFound { path });
        }
        let torch = |e: tch::TchError| Error::Torch {
            path: path.clone(),
            what: "reading checkpoint",
            msg: crate::error::one_line(&e.to_string()),
        };
        let state = tch::Tensor::load_multi(&path)
            .map_err(torch)?
            .into_iter()
            .find(|(n, _)| n == "state")
            .map(|(_, t)| t)
            .ok_or_else(|| Error::bad_file(&path, "checkpoint has no tensor `state`"))?;
        let bytes = Vec::<u8>::try_from(&state).map_err(torch)?;
        parse_state(&path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_must_be_json_in_this_format_and_names_who_wrote_it_otherwise() {
        let p = Path::new("runs/x/checkpoints/best.ckpt");
        let ok = format!("{{\"format\": {FORMAT}, \"step\": 3}}");
        assert_eq!(state_json(p, ok.as_bytes()).unwrap()["step"], 3);
        let e = state_json(p, b"{\"format\": 9, \"pcam_version\": \"9.9.9\"}").unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("best.ckpt") && e.contains("format 9 (written by 9.9.9)"),
            "{e}"
        );
        let e = state_json(p, b"{}").unwrap_err().to_string();
        assert!(e.contains("format 0 (written by an older pcam)"), "{e}");
        let e = state_json(p, b"\x00\x01").unwrap_err().to_string();
        assert!(e.contains("corrupt train state (not JSON)"), "{e}");
    }
}
