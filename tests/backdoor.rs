//! `pcam data backdoor` through the real CLI on a small synthetic course copy: two seed
//! groups (raw copy, clean index) of tiny MLPs; the unstamped rates and test scores it
//! reports agree with what `pcam eval` wrote for the same runs (another code path), the
//! stamp is the audit's, the copied test tiles are the audit's train–test pairs, and bad
//! input fails with one line.

mod common;
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Trains one tiny MLP per seed; returns the seed group folder.
fn seed_group(dp: &Path, experiment: &str, extra: &[&str]) -> String {
    let mut a = vec![
        "-q",
        "train",
        "--seeds",
        "1,2",
        "data.dir=c",
        "data.invalid=drop",
        "model.kind=mlp",
        "model.hidden=[8]",
        "train.epochs=1",
        "train.batch_size=32",
        "train.threads=1",
    ];
    let exp = format!("run.experiment={experiment}");
    a.push(&exp);
    a.extend(extra);
    let o = pcam(dp, &a);
    assert_eq!(o.code, 0, "{}", o.stderr);
    o.stdout
        .lines()
        .find_map(|l| l.strip_prefix("group "))
        .expect("seed group folder printed")
        .trim()
        .to_string()
}

/// (file index -> (label, probability)) from a run's predictions-test.csv.
fn test_predictions(run: &Path) -> BTreeMap<u64, (u8, f64)> {
    let text = std::fs::read_to_string(run.join("predictions-test.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[1].parse().unwrap(),
                (f[2].parse().unwrap(), f[3].parse().unwrap()),
            )
        })
        .collect()
}

