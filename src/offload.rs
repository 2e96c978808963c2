//! Heavy work — a search's trials, seed runs, cross-validation folds — as a list of `pcam`
//! commands that runs as **one Slurm job array** when a cluster answers (`sinfo`), and one
//! after another in child processes here when none does. The commands are the same either
//! way, so are the run folders they write; each run's `manifest.json` records where it
//! ran (Slurm job id and partition, absent when local). The array goes through
//! `slurm/submit.sh array` (the cluster settings of `slurm/cluster.env`) and
//! `slurm/array.sbatch`, whose job records (`<log dir>/jobs/<job>_<task>.json`) say how
//! each task ended.

use crate::error::{Error, Result};
use crate::progress::Progress;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Where a batch of tasks runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// One job array on the cluster `sinfo` answers for; `partitions` as it lists them.
    Slurm { partitions: Vec<String> },
    /// Child processes on this machine, one after another; `why` says why not Slurm.
    Local { why: String },
}

impl Place {
    /// Slurm when `sinfo` runs and lists a partition; this machine otherwise.
    pub fn detect() -> Place {
        Place::detect_with("sinfo")
    }

    /// [`Place::detect`] asking the program `sinfo` instead.
    pub fn detect_with(sinfo: &str) -> Place {
        match Command::new(sinfo)
            .args(["-h", "-o", "%P"])
            .stdin(Stdio::null())
            .output()
        {
            Err(_) => Place::Local {
                why: format!("no Slurm here ({sinfo} not found)"),
            },
            Ok(o) if !o.status.success() => Place::Local {
                why: format!(
                    "no Slurm here ({sinfo} failed: {})",
                    crate::error::one_line(&String::from_utf8_lossy(&o.stderr))
                ),
            },
            Ok(o) => {
                let partitions: Vec<String> = String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(|p| p.trim_end_matches('*').to_string())
                    .collect();
                if partitions.is_empty() {
                    Place::Local {
                        why: format!("no Slurm here ({sinfo} lists no partition)"),
                    }
                } else {
                    Place::Slurm { partitions }
                }
            }
        }
    }

    /// One line: where tasks go and why.
    pub fn describe(&self) -> String {
        match self {
            Place::Slurm { partitions } => {
                format!("Slurm (partitions {})", partitions.join(", "))
            }
            Place::Local { why } => format!("this machine: {why}"),
        }
    }
}

/// A named batch of `pcam` commands (arguments after `pcam`), run from `root`.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Names the task list and the job (letters, digits, `-`, `_`).
    pub name: String,
    /// The project folder: `slurm/`, the working directory of every task.
    pub root: PathBuf,
    /// The pcam executable (local tasks; `PCAM` of the Slurm jobs).
    pub exe: PathBuf,
    /// Where the task list and, on Slurm, the logs and job records go.
    pub dir: PathBuf,
    pub tasks: Vec<Vec<String>>,
}

/// How a batch ran.
#[derive(Debug, Clone)]
pub struct Ran {
    /// The batch's name.
    pub name: String,
    /// `Slurm job array 41 on thin_course` or `locally, one after another`.
    pub place: String,
    pub job_id: Option<String>,
    pub partition: Option<String>,
    /// Tasks that failed: (index, one line naming the command and the log).
    pub failed: Vec<(usize, String)>,
    pub tasks: usize,
}

impl Ran {
    /// Ok when every task succeeded; otherwise the first failure (and how many more).
    pub fn ok(self) -> Result<Ran> {
        match self.failed.first() {
            None => Ok(self),
            Some((_, why)) => Err(Error::failed(
                format!("batch {}", self.name),
                if self.failed.len() > 1 {
                    format!("{why} (and {} more failed tasks)", self.failed.len() - 1)
                } else {
                    why.clone()
                },
            )),
        }
    }
}

impl Batch {
    fn check(&self) -> Result<()> {
        let bad_name = self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if bad_name {
            return Err(Error::Usage(format!(
                "batch name '{}': use letters, digits, '-' and '_'",
                self.name
            )));
        }
        if self.tasks.is_empty() {
            return Err(Error::Usage(format!("batch {}: no task to run", self.name)));
        }
        for (k, t) in self.tasks.iter().enumerate() {
            if t.is_empty() {
                return Err(Error::Usage(format!(
                    "batch {} task {k}: no arguments",
                    self.name
                )));
            }
            if let Some(a) = t.iter().find(|a| a.is_empty() || a.contains(['\t', '\n'])) {
                return Err(Error::Usage(format!(
                    "batch {} task {k}: argument {a:?} is empty or holds a tab or a newline",
                    self.name
                )));
            }
        }
        Ok(())
    }

