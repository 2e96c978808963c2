//! The project's own Slurm scripts on a real one-node Slurm (Debian's slurm-wlm, started
//! by `scripts/local-slurm.sh` with partitions `thin_course` and `gpu_course`, a fake GPU):
//! a short training and its evaluation, the twin-run check, a training with its evaluation
//! held by `--after`, a 4-task search array, the benchmark on both
//! partitions and a job that fails, each submitted with `slurm/submit.sh`, waited for,
//! and checked through what it wrote back. The daemons are stopped at the end.
//! Slow and needs root: `make test-root` (in `.ci/run`; `make test-slurm` runs it alone).

mod common;

use common::ok;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A free TCP port on 127.0.0.1 (released again, for a daemon to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The cluster under `base`, stopped (daemons, then the folder) when dropped.
struct Cluster {
    base: PathBuf,
}

impl Cluster {
    fn start(base: &Path) -> Cluster {
        let (ctld, slurmd) = (free_port(), free_port());
        let st = Command::new(repo().join("scripts/local-slurm.sh"))
            .args(["start", base.to_str().unwrap()])
            .env("SLURMCTLD_PORT", ctld.to_string())
            .env("SLURMD_PORT", slurmd.to_string())
            .status()
            .expect("scripts/local-slurm.sh runs");
        let c = Cluster {
            base: base.to_path_buf(),
        };
        assert!(st.success(), "local Slurm did not start");
        c
    }

    fn conf(&self) -> PathBuf {
        self.base.join("etc/slurm.conf")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/local-slurm.sh"))
            .args(["stop", self.base.to_str().unwrap()])
            .status();
    }
}

struct Submit<'a> {
    cluster: &'a Cluster,
    work: &'a Path,
    env_file: PathBuf,
}

