//! `pcam report`: export tables and figures to assets/ and check fresh notebook assets.

use anyhow::Result;
use clap::Subcommand;
use pcam::data::hdf5::OpenOptions;
use pcam::data::inspect;
use pcam::progress::Progress;
use pcam::report::Assets;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum ReportCmd {
    /// Dataset-size evidence (journal Q2.4): table + bar chart of storage per split.
    DatasetSize {
        /// PCAM folders or files to compare (e.g. data/demo/pcam data/demo/course).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Asset name: writes assets/tables/NAME.md and assets/NAME.png.
        #[arg(long, default_value = "q2_dataset_size")]
        name: String,
        /// Assets folder (default: $PCAM_ASSETS_DIR, else assets/ of the project).
        #[arg(long, value_name = "DIR")]
        assets: Option<PathBuf>,
    },
    /// Throughput results (journal Q8): the batch-1 table and the throughput-vs-batch-size
    /// figure from every results/bench/throughput-*.json, and a stage breakdown per file.
    Bench {
        /// Folder of `pcam bench throughput` result files.
        #[arg(long, default_value = "results/bench")]
        dir: PathBuf,
        /// Asset name prefix: NAME_throughput.png, NAME_stages_<n>.png, tables/NAME_batch1.md.
        #[arg(long, default_value = "bench")]
        name: String,
        /// Assets folder (default: $PCAM_ASSETS_DIR, else assets/ of the project).
        #[arg(long, value_name = "DIR")]
        assets: Option<PathBuf>,
    },
    /// Compare the assets a fresh notebook run wrote with the committed ones (what
    /// `make notebooks-check` runs): assets without a `.numbers.json` must be byte-identical;
    /// training-derived ones too on the machine in assets/MACHINE, elsewhere their numbers
    /// must agree within the tolerance each notebook states. Exit 1 on any failure.
    CheckAssets {
        /// The fresh run's assets folder.
        #[arg(long, value_name = "DIR")]
        fresh: PathBuf,
        /// The committed assets folder (default: $PCAM_ASSETS_DIR, else assets/ of the project).
        #[arg(long, value_name = "DIR")]
        assets: Option<PathBuf>,
        /// This machine matches assets/MACHINE: compare training-derived assets byte for byte.
        #[arg(long)]
        same_machine: bool,
        /// Every notebook ran: a committed asset that none made is stale.
        #[arg(long)]
        complete: bool,
    },
}

pub fn run(cmd: ReportCmd, progress: Progress) -> Result<()> {
    match cmd {
        ReportCmd::CheckAssets {
            fresh,
            assets,
            same_machine,
            complete,
        } => {
            let committed = Assets::from_flag(assets)?;
            let r = pcam::report::derived::check(committed.dir(), &fresh, same_machine, complete)?;
            for line in &r.deviations {
                println!("[notebooks] {line}");
            }
            for line in &r.failures {
                eprintln!("[notebooks] {line}");
            }
            println!("[notebooks] {}", r.verdict(same_machine)?);
        }
        ReportCmd::Bench { dir, name, assets } => {
            let assets = Assets::from_flag(assets)?;
            let reports = pcam::bench::report::read_reports(&dir)?;
            if reports.is_empty() {
                return Err(pcam::Error::Usage(format!(
                    "{}: no throughput-*.json result files (run pcam bench throughput or slurm/submit.sh bench)",
                    dir.display()
                ))
                .into());
            }
            let table = pcam::bench::report::batch1_table(&reports)?;
            print!("{}", table.to_markdown());
            println!(
                "wrote {}",
                table.export(&assets, &format!("{name}_batch1"))?.display()
            );
            let all: Vec<_> = reports.iter().map(|(_, r)| r.clone()).collect();
            let fig = pcam::bench::report::throughput_vs_batch(
                &format!("{name}_throughput"),
                &all,
                "images/s against batch size (solid: whole pipeline, dashed: compute only)",
            )?;
            println!("wrote {}", fig.save(&assets)?.display());
            for (i, (p, r)) in reports.iter().enumerate() {
                let fig = pcam::bench::report::stage_breakdown(
                    &format!("{name}_stages_{i}"),
                    r,
                    &[1, 32, 512],
                    &format!(
                        "stage shares, stages run one after another: {} ({})",
                        r.label(),
                        p.file_name()
                            .map(|f| f.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    ),
                )?;
                println!("wrote {}", fig.save(&assets)?.display());
            }
        }
        ReportCmd::DatasetSize {
            paths,
            name,
            assets,
        } => {
            let assets = Assets::from_flag(assets)?;
            let opts = OpenOptions {
                cache_dir: pcam::data::plan::default_cache_dir(),
                chunk_cache_mb: 64,
                progress,
            };
            let reports = paths
                .iter()
                .map(|p| inspect::inspect(p, &opts))
                .collect::<pcam::Result<Vec<_>>>()?;
            let table = pcam::report::dataset::size_table(&reports)?.export(&assets, &name)?;
            let figure = pcam::report::dataset::size_figure(&name, &reports)?.save(&assets)?;
            println!("wrote {} and {}", table.display(), figure.display());
        }
    }
    Ok(())
}
