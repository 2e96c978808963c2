// pcam's kernel prelude: evcxr runs this file (EVCXR_CONFIG_DIR/prelude.rs) when a
// `pcam-rust` kernel starts, before the first cell. Standard library only: pcam is not
// compiled yet.
//
// 1. The project's Cargo.lock goes into the kernel's build folder. evcxr's start-up build
//    trims that folder's lock to its own empty crate, so without this copy the setup cell's
//    `:dep pcam` would resolve every dependency afresh instead of building the versions the
//    binary and the tests use.
// 2. When the build folder is cold (pcam never compiled there) or stale (a source file the
//    library was built from, as cargo's dep-info file beside it lists them, is newer than it;
//    the binary's own files, src/main.rs and src/cli/, do not count), a thread reports on the setup cell's compilation, under that cell, on stderr:
//    evcxr forwards the kernel's stderr while a cell compiles, its stdout only while code runs.
//    With a warm folder nothing is started and nothing is printed.
{
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant, SystemTime};

    fn newest(p: &Path) -> Option<SystemTime> {
        let meta = std::fs::metadata(p).ok()?;
        if !meta.is_dir() {
            return meta.modified().ok();
        }
        std::fs::read_dir(p).ok()?.flatten().filter_map(|e| newest(&e.path())).max()
    }
    // Libraries (rlibs) in `deps` written since `since` (all when None), the newest libpcam
    // among them, and whether anything there changed since `since` (cargo removes a library
    // it is about to rebuild, so a recompiled pcam shows first as a missing file).
    fn built(deps: &Path, since: Option<SystemTime>) -> (usize, Option<SystemTime>, Vec<PathBuf>) {
        let (mut n, mut pcam, mut all) = (0, None, Vec::new());
        for e in std::fs::read_dir(deps).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Ok(t) = e.metadata().and_then(|m| m.modified()) else { continue };
            all.push(e.path());
            if since.is_some_and(|s| t < s) {
                continue;
            }
            if name.starts_with("lib") && name.ends_with(".rlib") {
                n += 1;
                if name.starts_with("libpcam-") {
                    pcam = pcam.max(Some(t));
                }
            }
        }
        (n, pcam, all)
    }
    // The newest of the files libpcam was built from: cargo's dep-info file beside the newest
    // library (deps/pcam-<hash>.d, lines "<output>: <source> <source> ...") names them, plus
    // the manifest and lock file. None when there is no such file (a cold folder).
    fn sources_newest(deps: &Path, root: &Path) -> Option<SystemTime> {
        let info = std::fs::read_dir(deps)
            .ok()?
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().to_string();
                n.starts_with("pcam-") && n.ends_with(".d")
            })
            .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())?;
        let text = std::fs::read_to_string(info.path()).ok()?;
        let listed = text
            .lines()
            .filter_map(|l| l.split_once(": "))
            .flat_map(|(_, files)| files.split_whitespace())
            .filter_map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok());
        let manifest = ["Cargo.toml", "Cargo.lock"].map(|f| root.join(f));
        listed.chain(manifest.iter().filter_map(|f| newest(f))).max()
    }
    // "12:34" from seconds
    fn clock(s: u64) -> String {
        format!("{}:{:02}", s / 60, s % 60)
    }
    // a number recorded for `case` in results/notebooks/startup.json (one case per line)
    fn recorded(root: &Path, case: &str, key: &str) -> Option<f64> {
        let text = std::fs::read_to_string(root.join("results/notebooks/startup.json")).ok()?;
        let line = text.lines().find(|l| l.trim_start().starts_with(&format!("\"{case}\"")))?;
        let rest = &line[line.find(&format!("\"{key}\": "))? + key.len() + 4..];
        rest.split([',', '}']).next()?.trim().parse().ok()
    }

    let root = std::env::var_os("EVCXR_CONFIG_DIR")
        .map(PathBuf::from)
        .and_then(|d| Some(d.parent()?.parent()?.to_path_buf()));
    let tmp = std::env::var_os("EVCXR_TMPDIR").map(PathBuf::from);
    if let (Some(root), Some(tmp)) = (root, tmp) {
        let _ = std::fs::copy(root.join("Cargo.lock"), tmp.join("Cargo.lock"));
        // target/<triple>/debug/deps: the one triple evcxr builds for
        let deps = std::fs::read_dir(tmp.join("target"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("debug/deps"))
            .find(|d| d.is_dir())
            .unwrap_or_else(|| tmp.join("target/x86_64-unknown-linux-gnu/debug/deps"));
        let sources = sources_newest(&deps, &root);
        let (_, pcam, before) = built(&deps, None);
        let cold = pcam.is_none();
        if cold || pcam < sources {
            let start = SystemTime::now();
            std::thread::spawn(move || {
                let (what, case) = if cold {
                    ("this kernel's build folder (target/evcxr) is cold: this cell compiles pcam and its dependency tree (libtorch bindings, polars, HDF5, plotters, ...)", "cold_clone")
                } else {
                    ("pcam's sources changed since target/evcxr was built: this cell recompiles pcam", "stale_pcam")
                };
                let mut took = recorded(&root, case, "setup_cell_seconds")
                    .map(|s| format!("; it took {} (min:s) on the 2-core machine of results/notebooks/startup.json", clock(s as u64)))
                    .unwrap_or_default();
                if let (true, Some(s)) = (cold, recorded(&root, "cold_no_cache", "setup_cell_seconds")) {
                    took.push_str(&format!(", {} there with evcxr's compile cache (~/.cache/evcxr) empty", clock(s as u64)));
                }
                let crates = recorded(&root, case, "crates_built")
                    .map(|n| format!(" of about {n:.0}"))
                    .unwrap_or_default();
                let (mut seen, mut told, mut first) = (0, Instant::now(), None::<Instant>);
                let (mut grew, mut last) = (Instant::now(), 0);
                let deadline = Instant::now() + Duration::from_secs(4 * 3600);
                while Instant::now() < deadline {
                    std::thread::sleep(Duration::from_secs(3));
                    let (n, pcam, now) = built(&deps, Some(start));
                    if n == 0 && before.iter().all(|p| now.contains(p)) {
                        continue; // the setup cell has not started compiling yet
                    }
                    let since = *first.get_or_insert_with(|| {
                        eprintln!("[pcam setup] {what}{took}. `make notebooks` or `make lab` prepare it before a notebook opens.");
                        Instant::now()
                    });
                    if pcam.is_some() {
                        eprintln!("[pcam setup] pcam compiled ({n} libraries in {}); linking the cell", clock(since.elapsed().as_secs()));
                        break;
                    }
                    if n != last {
                        (grew, last) = (Instant::now(), n);
                    } else if grew.elapsed() >= Duration::from_secs(600) {
                        // nothing new for 10 minutes: the build ended without pcam (a
                        // compile error, shown by the cell) or was interrupted
                        break;
                    }
                    // every 20 s while libraries appear, every minute while one compiles long
                    if (n != seen && told.elapsed() >= Duration::from_secs(20)) || told.elapsed() >= Duration::from_secs(60) {
                        eprintln!("[pcam setup] {n}{crates} libraries built, {} elapsed", clock(since.elapsed().as_secs()));
                        (seen, told) = (n, Instant::now());
                    }
                }
            });
        }
    }
}
