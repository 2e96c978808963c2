//! `pcam-course`: the repository's own checks, beside the `pcam` tool. `journal render`
//! refreshes journal.md's table blocks from assets/tables/ and its inline value blocks from
//! assets/values/; `journal check` fails on stale or unknown blocks, missing figures or
//! notebooks and unanswered sub-questions (`make journal-check`).
//! Errors print as one line and exit with code 2, like `pcam`.

use anyhow::Result;
use clap::{Parser, Subcommand};
use pcam::report::Assets;
use std::path::PathBuf;

/// pcam-course — checks of the pcam repository as a course deliverable (the journal).
#[derive(Debug, Parser)]
#[command(name = "pcam-course", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Keep journal.md in step with assets/ and check it is complete.
    #[command(subcommand)]
    Journal(JournalCmd),
}

#[derive(Debug, Subcommand)]
enum JournalCmd {
    /// Refresh the marked table and value blocks of journal.md from assets/tables/ and
    /// assets/values/.
    Render {
        #[arg(long, default_value = "journal.md")]
        journal: PathBuf,
        #[arg(long, value_name = "DIR")]
        assets: Option<PathBuf>,
    },
    /// Fail on stale or unknown tables and values, missing figures or notebooks, and
    /// unanswered questions.
    Check {
        #[arg(long, default_value = "journal.md")]
        journal: PathBuf,
        #[arg(long, value_name = "DIR")]
        assets: Option<PathBuf>,
    },
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Journal(JournalCmd::Render { journal, assets }) => {
            let changed = pcam_course::journal::render(&journal, &Assets::from_flag(assets)?)?;
            if changed.is_empty() {
                println!("{}: every table block is up to date", journal.display());
            } else {
                println!("{}: refreshed {}", journal.display(), changed.join(", "));
            }
        }
        Command::Journal(JournalCmd::Check { journal, assets }) => {
            let r = pcam_course::journal::check(&journal, &Assets::from_flag(assets)?)?;
            print!("{}", r.summary(&journal));
            if !r.problems.is_empty() {
                anyhow::bail!(
                    "{}: {} problems (listed above)",
                    journal.display(),
                    r.problems.len()
                );
            }
        }
    }
    Ok(())
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        let msg = pcam::error::chain_line(e.chain().map(|c| c.to_string()));
        eprintln!("error: {msg}");
        std::process::exit(2);
    }
}
