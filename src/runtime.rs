//! Process settings that make CPU training fast without touching its numbers:
//! the allocator keeps large blocks instead of returning them to the kernel (each
//! training step otherwise maps and faults in megabytes of fresh pages for activations,
//! gradients and batches), and helper threads run below the training threads' priority
//! so they fill idle cycles instead of pre-empting libtorch's workers.

use std::sync::Once;

/// Blocks at least this large would be `mmap`ed by glibc by default (128 KiB); pcam
/// keeps everything up to this size in the heap, where it is reused.
const MMAP_THRESHOLD: i32 = 256 << 20;
/// Free memory at the top of the heap kept rather than trimmed.
const TRIM_THRESHOLD: i32 = 512 << 20;

/// Applies the allocator settings once per process (called before training,
/// evaluation and benchmarks). Changes speed and resident memory, never results.
pub fn tune_allocator() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes glibc's allocation thresholds.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    });
}

/// Puts the calling thread in the idle scheduling class (Linux): it runs on cores the
/// training threads leave idle. Used by the batch-assembly thread, whose output order is
/// fixed, so its timing never changes a result.
pub fn background_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: sched_setscheduler on the calling thread (pid 0) with a valid parameter.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
    }
}

/// Whether the command line `args` (without the program name) names a command that
/// trains while a background thread assembles batches — `train`, `search …`, `twin-run`,
/// `bench train` — read the way clap reads it (options before a subcommand skipped).
/// Used before `main`, where clap cannot run yet; a test checks it against the parsed
/// command's `computes()`.
pub fn trains_from_args<'a>(args: impl IntoIterator<Item = &'a [u8]>) -> bool {
    let mut words = args.into_iter().filter(|a| !a.starts_with(b"-"));
    match words.next() {
        Some(b"train" | b"search" | b"twin-run") => true,
        Some(b"bench") => words.next() == Some(b"train".as_slice()),
        _ => false,
    }
}

/// The environment variables through which a user chooses libgomp's wait policy; when
/// either is set, pcam leaves the policy to them.
pub const OPENMP_POLICY_VARS: [&str; 2] = ["OMP_WAIT_POLICY", "GOMP_SPINCOUNT"];

/// libgomp (libtorch's CPU thread pool) reads its wait policy once, when the library
/// loads, and by default its idle workers spin for a while after every parallel region —
/// taking the cores the batch-assembly thread needs. The binary sets
/// `OMP_WAIT_POLICY=PASSIVE` for commands that train before any library initialiser runs
/// (an ELF pre-initialiser, see `main.rs`); this is the fallback for when that did not
/// happen: unless the user chose `OMP_WAIT_POLICY` or `GOMP_SPINCOUNT`, the process
/// re-executes itself (same PID, same arguments) with `OMP_WAIT_POLICY=PASSIVE`. Only
/// scheduling changes, never a result. Returns when nothing needs doing or exec failed.
pub fn passive_openmp() {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        if OPENMP_POLICY_VARS
            .iter()
            .any(|v| std::env::var_os(v).is_some())
        {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut args = std::env::args_os();
        let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
        // exec only returns on failure; then this process simply carries on.
        let _ = std::process::Command::new(&exe)
            .arg0(arg0)
            .args(args)
            .env("OMP_WAIT_POLICY", "PASSIVE")
            .exec();
    }
}

/// libtorch runs with deterministic algorithms on; on CUDA, cuBLAS then refuses to run
/// (a RuntimeError at the first matrix product) unless `CUBLAS_WORKSPACE_CONFIG` is
/// `:4096:8` or `:16:8` when its first handle is made. Sets `:4096:8` unless the user
/// chose a value. Call at the very start of `main`, before any thread exists.
pub fn deterministic_cublas() {
    if std::env::var_os("CUBLAS_WORKSPACE_CONFIG").is_none() {
        // Single-threaded at this point (start of main), so changing the environment
        // cannot race with a reader.
        std::env::set_var("CUBLAS_WORKSPACE_CONFIG", ":4096:8");
    }
}