    /// The task list `slurm/array.sbatch` reads: one task per line, arguments tab-separated.
    pub fn list_text(&self) -> String {
        self.tasks.iter().map(|t| t.join("\t") + "\n").collect()
    }

    fn command_line(&self, k: usize) -> String {
        format!("pcam {}", self.tasks[k].join(" "))
    }
}

/// Runs every task of `batch` at `place`. A task that fails does not stop the others; the
/// failures come back in [`Ran::failed`] (use [`Ran::ok`] to make any of them an error).
pub fn run(place: &Place, batch: &Batch, progress: Progress) -> Result<Ran> {
    batch.check()?;
    // Relative paths are the project's: the folder every task runs in.
    let root =
        std::path::absolute(&batch.root).map_err(|e| Error::io(&batch.root, "resolving", e))?;
    // A bare program name is looked up on PATH.
    let exe = if batch.exe.components().count() > 1 {
        root.join(&batch.exe)
    } else {
        batch.exe.clone()
    };
    let batch = Batch {
        exe,
        dir: root.join(&batch.dir),
        root,
        ..batch.clone()
    };
    std::fs::create_dir_all(&batch.dir).map_err(|e| Error::io(&batch.dir, "creating", e))?;
    match place {
        Place::Local { .. } => run_here(&batch, progress),
        Place::Slurm { .. } => run_on_slurm(&batch, progress),
    }
}

