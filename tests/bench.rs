//! The measuring commands run end to end on tiny synthetic data (their numbers are
//! benchmarks, reported by `make bench`, never asserted here): `pcam bench train`,
//! `pcam bench metrics`, `pcam info`, and the two PyTorch comparison scripts of
//! `make bench-compare` (batch-1 inference, training epochs).

mod common;
use common::*;

#[test]
fn bench_train_metrics_and_info_run_and_write_their_json() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    ok(
        p,
        "-q data synth --out data --sizes train=64,valid=32,test=32 --seed 3",
    );
    let o = ok(
        p,
        "-q bench train --steps 2 --json train.json data.dir=data train.batch_size=8 train.threads=1",
    );
    assert!(o.stdout.contains("img/s"), "{}", o.stdout);
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.join("train.json")).unwrap()).unwrap();
    assert!(j.to_string().contains("mlp"), "{j}");

    let o = ok(p, "-q bench metrics --n 5000 --json metrics.json");
    assert!(!o.stdout.is_empty());
    assert!(p.join("metrics.json").is_file());

    let o = ok(p, "info --json");
    let info: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(info["pcam_version"], env!("CARGO_PKG_VERSION"));
    assert!(info["hdf5_version"].as_str().unwrap().starts_with("1."));
}

/// Runs `bench/<script>` with `args` in `p` and `--out cmp.json`, and reads the result.
/// Exit 1 means "a speed target was not met": a verdict on the measurement, which on
/// tiny data and short rounds means nothing; anything else, or no result file, fails.
fn comparison(p: &std::path::Path, script: &str, args: &[&str]) -> serde_json::Value {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = std::process::Command::new(venv_python())
        .arg(root.join("bench").join(script))
        .args(["--pcam", env!("CARGO_BIN_EXE_pcam")])
        .args(args)
        .args(["--out", "cmp.json"])
        .current_dir(p)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        matches!(o.status.code(), Some(0 | 1)) && out.contains("wrote cmp.json"),
        "{script}: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(p.join("cmp.json")).unwrap()).unwrap()
}

#[test]
fn the_pytorch_comparison_script_runs_on_tiny_data() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    ok(
        p,
        "-q data synth --out data --sizes train=32,valid=32,test=32 --seed 3",
    );
    let spec =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/bench/throughput.yaml");
    let j = comparison(
        p,
        "throughput_vs_pytorch.py",
        &[
            "--spec",
            spec.to_str().unwrap(),
            "--data",
            "data",
            "--threads",
            "1",
            "--seconds",
            "0.05",
            "--rounds",
            "1",
        ],
    );
    assert!(j.to_string().contains("pytorch"), "{j}");
}

#[test]
fn the_training_comparison_script_runs_on_tiny_data() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    ok(
        p,
        "-q data synth --out data --variant course --sizes train=48,valid=16,test=16 --seed 3",
    );
    let j = comparison(
        p,
        "train_vs_pytorch.py",
        &[
            "--data",
            "data",
            "--threads",
            "1",
            "--batch-sizes",
            "8",
            "--models",
            "mlp",
            "--rounds",
            "1",
            "--steps",
            "2",
        ],
    );
    let row = &j["rows"][0];
    assert_eq!(j["kind"], "pcam-vs-pytorch-train-epoch");
    assert!(j["data_synthetic"].is_string(), "{j}");
    for k in [
        "pcam_epoch_images_per_second",
        "pytorch_epoch_images_per_second",
        "pcam_compute_only_images_per_second",
        "pytorch_compute_only_images_per_second",
    ] {
        assert!(row[k].as_f64().unwrap() > 0.0, "{k}: {row}");
    }
}
