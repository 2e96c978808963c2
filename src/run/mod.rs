//! Run folders. Every run owns `runs/<experiment>/<run-id>/` and everything downstream
//! (evaluation, notebooks, the journal, tracking) reads from it:
//! `config.yaml` + `config.sha256`, `manifest.json` (code, data, software, machine),
//! `history/{epochs,steps}.csv`, `checkpoints/{last,best}.ckpt`, `metrics.json`.
//! Files are written atomically and read back typed: the manifest as [`Manifest`], the
//! final metrics as [`FitSummary`]. The history CSVs are written and read in [`history`],
//! `predictions-<split>.csv` in [`predictions`], a checkpoint's summary (layout version,
//! progress, normalisation statistics) in [`checkpoint`].
//! Depends on `config`, `data` (whether the data is synthetic; split names; normalisation
//! statistics), `seed`, `error` and `fsutil`.

pub mod checkpoint;
pub mod history;
pub mod predictions;

use crate::config::ResolvedConfig;
use crate::error::{Error, Result};
pub use history::{read_history, EpochRecord, History, StepRecord};
pub use predictions::Predictions;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

/// An existing run folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// Creates `<root>/<experiment>/<utc-time>-<hash8>` (or `explicit`) and writes the
    /// resolved config into it. Refuses an explicit folder that already holds a run.
    pub fn create(cfg: &ResolvedConfig, explicit: Option<&Path>) -> Result<RunDir> {
        let path = match explicit {
            Some(p) => {
                if p.join("config.yaml").exists() {
                    return Err(Error::bad_file(
                        p,
                        "already holds a run; use --resume to continue it",
                    ));
                }
                p.to_path_buf()
            }
            None => {
                let base = cfg.config.run.root.join(&cfg.config.run.experiment);
                let stem = format!("{}-{}", utc_stamp(), &cfg.sha256[..8]);
                let mut p = base.join(&stem);
                let mut k = 1;
                while p.exists() {
                    k += 1;
                    p = base.join(format!("{stem}-{k}"));
                }
                p
            }
        };
        for sub in ["", "history", "checkpoints"] {
            let d = path.join(sub);
            std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, "creating run folder", e))?;
        }
        cfg.write_to(&path)?;
        Ok(RunDir { path })
    }

    /// Opens a run folder (it must hold `config.yaml`).
    pub fn open(path: &Path) -> Result<RunDir> {
        if !path.join("config.yaml").is_file() {
            return Err(Error::bad_file(path, "not a run folder (no config.yaml)"));
        }
        Ok(RunDir {
            path: path.to_path_buf(),
        })
    }

    /// The resolved config stored in the run.
    pub fn config(&self) -> Result<crate::config::RunConfig> {
        let p = self.path.join("config.yaml");
        let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, "reading", e))?;
        serde_yaml_ng::from_str(&text)
            .map_err(|e| Error::bad_file(&p, format!("invalid run config: {e}")))
    }

    /// `metrics.json`: what the finished run reported (absent until training finishes).
    pub fn metrics(&self) -> Result<FitSummary> {
        self.read_json("metrics.json")
    }

    /// `manifest.json`: where the run came from (written when training starts).
    pub fn manifest(&self) -> Result<Manifest> {
        self.read_json("manifest.json")
    }

    /// SHA-256 of the final weights, from `metrics.json` (finished runs only).
    pub fn weights_sha256(&self) -> Result<String> {
        Ok(self.metrics()?.final_weights_sha256)
    }

    /// The synthetic-data note of the data this run was trained on: the run's own record
    /// (`manifest.json`), else the note of `data_dir` (a run folder moved without its data,
    /// or one written before manifests recorded it, keeps its label either way).
    pub fn data_synthetic(&self, data_dir: &Path) -> Option<String> {
        self.manifest()
            .ok()
            .and_then(|m| m.data_synthetic)
            .or_else(|| crate::data::synth::note(data_dir))
    }

    /// Reads `name` (relative to the run) as JSON of type `T` — how every JSON file of a
    /// run is read back (the type belongs to the module that writes the file).
    pub fn read_json<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        let p = self.path.join(name);
        let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, "reading", e))?;
        serde_json::from_str(&text).map_err(|e| Error::bad_file(&p, e.to_string()))
    }

    /// `checkpoints/<which>.ckpt`.
    pub fn checkpoint(&self, which: &str) -> PathBuf {
        self.path.join("checkpoints").join(format!("{which}.ckpt"))
    }

    /// Writes `name` (relative to the run) as pretty JSON, atomically.
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| Error::failed(format!("serialising {name}"), e))?;
        crate::fsutil::write_atomic(&self.path.join(name), format!("{text}\n").as_bytes())
    }

    /// Writes `name` as CSV with `header` and `rows`, atomically.
    pub fn write_csv(&self, name: &str, header: &[String], rows: &[Vec<String>]) -> Result<()> {
        let mut s = header.join(",");
        s.push('\n');
        for r in rows {
            s.push_str(&r.join(","));
            s.push('\n');
        }
        crate::fsutil::write_atomic(&self.path.join(name), s.as_bytes())
    }
}

