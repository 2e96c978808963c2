//! The `pcam` binary: parse the command line, call the library, print the error chain
//! once on one line and exit with code 2 on failure.

mod cli;

use clap::Parser;

/// Sets `OMP_WAIT_POLICY=PASSIVE` for a command that trains (unless the user chose a
/// policy) before libgomp's initialiser reads it, so that the process need not re-execute
/// itself (`pcam::runtime::passive_openmp`, the fallback, costs a second start-up:
/// ~0.5 s). glibc calls an executable's `.preinit_array` before any library initialiser,
/// but also before libc's own, which then resets `environ` to the process's original
/// environment array, so `setenv` here would be lost: the variable takes the slot of
/// `_` in that array instead (the shell's "last command" variable, which bash exports
/// to every program it starts; nothing reads it). Without a `_`, nothing is changed here.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[used]
#[link_section = ".preinit_array"]
static PASSIVE_OPENMP_BEFORE_LIBGOMP: extern "C" fn(
    libc::c_int,
    *const *const libc::c_char,
    *mut *const libc::c_char,
) = passive_openmp_before_libgomp;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" fn passive_openmp_before_libgomp(
    argc: libc::c_int,
    argv: *const *const libc::c_char,
    envp: *mut *const libc::c_char,
) {
    use std::ffi::CStr;
    static ENTRY: &CStr = c"OMP_WAIT_POLICY=PASSIVE";
    if argv.is_null() || envp.is_null() {
        return;
    }
    // SAFETY: the loader passes the process's own argc, argv and environment array:
    // valid NUL-terminated strings, the arrays NULL-terminated, alive for the whole
    // process and writable (they are on the initial stack). Nothing else runs yet (no
    // initialiser has), so nothing reads the array while an entry is replaced, and the
    // new entry points to static storage.
    unsafe {
        let args = (1..usize::try_from(argc).unwrap_or(0))
            .map(|i| CStr::from_ptr(*argv.add(i)).to_bytes());
        if !pcam::runtime::trains_from_args(args) {
            return;
        }
        let mut underscore = None;
        let mut i = 0;
        while !(*envp.add(i)).is_null() {
            let entry = CStr::from_ptr(*envp.add(i)).to_bytes();
            let name = entry.split(|&b| b == b'=').next().unwrap_or(entry);
            if pcam::runtime::OPENMP_POLICY_VARS
                .iter()
                .any(|v| v.as_bytes() == name)
            {
                return; // the user chose a policy
            }
            if name == b"_" {
                underscore = Some(i);
            }
            i += 1;
        }
        if let Some(i) = underscore {
            *envp.add(i) = ENTRY.as_ptr();
        }
    }
}

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
