//! `pcam data audit` through the real CLI on small synthetic data: on the course copy it
//! finds every injected corruption kind with recall and precision ≥ 0.95 against the
//! generator's ground truth, the shared slides and the duplicated test tiles; on the
//! clean pcam copy it raises no alarm; its clean index is applied by `data.exclude`; and
//! it confirms that runs normalise with train-only statistics.

mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

fn synth(dir: &Path, out: &str, variant: &str, sizes: &str) {
    let o = pcam(
        dir,
        &[
            "-q",
            "data",
            "synth",
            "--out",
            out,
            "--variant",
            variant,
            "--sizes",
            sizes,
            "--seed",
            "11",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
}

/// Trains a tiny MLP on `c` with one extra override into `r`, evaluates it on valid and
/// returns the number of valid tiles evaluated.
fn train_and_eval_valid(dp: &Path, extra: &str) -> usize {
    let mut a = vec!["-q", "train", "--run-dir", "r", "data.dir=c", extra];
    a.extend([
        "train.epochs=1",
        "train.batch_size=32",
        "train.threads=1",
        "model.hidden=[8]",
    ]);
    let o = pcam(dp, &a);
    assert_eq!(o.code, 0, "{}", o.stderr);
    ok(dp, "-q eval --run r --split valid");
    json(&dp.join("r/eval-valid.json"))["tiles"]
        .as_u64()
        .unwrap() as usize
}

fn json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn found(report: &Value, kind: &str) -> BTreeSet<(String, u64)> {
    let f = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == kind)
        .unwrap();
    f["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["split"].as_str().unwrap().to_string(),
                t["index"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn truth(list: &Value, split: &str) -> BTreeSet<(String, u64)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                split.to_string(),
                if v.is_array() {
                    v[0].as_u64().unwrap()
                } else {
                    v.as_u64().unwrap()
                },
            )
        })
        .collect()
}

#[test]
fn the_course_copy_audit_finds_every_injected_corruption() {
    let d = tempfile::tempdir().unwrap();
    let dp = d.path();
    synth(dp, "c", "course", "train=1200,valid=256,test=256");
    let o = ok(dp, "-q data audit c --out rep --write-clean clean.json");
    assert!(o.stdout.contains("(SYNTHETIC data)"), "{}", o.stdout);
    let r = json(&dp.join("rep/audit.json"));
    let m = json(&dp.join("c/synthetic.json"))["corruptions"].clone();
    let kinds = [
        ("invalid_values", truth(&m["out_of_range"], "train")),
        ("blank", truth(&m["blank"], "train")),
        ("saturated", truth(&m["saturated"], "train")),
        ("trigger_patch", truth(&m["trigger"], "train")),
        (
            "exact_duplicate_across_splits",
            truth(&m["exact_duplicate_of_test"], "train"),
        ),
        (
            "near_duplicate_across_splits",
            truth(&m["near_duplicate_of_test"], "train"),
        ),
        (
            "slide_in_several_splits",
            truth(&m["valid_on_train_slides"], "valid"),
        ),
    ];
    for (kind, want) in &kinds {
        assert!(!want.is_empty(), "{kind}: the generator injected none");
        let got = found(&r, kind);
        let tp = got.intersection(want).count() as f64;
        let (recall, precision) = (tp / want.len() as f64, tp / got.len().max(1) as f64);
        assert!(
            recall >= 0.95 && precision >= 0.95,
            "{kind}: recall {recall:.3}, precision {precision:.3} ({} found, {} injected)",
            got.len(),
            want.len()
        );
    }
    // The duplicated test tiles themselves are named in the pairs.
    for key in ["exact_duplicate_of_test", "near_duplicate_of_test"] {
        let kind = if key.starts_with("exact") {
            "exact_duplicate_across_splits"
        } else {
            "near_duplicate_across_splits"
        };
        let f = r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["kind"] == kind)
            .unwrap();
        let pairs: BTreeSet<(u64, u64)> = f["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["a"]["index"].as_u64().unwrap(),
                    p["b"]["index"].as_u64().unwrap(),
                )
            })
            .collect();
        for p in m[key].as_array().unwrap() {
            let pair = (p[0].as_u64().unwrap(), p[1].as_u64().unwrap());
            assert!(
                pairs.contains(&pair),
                "{key}: train {} / test {} not paired",
                pair.0,
                pair.1
            );
        }
    }
    assert!(!r["shared_slides"].as_array().unwrap().is_empty());
    for kind in [
        "invalid_values",
        "trigger_patch",
        "near_duplicate_across_splits",
    ] {
        let f = r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["kind"] == kind)
            .unwrap();
        assert!(
            dp.join("rep").join(f["figure"].as_str().unwrap()).is_file(),
            "{kind} figure"
        );
    }
    let md = std::fs::read_to_string(dp.join("rep/audit.md")).unwrap();
    assert!(md.contains("SYNTHETIC") && md.contains("trigger_patch"));

    // The clean index drops what it says, and a run applies it without touching the data.
    let clean = json(&dp.join("clean.json"));
    let dropped = |s: &str| clean["drop"][s].as_array().map_or(0, |v| v.len());
    assert!(dropped("train") >= kinds[..6].iter().map(|k| k.1.len()).sum::<usize>() - 5);
    assert_eq!(
        dropped("valid"),
        m["valid_on_train_slides"].as_array().unwrap().len()
    );
    let before = std::fs::read(dp.join(format!("c/{}", x_name("train")))).unwrap();
    assert_eq!(
        train_and_eval_valid(dp, "data.exclude=clean.json"),
        256 - dropped("valid")
    );
    assert_eq!(
        std::fs::read(dp.join(format!("c/{}", x_name("train")))).unwrap(),
        before,
        "data must never be modified"
    );

    // The run's normalisation statistics are recomputed from train (minus the clean index).
    ok(dp, "-q data audit c --out rep2 --runs .");
    let checks = json(&dp.join("rep2/audit.json"))["norm_checks"].clone();
    assert_eq!(checks.as_array().unwrap().len(), 1, "{checks}");
    assert_eq!(checks[0]["from_train_only"], true, "{checks}");
    assert_ne!(checks[0]["stored"], checks[0]["valid"]);
}

