//! The `pcam` binary: parse the command line, call the library, print the error chain
//! once on one line and exit with code 2 on failure.

mod cli;

use clap::Parser;

fn main() {
    // Like other Unix tools, end quietly when the reader of stdout goes away
    // (`pcam ... | head`) instead of panicking on the broken pipe.
    #[cfg(unix)]
    // SAFETY: restores the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    pcam::runtime::deterministic_cublas();
    let cli = cli::Cli::parse();
    if cli.command.computes() {
        pcam::runtime::passive_openmp();
    }
    if let Err(e) = cli::run(cli) {
        // The error and its causes, each cause once (pcam's messages already quote theirs).
        let mut msg = String::new();
        for cause in e.chain().map(|c| c.to_string()) {
            if !msg.contains(&cause) {
                msg += &if msg.is_empty() {
                    cause
                } else {
                    format!(": {cause}")
                };
            }
        }
        let msg = pcam::error::one_line(&msg);
        eprintln!("error: {msg}");
        std::process::exit(2);
    }
}
