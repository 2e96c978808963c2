//! `pcam bench train` times the loop `pcam train` runs: on the same data, model and
//! threads, the benchmark's pipeline images/s and a real epoch's (from the run's
//! `history/epochs.csv`) agree within a factor of 1.5 either way. (When the benchmark
//! timed a copy of the loop, they differed by 3–7× on one machine.) A ratio of two
//! measurements on one machine, so the machine's speed does not matter; in its own test
//! binary, so no other test shares the CPU while it measures.

mod common;
use common::*;

/// The margin, as a factor either way.
const MARGIN: f64 = 1.5;

#[test]
fn the_benchmark_and_a_real_epoch_agree() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    ok(
        p,
        "-q data synth --out data --sizes train=1536,valid=64,test=32 --seed 5",
    );
    let common =
        "data.dir=data model.kind=mlp model.hidden=[64,32] train.batch_size=32 train.threads=2";
    ok(
        p,
        &format!("-q train run.root=runs train.epochs=3 {common}"),
    );
    let run = std::fs::read_dir(p.join("runs/default"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let history = pcam::run::RunDir::open(&run).unwrap().history().unwrap();
    assert_eq!(history.epochs.len(), 3);
    let train_rate = history
        .epochs
        .iter()
        .map(|e| e.images_per_second)
        .fold(0.0, f64::max);

    ok(
        p,
        &format!("-q bench train --steps 30 --json bench.json {common}"),
    );
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.join("bench.json")).unwrap()).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    let bench_rate = rows[0]["pipeline_images_per_second"].as_f64().unwrap();
    let ratio = bench_rate / train_rate;
    assert!(
        (1.0 / MARGIN..=MARGIN).contains(&ratio),
        "bench {bench_rate:.0} img/s vs a real epoch {train_rate:.0} img/s: ratio {ratio:.2}"
    );
    eprintln!("bench {bench_rate:.0} img/s, real epoch {train_rate:.0} img/s, ratio {ratio:.2}");
}
