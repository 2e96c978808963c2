//! Hyperparameter search through the real CLI on tiny synthetic data: a sweep killed
//! after some trials and rerun ends with the leaderboard of an uninterrupted one;
//! successive halving trains fewer epochs than the grid for the same champion; parallel
//! workers and Slurm array tasks (a stand-in sbatch) give the inline leaderboard.

mod common;
use common::*;
use std::os::unix::process::CommandExt;
use std::path::Path;

fn setup(dir: &Path, strategy: &str) {
    ok(
        dir,
        "-q data synth --out d --sizes train=96,valid=48,test=32 --seed 4",
    );
    std::fs::write(
        dir.join("s.yaml"),
        format!(
            "name: tiny\nconfigs: []\noverrides: [data.dir=d, train.batch_size=16, train.threads=1, run.root=runs, model.kind=mlp, train.epochs=4]\nstrategy: {strategy}\nseed: 1\nmetric: valid_auc\nhalving: {{min_epochs: 1, eta: 2}}\nspace:\n  train.lr: {{float: [1.0e-4, 1.0e-2], log: true, grid: 4}}\n  model.hidden: {{choice: [[16], [32, 16]]}}\n"
        ),
    )
    .unwrap();
}

fn leaderboard(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("runs/default/search-tiny/leaderboard.md")).unwrap()
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(dir.join("runs/default/search-tiny/summary.json")).unwrap(),
    )
    .unwrap()
}

#[test]
fn a_sweep_killed_midway_and_rerun_ends_with_the_uninterrupted_leaderboard() {
    let whole = tempfile::tempdir().unwrap();
    setup(whole.path(), "grid");
    ok(whole.path(), "-q search --config s.yaml");

    let cut = tempfile::tempdir().unwrap();
    setup(cut.path(), "grid");
    let mut child = pcam_command(cut.path(), &["-q", "search", "--config", "s.yaml"], &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let trials = cut.path().join("runs/default/search-tiny/trials");
    wait_until(&mut child, "three trials finishing", || {
        trials.join("t002/metrics.json").exists()
    });
    // SAFETY: kills the process group of a child this test started.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    child.wait().unwrap();
    assert!(
        !cut.path()
            .join("runs/default/search-tiny/leaderboard.md")
            .exists(),
        "the sweep ended before it was killed"
    );
    let before = std::fs::metadata(trials.join("t000/metrics.json"))
        .unwrap()
        .modified()
        .unwrap();
    let o = ok(cut.path(), "-q search --config s.yaml");
    assert!(o.stdout.contains("champion t"), "{}", o.stdout);
    // Finished trials were skipped, not retrained.
    let after = std::fs::metadata(trials.join("t000/metrics.json"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after);
    assert_eq!(leaderboard(cut.path()), leaderboard(whole.path()));
    assert_eq!(summary(cut.path())["epochs_total"], 32);

    // A changed definition is refused instead of mixing two searches in one folder.
    let s = std::fs::read_to_string(cut.path().join("s.yaml")).unwrap();
    std::fs::write(cut.path().join("s.yaml"), s.replace("grid: 4", "grid: 3")).unwrap();
    let o = pcam(cut.path(), &["search", "--config", "s.yaml"]);
    assert_error(&o, &["search.json", "different search"]);
}

#[test]
fn halving_trains_fewer_epochs_than_the_grid_for_a_champion_within_001() {
    let grid = tempfile::tempdir().unwrap();
    setup(grid.path(), "grid");
    ok(grid.path(), "-q search --config s.yaml");
    let halving = tempfile::tempdir().unwrap();
    setup(halving.path(), "halving");
    ok(halving.path(), "-q search --config s.yaml");
    let (g, h) = (summary(grid.path()), summary(halving.path()));
    let (ge, he) = (
        g["epochs_total"].as_u64().unwrap(),
        h["epochs_total"].as_u64().unwrap(),
    );
    // 8 trials x 4 epochs against rungs of 1, 2 and 4 epochs: 8 + 4 + 2x2.
    assert_eq!((ge, he), (32, 16));
    let best = |s: &serde_json::Value| s["champion"]["valid_score"].as_f64().unwrap();
    assert!(
        best(&h) >= best(&g) - 0.01,
        "halving {} vs grid {}",
        best(&h),
        best(&g)
    );
    // Only the champion is evaluated on test, at a threshold chosen on valid.
    let trials = halving.path().join("runs/default/search-tiny/trials");
    let champion = h["champion"]["trial"].as_u64().unwrap();
    for t in 0..8 {
        let d = trials.join(format!("t{t:03}"));
        assert_eq!(d.join("eval-test.json").exists(), t == champion, "t{t:03}");
    }
    assert!(trials
        .join(format!("t{champion:03}/threshold.json"))
        .exists());

    // The same halving with two worker processes: the same leaderboard.
    let par = tempfile::tempdir().unwrap();
    setup(par.path(), "halving");
    ok(par.path(), "-q search --config s.yaml --workers 2");
    assert_eq!(leaderboard(par.path()), leaderboard(halving.path()));
}

#[test]
fn slurm_array_tasks_run_the_trials_by_index() {
    let inline = tempfile::tempdir().unwrap();
    setup(inline.path(), "halving");
    ok(inline.path(), "-q search --config s.yaml");
    let d = tempfile::tempdir().unwrap();
    setup(d.path(), "halving");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("slurm/search_trial.sbatch");
    let fake = root.join("tests/fake_sbatch.sh");
    let o = pcam_env(
        d.path(),
        &[
            "-q",
            "search",
            "--config",
            "s.yaml",
            "--slurm",
            "--workers",
            "4",
            "--script",
            script.to_str().unwrap(),
        ],
        &[
            ("PCAM_SBATCH", fake.to_str().unwrap()),
            ("PCAM", env!("CARGO_BIN_EXE_pcam")),
        ],
    );
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert_eq!(leaderboard(d.path()), leaderboard(inline.path()));
    // One list per rung, one index per line.
    let rung0 =
        std::fs::read_to_string(d.path().join("runs/default/search-tiny/rung-0.txt")).unwrap();
    assert_eq!(rung0.lines().count(), 8);
}