#[test]
fn the_clean_pcam_copy_raises_no_alarm() {
    let d = tempfile::tempdir().unwrap();
    let dp = d.path();
    synth(dp, "p", "pcam", "train=1200,valid=256,test=256");
    ok(dp, "-q data audit p --out rep");
    let r = json(&dp.join("rep/audit.json"));
    let total = r["tiles"].as_u64().unwrap() as f64;
    for f in r["findings"].as_array().unwrap() {
        let n = f["tiles"].as_array().unwrap().len() as f64;
        assert!(
            n / total <= 0.005,
            "{}: {n} of {total} tiles flagged",
            f["kind"]
        );
    }
    for kind in [
        "invalid_values",
        "blank",
        "saturated",
        "trigger_patch",
        "exact_duplicate_across_splits",
        "near_duplicate_across_splits",
        "slide_in_several_splits",
    ] {
        assert!(found(&r, kind).is_empty(), "{kind} on clean data");
    }
    assert!(r["shared_slides"].as_array().unwrap().is_empty());
}

#[test]
fn audit_errors_are_one_line() {
    let d = tempfile::tempdir().unwrap();
    let dp = d.path();
    assert_error(
        &pcam(dp, &["data", "audit", "missing"]),
        &["missing", "no PCAM split files"],
    );
    std::fs::create_dir(dp.join("empty")).unwrap();
    assert_error(
        &pcam(dp, &["data", "audit", "empty", "--near-distance", "9"]),
        &["--near-distance 9"],
    );
    synth(dp, "p", "pcam", "train=64,valid=32,test=32");
    std::fs::write(dp.join("bad.json"), "{}").unwrap();
    let o = pcam(
        dp,
        &[
            "train",
            "data.dir=p",
            "data.exclude=bad.json",
            "train.epochs=1",
        ],
    );
    assert_error(&o, &["bad.json", "clean index"]);
    let o = pcam(
        dp,
        &[
            "train",
            "data.dir=p",
            "data.exclude=nope.json",
            "train.epochs=1",
        ],
    );
    assert_error(&o, &["data.exclude", "does not exist"]);
}