/// What a finished (or early-stopped) run reports, written by training as `metrics.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FitSummary {
    pub run: PathBuf,
    pub epochs_run: usize,
    pub steps: usize,
    /// SHA-256 of the final weights (bitwise identity of twin and resumed runs).
    pub final_weights_sha256: String,
    pub best_epoch: Option<usize>,
    pub best: Option<EpochRecord>,
    pub stopped_early: bool,
    pub data_synthetic: Option<String>,
}

/// JSON has no NaN (serde_json writes it as `null`), and the history CSVs leave an
/// undefined value empty: either reads back as NaN, so a diverged run's files still load.
pub(crate) fn nan_if_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// [`nan_if_null`] for a map of intervals (`[low, high]` pairs): a bootstrap interval
/// that is undefined (no positives in a resample) is written `[null, null]`.
pub(crate) fn nan_pairs_if_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<std::collections::BTreeMap<String, (f64, f64)>, D::Error> {
    let raw = std::collections::BTreeMap::<String, (Option<f64>, Option<f64>)>::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(k, (lo, hi))| (k, (lo.unwrap_or(f64::NAN), hi.unwrap_or(f64::NAN))))
        .collect())
}

/// Where a run came from: code, data, software and machine (`manifest.json`). Fields a
/// manifest of an older pcam may lack are optional.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub pcam_version: String,
    pub git_commit: Option<String>,
    pub git_dirty: Option<bool>,
    pub seed: u64,
    pub config_sha256: String,
    /// SHA-256 of every data file read (x, y, meta of train and valid).
    pub data_sha256: std::collections::BTreeMap<String, String>,
    /// The files of `data_sha256` whose hash came from pcam's fingerprint cache
    /// (`<data cache>/sha256/`: the same path, device, inode, size, modification and
    /// change times as when pcam last read and hashed the file) instead of a new read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_sha256_cached: Vec<String>,
    /// The data's own provenance note when it is synthetic.
    pub data_synthetic: Option<String>,
    pub torch_version: String,
    pub tch_version: String,
    pub device: String,
    pub cpu: String,
    pub torch: crate::seed::TorchPins,
    pub slurm_job_id: Option<String>,
    /// The Slurm partition the run's job ran in (absent outside Slurm).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slurm_partition: Option<String>,
    pub hostname: Option<String>,
    pub started_utc: String,
    /// Wall-clock seconds before the first step (a fact about the machine, never
    /// compared): reading the splits into memory, hashing the data files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_seconds: Option<StartupSeconds>,
}

/// Where a run's time before its first step went, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StartupSeconds {
    /// Reading the train and valid splits into memory (decoding and checking pixels).
    pub load: f64,
    /// SHA-256 of every data file listed in `data_sha256`.
    pub hash: f64,
}

