//! Report: tables (polars DataFrames rendered as HTML in notebooks and as Markdown for
//! the journal) and figures (plotters charts rendered to PNG with an embedded font, shown
//! inline in evcxr and saved under `assets/`). Notebooks and the CLI use the same
//! helpers, so a figure made by either is byte-identical. The rendering layer (tables,
//! figures, charts, the numbers behind derived assets) depends on `data` (tile images),
//! `error` and `fsutil` only. The figures of a domain live beside it and use this layer:
//! `eval::figures`, `slicing::figures`, `bench::report`, `search::report`.

pub mod charts;
pub mod dataset;
pub mod derived;
pub mod figure;
pub mod table;
pub mod values;

pub use derived::AcrossCpus;
pub use figure::Figure;
pub use table::Table;
pub use values::NamedValue;

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Where exported figures (`<dir>/<name>.png`) and tables (`<dir>/tables/<name>.md`) go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assets {
    dir: PathBuf,
}

impl Assets {
    /// Assets in an explicit folder.
    pub fn at(dir: impl Into<PathBuf>) -> Assets {
        Assets { dir: dir.into() }
    }

    /// `$PCAM_ASSETS_DIR` if set, else `assets/` under [`project_root`], so notebooks
    /// under `notebooks/` and commands run from the root export to the same place.
    pub fn discover() -> Result<Assets> {
        if let Some(d) = std::env::var_os("PCAM_ASSETS_DIR") {
            return Ok(Assets::at(d));
        }
        Ok(Assets::at(project_root()?.join("assets")))
    }

    /// The folder given on a command line (`--assets DIR`), else [`Assets::discover`].
    pub fn from_flag(dir: Option<PathBuf>) -> Result<Assets> {
        match dir {
            Some(d) => Ok(Assets::at(d)),
            None => Assets::discover(),
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of figure `name`.
    pub fn figure_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.png"))
    }

    /// Path of table `name`.
    pub fn table_path(&self, name: &str) -> PathBuf {
        self.dir.join("tables").join(format!("{name}.md"))
    }
}

/// The nearest ancestor of the current folder that holds `journal.md`: the project root.
pub fn project_root() -> Result<PathBuf> {
    let cwd = std::env::current_dir().map_err(|e| Error::io(".", "reading current folder", e))?;
    cwd.ancestors()
        .find(|d| d.join("journal.md").is_file())
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            Error::Usage(format!(
                "no journal.md in {} or above: run inside the pcam project or set PCAM_ASSETS_DIR",
                cwd.display()
            ))
        })
}

/// Checks an asset name: lower-case letters, digits, `_` and `-` only, so names are
/// safe as file names and as journal markers.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "asset name `{name}`: use lower-case letters, digits, `_` and `-` only"
        )))
    }
}

/// Writes `bytes` to `path`, creating its folder, atomically.
pub(crate) fn write_asset(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, "creating folder", e))?;
    }
    crate::fsutil::write_atomic(path, bytes)
}

/// Prints an evcxr rich-output block (the kernel turns it into a MIME bundle).
pub(crate) fn evcxr_emit(mime: &str, body: &str) {
    println!("EVCXR_BEGIN_CONTENT {mime}\n{body}\nEVCXR_END_CONTENT");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("q2_dataset-size").is_ok());
        assert!(check_name("../etc").is_err());
        assert!(check_name("Q2").is_err());
        assert!(check_name("").is_err());
    }

    #[test]
    fn paths_follow_the_layout() {
        let a = Assets::at("assets");
        assert_eq!(a.figure_path("f"), Path::new("assets/f.png"));
        assert_eq!(a.table_path("t"), Path::new("assets/tables/t.md"));
    }
}
