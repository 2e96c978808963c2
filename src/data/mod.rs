//! Data: the PCAM file layout, HDF5 reading with explicit pixel policies, `.h5.gz`
//! handling, inspection reports, the synthetic PCAM generator, seeded split manifests,
//! clean indexes, hand-made tile features, the input pipeline, and the checked data plan
//! ([`plan::Plan`]) built from a run config's `data:` section. Depends only on the
//! foundation (`error`, `fsutil`, `seed`, `runtime`, `progress`): never on `config`,
//! models or training.

pub mod clean;
pub mod features;
pub mod gz;
pub mod hdf5;
pub mod inspect;
pub mod loader;
pub mod plan;
pub mod split;
pub mod synth;
pub mod tile_png;

pub use plan::{DataConfig, InvalidPolicy, Plan};
use std::fmt;
use std::path::{Path, PathBuf};

/// Tile side in pixels.
pub const TILE: usize = 96;
/// Channels per pixel (RGB, channels-last).
pub const CHANNELS: usize = 3;
/// Bytes of one u8 tile.
pub const TILE_BYTES: usize = TILE * TILE * CHANNELS;

/// The three PCAM splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitName {
    Train,
    Valid,
    Test,
}

impl SplitName {
    /// All splits in file order.
    pub const ALL: [SplitName; 3] = [SplitName::Train, SplitName::Valid, SplitName::Test];

    /// The split's name as used in file names.
    pub fn as_str(self) -> &'static str {
        match self {
            SplitName::Train => "train",
            SplitName::Valid => "valid",
            SplitName::Test => "test",
        }
    }

    /// Standard file name of this split's `kind` file: `x`/`y` (`.h5`) or `meta` (`.csv`).
    pub fn file_name(self, kind: &str) -> String {
        let ext = if kind == "meta" { "csv" } else { "h5" };
        format!("camelyonpatch_level_2_split_{}_{kind}.{ext}", self.as_str())
    }
}

impl fmt::Display for SplitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SplitName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "train" => Ok(SplitName::Train),
            "valid" | "val" | "validation" => Ok(SplitName::Valid),
            "test" => Ok(SplitName::Test),
            other => Err(format!(
                "unknown split `{other}` (expected train, valid or test)"
            )),
        }
    }
}

/// The files of one split.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SplitFiles {
    pub x: PathBuf,
    pub y: PathBuf,
    pub meta: Option<PathBuf>,
}

impl SplitFiles {
    /// Which splits have an x file (`.h5` or `.h5.gz`) in `dir`.
    pub fn present(dir: &Path) -> Vec<SplitName> {
        SplitName::ALL
            .into_iter()
            .filter(|s| {
                let x = dir.join(s.file_name("x"));
                x.exists() || gz::gz_path(&x).exists()
            })
            .collect()
    }
}
