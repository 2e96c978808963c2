//! `<run>/tracking.json`: what of the run folder each tracking server has received.
//! The run folder is the record; this file is only the cursor of its copy on a server,
//! so a push resumes where the last one stopped and a finished sync is not repeated.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// File name inside the run folder (never uploaded as an artifact).
pub const FILE: &str = "tracking.json";

/// The run's copy on one server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerState {
    pub experiment: String,
    pub experiment_id: Option<String>,
    pub run_id: Option<String>,
    /// Parameters and tags sent.
    pub params_pushed: bool,
    /// Rows of `history/steps.csv` and `history/epochs.csv` sent.
    pub steps_pushed: usize,
    pub epochs_pushed: usize,
    /// `eval-<split>.json` files sent, with their SHA-256.
    pub evals: BTreeMap<String, String>,
    /// Artifacts uploaded (path relative to the run) with their SHA-256.
    pub artifacts: BTreeMap<String, String>,
    /// Status last set on the server.
    pub status: Option<String>,
    /// True when everything in the (finished) run folder is on the server.
    pub synced: bool,
    pub last_error: Option<String>,
    /// UTC stamp of the last attempt (a record, never used for ordering).
    pub last_attempt: Option<String>,
}

/// All servers a run has been logged to, by URI.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackingFile {
    pub servers: BTreeMap<String, ServerState>,
}

impl TrackingFile {
    pub fn path(run: &Path) -> PathBuf {
        run.join(FILE)
    }

    /// Reads the run's tracking file (empty when the run was never tracked).
    pub fn load(run: &Path) -> Result<TrackingFile> {
        let p = Self::path(run);
        match std::fs::read_to_string(&p) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| Error::bad_file(&p, format!("invalid tracking state: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TrackingFile::default()),
            Err(e) => Err(Error::io(&p, "reading", e)),
        }
    }

    /// Writes it atomically.
    pub fn save(&self, run: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::failed("serialising tracking state", e))?;
        crate::fsutil::write_atomic(&Self::path(run), format!("{text}\n").as_bytes())
    }

    /// Servers that do not yet hold the whole run.
    pub fn unsynced(&self) -> Vec<String> {
        self.servers
            .iter()
            .filter(|(_, s)| !s.synced)
            .map(|(u, _)| u.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_lists_unsynced_servers() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            TrackingFile::load(d.path()).unwrap(),
            TrackingFile::default()
        );
        let mut t = TrackingFile::default();
        t.servers.insert(
            "http://a".into(),
            ServerState {
                synced: true,
                ..Default::default()
            },
        );
        t.servers.insert(
            "http://b".into(),
            ServerState {
                steps_pushed: 3,
                last_error: Some("down".into()),
                ..Default::default()
            },
        );
        t.save(d.path()).unwrap();
        let back = TrackingFile::load(d.path()).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.unsynced(), vec!["http://b".to_string()]);
        std::fs::write(d.path().join(FILE), "{").unwrap();
        let e = TrackingFile::load(d.path()).unwrap_err().to_string();
        assert!(e.contains("tracking.json") && e.contains("invalid"), "{e}");
    }
}
