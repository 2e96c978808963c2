//! Every metric in `pcam::metrics` against scikit-learn (in the test venv) to 1e-9, on
//! random, tie-heavy and degenerate inputs (one class only, constant scores).

mod common;
use common::venv_python;
use pcam::metrics::{self, Confusion};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

struct Case {
    name: &'static str,
    scores: Vec<f32>,
    labels: Vec<u8>,
    threshold: f32,
}

fn cases() -> Vec<Case> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut v = vec![];
    for (name, n, ties) in [
        ("random", 2000, false),
        ("tie-heavy", 1500, true),
        ("small", 7, false),
    ] {
        let labels: Vec<u8> = (0..n).map(|_| rng.random_bool(0.4) as u8).collect();
        let scores: Vec<f32> = labels
            .iter()
            .map(|&l| {
                let s: f32 = (rng.random::<f32>() * 0.8 + 0.25 * l as f32).clamp(1e-5, 1.0 - 1e-5);
                if ties {
                    ((s * 10.0).round() / 10.0).clamp(1e-5, 1.0 - 1e-5)
                } else {
                    s
                }
            })
            .collect();
        v.push(Case {
            name,
            scores,
            labels,
            threshold: 0.5,
        });
    }
    v.push(Case {
        name: "one class only",
        scores: vec![0.2, 0.7, 0.9, 0.4],
        labels: vec![1, 1, 1, 1],
        threshold: 0.5,
    });
    v.push(Case {
        name: "no positives",
        scores: vec![0.2, 0.7, 0.9, 0.4],
        labels: vec![0, 0, 0, 0],
        threshold: 0.5,
    });
    v.push(Case {
        name: "constant scores",
        scores: vec![0.3; 10],
        labels: vec![0, 1, 1, 0, 0, 1, 0, 0, 1, 0],
        threshold: 0.3,
    });
    v.push(Case {
        name: "threshold above all",
        scores: vec![0.1, 0.2, 0.3, 0.35],
        labels: vec![0, 1, 0, 1],
        threshold: 0.9,
    });
    v
}

fn close(a: f64, b: &Value, what: &str) {
    let b = b
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: scikit-learn gave {b}"));
    assert!(
        (a - b).abs() <= 1e-9,
        "{what}: pcam {a} vs scikit-learn {b}"
    );
}

fn close_all(a: &[f64], b: &Value, what: &str) {
    let b = b.as_array().unwrap_or_else(|| panic!("{what}: {b}"));
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        close(*x, y, &format!("{what}[{k}]"));
    }
}

