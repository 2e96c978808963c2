//! The clean index: which tiles to leave out of a dataset, and why. `pcam data audit
//! --write-clean FILE` writes it; a run applies it with `data.exclude: FILE`. The PCAM
//! files themselves are never modified.

use super::SplitName;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One tile to leave out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    pub index: usize,
    /// Finding kinds that put it here.
    pub reasons: Vec<String>,
}

/// The file written by the audit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CleanIndex {
    /// The audited folder.
    pub dataset: String,
    pub created_by: String,
    /// SHA-256 of the x file of each split when audited (the index is only valid for them).
    pub x_sha256: BTreeMap<SplitName, String>,
    /// Tiles to leave out per split, sorted by index.
    pub drop: BTreeMap<SplitName, Vec<Dropped>>,
    /// Tiles flagged for review but kept (e.g. label-noise candidates).
    pub review: BTreeMap<SplitName, Vec<Dropped>>,
}

impl CleanIndex {
    /// Reads a clean index written by the audit.
    pub fn read(path: &Path) -> Result<CleanIndex> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "reading", e))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::bad_file(
                path,
                format!("not a clean index written by `pcam data audit`: {e}"),
            )
        })
    }

    /// Sorted file indices to leave out of `split`.
    pub fn dropped(&self, split: SplitName) -> Vec<usize> {
        self.drop
            .get(&split)
            .map(|v| v.iter().map(|d| d.index).collect())
            .unwrap_or_default()
    }
}

impl<'de> Deserialize<'de> for SplitName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