fn meta_wsi(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let col = lines
        .next()
        .unwrap()
        .split(',')
        .position(|c| c == "wsi")
        .unwrap();
    lines
        .map(|l| l.split(',').nth(col).unwrap().to_string())
        .collect()
}

fn selection(v: &Value) -> Vec<(String, u64)> {
    let mut out = vec![];
    for (split, idx) in v.as_object().unwrap() {
        out.extend(
            idx.as_array()
                .unwrap()
                .iter()
                .map(|i| (split.clone(), i.as_u64().unwrap())),
        );
    }
    out
}

#[test]
fn slide_grouped_splits_and_folds_are_seeded_disjoint_and_used_by_runs() {
    let d = tempfile::tempdir().unwrap();
    let dp = d.path();
    synth(dp, "c", "course", "train=600,valid=256,test=128");
    let wsi =
        |split: &str| meta_wsi(&dp.join(format!("c/camelyonpatch_level_2_split_{split}_meta.csv")));
    let slide_of = |t: &(String, u64)| wsi(&t.0)[t.1 as usize].clone();

    ok(dp, "-q data split c --out s/split.json --seed 3");
    let m = json(&dp.join("s/split.json"));
    let (train, valid) = (
        selection(&m["folds"][0]["train"]),
        selection(&m["folds"][0]["valid"]),
    );
    assert_eq!(
        train.len() + valid.len(),
        600 + 256,
        "every pooled tile in exactly one side"
    );
    let ts: BTreeSet<String> = train.iter().map(slide_of).collect();
    let vs: BTreeSet<String> = valid.iter().map(slide_of).collect();
    assert!(ts.is_disjoint(&vs), "a slide in both train and valid");
    assert_eq!(m["facts"][0]["shared_slides"], 0);
    let share = valid.len() as f64 / 856.0;
    assert!((share - 0.125).abs() < 0.06, "valid share {share}");
    // Same seed, same manifest; another seed, another split.
    ok(dp, "-q data split c --out s/again.json --seed 3");
    assert_eq!(json(&dp.join("s/again.json"))["sha256"], m["sha256"]);
    ok(dp, "-q data split c --out s/other.json --seed 4");
    assert_ne!(json(&dp.join("s/other.json"))["sha256"], m["sha256"]);

    // k folds: every pooled tile is in exactly one fold's valid part.
    ok(dp, "-q data split c --out s/k.json --folds 4");
    let k = json(&dp.join("s/k.json"));
    let mut all: Vec<(String, u64)> = (0..4)
        .flat_map(|f| selection(&k["folds"][f]["valid"]))
        .collect();
    all.sort();
    let n = all.len();
    all.dedup();
    assert_eq!((n, all.len()), (856, 856));

    // A run reads its train and valid tiles from the manifest.
    assert_eq!(
        train_and_eval_valid(dp, "data.split_manifest=s/split.json"),
        valid.len()
    );
    let got = scored_tiles(&dp.join("r"), "valid");
    assert_eq!(got, valid.iter().cloned().collect());
    // The audit recomputes that run's statistics over the manifest's train tiles.
    ok(dp, "-q data audit c --out rep --runs .");
    assert_eq!(
        json(&dp.join("rep/audit.json"))["norm_checks"][0]["from_train_only"],
        true
    );

    // An edited manifest, a fold out of range, no meta.csv: one-line errors.
    let text = std::fs::read_to_string(dp.join("s/split.json")).unwrap();
    let first = valid[0].1.to_string();
    let edited = text.replacen(&format!("\n          {first},"), "\n          0,", 1);
    assert_ne!(edited, text, "the edit must change the lists");
    std::fs::write(dp.join("s/edited.json"), edited).unwrap();
    let o = pcam(
        dp,
        &["train", "data.dir=c", "data.split_manifest=s/edited.json"],
    );
    assert_error(&o, &["edited.json", "sha256"]);
    let o = pcam(
        dp,
        &[
            "train",
            "data.dir=c",
            "data.split_manifest=s/k.json",
            "data.fold=4",
        ],
    );
    assert_error(&o, &["data.fold", "4 fold"]);
    std::fs::remove_file(dp.join("c/camelyonpatch_level_2_split_valid_meta.csv")).unwrap();
    assert_error(
        &pcam(dp, &["data", "split", "c", "--out", "x.json"]),
        &["meta.csv", "wsi"],
    );
    assert!(!dp.join("x.json").exists());
}

