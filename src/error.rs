//! The library's typed errors. Every variant renders as one line that names the file
//! or config field and what is wrong with it; the binary prints that line once and
//! exits with code 2. Nothing here depends on other pcam modules.

use std::path::PathBuf;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in pcam's library code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed.
    #[error("{}: {what}: {source}", path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A required input file does not exist.
    #[error("{}: file not found", path.display())]
    NotFound { path: PathBuf },
    /// The file exists but is not what it must be (not HDF5, truncated, wrong dataset, bad CSV…).
    #[error("{}: {msg}", path.display())]
    BadFile { path: PathBuf, msg: String },
    /// An HDF5 library call failed on this file.
    #[error("{}: {what}: {msg}", path.display())]
    Hdf5 {
        path: PathBuf,
        what: &'static str,
        msg: String,
    },
    /// A libtorch call (tensor I/O, checkpoint) failed for this file.
    #[error("{}: {what}: {msg}", path.display())]
    Torch {
        path: PathBuf,
        what: &'static str,
        msg: String,
    },
    /// A configuration layer could not be parsed.
    #[error("{source_name}: {msg}")]
    ConfigSyntax { source_name: String, msg: String },
    /// A configuration field is unknown, mistyped or holds an impossible value.
    #[error("config field `{field}`{}: {msg}", origin.as_ref().map(|o| format!(" (set in {o})")).unwrap_or_default())]
    ConfigField {
        field: String,
        msg: String,
        origin: Option<String>,
    },
    /// A command-line argument is malformed.
    #[error("{0}")]
    Usage(String),
    /// The MLflow tracking server refused a request or could not be reached.
    #[error("tracking server {server}: {msg}")]
    Tracking { server: String, msg: String },
    /// An operation on valid input failed for a reason of its own (serialising, drawing,
    /// encoding, fitting a model, finding a free port): `what` it was doing and why.
    #[error("{what}: {msg}")]
    Failed { what: String, msg: String },
}

impl Error {
    /// An I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, what: &'static str, source: std::io::Error) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            return Error::NotFound { path };
        }
        Error::Io { path, what, source }
    }

    /// `what` failed on valid input, for the reason `why` (see [`Error::Failed`]).
    pub fn failed(what: impl Into<String>, why: impl std::fmt::Display) -> Self {
        Error::Failed {
            what: what.into(),
            msg: why.to_string(),
        }
    }

    /// A malformed-input error for `path`.
    pub fn bad_file(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::BadFile {
            path: path.into(),
            msg: msg.into(),
        }
    }

    /// An HDF5 failure, flattened to one line.
    pub fn hdf5(path: impl Into<PathBuf>, what: &'static str, err: &hdf5::Error) -> Self {
        Error::Hdf5 {
            path: path.into(),
            what,
            msg: one_line(&err.to_string()),
        }
    }
}

impl Error {
    /// A tracking-server failure, flattened to one line.
    pub fn tracking(server: &str, msg: impl AsRef<str>) -> Self {
        Error::Tracking {
            server: server.to_string(),
            msg: one_line(msg.as_ref()),
        }
    }
}

/// Collapses whitespace runs (including newlines) so a message stays on one line.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The one line a binary prints for a failure: the error and its causes, outermost first,
/// each cause once (pcam's messages already quote the causes they wrap), on one line.
pub fn chain_line(causes: impl IntoIterator<Item = String>) -> String {
    let mut msg = String::new();
    for cause in causes {
        if !msg.contains(&cause) {
            if !msg.is_empty() {
                msg += ": ";
            }
            msg += &cause;
        }
    }
    one_line(&msg)
}