#[test]
fn every_metric_matches_scikit_learn() {
    let dir = tempfile::tempdir().unwrap();
    let cs = cases();
    let input: Vec<Value> = cs
        .iter()
        .map(|c| json!({"scores": c.scores, "labels": c.labels, "threshold": c.threshold}))
        .collect();
    let (inp, out) = (
        dir.path().join("cases.json"),
        dir.path().join("sklearn.json"),
    );
    std::fs::write(&inp, serde_json::to_string(&input).unwrap()).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sklearn_metrics.py");
    let st = std::process::Command::new(venv_python())
        .arg(&script)
        .arg(&inp)
        .arg(&out)
        .status()
        .unwrap();
    assert!(
        st.success(),
        "scikit-learn script failed (is scikit-learn in .venv? run make setup)"
    );
    let want: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    for (c, w) in cs.iter().zip(&want) {
        let n = c.name;
        let (s, l) = (&c.scores[..], &c.labels[..]);
        let cm = Confusion::at(s, l, c.threshold);
        assert_eq!(
            (cm.tn, cm.fp, cm.fn_, cm.tp),
            (
                w["confusion"]["tn"].as_u64().unwrap(),
                w["confusion"]["fp"].as_u64().unwrap(),
                w["confusion"]["fn"].as_u64().unwrap(),
                w["confusion"]["tp"].as_u64().unwrap()
            ),
            "{n}: confusion matrix"
        );
        close(cm.accuracy(), &w["accuracy"], &format!("{n}: accuracy"));
        close(
            metrics::accuracy(s, l, c.threshold),
            &w["accuracy"],
            &format!("{n}: accuracy()"),
        );
        close(cm.precision(), &w["precision"], &format!("{n}: precision"));
        close(cm.recall(), &w["recall"], &format!("{n}: recall"));
        close(
            cm.specificity(),
            &w["specificity"],
            &format!("{n}: specificity"),
        );
        close(cm.f1(), &w["f1"], &format!("{n}: f1"));
        close(cm.f_beta(2.0), &w["f2"], &format!("{n}: f2"));
        match metrics::roc_auc(s, l) {
            Some(a) => {
                close(a, &w["roc_auc"], &format!("{n}: roc_auc"));
                let r = metrics::roc_curve(s, l).unwrap();
                close_all(&r.fpr, &w["roc"]["fpr"], &format!("{n}: roc fpr"));
                close_all(&r.tpr, &w["roc"]["tpr"], &format!("{n}: roc tpr"));
                close_all(
                    &r.thresholds[1..],
                    &w["roc"]["thresholds"],
                    &format!("{n}: roc thresholds"),
                );
            }
            None => {
                assert!(
                    w["roc_auc"].is_null(),
                    "{n}: scikit-learn defines ROC-AUC, pcam does not"
                );
                assert!(metrics::roc_curve(s, l).is_none());
            }
        }
        match metrics::pr_curve(s, l) {
            Some(p) => {
                close_all(
                    &p.precision,
                    &w["pr"]["precision"],
                    &format!("{n}: pr precision"),
                );
                close_all(&p.recall, &w["pr"]["recall"], &format!("{n}: pr recall"));
                close_all(
                    &p.thresholds,
                    &w["pr"]["thresholds"],
                    &format!("{n}: pr thresholds"),
                );
                close(
                    metrics::average_precision(s, l).unwrap(),
                    &w["average_precision"],
                    &format!("{n}: AP"),
                );
                close(
                    metrics::pr_auc(s, l).unwrap(),
                    &w["pr_auc"],
                    &format!("{n}: PR-AUC"),
                );
            }
            None => assert!(w["pr"].is_null(), "{n}: PR curve"),
        }
        close(metrics::brier(s, l), &w["brier"], &format!("{n}: brier"));
        close(
            metrics::log_loss(s, l),
            &w["log_loss"],
            &format!("{n}: log loss"),
        );
        let cal = metrics::calibration(s, l, 10);
        close_all(
            &cal.fraction_positive,
            &w["calibration"]["fraction_positive"],
            &format!("{n}: calibration"),
        );
        close_all(
            &cal.mean_predicted,
            &w["calibration"]["mean_predicted"],
            &format!("{n}: calibration"),
        );
        close(cal.ece, &w["ece"], &format!("{n}: ECE"));
    }
}

#[test]
fn bootstrap_intervals_are_seeded_and_bracket_the_estimate() {
    let c = &cases()[0];
    let auc = |s: &[f32], l: &[u8]| metrics::roc_auc(s, l);
    let ci = |seed| {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        metrics::bootstrap_ci(&c.scores, &c.labels, &auc, 200, 0.95, &mut rng).unwrap()
    };
    let (lo, hi) = ci(1);
    assert_eq!((lo, hi), ci(1));
    assert_ne!((lo, hi), ci(2));
    let point = auc(&c.scores, &c.labels).unwrap();
    assert!(
        lo < point && point < hi && hi - lo < 0.1,
        "{lo} {point} {hi}"
    );
    let one_class = |s: &[f32], l: &[u8]| metrics::roc_auc(s, l);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    assert!(metrics::bootstrap_ci(&[0.1, 0.2], &[1, 1], &one_class, 50, 0.95, &mut rng).is_none());
}
