//! Tracking against a real MLflow server (installed into the project venv by `make setup`),
//! started on a free loopback port by `pcam tracking server start`. Runs are read back
//! with MLflow's own Python client (`tests/mlflow_readback.py`) and compared with their
//! folders: parameters, every metric point, evaluations, artifacts byte for byte.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A server in `dir`, stopped on drop.
struct Server {
    cwd: PathBuf,
    dir: String,
    url: String,
    port: String,
}

fn mlflow_bin() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/mlflow");
    assert!(p.exists(), "{} missing: run `make setup`", p.display());
    p.display().to_string()
}

impl Server {
    fn start(cwd: &Path, dir: &str, port: &str) -> Server {
        let o = pcam(
            cwd,
            &[
                "tracking",
                "server",
                "start",
                "--dir",
                dir,
                "--port",
                port,
                "--mlflow",
                &mlflow_bin(),
            ],
        );
        assert_eq!(o.code, 0, "server start: {}", o.stderr);
        let url = o.stdout.trim().to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        Server {
            cwd: cwd.to_path_buf(),
            dir: dir.into(),
            port: url.rsplit(':').next().unwrap().to_string(),
            url,
        }
    }

    fn stop(&self) {
        let o = pcam(
            &self.cwd,
            &["tracking", "server", "stop", "--dir", &self.dir],
        );
        assert_eq!(o.code, 0, "server stop: {}", o.stderr);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = pcam(
            &self.cwd,
            &["tracking", "server", "stop", "--dir", &self.dir],
        );
    }
}

fn dataset(dir: &Path, sizes: &str) {
    ok(
        dir,
        &format!("-q data synth --out d --sizes {sizes} --seed 4"),
    );
}

const TINY: [&str; 6] = [
    "data.dir=d",
    "train.batch_size=16",
    "train.threads=1",
    "run.root=runs",
    "model.kind=mlp",
    "model.hidden=[16]",
];

fn readback(mode: &str, url: &str, experiment: &str, runs: &[PathBuf]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mlflow_readback.py");
    let o = std::process::Command::new(venv_python())
        .arg(script)
        .args([mode, url, experiment])
        .args(runs)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "readback {mode}: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

fn state(run: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("tracking.json")).unwrap()).unwrap()
}

fn runs_under(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("manifest.json").exists())
        .collect();
    v.sort();
    v
}

