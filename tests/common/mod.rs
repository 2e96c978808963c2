//! Helpers for integration tests: run the real `pcam` binary, and write small
//! PCAM-schema (or deliberately broken) HDF5 files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `pcam ARGS` in `cwd` with no stdin (and no tracking server from the caller's
/// environment).
pub fn pcam(cwd: &Path, args: &[&str]) -> Out {
    pcam_env(cwd, args, &[])
}

/// The `pcam` command of [`pcam`], not yet run, with extra environment variables.
pub fn pcam_command(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pcam"));
    c.args(args)
        .current_dir(cwd)
        .env("PCAM_CACHE", cwd.join(".cache-for-tests"))
        .env_remove("MLFLOW_TRACKING_URI")
        .env_remove("MLFLOW_EXPERIMENT_NAME")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null());
    c
}

/// [`pcam`] with extra environment variables.
pub fn pcam_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let o = pcam_command(cwd, args, env)
        .output()
        .expect("pcam binary runs");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Runs `pcam` with whitespace-separated `args` and asserts it succeeded.
pub fn ok(cwd: &Path, args: &str) -> Out {
    let a: Vec<&str> = args.split_whitespace().collect();
    let o = pcam(cwd, &a);
    assert_eq!(o.code, 0, "pcam {args}: {}", o.stderr);
    o
}

/// Asserts a clean one-line failure: exit code 2, exactly one stderr line starting
/// with `error:`, containing every needle, and no panic.
pub fn assert_error(o: &Out, needles: &[&str]) {
    assert_eq!(o.code, 2, "exit code; stderr: {}", o.stderr);
    let lines: Vec<&str> = o.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one stderr line, got: {:?}",
        o.stderr
    );
    assert!(lines[0].starts_with("error: "), "{}", lines[0]);
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
    for n in needles {
        assert!(lines[0].contains(n), "`{n}` not in: {}", lines[0]);
    }
}

/// Sorted names of everything in `dir` (recursively), to prove nothing was written.
pub fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut v = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(listing(&p));
        }
        v.push(p);
    }
    v.sort();
    v
}

pub fn x_name(split: &str) -> String {
    format!("camelyonpatch_level_2_split_{split}_x.h5")
}

pub fn y_name(split: &str) -> String {
    format!("camelyonpatch_level_2_split_{split}_y.h5")
}

/// Writes dataset `key` of `shape` filled from `data` into a new file.
pub fn write_ds<T: hdf5::H5Type + Copy>(path: &Path, key: &str, shape: &[usize], data: &[T]) {
    let f = hdf5::File::create(path).unwrap();
    let ds = f.new_dataset::<T>().shape(shape).create(key).unwrap();
    if !data.is_empty() {
        ds.write_raw(data).unwrap();
    }
}

/// A valid uint8 split of `n` tiles with alternating labels in `dir`.
pub fn valid_split(dir: &Path, split: &str, n: usize) {
    let px: Vec<u8> = (0..n * 96 * 96 * 3).map(|i| (i % 251) as u8).collect();
    write_ds(&dir.join(x_name(split)), "x", &[n, 96, 96, 3], &px);
    let y: Vec<u8> = (0..n).map(|i| (i % 2) as u8).collect();
    write_ds(&dir.join(y_name(split)), "y", &[n, 1, 1, 1], &y);
}

/// Path of the project's venv python (installed by `make setup`).
pub fn venv_python() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} missing: run `make setup` first",
        p.display()
    );
    p
}

/// Polls until `done()` holds, failing with `what` if `child` exits first. Waits for an
/// event, never for a duration: a slow machine only makes it wait longer.
pub fn wait_until(child: &mut std::process::Child, what: &str, mut done: impl FnMut() -> bool) {
    while !done() {
        if let Some(st) = child.try_wait().expect("polling a child process") {
            panic!("{what}: the process ended first ({st})");
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Waits `delay` (a seeded share of a pace this machine measured), but no longer than
/// until `moved()` holds (the process made the progress that ends the phase being aimed
/// at), so a pace measured under other load can never let the process run past the phase.
pub fn wait_at_most_until(
    child: &mut std::process::Child,
    what: &str,
    delay: std::time::Duration,
    mut moved: impl FnMut() -> bool,
) {
    let start = std::time::Instant::now();
    wait_until(child, what, || start.elapsed() >= delay || moved());
}

/// Data lines in a CSV file (0 while it does not exist yet).
pub fn csv_data_lines(p: &Path) -> usize {
    std::fs::read_to_string(p)
        .map(|s| s.lines().count().saturating_sub(1))
        .unwrap_or(0)
}
