//! The data plan: the `data:` section of a run config ([`DataConfig`], with the pixel
//! policy [`InvalidPolicy`]) and the checked [`Plan`] built from it once — the folder
//! verified, the clean index and split manifest read and validated — which training,
//! evaluation, slicing, baselines and the audit's normalisation check all read tiles
//! through. `config` composes [`DataConfig`] into a run config; nothing here knows
//! about the rest of a run.

use super::clean::CleanIndex;
use super::hdf5::{OpenOptions, PixelStats};
use super::loader::{self, TileSink, Tiles};
use super::split::SplitManifest;
use super::SplitName;
use crate::error::{Error, Result};
use crate::progress::Progress;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the data lives and how bad pixels are handled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Folder holding the PCAM files (`.h5` or `.h5.gz`).
    pub dir: PathBuf,
    /// Policy for out-of-range and NaN pixel values.
    pub invalid: InvalidPolicy,
    /// Seed for split construction, separate from the training seed.
    pub split_seed: u64,
    /// Folder for decompressed `.h5.gz` files; `None` means the user cache folder.
    pub cache_dir: Option<PathBuf>,
    /// HDF5 chunk-cache size per open file, in MiB.
    pub chunk_cache_mb: usize,
    /// A clean index from `pcam data audit --write-clean`: tiles it drops are left out of
    /// every split this run reads. `None`: use every tile.
    #[serde(default)]
    pub exclude: Option<PathBuf>,
    /// A split manifest from `pcam data split`: train/valid/test come from its lists
    /// instead of the provided files. `None`: the provided splits.
    #[serde(default)]
    pub split_manifest: Option<PathBuf>,
    /// Which fold of a k-fold split manifest is train/valid.
    #[serde(default)]
    pub fold: usize,
}

/// What to do with pixel values outside 0..=255 or NaN when mapping to u8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvalidPolicy {
    /// Clamp to 0..=255 (NaN becomes 0), and count.
    Clip,
    /// Drop every tile holding such a value, and count.
    Drop,
    /// Stop with an error naming the first offending tile.
    Error,
}

impl std::fmt::Display for InvalidPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InvalidPolicy::Clip => "clip",
            InvalidPolicy::Drop => "drop",
            InvalidPolicy::Error => "error",
        })
    }
}

impl DataConfig {
    /// Checks the paths this section names and reads what they point to: `data.dir` must be
    /// a folder, `data.exclude` a clean index, `data.split_manifest` a split manifest with
    /// fold `data.fold`. Errors name the config field.
    pub fn plan(&self) -> Result<Plan> {
        if !self.dir.is_dir() {
            return Err(Error::ConfigField {
                field: "data.dir".into(),
                msg: format!("folder {} does not exist", self.dir.display()),
                origin: None,
            });
        }
        let exclude = match &self.exclude {
            Some(p) => {
                file_exists("data.exclude", "clean index", p)?;
                Some(CleanIndex::read(p)?)
            }
            None => None,
        };
        let manifest = match &self.split_manifest {
            Some(p) => {
                file_exists("data.split_manifest", "split manifest", p)?;
                let m = SplitManifest::read(p)?;
                m.selection(SplitName::Train, self.fold)?;
                Some(m)
            }
            None => None,
        };
        Ok(Plan {
            dir: self.dir.clone(),
            invalid: self.invalid,
            fold: self.fold,
            exclude,
            manifest,
        })
    }

    /// The folder for decompressed `.h5.gz` files.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(default_cache_dir)
    }

    /// The options for opening this data's files (`data.cache_dir`, `data.chunk_cache_mb`).
    pub fn open_options(&self, progress: Progress) -> OpenOptions {
        OpenOptions {
            cache_dir: self.cache_dir(),
            chunk_cache_mb: self.chunk_cache_mb,
            progress,
        }
    }
}