impl Manifest {
    /// Collects the facts of a run about to start.
    pub fn collect(
        cfg: &ResolvedConfig,
        pins: crate::seed::TorchPins,
        device: tch::Device,
        data_files: &[PathBuf],
    ) -> Result<Manifest> {
        let t0 = std::time::Instant::now();
        let mut data_sha256 = std::collections::BTreeMap::new();
        let mut data_sha256_cached = Vec::new();
        let cache = cfg.config.data.cache_dir().join("sha256");
        for f in data_files {
            let (sha, cached) = crate::fsutil::sha256_file_cached(f, &cache)?;
            let name = f.display().to_string();
            if cached {
                data_sha256_cached.push(name.clone());
            }
            data_sha256.insert(name, sha);
        }
        let hash = t0.elapsed().as_secs_f64();
        let git = |args: &[&str]| {
            Command::new("git")
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        Ok(Manifest {
            pcam_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: git(&["rev-parse", "HEAD"]),
            git_dirty: git(&["status", "--porcelain", "--untracked-files=no"])
                .map(|s| !s.is_empty()),
            seed: cfg.config.seed,
            config_sha256: cfg.sha256.clone(),
            data_sha256,
            data_sha256_cached,
            data_synthetic: crate::data::synth::note(&cfg.config.data.dir),
            torch_version: env!("PCAM_TORCH_VERSION").into(),
            tch_version: "0.24".into(),
            device: format!("{device:?}"),
            cpu: cpu_model(),
            torch: pins,
            slurm_job_id: std::env::var("SLURM_JOB_ID").ok(),
            slurm_partition: std::env::var("SLURM_JOB_PARTITION").ok(),
            hostname: hostname(),
            started_utc: utc_stamp(),
            startup_seconds: Some(StartupSeconds { load: 0.0, hash }),
        })
    }
}

/// Where runs ran, in one line read from their manifests: `16 runs in Slurm partition
/// thin_course (jobs 101 to 116)`, `2 runs on this machine`, or both parts.
pub fn placement(runs: &[PathBuf]) -> Result<String> {
    // partition (None: no Slurm job) -> (runs, job ids)
    let mut by: std::collections::BTreeMap<Option<String>, (usize, Vec<u64>)> = Default::default();
    for r in runs {
        let m = RunDir::open(r)?.manifest()?;
        let place = m.slurm_job_id.as_ref().map(|_| {
            m.slurm_partition
                .clone()
                .unwrap_or_else(|| "unknown".into())
        });
        let e = by.entry(place).or_default();
        e.0 += 1;
        e.1.extend(m.slurm_job_id.and_then(|j| j.parse::<u64>().ok()));
    }
    let count = |n: usize| {
        if n == 1 {
            "1 run".to_string()
        } else {
            format!("{n} runs")
        }
    };
    let parts: Vec<String> = by
        .into_iter()
        .map(|(place, (n, mut ids))| match place {
            None => format!("{} on this machine (no Slurm job)", count(n)),
            Some(p) => {
                ids.sort_unstable();
                let span = match (ids.first(), ids.last()) {
                    (Some(a), Some(b)) if a != b => format!(" (jobs {a} to {b})"),
                    (Some(a), _) => format!(" (job {a})"),
                    _ => String::new(),
                };
                format!("{} in Slurm partition {p}{span}", count(n))
            }
        })
        .collect();
    Ok(parts.join("; "))
}

/// This machine's host name.
pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The CPU's model name and logical core count, from `/proc/cpuinfo`.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .map(|m| {
            format!(
                "{m} ({} logical cores)",
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(0)
            )
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Current UTC time as `YYYYmmddTHHMMSS` (a name, never a seed).
pub fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format_utc_stamp(secs)
}

