//! pcam: reproducible machine learning on PatchCamelyon.
//!
//! Data flows one way: [`config`] → [`data`] → model → train → metrics/slicing →
//! tracking/report. Modules only use modules before them in that flow; [`seed`],
//! [`error`], [`fsutil`] and [`progress`] are leaves every stage may use.

pub mod config;
pub mod data;
pub mod device;
pub mod error;
pub mod fsutil;
pub mod progress;
pub mod seed;

pub use error::{Error, Result};
