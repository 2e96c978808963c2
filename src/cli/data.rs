//! `pcam data`: create, inspect, audit, split and check PCAM data.

use super::ConfigArgs;
use anyhow::{Context, Result};
use clap::Subcommand;
use pcam::data::hdf5::OpenOptions;
use pcam::data::inspect;
use pcam::data::synth::{self, Sizes, SynthOptions, Variant};
use pcam::progress::Progress;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum DataCmd {
    /// Write a synthetic PCAM dataset (the 9-file layout plus synthetic.json).
    Synth {
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Seed: the same seed gives byte-identical files.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Tiles per split, e.g. `train=4096,valid=512,test=512` (unnamed splits keep defaults).
        #[arg(long, default_value = "")]
        sizes: String,
        /// Which copy of PCAM to imitate.
        #[arg(long, value_enum, default_value_t = Variant::Pcam)]
        variant: Variant,
        /// Rendering threads (does not change the output).
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Overwrite PCAM files already in the output folder.
        #[arg(long)]
        force: bool,
    },
    /// Report storage, labels, pixel ranges and slides of a PCAM folder or file.
    Inspect {
        /// A folder with PCAM files, or one x/y file.
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Where .h5.gz files are decompressed (default: the user cache folder).
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Write tiles of a split as 96x96 PNG files (<split>_<index>.png), e.g. to try `pcam predict`.
    ExportPng {
        /// A folder with PCAM files.
        dir: PathBuf,
        #[arg(long, default_value = "test")]
        split: pcam::data::SplitName,
        /// Tile indices, e.g. `0,5,9` or `0..16`.
        #[arg(long, default_value = "0..8")]
        tiles: String,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Where .h5.gz files are decompressed (default: the user cache folder).
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Leakage and poisoning audit: duplicates across splits, shared slides, bad pixels,
    /// blank/saturated/low-tissue tiles, trigger patches, label-noise candidates.
    Audit {
        /// A folder with PCAM files.
        dir: PathBuf,
        /// Report folder (audit.json, audit.md, figures/); default runs/audit/<folder name>.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Also write a clean index (tiles to drop, and why) for `data.exclude`.
        #[arg(long, value_name = "FILE")]
        write_clean: Option<PathBuf>,
        /// Check that every run under this folder normalised with train-only statistics.
        #[arg(long, value_name = "DIR")]
        runs: Option<PathBuf>,
        /// Near-duplicate threshold: perceptual-hash distance, 0..=7 bits of 63.
        #[arg(long, default_value_t = pcam::data::features::phash::DEFAULT_DISTANCE)]
        near_distance: u32,
        /// Seed of the label-noise model's folds.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Label noise by confident learning on this `oof.json` (`pcam data oof`: a trained
        /// model's out-of-fold probabilities) instead of the cheap feature model.
        #[arg(long, value_name = "FILE")]
        oof: Option<PathBuf>,
        /// Print JSON instead of the summary.
        #[arg(long)]
        json: bool,
        /// Where .h5.gz files are decompressed (default: the user cache folder).
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Out-of-fold probabilities for every train tile: train the config on k slide-grouped
    /// folds of the train split, predict each held-out fold; writes folds.json, the runs and
    /// oof.json (for `pcam data audit --oof`).
    Oof {
        /// A folder with PCAM files (with meta.csv: folds group tiles by slide).
        dir: PathBuf,
        #[command(flatten)]
        config: ConfigArgs,
        /// Number of folds (k ≥ 2).
        #[arg(long, default_value_t = 5)]
        folds: usize,
        /// Seed of the folds' slide groups.
        #[arg(long, default_value_t = 1234)]
        split_seed: u64,
        /// Output folder (must not hold an oof.json yet).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// The backdoor's effect, measured: paste the audit's recurring trigger stamps on the
    /// clean negative test tiles and report each group's share predicted positive (attack
    /// success) against the unstamped tiles, and test metrics with and without the test
    /// tiles that have a copy in train; writes backdoor.json, backdoor.md and a figure.
    Backdoor {
        /// The audited data folder (the test split is read from it).
        dir: PathBuf,
        /// The audit of `dir` (`pcam data audit DIR --out A` wrote A/audit.json).
        #[arg(long, value_name = "FILE")]
        audit: PathBuf,
        /// A named group of runs, NAME=DIR: a seed group folder (`pcam train --seeds`,
        /// its runs.txt) or one run folder. Repeat for each group (e.g. raw=…, clean=…).
        #[arg(long = "group", value_name = "NAME=DIR", required = true)]
        groups: Vec<String>,
        /// Output folder.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Where .h5.gz files are decompressed (default: the user cache folder).
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Build seeded, stratified, slide-grouped splits (train/valid or k folds) as a split
    /// manifest for `data.split_manifest`; the provided test split stays the hold-out.
    Split {
        /// A folder with PCAM files (with meta.csv: slides come from its wsi column).
        dir: PathBuf,
        /// The manifest to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Split seed (the default equals the embedded `data.split_seed`).
        #[arg(long, default_value_t = 1234)]
        seed: u64,
        /// Share of the pool in valid (one train/valid split).
        #[arg(long, default_value_t = 0.125)]
        valid_fraction: f64,
        /// k folds instead of one train/valid split (k ≥ 2).
        #[arg(long, default_value_t = 1)]
        folds: usize,
        /// Provided splits pooled and re-split, e.g. `train,valid`.
        #[arg(long, default_value = "train,valid", value_delimiter = ',')]
        pool: Vec<pcam::data::SplitName>,
        /// Where .h5.gz files are decompressed (default: the user cache folder).
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Read every tile of `data.dir` under the `data.invalid` policy, as training will.
    Check {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: DataCmd, progress: Progress) -> Result<()> {
    match cmd {
        DataCmd::Synth {
            out,
            seed,
            sizes,
            variant,
            threads,
            force,
        } => {
            let sizes = Sizes::default_for(variant).parse_over(&sizes)?;
            let report = synth::generate(&SynthOptions {
                out: out.clone(),
                seed,
                sizes,
                variant,
                threads,
                force,
                progress,
            })
            .with_context(|| format!("synthesizing PCAM into {}", out.display()))?;
            print!("{}", report.to_text());
        }
        DataCmd::Inspect {
            path,
            json,
            cache_dir,
        } => {
            let opts = standalone_options(cache_dir, progress);
            let report = inspect::inspect(&path, &opts)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.to_text());
            }
        }
        DataCmd::ExportPng {
            dir,
            split,
            tiles,
            out,
            cache_dir,
        } => {
            let opts = standalone_options(cache_dir, progress);
            let indices = parse_indices(&tiles)?;
            let paths = pcam::data::tile_png::export(&dir, split, &indices, &out, &opts)?;
            println!("wrote {} PNG tiles to {}", paths.len(), out.display());
        }
        DataCmd::Audit {
            dir,
            out,
            write_clean,
            runs,
            near_distance,
            seed,
            oof,
            json,
            cache_dir,
        } => {
            let open = standalone_options(cache_dir, progress);
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "data".into());
            let opts = pcam::audit::AuditOptions {
                thresholds: pcam::audit::Thresholds {
                    near_distance,
                    ..Default::default()
                },
                seed,
                out: out.unwrap_or_else(|| PathBuf::from("runs/audit").join(name)),
                write_clean,
                runs,
                examples: 8,
                oof: oof
                    .map(|p| -> anyhow::Result<pcam::audit::Oof> {
                        let r = pcam::oof::OofReport::read(&p)?;
                        Ok(pcam::audit::Oof {
                            source: p,
                            train_x_sha256: r.train_x_sha256,
                            probability: r.tiles.iter().map(|t| (t.index, t.probability)).collect(),
                        })
                    })
                    .transpose()?,
            };
            let r = pcam::audit::audit(&dir, &opts, &open)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", r.summary());
                println!("report: {}", opts.out.join("audit.md").display());
            }
        }
        DataCmd::Backdoor {
            dir,
            audit,
            groups,
            out,
            cache_dir,
        } => {
            let groups = groups
                .iter()
                .map(|g| -> anyhow::Result<(String, Vec<PathBuf>)> {
                    let (name, folder) = g
                        .split_once('=')
                        .filter(|(n, f)| !n.is_empty() && !f.is_empty())
                        .ok_or_else(|| {
                            anyhow::anyhow!(
                                "--group {g}: expected NAME=DIR (a seed group or run folder)"
                            )
                        })?;
                    Ok((
                        name.to_string(),
                        pcam::multiseed::group_runs(Path::new(folder))?,
                    ))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let open = standalone_options(cache_dir, progress);
            let r = pcam::backdoor::measure(&dir, &audit, &groups, &out, &open, progress)?;
            println!("{}", r.attack_table()?.to_markdown());
            println!("{}", r.leakage_table()?.to_markdown());
            println!("wrote {}", out.join("backdoor.json").display());
        }
        DataCmd::Oof {
            dir,
            config,
            folds,
            split_seed,
            out,
        } => {
            let r = pcam::oof::out_of_fold(
                &dir,
                &config.files,
                &config.overrides,
                folds,
                split_seed,
                &out,
                progress,
            )?;
            println!(
                "{} train tiles, each predicted by the one of {} fold models that did not see it{}",
                r.tiles.len(),
                r.folds,
                pcam::data::synth::suffix(r.data_synthetic.is_some())
            );
            println!("wrote {}", out.join("oof.json").display());
        }
        DataCmd::Split {
            dir,
            out,
            seed,
            valid_fraction,
            folds,
            pool,
            cache_dir,
        } => {
            let open = standalone_options(cache_dir, progress);
            let m = pcam::data::split::build(&dir, &pool, valid_fraction, folds, seed, &open)?;
            m.write(&out)?;
            let name = out.display().to_string();
            print!(
                "{}",
                pcam::report::dataset::split_table(&[(name, &m)])?.to_markdown()
            );
            println!(
                "wrote {} (seed {seed}, sha256 {})",
                out.display(),
                &m.sha256[..16]
            );
        }
        DataCmd::Check { config, json } => {
            let r = config.resolve()?;
            r.config.data.plan()?;
            let opts = r.config.data.open_options(progress);
            let reports = inspect::check(&r.config.data.dir, r.config.data.invalid, &opts)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            } else {
                println!(
                    "{} read with data.invalid = {}",
                    r.config.data.dir.display(),
                    r.config.data.invalid
                );
                for c in &reports {
                    println!("  {}", c.to_line());
                }
            }
        }
    }
    Ok(())
}

/// Parses tile indices: `3`, `0,5,9`, `0..16` (end exclusive), or a mix (`0..4,10`).
fn parse_indices(spec: &str) -> anyhow::Result<Vec<usize>> {
    let bad = || anyhow::anyhow!("--tiles: `{spec}` is not a list of indices or ranges like 0..16");
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once("..") {
            Some((a, b)) => {
                let (a, b): (usize, usize) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a >= b {
                    return Err(bad());
                }
                out.extend(a..b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// Options for data commands that take `--cache-dir` instead of a config.
fn standalone_options(cache_dir: Option<PathBuf>, progress: Progress) -> OpenOptions {
    OpenOptions {
        cache_dir: cache_dir.unwrap_or_else(pcam::data::plan::default_cache_dir),
        chunk_cache_mb: 64,
        progress,
    }
}