/// A checked data plan (see [`DataConfig::plan`]): which tiles each logical split is made of.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Folder holding the PCAM files.
    pub dir: PathBuf,
    /// Policy for out-of-range and NaN pixel values.
    pub invalid: InvalidPolicy,
    /// Fold of the split manifest used as train/valid.
    pub fold: usize,
    /// The clean index whose dropped tiles are left out of every split.
    pub exclude: Option<CleanIndex>,
    /// The split manifest whose lists make train/valid/test instead of the provided files.
    pub manifest: Option<SplitManifest>,
}

impl Plan {
    /// The tiles of logical split `split`: the provided file, or the lists of the split
    /// manifest (fold [`Plan::fold`]), minus the tiles the clean index drops, under
    /// [`Plan::invalid`].
    pub fn tiles(&self, split: SplitName, opts: &OpenOptions) -> Result<Tiles> {
        let mut t = Tiles::unlabelled(Vec::new(), Vec::new());
        let stats = self.visit(split, opts, &mut t.pusher())?;
        t.stats = stats;
        Ok(t)
    }

    /// Calls `f(source split, file index, label, tile)` for every tile of logical split
    /// `split` (see [`Plan::tiles`]), streaming block by block; returns the pixel
    /// statistics of the blocks read.
    pub fn visit(
        &self,
        split: SplitName,
        opts: &OpenOptions,
        f: &mut TileSink<'_>,
    ) -> Result<PixelStats> {
        let skip = |s: SplitName| {
            self.exclude
                .as_ref()
                .map(|e| e.dropped(s))
                .unwrap_or_default()
        };
        let mut stats = PixelStats::default();
        match &self.manifest {
            None => loader::visit(
                &self.dir,
                split,
                None,
                self.invalid,
                &skip(split),
                opts,
                &mut stats,
                f,
            )?,
            Some(m) => {
                for (&source, keep) in m.selection(split, self.fold)? {
                    loader::visit(
                        &self.dir,
                        source,
                        Some(keep),
                        self.invalid,
                        &skip(source),
                        opts,
                        &mut stats,
                        f,
                    )?;
                }
            }
        }
        Ok(stats)
    }
}

/// Fails with a config-field error unless `path` (named by `field`) is a file.
fn file_exists(field: &str, what: &str, path: &Path) -> Result<()> {
    if path.is_file() {
        return Ok(());
    }
    Err(Error::ConfigField {
        field: field.into(),
        msg: format!("{what} {} does not exist", path.display()),
        origin: None,
    })
}

/// `$PCAM_CACHE`, else `$XDG_CACHE_HOME/pcam`, else `~/.cache/pcam`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("PCAM_CACHE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(p).join("pcam");
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache/pcam"))
        .unwrap_or_else(|| PathBuf::from(".pcam-cache"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> DataConfig {
        DataConfig {
            dir: dir.to_path_buf(),
            invalid: InvalidPolicy::Clip,
            split_seed: 0,
            cache_dir: None,
            chunk_cache_mb: 1,
            exclude: None,
            split_manifest: None,
            fold: 0,
        }
    }

    #[test]
    fn a_missing_folder_or_file_names_its_field() {
        let e = config(Path::new("/nonexistent/pcam"))
            .plan()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("data.dir") && e.contains("does not exist"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        c.exclude = Some(dir.path().join("clean.json"));
        let e = c.plan().unwrap_err().to_string();
        assert!(
            e.contains("data.exclude") && e.contains("clean index"),
            "{e}"
        );
        c.exclude = None;
        c.split_manifest = Some(dir.path().join("split.json"));
        let e = c.plan().unwrap_err().to_string();
        assert!(e.contains("data.split_manifest"), "{e}");
    }

    #[test]
    fn a_clean_index_that_is_not_one_is_refused_when_planned() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("clean.json");
        std::fs::write(&p, "{}").unwrap();
        let mut c = config(dir.path());
        c.exclude = Some(p);
        let e = c.plan().unwrap_err().to_string();
        assert!(e.contains("clean.json") && e.contains("clean index"), "{e}");
    }
}
