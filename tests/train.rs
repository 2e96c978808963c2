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
    let t0 = Instant::now();
    // Kill once two epochs are checkpointed (the CSV is written after the checkpoint).
    while std::fs::read_to_string(&epochs)
        .map(|s| s.lines().count())
        .unwrap_or(0)
        < 3
    {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "training did not reach epoch 2"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "training ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
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
    let h = pcam::train::read_history(run).unwrap();
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
    assert_eq!(
        pcam::run::RunDir::open(run)
            .unwrap()
            .weights_sha256()
            .unwrap(),
        metrics["final_weights_sha256"].as_str().unwrap()
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
    assert!(preds.starts_with("file_index,label,probability\n"));
    let o = pcam(d.path(), &["eval", "--run", "d"]);
    assert_error(&o, &["not a run folder"]);
}