#[test]
fn three_seeds_are_logged_live_with_evaluations_and_read_back_complete() {
    let d = tempfile::tempdir().unwrap();
    dataset(d.path(), "train=96,valid=32,test=32");
    let server = Server::start(d.path(), "mlflow", "0");
    let env = [
        ("MLFLOW_TRACKING_URI", server.url.as_str()),
        ("MLFLOW_EXPERIMENT_NAME", "seeds-test"),
    ];
    let mut args = vec!["train", "--seeds", "1,2,3", "train.epochs=2"];
    args.extend(TINY);
    let o = pcam_env(d.path(), &args, &env);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let group = o
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("group "))
        .unwrap();
    // The seeds' runs live in the group folder, named after it.
    let runs = runs_under(&d.path().join(group));
    assert_eq!(runs.len(), 3, "{runs:?}");
    let name = std::path::Path::new(group)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    for (r, seed) in runs.iter().zip(1..) {
        assert_eq!(
            r.file_name().unwrap().to_string_lossy(),
            format!("{name}-seed{seed}")
        );
    }

    // The table is the mean ± sample sd of what each run's eval-test.json says.
    let f1: Vec<f64> = runs
        .iter()
        .map(|r| {
            let v: Value =
                serde_json::from_str(&std::fs::read_to_string(r.join("eval-test.json")).unwrap())
                    .unwrap();
            v["f1"].as_f64().unwrap()
        })
        .collect();
    let mean = f1.iter().sum::<f64>() / 3.0;
    let sd = (f1.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    let cell = format!("{mean:.4} ± {sd:.4}");
    assert!(o.stdout.contains(&cell), "{cell} not in {}", o.stdout);
    assert!(o.stdout.contains("SYNTHETIC"), "{}", o.stdout);
    let summary = std::fs::read_to_string(d.path().join(group).join("summary.md")).unwrap();
    assert!(summary.contains(&cell), "{summary}");
    for r in &runs {
        assert_eq!(state(r)["servers"][&server.url]["synced"], true, "{r:?}");
    }

    // The logging benchmark against the same server: batched and one-per-request rates.
    let o = pcam(
        d.path(),
        &[
            "bench",
            "tracking",
            "--uri",
            &server.url,
            "--points",
            "2000",
            "--single",
            "20",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("points/s"), "{}", o.stdout);

    // A later evaluation (with figures) reaches the server the run was logged to, with
    // no tracking variable set.
    let o = pcam(
        d.path(),
        &[
            "-q",
            "eval",
            "--run",
            runs[0].to_str().unwrap(),
            "--split",
            "test",
            "--slices",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(runs[0].join("figures").is_dir());
    readback("check", &server.url, "seeds-test", &runs);

    // Every run already complete: sync sends nothing.
    let o = pcam_env(d.path(), &["tracking", "sync", "runs"], &env);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        o.stdout.matches("already synced").count(),
        3,
        "{}",
        o.stdout
    );
}

#[test]
fn server_stopped_mid_run_then_sync_leaves_nothing_missing_and_twice_changes_nothing() {
    let d = tempfile::tempdir().unwrap();
    dataset(d.path(), "train=960,valid=64,test=32");
    let server = Server::start(d.path(), "mlflow", "0");
    let env = [("MLFLOW_TRACKING_URI", server.url.as_str())];
    let mut args = vec!["train", "--run-dir", "runs/r", "train.epochs=10"];
    args.extend(TINY);
    let mut child = pcam_command(d.path(), &args, &env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let run = d.path().join("runs/r");
    // Wait until the server has the first epoch, then freeze training while the server
    // goes down, so the outage falls mid-run whatever the machine's speed.
    wait_until(&mut child, "the first epoch logged live", || {
        std::fs::read_to_string(run.join("tracking.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["servers"][&server.url]["epochs_pushed"].as_u64())
            .unwrap_or(0)
            >= 1
    });
    // SAFETY: signals a child process this test owns.
    unsafe { libc::kill(child.id() as i32, libc::SIGSTOP) };
    let epochs_at_stop = std::fs::read_to_string(run.join("history/epochs.csv"))
        .unwrap()
        .lines()
        .count()
        - 1;
    server.stop();
    unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(epochs_at_stop < 10, "training ended before the outage");
    assert!(stdout.contains("unsynced"), "{stdout}");
    let st = &state(&run)["servers"][&server.url];
    assert_eq!(st["synced"], false);
    assert!(
        st["last_error"].as_str().unwrap().contains(&server.url),
        "{st}"
    );
    assert!(st["epochs_pushed"].as_u64().unwrap() < 10, "{st}");
    assert!(
        run.join("metrics.json").exists(),
        "training did not finish offline"
    );

    // Same store, same port: sync completes the run; a second sync and a forced one add nothing.
    let server = Server::start(d.path(), "mlflow", &server.port);
    let o = pcam(d.path(), &["tracking", "sync", "runs"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("pushed to"), "{}", o.stdout);
    assert_eq!(state(&run)["servers"][&server.url]["synced"], true);
    readback("check", &server.url, "default", std::slice::from_ref(&run));
    let before = readback("dump", &server.url, "default", &[]);
    let o = pcam(d.path(), &["tracking", "sync", "runs"]);
    assert!(o.stdout.contains("already synced"), "{}", o.stdout);
    let o = pcam(d.path(), &["tracking", "sync", "--force", "runs"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("pushed to"), "{}", o.stdout);
    assert_eq!(readback("dump", &server.url, "default", &[]), before);
    let v: Value = serde_json::from_str(&before).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "one run on the server");
}

#[test]
fn no_server_at_all_trains_offline_and_sync_fails_cleanly_until_one_answers() {
    let d = tempfile::tempdir().unwrap();
    dataset(d.path(), "train=96,valid=32,test=32");
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let env = [("MLFLOW_TRACKING_URI", url.as_str())];
    let mut args = vec!["train", "--run-dir", "runs/r", "train.epochs=2"];
    args.extend(TINY);
    let o = pcam_env(d.path(), &args, &env);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stderr.contains("warning: tracking server"),
        "{}",
        o.stderr
    );
    let run = d.path().join("runs/r");
    assert_eq!(state(&run)["servers"][&url]["synced"], false);

    let o = pcam(d.path(), &["tracking", "sync", "runs"]);
    assert_eq!(o.code, 2, "{}", o.stdout);
    assert!(o.stdout.contains("FAILED"), "{}", o.stdout);
    assert!(
        o.stderr.starts_with("error: 1 run(s) could not be synced"),
        "{}",
        o.stderr
    );
    let o = pcam(d.path(), &["tracking", "status", "runs"]);
    assert!(o.stdout.contains("| unsynced |"), "{}", o.stdout);

    let server = Server::start(d.path(), "mlflow", &port.to_string());
    ok(d.path(), "tracking sync runs");
    readback("check", &server.url, "default", &[run]);

    // A tracking URI that is not a server is refused before anything is written.
    let o = pcam_env(
        d.path(),
        &["train", "--run-dir", "runs/x", "data.dir=d"],
        &[("MLFLOW_TRACKING_URI", "file:///tmp/mlruns")],
    );
    assert_error(&o, &["MLFLOW_TRACKING_URI", "file:///tmp/mlruns", "http"]);
    assert!(!d.path().join("runs/x").exists());
}
