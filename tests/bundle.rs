//! The offline bundle: `pcam bundle` packs a finished run; unpacked into an empty folder
//! outside the repository and run with an empty environment (no PATH to the repository,
//! no LD_LIBRARY_PATH, no virtualenv), it predicts an HDF5 file and PNG tiles with exactly
//! the probabilities of the repository build, loading no file from the repository.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

/// The probability column of a predict CSV, keyed by the input's file name and index.
fn probabilities(csv: &Path) -> Vec<(String, String, String)> {
    std::fs::read_to_string(csv)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let name = Path::new(f[0])
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (name, f[1].to_string(), f[2].to_string())
        })
        .collect()
}

/// Bytes free for an unprivileged writer on the file system holding `dir` (`df`).
fn free_bytes(dir: &Path) -> u64 {
    let o = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    text.lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("df {}: {text}", dir.display()))
}

/// Runs `cmd` in `dir` with only a system PATH in the environment.
fn bare(dir: &Path, cmd: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn an_unpacked_bundle_predicts_like_the_repository_build_without_it() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    ok(
        p,
        "-q data synth --out data --sizes train=64,valid=32,test=32 --seed 5",
    );
    ok(
        p,
        "-q train --run-dir run data.dir=data train.epochs=2 train.batch_size=16 train.threads=1 \
         model.kind=cnn model.channels=[4] model.hidden=[8]",
    );
    ok(p, "-q eval --run run --split valid --choose-threshold");
    ok(
        p,
        "-q data export-png data --split test --tiles 0..6 --out pngs",
    );
    let x = "data/camelyonpatch_level_2_split_test_x.h5";
    ok(
        p,
        &format!("-q predict --run run --device cpu --out repo.csv {x} pngs"),
    );

    // Bad requests first: not a run, an existing archive.
    assert_error(
        &pcam(p, &["bundle", "--run", "data", "--out", "b.tar.gz"]),
        &["data", "not a run folder"],
    );
    std::fs::write(p.join("taken.tar.gz"), b"keep").unwrap();
    assert_error(
        &pcam(p, &["bundle", "--run", "run", "--out", "taken.tar.gz"]),
        &["taken.tar.gz", "--force"],
    );
    assert_eq!(std::fs::read(p.join("taken.tar.gz")).unwrap(), b"keep");

    // The archive and its unpacked copy hold libtorch with its CUDA libraries, several
    // GB each: say so up front instead of failing inside tar on a full disk.
    let libs: u64 = pcam::bundle::libraries(Path::new(env!("CARGO_BIN_EXE_pcam")))
        .unwrap()
        .iter()
        .map(|l| std::fs::metadata(&l.origin).unwrap().len())
        .sum();
    let (need, free) = (2 * libs + (1 << 30), free_bytes(p));
    assert!(
        free > need,
        "this test needs about {:.1} GB free in {} (the archive and its unpacked copy); \
         {:.1} GB are free",
        need as f64 / 1e9,
        p.display(),
        free as f64 / 1e9
    );

    let o = ok(p, "-q bundle --run run --out b.tar.gz");
    assert!(
        o.stdout.contains("(model trained on SYNTHETIC data)"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("needs GLIBC_2."), "{}", o.stdout);

    // An empty folder elsewhere: the archive and the inputs, nothing else.
    let away = tempfile::tempdir().unwrap();
    let a = away.path();
    std::fs::rename(p.join("b.tar.gz"), a.join("b.tar.gz")).unwrap();
    std::fs::create_dir_all(a.join("in/pngs")).unwrap();
    std::fs::copy(
        p.join(x),
        a.join("in").join(Path::new(x).file_name().unwrap()),
    )
    .unwrap();
    for e in std::fs::read_dir(p.join("pngs")).unwrap().flatten() {
        std::fs::copy(e.path(), a.join("in/pngs").join(e.file_name())).unwrap();
    }
    let t = bare(a, "tar", &["-xzf", "b.tar.gz"], &[]);
    assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
    std::fs::remove_file(a.join("b.tar.gz")).unwrap(); // unpacked: its space back
    let b = a.join("pcam-bundle-run");
    for f in [
        "pcam",
        "bin/pcam",
        "check.sh",
        "README.md",
        "BUNDLE.json",
        "LIBRARIES.tsv",
        "SHA256SUMS",
        "run/config.yaml",
        "run/threshold.json",
        "run/checkpoints/best.ckpt",
        "run/checkpoints/last.ckpt",
        "lib/libtorch_cpu.so",
        "lib/libc10.so",
    ] {
        assert!(b.join(f).is_file(), "bundle lacks {f}");
    }
    assert!(!b.join("lib/libc.so.6").exists(), "glibc is the host's");
    let readme = std::fs::read_to_string(b.join("README.md")).unwrap();
    assert!(readme.contains("SYNTHETIC"), "{readme}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("BUNDLE.json")).unwrap()).unwrap();
    let tsv = std::fs::read_to_string(b.join("LIBRARIES.tsv")).unwrap();
    assert_eq!(
        tsv.lines().count() - 1,
        manifest["libraries"].as_u64().unwrap() as usize
    );

    // check.sh: checksums, every library resolved inside lib/, the binary starts.
    let c = bare(&b, "./check.sh", &[], &[]);
    assert!(
        c.status.success(),
        "{}{}",
        String::from_utf8_lossy(&c.stdout),
        String::from_utf8_lossy(&c.stderr)
    );
    assert!(String::from_utf8_lossy(&c.stdout).starts_with("check: ok"));

    // Predict from the bundle, tracing every object the loader maps.
    let o = bare(
        &b,
        "./pcam",
        &[
            "-q",
            "predict",
            "--run",
            "run",
            "--device",
            "cpu",
            "--out",
            "bundle.csv",
            "../in/camelyonpatch_level_2_split_test_x.h5",
            "../in/pngs",
        ],
        &[("LD_DEBUG", "libs")],
    );
    let trace = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{trace}");
    let repo = std::env::current_dir().unwrap();
    let bundle_lib = b.join("lib").canonicalize().unwrap();
    let mut loaded = 0;
    for line in trace.lines().filter(|l| l.contains("calling init: ")) {
        let path = Path::new(line.rsplit("calling init: ").next().unwrap().trim());
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(
            !path.starts_with(&repo) && !path.to_string_lossy().contains(".venv"),
            "loaded from the repository: {}",
            path.display()
        );
        assert!(
            path.starts_with(&bundle_lib) || pcam::bundle::OS_RUNTIME.contains(&name.as_ref()),
            "loaded from outside the bundle: {}",
            path.display()
        );
        loaded += path.starts_with(&bundle_lib) as usize;
    }
    assert!(
        loaded >= 5,
        "the trace shows the bundle's libraries:\n{trace}"
    );

    // Same tiles, same probabilities, bit for bit.
    let (want, got) = (
        probabilities(&p.join("repo.csv")),
        probabilities(&b.join("bundle.csv")),
    );
    assert_eq!(want.len(), 32 + 6);
    assert_eq!(want, got);

    // A changed file is caught by check.sh.
    std::fs::write(b.join("run/config.yaml"), "seed: 1\n").unwrap();
    let c = bare(&b, "./check.sh", &[], &[]);
    assert!(!c.status.success());
    assert!(String::from_utf8_lossy(&c.stderr).contains("SHA256SUMS"));
}
