//! Training through the real CLI on tiny synthetic data: twin runs in two processes are
//! bitwise identical (MLP and CNN), a run killed with SIGKILL and resumed ends with the
//! uninterrupted run's weights and histories, and the run folder holds what it promises.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

const SIZES: &str = "train=96,valid=32,test=32";

fn dataset(dir: &Path) {
    let o = pcam(
        dir,
        &[
            "data", "synth", "--out", "d", "--sizes", SIZES, "--seed", "4",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
}

fn tiny(kind: &str) -> Vec<String> {
    let mut v: Vec<String> = [
        "data.dir=d",
        "train.batch_size=16",
        "train.threads=1",
        "run.root=runs",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    match kind {
        "cnn" => v.extend(
            ["model.kind=cnn", "model.channels=[4,8]", "model.hidden=[8]"].map(String::from),
        ),
        _ => v.extend(["model.kind=mlp", "model.hidden=[16]"].map(String::from)),
    }
    v
}

fn args<'a>(head: &[&'a str], tail: &'a [String]) -> Vec<&'a str> {
    head.iter()
        .copied()
        .chain(tail.iter().map(String::as_str))
        .collect()
}

fn json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn twin_runs_in_two_processes_are_bitwise_identical() {
    let d = tempfile::tempdir().unwrap();
    dataset(d.path());
    for kind in ["mlp", "cnn"] {
        let mut over = tiny(kind);
        over.push("train.epochs=2".into());
        let out = format!("twin-{kind}");
        let o = pcam(d.path(), &args(&["twin-run", "--out", &out], &over));
        assert_eq!(o.code, 0, "{kind}: {}{}", o.stdout, o.stderr);
        let r = json(&d.path().join(&out).join("twin.json"));
        assert_eq!(r["identical"], true, "{kind}: {r}");
        assert_eq!(r["weights_sha256"][0], r["weights_sha256"][1]);
        assert!(o.stdout.contains("weights: identical"), "{}", o.stdout);
    }
}

#[test]
fn another_seed_gives_other_weights() {
    let d = tempfile::tempdir().unwrap();
    dataset(d.path());
    let mut sha = vec![];
    for seed in ["1", "2"] {
        let mut over = tiny("mlp");
        over.extend(["train.epochs=1".to_string(), format!("seed={seed}")]);
        let dir = format!("run-{seed}");
        let o = pcam(d.path(), &args(&["-q", "train", "--run-dir", &dir], &over));
        assert_eq!(o.code, 0, "{}", o.stderr);
        sha.push(json(&d.path().join(&dir).join("metrics.json"))["final_weights_sha256"].clone());
    }
    assert_ne!(sha[0], sha[1]);
}

#[test]
fn sigkill_then_resume_matches_the_uninterrupted_run() {
    let d = tempfile::tempdir().unwrap();
    dataset(d.path());
    let mut over = tiny("cnn");
    over.extend(
        [
            "train.epochs=6",
            "train.scheduler=plateau",
            "train.plateau_patience=0",
        ]
        .map(String::from),
    );
    let o = pcam(
        d.path(),
        &args(&["-q", "train", "--run-dir", "full"], &over),
    );
    assert_eq!(o.code, 0, "{}", o.stderr);

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pcam"))
        .args(args(&["-q", "train", "--run-dir", "killed"], &over))
        .current_dir(d.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let epochs = d.path().join("killed/history/epochs.csv");
    // Kill once two epochs are checkpointed (the CSV is written after the checkpoint).
    wait_until(&mut child, "training reaching epoch 2", || {
        csv_data_lines(&epochs) >= 2
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !d.path().join("killed/metrics.json").exists(),
        "killed run must not have finished"
    );

    let o = pcam(d.path(), &["-q", "train", "--resume", "killed"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let full = json(&d.path().join("full/metrics.json"));
    let resumed = json(&d.path().join("killed/metrics.json"));
    assert_eq!(
        full["final_weights_sha256"],
        resumed["final_weights_sha256"]
    );
    let steps =
        |r: &str| std::fs::read_to_string(d.path().join(r).join("history/steps.csv")).unwrap();
    assert_eq!(steps("full"), steps("killed"));
    let r = pcam::twin::compare(&d.path().join("full"), &d.path().join("killed")).unwrap();
    assert!(r.identical, "{}", r.to_text());
}

#[test]
fn the_run_folder_holds_config_manifest_history_checkpoints_and_metrics() {
    let d = tempfile::tempdir().unwrap();
    dataset(d.path());
    let mut over = tiny("cnn");
    over.extend(
        [
            "train.epochs=2",
            "run.experiment=smoke",
            "train.clip_grad_norm=0.5",
        ]
        .map(String::from),
    );
    let o = pcam(d.path(), &args(&["-q", "train"], &over));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let exp = d.path().join("runs/smoke");
    let runs: Vec<_> = std::fs::read_dir(&exp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    for f in [
        "config.yaml",
        "config.sha256",
        "manifest.json",
        "metrics.json",
        "history/epochs.csv",
        "history/steps.csv",
        "checkpoints/last.ckpt",
        "checkpoints/best.ckpt",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let m = json(&run.join("manifest.json"));
    assert_eq!(m["seed"], 42);
    assert!(m["torch_version"].as_str().unwrap().starts_with("2.11.0"));
    assert_eq!(m["torch"]["deterministic_algorithms"], true);
    assert_eq!(m["torch"]["threads"], 1);
    assert_eq!(m["data_sha256"].as_object().unwrap().len(), 6);
    assert!(m["data_synthetic"].as_str().unwrap().contains("SYNTHETIC"));
    for k in ["load", "hash"] {
        let s = m["startup_seconds"][k].as_f64().unwrap();
        assert!(s > 0.0 && s.is_finite(), "startup_seconds.{k} = {s}");
    }
    let sha = std::fs::read_to_string(run.join("config.sha256")).unwrap();
    assert!(sha.starts_with(m["config_sha256"].as_str().unwrap()));
    let steps = std::fs::read_to_string(run.join("history/steps.csv")).unwrap();
    let header = steps.lines().next().unwrap();
    assert!(
        header.starts_with("step,epoch,lr,loss,grad_norm,grad_norm/bn0"),
        "{header}"
    );
    assert_eq!(
        steps.lines().count(),
        1 + 2 * 6,
        "6 steps of 16 tiles per epoch"
    );
    let h = pcam::run::read_history(run).unwrap();
    assert_eq!((h.epochs.len(), h.steps.len()), (2, 12));
    assert_eq!(
        h.layers,
        vec!["bn0", "bn1", "conv0", "conv1", "head0", "out"]
    );
    assert!(h
        .steps
        .iter()
        .all(|s| s.layer_norms.len() == 6 && s.grad_norm > 0.0));
    let metrics = json(&run.join("metrics.json"));
    assert_eq!(metrics["epochs_run"], 2);
    // The recorded hash is the hash of the weights in the last checkpoint, recomputed
    // from the tensors a fresh model loads.
    let cfg = pcam::config::from_run(run).unwrap();
    let model = cfg.config.model.build(tch::Device::Cpu);
    pcam::train::checkpoint::load_weights(&run.join("checkpoints/last.ckpt"), &model).unwrap();
    assert_eq!(
        model.weights_sha256(),
        metrics["final_weights_sha256"].as_str().unwrap()
    );
    assert_ne!(
        model.weights_sha256(),
        cfg.config.model.build(tch::Device::Cpu).weights_sha256(),
        "training changed the weights"
    );
    assert!(metrics["best"]["valid_auc"].as_f64().unwrap() > 0.0);
    assert!(o.stdout.contains("(SYNTHETIC data)"), "{}", o.stdout);
}

#[test]
fn resume_and_train_errors_are_one_line() {
    let d = tempfile::tempdir().unwrap();
    dataset(d.path());
    let o = pcam(d.path(), &["train", "--resume", "d"]);
    assert_error(&o, &["not a run folder"]);
    let o = pcam(d.path(), &["train", "--resume", "d", "train.lr=1"]);
    assert_error(&o, &["--resume takes the config stored in the run"]);
    let o = pcam(d.path(), &["train", "data.dir=nowhere"]);
    assert_error(&o, &["`data.dir`", "does not exist"]);
    // A run folder whose config was edited afterwards is refused.
    let mut over = tiny("mlp");
    over.push("train.epochs=1".into());
    assert_eq!(
        pcam(d.path(), &args(&["-q", "train", "--run-dir", "r"], &over)).code,
        0
    );
    let cfg = d.path().join("r/config.yaml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("epochs: 1", "epochs: 3");
    std::fs::write(&cfg, text).unwrap();
    let o = pcam(d.path(), &["train", "--resume", "r"]);
    assert_error(&o, &["config.sha256", "does not match"]);
    let o = pcam(d.path(), &args(&["train", "--run-dir", "r"], &over));
    assert_error(&o, &["already holds a run"]);
}

#[test]
fn eval_rebuilds_the_model_and_reproduces_the_training_metric() {
    let d = tempfile::tempdir().unwrap();
    dataset(d.path());
    let mut over = tiny("cnn");
    over.push("train.epochs=2".into());
    assert_eq!(
        pcam(d.path(), &args(&["-q", "train", "--run-dir", "r"], &over)).code,
        0
    );
    let o = pcam(d.path(), &["eval", "--run", "r", "--split", "valid"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let e = json(&d.path().join("r/eval-valid.json"));
    let m = json(&d.path().join("r/metrics.json"));
    assert_eq!(
        e["roc_auc"], m["best"]["valid_auc"],
        "eval must recompute the best epoch's AUC exactly"
    );
    assert_eq!(e["tiles"], 32);
    let o = pcam(
        d.path(),
        &[
            "eval",
            "--run",
            "r",
            "--split",
            "test",
            "--checkpoint",
            "last",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("(SYNTHETIC data)"), "{}", o.stdout);
    let preds = std::fs::read_to_string(d.path().join("r/predictions-test.csv")).unwrap();
    assert_eq!(preds.lines().count(), 33);
    assert!(preds.starts_with("file_split,file_index,label,probability\n"));
    let o = pcam(d.path(), &["eval", "--run", "d"]);
    assert_error(&o, &["not a run folder"]);

    // --expect: a copy of the run re-evaluated agrees with the original; a reference whose
    // stored probability of one tile is off by 1e-3 makes the same evaluation fail.
    std::fs::create_dir_all(d.path().join("ref")).unwrap();
    for f in ["config.yaml", "eval-valid.json", "predictions-valid.csv"] {
        std::fs::copy(d.path().join("r").join(f), d.path().join("ref").join(f)).unwrap();
    }
    let expect = ["eval", "--run", "r", "--split", "valid", "--expect", "ref"];
    let o = pcam(d.path(), &expect);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("largest |Δp| 0.00e0"), "{}", o.stdout);
    let p = d.path().join("ref/predictions-valid.csv");
    let text = std::fs::read_to_string(&p).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut f: Vec<String> = lines[1].split(',').map(String::from).collect();
    let v: f32 = f[3].parse().unwrap();
    f[3] = format!("{:e}", if v > 0.5 { v - 1e-3 } else { v + 1e-3 });
    lines[1] = f.join(",");
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    let o = pcam(d.path(), &expect);
    assert_error(
        &o,
        &["does not reproduce", "largest probability difference"],
    );

    // The threshold is chosen on validation only, stored, and used by test and predict.
    assert_error(
        &pcam(
            d.path(),
            &[
                "eval",
                "--run",
                "r",
                "--split",
                "test",
                "--choose-threshold",
            ],
        ),
        &["validation split only"],
    );
    assert!(!d.path().join("r/threshold.json").exists());
    ok(d.path(), "-q eval --run r --split valid --choose-threshold");
    let t = json(&d.path().join("r/threshold.json"));
    assert!(
        t["source"].as_str().unwrap().starts_with("max_f2 on valid"),
        "{t}"
    );
    ok(d.path(), "-q eval --run r --split test");
    let e = json(&d.path().join("r/eval-test.json"));
    assert_eq!(e["threshold"], t);
    for k in ["roc_auc", "average_precision", "recall", "precision"] {
        let ci = &e["ci95"][k];
        assert!(
            ci[0].as_f64().unwrap() <= ci[1].as_f64().unwrap(),
            "{k}: {ci}"
        );
    }
    assert!(d.path().join("r/thresholds-test.csv").is_file());

    // Baselines with the same metrics on the same tiles.
    let o = ok(d.path(), "-q eval --run r --split test --baselines");
    assert!(o.stdout.contains("| majority class |"), "{}", o.stdout);
    let b = json(&d.path().join("r/baselines-test.json"));
    let bs = b["baselines"].as_array().unwrap();
    assert_eq!(bs.len(), 2);
    assert_eq!(bs[0]["roc_auc"], 0.5, "a constant score ranks nothing");
    assert!(bs[1]["roc_auc"].as_f64().unwrap() > 0.5, "{}", bs[1]);
    assert!(bs[1]["threshold"]["source"]
        .as_str()
        .unwrap()
        .starts_with("max_f2 on valid"));
    assert_eq!(b["tiles"], 32);

    // Slices: every family present, the ranking sorted by gap.
    let o = ok(d.path(), "-q eval --run r --split test --slices");
    assert!(o.stdout.contains("worst"), "{}", o.stdout);
    let sl = json(&d.path().join("r/slices-test.json"));
    assert_eq!(sl["global"]["tiles"], 32);
    let families: std::collections::BTreeSet<&str> = sl["slices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["family"].as_str().unwrap())
        .collect();
    for f in [
        "confidence band",
        "brightness quartile",
        "stain intensity quartile",
        "tissue fraction",
        "label",
        "slide",
    ] {
        assert!(families.contains(f), "{f} missing: {families:?}");
    }
    let gaps: Vec<f64> = sl["worst"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["gap"].as_f64().unwrap())
        .collect();
    assert!(gaps.windows(2).all(|w| w[0] >= w[1]), "{gaps:?}");
    let label_tiles: u64 = sl["slices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["family"] == "label")
        .map(|s| s["tiles"].as_u64().unwrap())
        .sum();
    assert_eq!(label_tiles, 32, "label slices partition the split");
    assert!(d.path().join("r/slices-test.md").is_file());
    for kind in [
        "roc",
        "pr",
        "confusion",
        "thresholds",
        "calibration",
        "slices",
        "errors",
        "errors_worst1",
    ] {
        let png = std::fs::read(d.path().join(format!("r/figures/test_{kind}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 1000, "{kind}");
    }
}

/// Asserts every row's label is its probability thresholded at `t`.
fn assert_labels_at(rows: &[Vec<String>], t: f32) {
    for row in rows {
        let prob: f32 = row[2].parse().unwrap();
        assert_eq!(row[3], ((prob >= t) as u8).to_string(), "{row:?}");
    }
}

fn csv_rows(p: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn predict_reads_x_files_and_png_tiles_at_the_runs_threshold() {
    let d = tempfile::tempdir().unwrap();
    let dp = d.path();
    dataset(dp);
    let mut over = tiny("mlp");
    over.push("train.epochs=1".into());
    assert_eq!(
        pcam(dp, &args(&["-q", "train", "--run-dir", "r"], &over)).code,
        0
    );
    ok(dp, "-q eval --run r --split test");
    let x = format!("d/{}", x_name("test"));

    // An x file alone: the same probabilities as evaluation, bit for bit.
    let o = pcam(dp, &["-q", "predict", "--run", "r", &x, "--out", "p.csv"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.contains("32 tiles") && o.stdout.contains("(default)"),
        "{}",
        o.stdout
    );
    let p = csv_rows(&dp.join("p.csv"));
    let e = csv_rows(&dp.join("r/predictions-test.csv"));
    assert_eq!(p.len(), 32);
    for (k, (pr, er)) in p.iter().zip(&e).enumerate() {
        assert_eq!(
            (pr[0].as_str(), pr[1].as_str()),
            (x.as_str(), k.to_string().as_str())
        );
        assert_eq!(pr[2], er[3], "tile {k}: predict and eval disagree");
    }
    assert_labels_at(&p, 0.5);

    // PNG tiles exported from the same file: the same pixels, so the same probabilities
    // (up to float summation order in a batch of another size).
    ok(
        dp,
        "-q data export-png d --split test --tiles 0..5,9 --out png",
    );
    ok(dp, "-q predict --run r png --out q.csv");
    let q = csv_rows(&dp.join("q.csv"));
    let want = [0usize, 1, 2, 3, 4, 9];
    assert_eq!(q.len(), want.len());
    for (row, &i) in q.iter().zip(&want) {
        assert!(row[0].ends_with(&format!("test_{i}.png")), "{row:?}");
        assert_eq!(row[1], "", "a PNG has no file index");
        let (a, b): (f32, f32) = (row[2].parse().unwrap(), p[i][2].parse().unwrap());
        assert!((a - b).abs() < 1e-5, "tile {i}: PNG {a} vs HDF5 {b}");
    }

    // The run's stored threshold, and --threshold over it.
    std::fs::write(
        dp.join("r/threshold.json"),
        r#"{"threshold":0.9,"source":"test"}"#,
    )
    .unwrap();
    let o = pcam(dp, &["-q", "predict", "--run", "r", &x, "--out", "t.csv"]);
    assert!(o.stdout.contains("threshold 0.9 (test)"), "{}", o.stdout);
    assert_labels_at(&csv_rows(&dp.join("t.csv")), 0.9);
    let o = pcam(
        dp,
        &[
            "-q",
            "predict",
            "--run",
            "r",
            &x,
            "--out",
            "t.csv",
            "--threshold",
            "0",
        ],
    );
    assert!(
        csv_rows(&dp.join("t.csv")).iter().all(|r| r[3] == "1"),
        "{}",
        o.stdout
    );

    // Bad inputs: one line, nothing written.
    let before = listing(dp);
    std::fs::write(dp.join("notes.txt"), "x").unwrap();
    assert_error(
        &pcam(
            dp,
            &["predict", "--run", "r", "notes.txt", "--out", "n.csv"],
        ),
        &["notes.txt", "unsupported input"],
    );
    assert_error(
        &pcam(
            dp,
            &[
                "predict",
                "--run",
                "r",
                &format!("d/{}", y_name("test")),
                "--out",
                "n.csv",
            ],
        ),
        &["no dataset `x`"],
    );
    assert_error(
        &pcam(
            dp,
            &[
                "predict",
                "--run",
                "r",
                &x,
                "--out",
                "n.csv",
                "--threshold",
                "2",
            ],
        ),
        &["--threshold", "outside [0, 1]"],
    );
    std::fs::write(dp.join("png/broken.png"), "not a png").unwrap();
    assert_error(
        &pcam(dp, &["predict", "--run", "r", "png", "--out", "n.csv"]),
        &["broken.png", "not a readable PNG"],
    );
    assert_error(
        &pcam(dp, &["predict", "--run", "d", &x, "--out", "n.csv"]),
        &["not a run folder"],
    );
    assert_error(
        &pcam(
            dp,
            &["data", "export-png", "d", "--tiles", "40", "--out", "png2"],
        ),
        &["index 40", "32 tiles"],
    );
    std::fs::remove_file(dp.join("notes.txt")).unwrap();
    std::fs::remove_file(dp.join("png/broken.png")).unwrap();
    assert_eq!(listing(dp), before, "a failed predict must not leave files");
}

#[test]
fn predict_keeps_a_row_for_every_tile_under_the_runs_invalid_policy() {
    let d = tempfile::tempdir().unwrap();
    let dp = d.path();
    let o = pcam(
        dp,
        &[
            "data",
            "synth",
            "--out",
            "c",
            "--sizes",
            SIZES,
            "--seed",
            "5",
            "--variant",
            "course",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = pcam(dp, &["data", "inspect", "c", "--json"]);
    let report: Value = serde_json::from_str(&o.stdout).unwrap();
    let train = report["splits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["split"] == "train")
        .unwrap();
    let bad = train["pixels"]["bad_tiles"].as_u64().unwrap() as usize;
    assert!(bad > 0, "the course copy must hold invalid tiles");
    let x = format!("c/{}", x_name("train"));
    for (policy, note) in [("clip", "clipped"), ("drop", "dropped")] {
        let mut over = tiny("mlp");
        over[0] = "data.dir=c".into();
        over.extend(["train.epochs=1".into(), format!("data.invalid={policy}")]);
        let run = format!("r-{policy}");
        let o = pcam(dp, &args(&["-q", "train", "--run-dir", &run], &over));
        assert_eq!(o.code, 0, "{}", o.stderr);
        let o = pcam(dp, &["-q", "predict", "--run", &run, &x, "--out", "p.csv"]);
        assert_eq!(o.code, 0, "{}", o.stderr);
        let rows = csv_rows(&dp.join("p.csv"));
        assert_eq!(rows.len(), 96, "{policy}: one row per tile");
        let idx: Vec<String> = (0..96).map(|i| i.to_string()).collect();
        assert_eq!(rows.iter().map(|r| r[1].clone()).collect::<Vec<_>>(), idx);
        let noted: Vec<&Vec<String>> = rows.iter().filter(|r| r[4].contains(note)).collect();
        assert_eq!(noted.len(), bad, "{policy}");
        let empty = rows.iter().filter(|r| r[2].is_empty()).count();
        assert_eq!(empty, if policy == "drop" { bad } else { 0 });
        assert!(
            o.stdout.contains(&format!(
                "{} dropped",
                if policy == "drop" { bad } else { 0 }
            )),
            "{}",
            o.stdout
        );
    }
}

/// Where in a run a kill of the crash test lands.
#[derive(Debug, Clone, Copy, PartialEq)]
enum KillAt {
    /// During start-up: a seeded fraction of this machine's own start-up time after spawn.
    StartUp,
    /// Mid-epoch: 1–2 epochs after the process started, then a seeded fraction of an epoch.
    MidEpoch,
    /// While a checkpoint is written: the temporary file is on disk, not yet renamed.
    CheckpointWrite,
}

/// SIGKILL at ten points of a seeded schedule (start-up, mid-epoch, while a checkpoint is
/// written), each found by the run's progress (files it writes, its own epoch and start-up
/// times), never by a fixed delay, so a slow machine gets the same kinds of kill: after every
/// kill the last checkpoint loads into the model, and resuming after the last kill ends
/// bitwise where the uninterrupted run ends.
#[test]
fn ten_sigkills_at_seeded_random_points_always_resume_bitwise() {
    use rand::seq::SliceRandom;
    use rand::Rng;
    let d = tempfile::tempdir().unwrap();
    dataset(d.path());
    let mut over = tiny("cnn");
    over.extend(["train.epochs=40", "train.scheduler=cosine"].map(String::from));
    let t0 = Instant::now();
    let o = pcam(
        d.path(),
        &args(&["-q", "train", "--run-dir", "full"], &over),
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    // This machine's pace, measured on the uninterrupted run: seconds per epoch from its
    // history, start-up as the rest of its wall time (an over-estimate: that rest also holds
    // every epoch's validation and checkpoint, so the waits below stop at the next epoch).
    let wall = t0.elapsed().as_secs_f64();
    let h = pcam::run::read_history(&d.path().join("full")).unwrap();
    let training: f64 = h.epochs.iter().map(|e| e.seconds).sum();
    let per_epoch = training / h.epochs.len() as f64;
    let start_up = (wall - training).max(0.0);

    let run = d.path().join("k");
    let last = run.join("checkpoints/last.ckpt");
    let epochs_csv = run.join("history/epochs.csv");
    let marker = d.path().join("stalled-in-checkpoint-write");
    let mut rng = pcam::seed::Seeds::new(2026).stream("test/kill-points", 0);
    // The first kill hits a fresh run's start-up; the other nine are shuffled.
    let mut plan = vec![KillAt::StartUp, KillAt::StartUp];
    plan.extend([KillAt::MidEpoch; 4]);
    plan.extend([KillAt::CheckpointWrite; 3]);
    plan.shuffle(&mut rng);
    plan.insert(0, KillAt::StartUp);
    let mut loaded = 0;
    for (i, at) in plan.iter().enumerate() {
        let kill = i + 1;
        let a: Vec<&str> = if run.join("config.yaml").is_file() {
            vec!["-q", "train", "--resume", "k"]
        } else {
            args(&["-q", "train", "--run-dir", "k"], &over)
        };
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_pcam"));
        cmd.args(&a)
            .current_dir(d.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if *at == KillAt::CheckpointWrite {
            cmd.env("PCAM_TEST_STALL_CHECKPOINT", &marker);
        }
        let before = csv_data_lines(&epochs_csv);
        let mut child = cmd.spawn().unwrap();
        match at {
            // Within start-up: a share of the measured start-up, cut short by the run's
            // first new epoch (the reference pace may come from a busier moment).
            KillAt::StartUp => wait_at_most_until(
                &mut child,
                &format!("kill {kill}: start-up"),
                Duration::from_secs_f64(start_up * rng.random_range(0.0..0.8)),
                || csv_data_lines(&epochs_csv) > before,
            ),
            KillAt::MidEpoch => {
                let target = before + rng.random_range(1..=2);
                wait_until(&mut child, &format!("kill {kill}: epoch {target}"), || {
                    csv_data_lines(&epochs_csv) >= target
                });
                wait_at_most_until(
                    &mut child,
                    &format!("kill {kill}: mid-epoch"),
                    Duration::from_secs_f64(per_epoch * rng.random_range(0.1..0.9)),
                    || csv_data_lines(&epochs_csv) > target,
                );
            }
            KillAt::CheckpointWrite => wait_until(
                &mut child,
                &format!("kill {kill}: checkpoint write"),
                || marker.is_file(),
            ),
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "training finished before kill {kill}: it must outlast ten kills"
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if *at == KillAt::CheckpointWrite {
            let tmp = std::fs::read_to_string(&marker).unwrap();
            // The path as the process saw it, relative to its working folder.
            assert!(
                d.path().join(&tmp).is_file(),
                "kill {kill}: no temporary checkpoint {tmp} on disk"
            );
            std::fs::remove_file(&marker).unwrap();
        }
        if *at == KillAt::MidEpoch {
            assert!(last.exists(), "kill {kill}: no checkpoint after an epoch");
        }
        if last.exists() {
            let cfg = pcam::config::from_run(&run).unwrap();
            let model = cfg.config.model.build(tch::Device::Cpu);
            let state = pcam::train::checkpoint::load_weights(&last, &model)
                .unwrap_or_else(|e| panic!("kill {kill} ({at:?}): checkpoint does not load: {e}"));
            assert!(!state.history.is_empty(), "kill {kill}: empty history");
            loaded += 1;
        }
        assert!(
            !run.join("metrics.json").exists(),
            "kill {kill}: a killed run must not look finished"
        );
        eprintln!(
            "kill {kill}: {at:?}, {} epochs in the history, checkpoint {}",
            csv_data_lines(&epochs_csv),
            if last.exists() {
                "loads"
            } else {
                "not yet written"
            }
        );
    }
    assert!(
        loaded >= 4,
        "only {loaded} of 10 kills left a checkpoint to load"
    );
    let o = pcam(d.path(), &["-q", "train", "--resume", "k"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let full = json(&d.path().join("full/metrics.json"));
    let resumed = json(&run.join("metrics.json"));
    assert_eq!(
        full["final_weights_sha256"],
        resumed["final_weights_sha256"]
    );
    let r = pcam::twin::compare(&d.path().join("full"), &run).unwrap();
    assert!(r.identical, "{}", r.to_text());
}

/// The checkpoint committed in `models/demo-cnn/` (the journal's final checklist) loads and
/// predicts with this pcam, at its stored threshold, and its config still hashes to the
/// recorded SHA-256.
#[test]
fn the_committed_demo_model_predicts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = root.join("models/demo-cnn");
    let d = tempfile::tempdir().unwrap();
    dataset(d.path());
    let o = pcam(
        d.path(),
        &[
            "predict",
            "--run",
            model.to_str().unwrap(),
            "--device",
            "cpu",
            "--out",
            "p.csv",
            "d/camelyonpatch_level_2_split_test_x.h5",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.contains("run's threshold") || o.stdout.contains("max_f2"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("SYNTHETIC"), "{}", o.stdout);
    let rows = csv_rows(&d.path().join("p.csv"));
    assert_eq!(rows.len(), 32);
    for r in &rows {
        let p: f32 = r[2].parse().unwrap();
        assert!((0.0..=1.0).contains(&p), "{r:?}");
    }
    let o = pcam(
        d.path(),
        &[
            "config",
            "show",
            "--config",
            model.join("config.yaml").to_str().unwrap(),
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let recorded = std::fs::read_to_string(model.join("config.sha256")).unwrap();
    assert!(
        o.stdout
            .contains(recorded.split_whitespace().next().unwrap()),
        "config.yaml no longer resolves to config.sha256"
    );
}

/// libgomp prints its settings at load time under OMP_DISPLAY_ENV=verbose: one block per
/// process start, with the spin count its wait policy gave (0 = PASSIVE, 300000 = its
/// default, 30000000000 = ACTIVE). A failing command is enough: libgomp loads first.
fn openmp_starts(args: &[&str], env: &[(&str, &str)], underscore: bool) -> Vec<String> {
    let d = tempfile::tempdir().unwrap();
    let mut c = pcam_command(d.path(), args, &[]);
    c.env("OMP_DISPLAY_ENV", "verbose");
    for v in pcam::runtime::OPENMP_POLICY_VARS {
        c.env_remove(v);
    }
    c.envs(env.iter().copied());
    if underscore {
        c.env("_", env!("CARGO_BIN_EXE_pcam"));
    } else {
        c.env_remove("_");
    }
    let o = c.output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("GOMP_SPINCOUNT = "))
        .map(|v| v.trim_matches('\'').to_string())
        .collect()
}

#[test]
fn training_commands_start_libgomp_passive_once_and_others_keep_its_default() {
    let train = ["-q", "train", "data.dir=missing"];
    // The policy is set before libgomp loads: one start, not a re-execution.
    assert_eq!(openmp_starts(&train, &[], true), ["0"]);
    assert_eq!(
        openmp_starts(&["bench", "-q", "train", "data.dir=missing"], &[], true),
        ["0"]
    );
    // Without `_` in the environment the process re-executes itself, as before.
    assert_eq!(openmp_starts(&train, &[], false), ["300000", "0"]);
    // A user's choice is left alone; commands that do not train keep libgomp's default.
    assert_eq!(
        openmp_starts(&train, &[("OMP_WAIT_POLICY", "ACTIVE")], true),
        ["30000000000"]
    );
    assert_eq!(
        openmp_starts(&["-q", "eval", "--run", "missing"], &[], true),
        ["300000"]
    );
}

/// SHA-256 of a run's final weights, as the run folder records it.
fn weights(run: &Path) -> String {
    pcam::run::RunDir::open(run)
        .unwrap()
        .weights_sha256()
        .unwrap()
}

#[test]
fn seed_groups_train_one_seed_per_task_and_reuse_finished_seeds() {
    let d = tempfile::tempdir().unwrap();
    let dp = d.path();
    dataset(dp);
    let mut over = tiny("mlp");
    over.push("train.epochs=1".into());
    // One task of a job array: only seed 2 of the group.
    let o = pcam(
        dp,
        &args(
            &[
                "-q", "train", "--seeds", "1,2", "--group", "g", "--only", "2",
            ],
            &over,
        ),
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout.trim(), "run g/g-seed2");
    assert!(!dp.join("g/g-seed1").exists() && !dp.join("g/summary.md").exists());
    let started = json(&dp.join("g/g-seed2/manifest.json"))["started_utc"].clone();
    // The whole group: seed 1 trains, seed 2 is reused as it is, the summary is written.
    let o = pcam(
        dp,
        &args(&["-q", "train", "--seeds", "1,2", "--group", "g"], &over),
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        json(&dp.join("g/g-seed2/manifest.json"))["started_utc"],
        started
    );
    assert!(dp.join("g/summary.md").is_file() && dp.join("g/g-seed1/eval-test.json").is_file());
    // The same group trained in one go elsewhere: the same weights, seed for seed.
    let o = pcam(
        dp,
        &args(&["-q", "train", "--seeds", "1,2", "--group", "h"], &over),
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    for s in [1, 2] {
        assert_eq!(
            weights(&dp.join(format!("g/g-seed{s}"))),
            weights(&dp.join(format!("h/h-seed{s}"))),
            "seed {s}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(dp.join("g/summary.md"))
            .unwrap()
            .replace("g/g-seed", "X"),
        std::fs::read_to_string(dp.join("h/summary.md"))
            .unwrap()
            .replace("h/h-seed", "X"),
    );
    // A seed outside the group, another config in a seed's folder: one-line errors.
    let o = pcam(
        dp,
        &args(
            &[
                "-q", "train", "--seeds", "1,2", "--group", "g", "--only", "3",
            ],
            &over,
        ),
    );
    assert_error(&o, &["--only 3", "not one of the group's seeds"]);
    let mut other = over.clone();
    other.push("train.lr=0.5".into());
    let o = pcam(
        dp,
        &args(&["-q", "train", "--seeds", "1,2", "--group", "g"], &other),
    );
    assert_error(&o, &["g-seed1", "holds another config"]);
    let o = pcam(dp, &args(&["-q", "train", "--group", "g"], &over));
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("--seeds"), "{}", o.stderr);
}

#[test]
fn offloaded_tasks_run_here_without_slurm_and_match_the_cli() {
    // No `sinfo` here (a program that does not exist stands in for it): the batch runs as
    // child processes, the same commands a Slurm array task runs.
    let place = pcam::offload::Place::detect_with("/nonexistent/sinfo");
    assert!(matches!(place, pcam::offload::Place::Local { .. }));
    let d = tempfile::tempdir().unwrap();
    let dp = d.path();
    dataset(dp);
    let mut over = tiny("mlp");
    over.push("train.epochs=1".into());
    let group = dp.join("offloaded");
    let batch = pcam::offload::Batch {
        name: "seeds".into(),
        root: dp.to_path_buf(),
        exe: env!("CARGO_BIN_EXE_pcam").into(),
        dir: group.clone(),
        tasks: pcam::multiseed::tasks(&[], &over, &[1, 2], &group),
    };
    let ran = pcam::offload::run(&place, &batch, pcam::progress::Progress { quiet: true })
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(
        (ran.tasks, ran.job_id.clone(), ran.place.as_str()),
        (2, None, "locally, one after another")
    );
    let g = pcam::multiseed::collect(&group, &[1, 2]).unwrap();
    assert_eq!(g.test.rows.len(), 2);
    let o = pcam(
        dp,
        &args(&["-q", "train", "--seeds", "1,2", "--group", "cli"], &over),
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    for s in [1, 2] {
        let m = json(&group.join(format!("offloaded-seed{s}/manifest.json")));
        assert!(m["slurm_job_id"].is_null(), "{m}");
        assert_eq!(
            weights(&group.join(format!("offloaded-seed{s}"))),
            weights(&dp.join(format!("cli/cli-seed{s}")))
        );
    }
    // A failing task is named with its command; the others still ran.
    let mut bad = batch.clone();
    bad.name = "bad".into();
    bad.tasks
        .insert(0, vec!["train".into(), "data.dir=missing".into()]);
    let ran = pcam::offload::run(&place, &bad, pcam::progress::Progress { quiet: true }).unwrap();
    assert_eq!(ran.failed.len(), 1, "{:?}", ran.failed);
    assert!(
        ran.failed[0].1.contains("pcam train data.dir=missing")
            && ran.failed[0].1.contains("missing"),
        "{:?}",
        ran.failed
    );
}