/// `secs` since the Unix epoch as `YYYYmmddTHHMMSS`.
pub fn format_utc_stamp(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Seconds since the Unix epoch of a `YYYYmmddTHHMMSS` stamp (inverse of [`utc_stamp`]).
pub fn parse_utc_stamp(s: &str) -> Option<i64> {
    if s.len() != 15 || s.as_bytes()[8] != b'T' || !s.is_char_boundary(8) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (hh, mm, ss) = (n(9..11)?, n(11..13)?, n(13..15)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from civil date (Howard Hinnant's algorithm), the inverse of utc_stamp's.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_run_folders_read_back_typed() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let gpu = root.join("results/gpu/h200-2026-11-30");
        let mut dirs = vec![root.join("models/demo-cnn")];
        dirs.extend(
            ["eval-cpu", "eval-cuda", "eval-cpu-tf32", "eval-cuda-tf32"].map(|d| gpu.join(d)),
        );
        for path in dirs {
            let run = RunDir { path };
            let m = run.manifest().unwrap();
            let f = run.metrics().unwrap();
            assert_eq!(m.config_sha256.len(), 64, "{}", run.path.display());
            assert_eq!(f.final_weights_sha256.len(), 64, "{}", run.path.display());
            assert!(
                m.data_synthetic.is_some(),
                "{}: synthetic label",
                run.path.display()
            );
        }
    }

    #[test]
    fn a_diverged_runs_metrics_read_back_typed_with_nan_where_json_has_null() {
        let d = tempfile::tempdir().unwrap();
        let run = RunDir {
            path: d.path().to_path_buf(),
        };
        let best = EpochRecord {
            epoch: 0,
            steps: 3,
            train_loss: f64::NAN,
            valid_loss: f64::INFINITY,
            valid_auc: None,
            valid_accuracy: 0.5,
            lr_end: 1e-3,
            seconds: 0.25,
            images_per_second: 96.0,
        };
        let written = FitSummary {
            run: d.path().to_path_buf(),
            epochs_run: 1,
            steps: 3,
            final_weights_sha256: "ab".repeat(32),
            best_epoch: Some(0),
            best: Some(best),
            stopped_early: false,
            data_synthetic: Some("SYNTHETIC".into()),
        };
        run.write_json("metrics.json", &written).unwrap();
        let text = std::fs::read_to_string(d.path().join("metrics.json")).unwrap();
        assert!(text.contains("\"train_loss\": null"), "{text}");
        let back = run.metrics().unwrap();
        let b = back.best.as_ref().unwrap();
        assert!(b.train_loss.is_nan() && b.valid_loss.is_nan(), "{b:?}");
        assert_eq!(
            (b.valid_accuracy, b.seconds, b.valid_auc),
            (0.5, 0.25, None)
        );
        assert_eq!(run.weights_sha256().unwrap(), written.final_weights_sha256);
        // a metrics file without the hash is a one-line error naming the file
        std::fs::write(d.path().join("metrics.json"), "{}").unwrap();
        let e = run.weights_sha256().unwrap_err().to_string();
        assert!(
            e.contains("metrics.json") && e.contains("missing field"),
            "{e}"
        );
    }

    #[test]
    fn stamps_parse_back_to_the_same_second() {
        for secs in (0..4_102_444_800u64).step_by(7_919_993) {
            assert_eq!(parse_utc_stamp(&format_utc_stamp(secs)), Some(secs as i64));
        }
        assert_eq!(parse_utc_stamp("19700101T000000"), Some(0));
        assert_eq!(parse_utc_stamp("20000229T120000"), Some(951_825_600));
        assert_eq!(parse_utc_stamp("20261126T092703"), Some(1_795_685_223));
        assert_eq!(parse_utc_stamp("2026-11-26"), None);
        assert_eq!(parse_utc_stamp("20261326T092703"), None);
    }

    #[test]
    fn stamp_has_the_documented_shape() {
        let s = utc_stamp();
        assert_eq!(s.len(), 15);
        assert_eq!(&s[8..9], "T");
        assert!(s.starts_with("20"));
    }

    #[test]
    fn create_open_and_refuse_to_overwrite() {
        let d = tempfile::tempdir().unwrap();
        let cfg =
            crate::config::resolve(&[], &[format!("run.root={}", d.path().display())]).unwrap();
        let a = RunDir::create(&cfg, None).unwrap();
        let b = RunDir::create(&cfg, None).unwrap();
        assert_ne!(a.path, b.path);
        assert!(a.path.starts_with(d.path().join("default")));
        assert_eq!(RunDir::open(&a.path).unwrap().config().unwrap(), cfg.config);
        let e = RunDir::create(&cfg, Some(&a.path)).unwrap_err().to_string();
        assert!(e.contains("--resume"), "{e}");
        assert!(RunDir::open(d.path()).is_err());
    }
}
