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
        let msg = pcam::error::chain_line(e.chain().map(|c| c.to_string()));
        eprintln!("error: {msg}");
        std::process::exit(2);
    }
}