fn run_here(batch: &Batch, progress: Progress) -> Result<Ran> {
    let bar = progress.bar(
        batch.tasks.len() as u64,
        format!("{}: local tasks", batch.name),
        "tasks",
    );
    let mut failed = Vec::new();
    for (k, args) in batch.tasks.iter().enumerate() {
        let o = Command::new(&batch.exe)
            .args(args)
            .current_dir(&batch.root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| Error::io(&batch.exe, "starting a task", e))?;
        if !o.status.success() {
            let err = String::from_utf8_lossy(&o.stderr);
            // pcam's one-line error, else the last line it wrote
            let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
            let line = lines
                .iter()
                .rev()
                .find(|l| l.starts_with("error"))
                .or(lines.last())
                .copied()
                .unwrap_or("no message");
            failed.push((
                k,
                format!(
                    "task {k} ({}) failed ({}): {}",
                    batch.command_line(k),
                    o.status,
                    crate::error::one_line(line)
                ),
            ));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(Ran {
        name: batch.name.clone(),
        place: "locally, one after another".into(),
        job_id: None,
        partition: None,
        failed,
        tasks: batch.tasks.len(),
    })
}

fn run_on_slurm(batch: &Batch, progress: Progress) -> Result<Ran> {
    let list = batch.dir.join(format!("{}.tasks", batch.name));
    crate::fsutil::write_atomic(&list, batch.list_text().as_bytes())?;
    // A fresh log folder per batch: job ids restart with a new cluster, so a record left by
    // an earlier submission must not stand in for a task that never ran.
    let log_dir = batch.dir.join("slurm").join(&batch.name);
    if log_dir.exists() {
        std::fs::remove_dir_all(&log_dir)
            .map_err(|e| Error::io(&log_dir, "removing old logs", e))?;
    }
    let submit = batch.root.join("slurm/submit.sh");
    let exe = &batch.exe;
    if !progress.quiet {
        eprintln!(
            "{}: {} tasks as one Slurm job array (slurm/submit.sh array --wait), logs in {}",
            batch.name,
            batch.tasks.len(),
            log_dir.display()
        );
    }
    let o = Command::new(&submit)
        .args(["array", "--wait", "--"])
        .arg(&list)
        .current_dir(&batch.root)
        .env("PCAM", exe)
        .env("PCAM_LOG_DIR", &log_dir)
        .env("PCAM_WORKDIR", &batch.root)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io(&submit, "running", e))?;
    let out = String::from_utf8_lossy(&o.stdout);
    // `sbatch --parsable` prints `<job id>[;<cluster>]`; --wait then fails if a task failed.
    let job_id = out
        .lines()
        .map(str::trim)
        .find(|l| {
            !l.is_empty()
                && l.split(';')
                    .next()
                    .is_some_and(|id| id.chars().all(|c| c.is_ascii_digit()))
        })
        .map(|l| l.split(';').next().unwrap_or(l).to_string())
        .ok_or_else(|| {
            Error::failed(
                format!("{}: slurm/submit.sh array", batch.name),
                format!(
                    "no job submitted: {}",
                    crate::error::one_line(&String::from_utf8_lossy(&o.stderr))
                ),
            )
        })?;
    let mut failed = Vec::new();
    let mut partition = None;
    for k in 0..batch.tasks.len() {
        let id = format!("{job_id}_{k}");
        let record = log_dir.join("jobs").join(format!("{id}.json"));
        let log = log_dir.join(format!("pcam-array-{id}.out"));
        let why = match std::fs::read_to_string(&record)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        {
            None => Some(format!("no job record {}", record.display())),
            Some(r) => {
                if partition.is_none() {
                    partition = r["partition"].as_str().map(str::to_string);
                }
                match r["exit_code"].as_i64() {
                    Some(0) => None,
                    Some(c) => Some(format!("exit code {c}")),
                    None => Some(format!("state {}", r["state"])),
                }
            }
        };
        if let Some(why) = why {
            failed.push((
                k,
                format!(
                    "task {k} ({}) failed on Slurm, job {id}: {why}; log {}",
                    batch.command_line(k),
                    log.display()
                ),
            ));
        }
    }
    Ok(Ran {
        name: batch.name.clone(),
        place: format!(
            "Slurm job array {job_id} on {}",
            partition.as_deref().unwrap_or("an unknown partition")
        ),
        job_id: Some(job_id),
        partition,
        failed,
        tasks: batch.tasks.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(tasks: Vec<Vec<String>>) -> Batch {
        Batch {
            name: "t".into(),
            root: ".".into(),
            exe: "true".into(),
            dir: std::env::temp_dir(),
            tasks,
        }
    }

    #[test]
    fn the_task_list_is_one_line_per_task_with_tab_separated_arguments() {
        let b = batch(vec![
            vec!["train".into(), "--config".into(), "a b.yaml".into()],
            vec!["eval".into(), "--run".into(), "r".into()],
        ]);
        b.check().unwrap();
        assert_eq!(b.list_text(), "train\t--config\ta b.yaml\neval\t--run\tr\n");
    }

    #[test]
    fn bad_batches_are_refused_before_anything_runs() {
        for (tasks, name, needle) in [
            (vec![], "t", "no task"),
            (vec![vec!["a\tb".to_string()]], "t", "tab"),
            (vec![vec![]], "t", "no arguments"),
            (
                vec![vec!["train".to_string(), String::new()]],
                "t",
                "is empty",
            ),
            (vec![vec!["x".to_string()]], "a/b", "batch name"),
        ] {
            let mut b = batch(tasks);
            b.name = name.into();
            let e = run(
                &Place::Local { why: "test".into() },
                &b,
                Progress { quiet: true },
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn failed_local_tasks_are_named_and_do_not_stop_the_others() {
        let mut b = batch(vec![
            vec!["-c".into(), "exit 0".into()],
            vec!["-c".into(), "echo boom >&2; exit 3".into()],
            vec!["-c".into(), "exit 0".into()],
        ]);
        b.exe = "sh".into();
        let ran = run(
            &Place::Local { why: "test".into() },
            &b,
            Progress { quiet: true },
        )
        .unwrap();
        assert_eq!(ran.tasks, 3);
        assert_eq!(ran.failed.len(), 1, "{:?}", ran.failed);
        assert_eq!(ran.failed[0].0, 1);
        assert!(ran.failed[0].1.contains("boom"), "{:?}", ran.failed);
        let e = ran.ok().unwrap_err().to_string();
        assert!(e.contains("task 1 (pcam -c echo boom"), "{e}");
    }

    #[test]
    fn slurm_is_where_sinfo_lists_partitions_and_here_otherwise() {
        let p = Place::detect_with("/nonexistent/sinfo");
        assert!(
            matches!(&p, Place::Local { why } if why.contains("not found")),
            "{p:?}"
        );
        let d = tempfile::tempdir().unwrap();
        let fake = |name: &str, body: &str| {
            let f = d.path().join(name);
            std::fs::write(&f, format!("#!/bin/sh\n{body}\n")).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
            f.display().to_string()
        };
        let up = fake("up", "printf 'thin_course*\\ngpu_course\\n'");
        assert_eq!(
            Place::detect_with(&up),
            Place::Slurm {
                partitions: vec!["thin_course".into(), "gpu_course".into()]
            }
        );
        let down = fake(
            "down",
            "echo 'slurm_load_partitions: Unable to contact slurm controller' >&2; exit 1",
        );
        let p = Place::detect_with(&down);
        assert!(
            matches!(&p, Place::Local { why } if why.contains("Unable to contact")),
            "{p:?}"
        );
        assert!(Place::detect_with(&fake("empty", "exit 0"))
            .describe()
            .contains("lists no partition"));
    }
}