#[test]
fn attack_success_and_leakage_are_measured_per_group_and_agree_with_eval() {
    let d = tempfile::tempdir().unwrap();
    let dp = d.path();
    ok(
        dp,
        "-q data synth --out c --variant course --sizes train=600,valid=128,test=256 --seed 11",
    );
    ok(dp, "-q data audit c --out rep --write-clean clean.json");
    let raw = seed_group(dp, "raw", &[]);
    let clean = seed_group(dp, "clean", &["data.exclude=clean.json"]);
    let o = ok(
        dp,
        &format!("-q data backdoor c --audit rep/audit.json --group raw={raw} --group clean={clean} --out bd"),
    );
    assert!(o.stdout.contains("SYNTHETIC"), "{}", o.stdout);
    let r = json(&dp.join("bd/backdoor.json"));
    assert!(dp.join("bd/backdoor.md").is_file());
    assert!(dp.join("bd/figures/attack_success.png").is_file());

    // The stamp is the audit's most frequent recurring one, at its example's box.
    let a = json(&dp.join("rep/audit.json"));
    let stamps = r["stamps"].as_array().unwrap();
    assert_eq!(
        stamps.len(),
        a["recurring_stamps"].as_array().unwrap().len()
    );
    let first = &a["recurring_stamps"][0];
    assert_eq!(stamps[0]["tiles_in_data"], first["tiles"]);
    let [r0, c0, r1, c1] = [0, 1, 2, 3].map(|k| stamps[0]["bbox"][k].as_u64().unwrap());
    assert_eq!(
        [r1 - r0 + 1, c1 - c0 + 1],
        [0, 1].map(|k| first["size"][k].as_u64().unwrap())
    );

    // Test tiles the audit names (any finding) and those with a copy in train.
    let mut named = BTreeSet::new();
    let mut copied = BTreeSet::new();
    for f in a["findings"].as_array().unwrap() {
        let is_copy = f["kind"]
            .as_str()
            .unwrap()
            .contains("duplicate_across_splits");
        for t in f["tiles"].as_array().unwrap() {
            if t["split"] == "test" {
                named.insert(t["index"].as_u64().unwrap());
            }
        }
        for p in f["pairs"].as_array().into_iter().flatten() {
            for (x, y) in [(&p["a"], &p["b"]), (&p["b"], &p["a"])] {
                if x["split"] == "test" {
                    named.insert(x["index"].as_u64().unwrap());
                    if is_copy && y["split"] == "train" {
                        copied.insert(x["index"].as_u64().unwrap());
                    }
                }
            }
        }
    }
    assert!(
        !copied.is_empty(),
        "the course copy duplicates test tiles into train"
    );
    let got: BTreeSet<u64> = r["test_tiles_with_train_copy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(got, copied);

    // The poisoned train tiles are the audit's trigger tiles in train.
    let trig: Vec<u64> = a["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "trigger_patch")
        .unwrap()["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["split"] == "train")
        .map(|t| t["index"].as_u64().unwrap())
        .collect();
    assert!(!trig.is_empty());
    let got: Vec<u64> = r["poisoned_train_tiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(got, trig);

    // Per run: the unstamped rate and the test scores are what eval's own predictions give.
    let groups = r["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    for g in groups {
        let runs = g["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 2);
        for e in runs {
            let run = PathBuf::from(e["run"].as_str().unwrap());
            let run = if run.is_absolute() { run } else { dp.join(run) };
            let t = json(&run.join("threshold.json"))["threshold"]
                .as_f64()
                .unwrap();
            assert_eq!(e["threshold"].as_f64().unwrap(), t);
            let preds = test_predictions(&run);
            let neg: Vec<f64> = preds
                .iter()
                .filter(|(i, (y, _))| *y == 0 && !named.contains(i))
                .map(|(_, (_, p))| *p)
                .collect();
            assert_eq!(r["clean_negatives"].as_u64().unwrap() as usize, neg.len());
            let share = neg.iter().filter(|&&p| p >= t).count() as f64 / neg.len() as f64;
            assert!(
                (e["unstamped_positive"].as_f64().unwrap() - share).abs() < 1e-9,
                "{e}: eval's predictions give {share}"
            );
            if g["name"] == "raw" {
                // Their predictions of the poisoned train tiles are eval's on train.
                ok(
                    dp,
                    &format!("-q eval --run {} --split train", run.display()),
                );
                let text = std::fs::read_to_string(run.join("predictions-train.csv")).unwrap();
                let p: BTreeMap<u64, f64> = text
                    .lines()
                    .skip(1)
                    .map(|l| {
                        let f: Vec<&str> = l.split(',').collect();
                        (f[1].parse().unwrap(), f[3].parse().unwrap())
                    })
                    .collect();
                let hit = trig.iter().filter(|i| p[i] >= t).count() as f64 / trig.len() as f64;
                assert!(
                    (e["poisoned_train_positive"].as_f64().unwrap() - hit).abs() < 1e-9,
                    "{e}: eval on train gives {hit}"
                );
                // The raw runs were evaluated on the same test tiles.
                let ev = json(&run.join("eval-test.json"));
                let auc = e["test_roc_auc"].as_f64().unwrap();
                assert!((auc - ev["roc_auc"].as_f64().unwrap()).abs() < 1e-9, "{e}");
                assert_eq!(preds.len(), r["test_tiles"].as_u64().unwrap() as usize);
            }
            for s in e["attack_success"].as_array().unwrap() {
                assert!((0.0..=1.0).contains(&s.as_f64().unwrap()), "{e}");
            }
        }
        // The group's mean is the runs' mean.
        let m: f64 = runs
            .iter()
            .map(|e| e["attack_success"][0].as_f64().unwrap())
            .sum::<f64>()
            / 2.0;
        assert!((g["attack_success"][0]["mean"].as_f64().unwrap() - m).abs() < 1e-12);
        assert!(g["attack_success"][0]["ci95"].is_array(), "{g}");
        let lift: f64 = runs
            .iter()
            .map(|e| {
                e["attack_success"][0].as_f64().unwrap() - e["unstamped_positive"].as_f64().unwrap()
            })
            .sum::<f64>()
            / 2.0;
        assert!((g["attack_lift"][0]["mean"].as_f64().unwrap() - lift).abs() < 1e-12);
    }

    // Bad input: one line naming what is wrong.
    let o = pcam(
        dp,
        &[
            "data",
            "backdoor",
            "c",
            "--audit",
            "rep/audit.json",
            "--group",
            "raw",
            "--out",
            "x",
        ],
    );
    assert_error(&o, &["--group raw", "NAME=DIR"]);
    ok(
        dp,
        "-q data synth --out other --variant course --sizes train=300,valid=64,test=64 --seed 12",
    );
    let o = pcam(
        dp,
        &[
            "data",
            "backdoor",
            "other",
            "--audit",
            "rep/audit.json",
            "--group",
            &format!("raw={raw}"),
            "--out",
            "x",
        ],
    );
    assert_error(&o, &["rep/audit.json", "audits"]);
    assert!(!dp.join("x/backdoor.json").exists());
}
