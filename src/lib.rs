//! pcam: reproducible machine learning on PatchCamelyon.
//!
//! Data flows one way: [`config`] → [`data`] plan → model → train → metrics/slicing →
//! tracking/[`report`]. Which module may import which is stated once, in the layering
//! table of ARCHITECTURE.md, and checked by `tests/layering.rs`; [`error`], [`fsutil`],
//! [`runtime`], [`progress`] and [`seed`] are the foundation every layer may use. The
//! repository's own checks (journal, README and CI audits) live in the `pcam-course`
//! crate (`course/`), which depends on this library and not the other way round.

pub mod audit;
pub mod backdoor;
pub mod baseline;
pub mod bench;
pub mod bundle;
pub mod config;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
pub mod fsutil;
pub mod metrics;
pub mod model;
pub mod multiseed;
pub mod offload;
pub mod oof;
pub mod predict;
pub mod progress;
pub mod report;
pub mod run;
pub mod runtime;
pub mod search;
pub mod seed;
pub mod slicing;
pub mod tracking;
pub mod train;
pub mod twin;

pub use error::{Error, Result};
/// Re-exported so notebooks build DataFrames with the same polars pcam renders.
pub use polars;

/// What a notebook's setup cell imports: `use pcam::prelude::*;`.
pub mod prelude {
    pub use crate::config::{self, resolve, ResolvedConfig, RunConfig};
    pub use crate::data::hdf5::OpenOptions;
    pub use crate::data::{self, inspect, SplitName};
    pub use crate::progress::Progress;
    pub use crate::report::{self, AcrossCpus, Assets, Figure, NamedValue, Table};
    pub use polars::df;
    pub use polars::prelude::{Column, DataFrame, NamedFrom};
}