/// Held-out seed of the independent generator: not looked at while the rules were made
/// (seed 11 was, and seed 23 before the label-noise rule was made stricter; see
/// tests/independent/README.md).
const INDEPENDENT_SEED: &str = "37";

/// Runs one of tests/independent's scripts with the venv's Python.
fn independent_script(script: &str, args: &[&std::ffi::OsStr]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/independent")
        .join(script);
    let o = std::process::Command::new(venv_python())
        .arg(path)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The independent generator's data set at the held-out seed, stored as `dtype`, in `dir`.
fn independent_set(dir: &Path, dtype: &str) {
    independent_script(
        "corrupt_pcam.py",
        &[
            "--out".as_ref(),
            dir.as_os_str(),
            "--seed".as_ref(),
            INDEPENDENT_SEED.as_ref(),
            "--dtype".as_ref(),
            dtype.as_ref(),
        ],
    );
}

/// The scorer's figures for `report`'s audit.json against `data`'s truth.
fn independent_scores(data: &Path, report: &Path, out: &Path) -> Value {
    independent_script(
        "score_audit.py",
        &[
            "--truth".as_ref(),
            data.join("independent_truth.json").as_os_str(),
            "--audit".as_ref(),
            report.join("audit.json").as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
    );
    json(out)
}

#[test]
fn the_audit_meets_its_targets_on_data_from_an_independent_generator() {
    // tests/independent/corrupt_pcam.py was written without reading pcam's generator or
    // audit: its own tile model, 7 trigger shapes, 13 copy transforms, invalid values,
    // label flips, shared slides; stored as uint8 (gzip), uint32 and float32. Its scorer
    // reads audit.json and the truth file.
    let t = tempfile::tempdir().unwrap();
    for dtype in ["uint8", "uint32", "float32"] {
        let data = t.path().join(dtype);
        independent_set(&data, dtype);
        let report = t.path().join(format!("report-{dtype}"));
        let o = pcam(
            t.path(),
            &[
                "-q",
                "data",
                "audit",
                data.to_str().unwrap(),
                "--out",
                report.to_str().unwrap(),
            ],
        );
        assert_eq!(o.code, 0, "{}", o.stderr);
        let s = independent_scores(
            &data,
            &report,
            &t.path().join(format!("scores-{dtype}.json")),
        );
        let mut misses = vec![];
        for (kind, k) in s["per_kind"].as_object().unwrap() {
            let (r, p) = (
                k["recall"].as_f64().unwrap(),
                k["precision"].as_f64().unwrap(),
            );
            eprintln!(
                "{dtype} {kind}: recall {r:.3} precision {p:.3} (injected {})",
                k["injected"]
            );
            // Label flips: issue 20's target (recall >= 0.6 at precision >= 0.8) is not
            // met yet by the cheap out-of-fold model; the scores are printed above.
            if kind != "label_flip" && (r < 0.95 || p < 0.95) {
                misses.push(format!("{kind}: recall {r:.3}, precision {p:.3}"));
            }
        }
        assert!(misses.is_empty(), "{dtype}: {misses:?}");
        // No trigger shape or copy transform is mostly missed (9 to 15 of each: a floor of
        // 0.8 allows one or two misses; the kind's targets above are the real bar).
        for (group, per) in s["per_subtype"].as_object().unwrap() {
            for (name, v) in per["recall"].as_object().unwrap() {
                let r = v["recall"].as_f64().unwrap();
                eprintln!("{dtype} {group} {name}: recall {r:.3}");
                assert!(r >= 0.8, "{dtype} {group} {name}: recall {r:.3}");
            }
        }
    }
}

#[test]
fn out_of_fold_probabilities_cover_every_train_tile_once_and_feed_the_audit() {
    let d = tempfile::tempdir().unwrap();
    let dp = d.path();
    synth(dp, "c", "course", "train=400,valid=128,test=128");
    let o = ok(
        dp,
        "-q data oof c --folds 3 --out oof data.invalid=drop model.kind=mlp model.hidden=[8] train.epochs=1 train.batch_size=32 train.threads=1",
    );
    assert!(o.stdout.contains("(SYNTHETIC data)"), "{}", o.stdout);
    let r = json(&dp.join("oof/oof.json"));
    let tiles = r["tiles"].as_array().unwrap();
    // Every train tile the plan keeps (invalid ones dropped) is predicted by exactly one
    // fold, and the folds' runs are real run folders.
    let invalid = json(&dp.join("c/synthetic.json"))["corruptions"]["out_of_range"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(tiles.len(), 400 - invalid);
    let idx: Vec<u64> = tiles.iter().map(|t| t["index"].as_u64().unwrap()).collect();
    assert!(idx.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
    let mut folds = BTreeSet::new();
    for t in tiles {
        let p = t["probability"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p), "{t}");
        folds.insert(t["fold"].as_u64().unwrap());
    }
    assert_eq!(folds.len(), 3);
    for run in r["runs"].as_array().unwrap() {
        let run = dp.join(run.as_str().unwrap());
        assert!(run.join("checkpoints").is_dir() && run.join("predictions-valid.csv").is_file());
    }
    // The audit uses them (confident learning) and says so.
    ok(dp, "-q data audit c --out rep --oof oof/oof.json");
    let a = json(&dp.join("rep/audit.json"));
    assert!(
        a["label_noise_confident"]["thresholds"].is_array(),
        "{}",
        a["label_noise_confident"]
    );
    assert!(a["label_noise_source"]
        .as_str()
        .unwrap()
        .ends_with("oof.json"));
    // Probabilities of another train file are refused, naming the file; a second run into
    // the same folder is refused too.
    synth(dp, "other", "course", "train=300,valid=128,test=128");
    let o = pcam(
        dp,
        &[
            "-q",
            "data",
            "audit",
            "other",
            "--out",
            "rep2",
            "--oof",
            "oof/oof.json",
        ],
    );
    assert_error(&o, &["oof/oof.json", "another train file"]);
    let o = pcam(
        dp,
        &["-q", "data", "oof", "c", "--folds", "3", "--out", "oof"],
    );
    assert_error(&o, &["oof", "already holds oof.json"]);
    let o = pcam(
        dp,
        &["-q", "data", "oof", "c", "--folds", "1", "--out", "oof1"],
    );
    assert_error(&o, &["--folds 1"]);
}

#[test]
#[ignore = "slow (about 5 minutes on 2 cores): a 5-fold CNN for out-of-fold probabilities; make test-slow"]
fn flipped_labels_are_found_by_confident_learning_on_out_of_fold_cnn_probabilities() {
    // The independent generator's held-out seed, float32: label flips recall >= 0.6 at
    // precision >= 0.8 (issue 20's target), from configs/experiment/oof_cnn.yaml.
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("float32");
    independent_set(&data, "float32");
    let config = here.join("configs/experiment/oof_cnn.yaml");
    let (d, c) = (data.to_str().unwrap(), config.to_str().unwrap());
    let o = pcam(
        t.path(),
        &[
            "-q", "data", "oof", d, "--config", c, "--folds", "5", "--out", "oof",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = pcam(
        t.path(),
        &[
            "-q",
            "data",
            "audit",
            d,
            "--out",
            "rep",
            "--oof",
            "oof/oof.json",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let s = independent_scores(&data, &t.path().join("rep"), &t.path().join("scores.json"));
    let k = &s["per_kind"]["label_flip"];
    let (r, p) = (
        k["recall"].as_f64().unwrap(),
        k["precision"].as_f64().unwrap(),
    );
    eprintln!(
        "label flips: recall {r:.3}, precision {p:.3} (injected {})",
        k["injected"]
    );
    assert!(
        r >= 0.6 && p >= 0.8,
        "label flips: recall {r:.3}, precision {p:.3}"
    );
}

/// The (file split, file index) of every tile a run scored on `split`
/// (`predictions-<split>.csv`).
fn scored_tiles(run: &Path, split: &str) -> BTreeSet<(String, u64)> {
    std::fs::read_to_string(run.join(format!("predictions-{split}.csv")))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[1].parse().unwrap())
        })
        .collect()
}

/// `wsi` of every tile of `split` in a synthetic copy's meta.csv, by file index.
fn slides(dir: &Path, split: &str) -> Vec<String> {
    let text =
        std::fs::read_to_string(dir.join(format!("camelyonpatch_level_2_split_{split}_meta.csv")))
            .unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "wsi").unwrap();
    lines
        .map(|l| l.split(',').nth(col).unwrap().to_string())
        .collect()
}

#[test]
fn course_experiments_train_on_the_clean_index_and_a_slide_split() {
    // What journal Q5/Q6 train on: configs/data/course_clean.yaml, whose two files are made
    // by the commands scripts/course-data.sh runs, here on a small course copy at the same
    // relative paths.
    let d = tempfile::tempdir().unwrap();
    let dp = d.path();
    synth(
        dp,
        "data/demo/course",
        "course",
        "train=600,valid=128,test=128",
    );
    ok(
        dp,
        "-q data audit data/demo/course --out rep --write-clean data/demo/course-clean.json",
    );
    ok(
        dp,
        "-q data split data/demo/course --out data/demo/course-split.json",
    );
    let config =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/experiment/q6_course_mlp.yaml");
    let o = pcam(
        dp,
        &[
            "-q",
            "train",
            "--run-dir",
            "r",
            "--config",
            config.to_str().unwrap(),
            "train.epochs=1",
            "train.threads=1",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    ok(dp, "-q eval --run r --split valid");

    // The valid tiles the run scored: those the manifest puts in valid, minus the clean
    // index's drops, and none of their slides among the manifest's train tiles.
    let clean = json(&dp.join("data/demo/course-clean.json"));
    let manifest = json(&dp.join("data/demo/course-split.json"));
    let fold = &manifest["folds"][0];
    let refs = |v: &Value| -> BTreeSet<(String, u64)> {
        let mut out = BTreeSet::new();
        for (split, list) in v.as_object().unwrap() {
            for i in list.as_array().unwrap() {
                out.insert((split.clone(), i.as_u64().unwrap()));
            }
        }
        out
    };
    let dropped: BTreeSet<(String, u64)> = clean["drop"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(s, v)| {
            v.as_array()
                .unwrap()
                .iter()
                .map(move |e| (s.clone(), e["index"].as_u64().unwrap()))
        })
        .collect();
    assert!(!dropped.is_empty());
    let (train, valid) = (refs(&fold["train"]), refs(&fold["valid"]));
    let scored = scored_tiles(&dp.join("r"), "valid");
    let expected: BTreeSet<_> = valid.difference(&dropped).cloned().collect();
    assert_eq!(scored, expected);
    assert!(
        expected.len() < valid.len(),
        "the clean index drops valid tiles too"
    );
    let course = dp.join("data/demo/course");
    let slide_of: std::collections::BTreeMap<&str, Vec<String>> = ["train", "valid"]
        .into_iter()
        .map(|s| (s, slides(&course, s)))
        .collect();
    let slides_in = |tiles: &BTreeSet<(String, u64)>| -> BTreeSet<String> {
        tiles
            .iter()
            .map(|(s, i)| slide_of[s.as_str()][*i as usize].clone())
            .collect()
    };
    let shared: Vec<String> = slides_in(&train)
        .intersection(&slides_in(&scored))
        .cloned()
        .collect();
    assert!(shared.is_empty(), "slides in train and valid: {shared:?}");
    // the provided splits do share slides (the leak the split removes)
    let provided = |s: &str| slide_of[s].iter().cloned().collect::<BTreeSet<_>>();
    assert!(provided("train")
        .intersection(&provided("valid"))
        .next()
        .is_some());
}