impl Submit<'_> {
    /// `slurm/submit.sh ARGS` in the work folder: (exit code, stdout).
    fn run(&self, args: &[&str]) -> (i32, String) {
        let o = Command::new(repo().join("slurm/submit.sh"))
            .args(args)
            .current_dir(self.work)
            .env("SLURM_CONF", self.cluster.conf())
            .env("PCAM_WORKDIR", self.work)
            .env("PCAM", env!("CARGO_BIN_EXE_pcam"))
            .env("PCAM_CLUSTER_ENV", &self.env_file)
            .env("PCAM_CACHE", self.work.join(".cache"))
            .env_remove("MLFLOW_TRACKING_URI")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("slurm/submit.sh runs");
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        eprintln!(
            "submit.sh {args:?}: {out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        (o.status.code().unwrap_or(-1), out)
    }

    /// Submits and waits; asserts success and returns the job id.
    fn job(&self, args: &[&str]) -> String {
        let (code, out) = self.run(args);
        assert_eq!(code, 0, "job {args:?} failed: {}", self.log_tail());
        out.trim().to_string()
    }

    fn log_tail(&self) -> String {
        let mut s = String::new();
        if let Ok(rd) = std::fs::read_dir(self.work.join("results/slurm")) {
            for e in rd.flatten().filter(|e| e.path().is_file()) {
                s += &format!("\n== {}\n{}", e.path().display(), read(&e.path()));
            }
        }
        s
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn json(p: &Path) -> Value {
    serde_json::from_str(&read(p)).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The job record `results/slurm/jobs/<id>.json` says the job ran in `partition` and
/// ended with `exit`.
fn assert_record(work: &Path, id: &str, partition: &str, state: &str, exit: i64) {
    let r = json(&work.join(format!("results/slurm/jobs/{id}.json")));
    assert_eq!(r["partition"], partition, "{r}");
    assert_eq!(r["state"], state, "{r}");
    assert_eq!(r["exit_code"], exit, "{r}");
    assert!(r["end_utc"].as_str().is_some_and(|s| !s.is_empty()), "{r}");
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
#[ignore = "root: starts a real one-node Slurm (apt, slurmd) — make test-root"]
fn project_scripts_run_on_a_real_slurm_and_write_results_back() {
    // `make test-root` skips (visibly) for a normal user outside CI and fails in CI;
    // run directly, the test fails rather than passing without Slurm.
    assert!(
        is_root(),
        "the Slurm test needs root (slurmd runs jobs as their users): run `make test-root` as root"
    );
    let base = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    ok(
        w,
        "-q data synth --out data --variant pcam --seed 3 --sizes train=96,valid=64,test=64",
    );
    std::fs::write(
        w.join("search.yaml"),
        "name: tiny\nconfigs: []\noverrides: [data.dir=data, train.batch_size=16, model.kind=mlp, train.epochs=1]\n\
         strategy: grid\nseed: 1\nmetric: valid_auc\nspace:\n  train.lr: {float: [1.0e-3, 1.0e-2], log: true, grid: 2}\n  model.hidden: {choice: [[16], [8]]}\n",
    )
    .unwrap();
    // The project's cluster settings, but `auto` on the GPU partition: its GPU is fake.
    let env_file = w.join("cluster-test.env");
    std::fs::write(
        &env_file,
        format!(
            ". {}\nPCAM_GPU_DEVICE=auto\n",
            repo().join("slurm/cluster.env").display()
        ),
    )
    .unwrap();

    let cluster = Cluster::start(&base.path().join("slurm"));
    let s = Submit {
        cluster: &cluster,
        work: w,
        env_file,
    };

    // A short training, then its evaluation.
    let train = s.job(&[
        "train",
        "--wait",
        "--",
        "data.dir=data",
        "train.epochs=1",
        "model.hidden=[8]",
    ]);
    assert_record(w, &train, "thin_course", "COMPLETED", 0);
    let runs: Vec<PathBuf> = std::fs::read_dir(w.join("runs/default"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("manifest.json").is_file())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let m = json(&runs[0].join("manifest.json"));
    assert_eq!(m["slurm_job_id"], train.as_str(), "{m}");
    assert_eq!(m["slurm_partition"], "thin_course", "{m}");
    let run = runs[0].to_str().unwrap();
    let eval = s.job(&["eval", "--wait", "--", "--run", run, "--split", "test"]);
    assert_record(w, &eval, "thin_course", "COMPLETED", 0);
    assert!(runs[0].join("eval-test.json").is_file());

    // The twin-run check as one job: two trainings in the job, compared bit for bit.
    let twin = s.job(&[
        "twin",
        "--wait",
        "--",
        "--out",
        "twin-slurm",
        "data.dir=data",
        "train.epochs=1",
        "model.hidden=[8]",
    ]);
    assert_record(w, &twin, "thin_course", "COMPLETED", 0);
    let t = json(&w.join("twin-slurm/twin.json"));
    assert_eq!(t["identical"], true, "{t}");
    assert_eq!(t["weights_sha256"][0], t["weights_sha256"][1], "{t}");

    // A training and its evaluation submitted at once: the evaluation is held (--after)
    // until the training has succeeded, then evaluates the folder it wrote.
    let (code, out) = s.run(&[
        "train",
        "--",
        "--run-dir",
        "runs/chained",
        "data.dir=data",
        "train.epochs=1",
        "model.hidden=[8]",
    ]);
    assert_eq!(code, 0, "train: {out}{}", s.log_tail());
    let first = out.trim().to_string();
    let second = s.job(&[
        "eval",
        "--after",
        &first,
        "--wait",
        "--",
        "--run",
        "runs/chained",
        "--split",
        "test",
    ]);
    assert_record(w, &first, "thin_course", "COMPLETED", 0);
    assert_record(w, &second, "thin_course", "COMPLETED", 0);
    let a = json(&w.join(format!("results/slurm/jobs/{first}.json")));
    let b = json(&w.join(format!("results/slurm/jobs/{second}.json")));
    assert!(
        b["start_utc"].as_str().unwrap() >= a["end_utc"].as_str().unwrap(),
        "the evaluation started before the training ended: {a} {b}"
    );
    let e = json(&w.join("runs/chained/eval-test.json"));
    assert!(e["roc_auc"].is_number(), "{e}");

    // A 4-task search array (one round of a 4-point grid).
    let (code, out) = s.run(&["search", "--", "--config", "search.yaml", "--workers", "4"]);
    assert_eq!(code, 0, "search: {out}{}", s.log_tail());
    let board = read(&w.join("runs/default/search-tiny/leaderboard.csv"));
    assert_eq!(board.lines().count(), 5, "{board}");
    let tasks: Vec<String> = std::fs::read_dir(w.join("results/slurm/jobs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains('_'))
        .collect();
    assert_eq!(tasks.len(), 4, "{tasks:?}");
    for t in &tasks {
        let id = t.trim_end_matches(".json");
        assert_record(w, id, "thin_course", "COMPLETED", 0);
    }

    // pcam::offload (the notebooks' heavy cells): the same batch of seed runs as one job
    // array through slurm/submit.sh array, and as child processes here; the same bits, and
    // each run's manifest says where it ran. The work folder stands in for the project.
    std::os::unix::fs::symlink(repo().join("slurm"), w.join("slurm")).unwrap();
    // SAFETY: this file's only test; nothing else reads the environment meanwhile.
    unsafe {
        std::env::set_var("SLURM_CONF", cluster.conf());
        std::env::set_var("PCAM_CLUSTER_ENV", &s.env_file);
        std::env::set_var("PCAM_CACHE", w.join(".cache"));
        std::env::remove_var("MLFLOW_TRACKING_URI");
    }
    let slurm = pcam::offload::Place::detect();
    assert!(
        matches!(&slurm, pcam::offload::Place::Slurm { partitions } if partitions.iter().any(|p| p == "thin_course")),
        "{slurm:?}"
    );
    let over: Vec<String> = ["data.dir=data", "train.epochs=1", "model.hidden=[8]"]
        .map(String::from)
        .to_vec();
    let mut groups = Vec::new();
    for (place, name) in [
        (slurm, "seeds-slurm"),
        (
            pcam::offload::Place::Local {
                why: "the comparison".into(),
            },
            "seeds-here",
        ),
    ] {
        let group = w.join(name);
        let batch = pcam::offload::Batch {
            name: "seeds".into(),
            root: w.to_path_buf(),
            exe: env!("CARGO_BIN_EXE_pcam").into(),
            dir: group.clone(),
            tasks: pcam::multiseed::tasks(&[], &over, &[1, 2, 3], &group),
        };
        let ran = pcam::offload::run(&place, &batch, pcam::progress::Progress { quiet: true })
            .unwrap_or_else(|e| panic!("{e}{}", s.log_tail()))
            .ok()
            .unwrap_or_else(|e| panic!("{e}"));
        groups.push((ran, pcam::multiseed::collect(&group, &[1, 2, 3]).unwrap()));
    }
    let (ran, on_slurm) = &groups[0];
    let job = ran.job_id.clone().expect("a job id");
    assert_eq!(ran.partition.as_deref(), Some("thin_course"), "{ran:?}");
    assert_eq!(ran.place, format!("Slurm job array {job} on thin_course"));
    for k in 0..3 {
        let r = json(&w.join(format!("seeds-slurm/slurm/seeds/jobs/{job}_{k}.json")));
        assert_eq!(
            (r["partition"].as_str(), r["exit_code"].as_i64()),
            (Some("thin_course"), Some(0)),
            "{r}"
        );
        assert!(w
            .join(format!("seeds-slurm/slurm/seeds/pcam-array-{job}_{k}.out"))
            .is_file());
    }
    let here = &groups[1].1;
    for (a, b) in on_slurm.runs.iter().zip(&here.runs) {
        let (ma, mb) = (
            json(&a.join("manifest.json")),
            json(&b.join("manifest.json")),
        );
        assert_eq!(ma["slurm_partition"], "thin_course", "{ma}");
        assert!(
            ma["slurm_job_id"].is_string() && mb["slurm_job_id"].is_null(),
            "{ma} {mb}"
        );
        let sha = |r: &Path| {
            pcam::run::RunDir::open(r)
                .unwrap()
                .weights_sha256()
                .unwrap()
        };
        assert_eq!(sha(a), sha(b), "{} vs {}", a.display(), b.display());
    }
    assert_eq!(
        on_slurm
            .test
            .stats
            .iter()
            .map(|s| s.mean)
            .collect::<Vec<_>>(),
        here.test.stats.iter().map(|s| s.mean).collect::<Vec<_>>()
    );

    // The benchmark on both partitions.
    let bench = [
        "--",
        "--batch-sizes",
        "1,4",
        "--repeats",
        "2",
        "--min-seconds",
        "0.05",
        "data.dir=data",
    ];
    let cpu = s.job(&[&["bench", "--wait"][..], &bench].concat());
    let gpu = s.job(&[&["bench", "--gpu", "--wait"][..], &bench].concat());
    for (id, part) in [(&cpu, "thin_course"), (&gpu, "gpu_course")] {
        assert_record(w, id, part, "COMPLETED", 0);
        let r = json(&w.join(format!("results/bench/throughput-{part}-{id}.json")));
        assert_eq!(r["machine"]["slurm_job_id"], id.as_str());
        assert_eq!(r["machine"]["slurm_partition"], part);
        assert_eq!(r["machine"]["threads"], 2);
        assert!(r["data_synthetic"].is_string());
        let rows = r["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 2 * 2 * 2, "2 models x 2 modes x 2 batch sizes");
        for row in rows {
            let ips = row["images_per_second"].as_f64().unwrap();
            assert!(ips.is_finite() && ips > 0.0, "{row}");
        }
    }
    let g = json(&w.join(format!("results/bench/throughput-gpu_course-{gpu}.json")));
    assert_eq!(
        g["machine"]["cuda_visible_devices"], "0",
        "--gpus=1 allocated the GPU"
    );

    // A job that fails: the error comes back through --wait, the log and the record.
    let (code, _) = s.run(&["train", "--wait", "--", "data.dir=missing-folder"]);
    assert_ne!(code, 0);
    let failed: Vec<Value> = std::fs::read_dir(w.join("results/slurm/jobs"))
        .unwrap()
        .flatten()
        .map(|e| json(&e.path()))
        .filter(|r| r["state"] == "FAILED")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["exit_code"], 2);
    let id = failed[0]["job_id"].as_str().unwrap();
    let log = read(&w.join(format!("results/slurm/pcam-train-{id}.out")));
    assert!(
        log.contains("error:") && log.contains("missing-folder"),
        "{log}"
    );

    drop(cluster);
    let pids = base.path().join("slurm/run");
    for d in ["slurmctld.pid", "slurmd.pid"] {
        assert!(
            !pids.join(d).exists(),
            "{d} left behind: the daemon was not stopped"
        );
    }
}
