//! `pcam tracking`: sync runs to an MLflow server, show their state, list and fetch a
//! server's runs, and run a local server.

use super::server_uri;
use anyhow::Result;
use clap::Subcommand;
use pcam::progress::Progress;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum TrackingCmd {
    /// Push runs a server does not hold completely (logged while it was down); running it
    /// again changes nothing. Server: --uri, else those recorded in each run and
    /// MLFLOW_TRACKING_URI / run.tracking_uri.
    Sync {
        /// Run folders, or folders to search for runs (default: runs/).
        #[arg(value_name = "RUN_OR_DIR")]
        paths: Vec<PathBuf>,
        /// Push to this server.
        #[arg(long)]
        uri: Option<String>,
        /// Re-send everything even to servers recorded as synced (still no duplicates).
        #[arg(long)]
        force: bool,
    },
    /// Which servers hold each run, and what is missing.
    Status {
        /// Run folders, or folders to search for runs (default: runs/).
        #[arg(value_name = "RUN_OR_DIR")]
        paths: Vec<PathBuf>,
    },
    /// List an experiment's runs on the server, newest first.
    List {
        /// Server (default: MLFLOW_TRACKING_URI).
        #[arg(long)]
        uri: Option<String>,
        /// Experiment name.
        #[arg(long)]
        experiment: String,
    },
    /// Download a logged run's artifacts (config, checkpoints, history…) into a new run
    /// folder, ready for `pcam eval` / `pcam predict`.
    Fetch {
        /// Server (default: MLFLOW_TRACKING_URI).
        #[arg(long)]
        uri: Option<String>,
        /// MLflow run id.
        #[arg(long)]
        run_id: String,
        /// New folder for the run.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// A local low-memory MLflow server (SQLite + artifacts in one folder, 127.0.0.1).
    #[command(subcommand)]
    Server(ServerCmd),
}

#[derive(Debug, Subcommand)]
pub enum ServerCmd {
    /// Start it in the background and print its URL.
    Start {
        /// Folder for mlflow.db, mlartifacts/, server.log and server.json.
        #[arg(long, default_value = "mlflow")]
        dir: PathBuf,
        /// Port on 127.0.0.1 (0: a free one).
        #[arg(long, default_value_t = 5000)]
        port: u16,
        /// The mlflow executable (default: PCAM_MLFLOW, $VIRTUAL_ENV/bin, .venv/bin, PATH).
        #[arg(long, value_name = "FILE")]
        mlflow: Option<PathBuf>,
    },
    /// Stop it (by the PID recorded in DIR/server.json).
    Stop {
        #[arg(long, default_value = "mlflow")]
        dir: PathBuf,
    },
    /// Print its URL if it is running.
    Status {
        #[arg(long, default_value = "mlflow")]
        dir: PathBuf,
    },
}

/// The run folders to look at: those given, else `runs/`.
fn default_runs(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![PathBuf::from("runs")]
    } else {
        paths
    }
}

pub fn run(cmd: TrackingCmd, progress: Progress) -> Result<()> {
    use pcam::tracking::{self, server};
    match cmd {
        TrackingCmd::Sync { paths, uri, force } => {
            let out = tracking::sync(&default_runs(paths), uri.as_deref(), force, progress)?;
            for o in &out {
                println!("{}", o.to_line());
            }
            let failed = out.iter().filter(|o| o.failed()).count();
            println!("{} run(s) checked, {failed} failed", out.len());
            if failed > 0 {
                anyhow::bail!("{failed} run(s) could not be synced; they stay marked unsynced");
            }
        }
        TrackingCmd::Status { paths } => {
            print!(
                "{}",
                tracking::status_markdown(&tracking::status(&default_runs(paths))?)
            );
        }
        TrackingCmd::Fetch { uri, run_id, out } => {
            let client = tracking::Client::new(&server_uri(uri)?, 5)?;
            let n = tracking::fetch(&client, &run_id, &out)?;
            println!("{n} files of run {run_id} in {}", out.display());
        }
        TrackingCmd::List { uri, experiment } => {
            let uri = server_uri(uri)?;
            let client = tracking::Client::new(&uri, 3)?;
            let exp = client.experiment_id(&experiment)?;
            let runs = client.search_runs(&exp, "")?;
            print!("{}", tracking::runs_markdown(&runs, &experiment, &uri));
        }
        TrackingCmd::Server(ServerCmd::Start { dir, port, mlflow }) => {
            let s = server::start(&dir, port, mlflow.as_deref())?;
            println!("{}", s.url);
            if !progress.quiet {
                eprintln!(
                    "MLflow server up (pid {}, store {}, log {})\n  export MLFLOW_TRACKING_URI={}\n  stop it with: make mlflow-stop  (or pcam tracking server stop --dir {})",
                    s.pid,
                    s.dir.display(),
                    s.log.display(),
                    s.url,
                    dir.display()
                );
            }
        }
        TrackingCmd::Server(ServerCmd::Stop { dir }) => match server::stop(&dir)? {
            Some(pid) => println!("stopped MLflow server (pid {pid})"),
            None => println!("no MLflow server running in {}", dir.display()),
        },
        TrackingCmd::Server(ServerCmd::Status { dir }) => match server::status(&dir)? {
            Some(s) => println!("{} (pid {})", s.url, s.pid),
            None => anyhow::bail!("no MLflow server running in {}", dir.display()),
        },
    }
    Ok(())
}
