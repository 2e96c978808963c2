//! The CI audit (journal Q7.3) from the real files: the GitHub Actions workflow, the local
//! CI script (`.ci/run`, what `make check` runs) and a CI log. What runs where, whether
//! both run the same steps, and how long each step took.

use pcam::error::{Error, Result};
use pcam::report::Table;
use serde_yaml_ng::Value;
use std::path::Path;

/// One step of a workflow job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: String,
    /// `uses:` (an action) or `run:` (a shell command), whichever the step has.
    pub action: String,
    /// Paths an `actions/cache` step keeps.
    pub cache_paths: Vec<String>,
    /// The `make` targets its command runs.
    pub make_targets: Vec<String>,
}

/// One job of a workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    pub condition: Option<String>,
    pub runs_on: String,
    pub container: Option<String>,
    pub timeout_minutes: Option<u64>,
    pub steps: Vec<Step>,
}

/// A GitHub Actions workflow file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workflow {
    pub name: String,
    /// Events that start it (`push`, `pull_request`, `schedule (17 2 * * *)`…).
    pub triggers: Vec<String>,
    pub jobs: Vec<Job>,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The `make` targets a shell command runs, in order (`make a b; make c` → a, b, c).
pub fn make_targets(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in script.lines() {
        let line = line.split('#').next().unwrap_or("");
        for cmd in line.split([';', '&', '|']) {
            // leading `VAR=value` assignments belong to the command
            let mut words = cmd.split_whitespace().skip_while(|w| {
                w.split_once('=').is_some_and(|(k, _)| {
                    !k.is_empty() && k.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                })
            });
            if words.next() == Some("make") {
                // targets end at the first option, assignment or redirection (`9>&-`)
                out.extend(
                    words
                        .take_while(|w| {
                            !w.starts_with('-') && !w.contains('=') && !w.contains(['<', '>'])
                        })
                        .map(str::to_string),
                );
            }
        }
    }
    out
}

/// Reads a workflow file.
pub fn read_workflow(path: &Path) -> Result<Workflow> {
    let raw = std::fs::read_to_string(path).map_err(|e| Error::io(path, "reading", e))?;
    let v: Value = serde_yaml_ng::from_str(&raw)
        .map_err(|e| Error::bad_file(path, format!("not YAML: {e}")))?;
    let bad = |msg: &str| Error::bad_file(path, msg.to_string());
    let on = v.get("on").ok_or_else(|| bad("no `on:` (triggers)"))?;
    let triggers = match on {
        Value::Mapping(m) => m
            .iter()
            .filter_map(|(k, val)| {
                let k = text(k)?;
                let crons: Vec<String> = val
                    .as_sequence()
                    .map(|s| {
                        s.iter()
                            .filter_map(|c| c.get("cron").and_then(text))
                            .collect()
                    })
                    .unwrap_or_default();
                Some(if crons.is_empty() {
                    k
                } else {
                    format!("{k} ({})", crons.join(", "))
                })
            })
            .collect(),
        Value::Sequence(s) => s.iter().filter_map(text).collect(),
        other => text(other).into_iter().collect(),
    };
    let jobs = v
        .get("jobs")
        .and_then(Value::as_mapping)
        .ok_or_else(|| bad("no `jobs:`"))?;
    let mut out = Vec::new();
    for (id, job) in jobs {
        let id = text(id).unwrap_or_default();
        let steps = job
            .get("steps")
            .and_then(Value::as_sequence)
            .ok_or_else(|| Error::bad_file(path, format!("job `{id}` has no steps")))?;
        let steps = steps
            .iter()
            .map(|s| {
                let run = s.get("run").and_then(text);
                let uses = s.get("uses").and_then(text);
                let cache_paths = if uses
                    .as_deref()
                    .is_some_and(|u| u.starts_with("actions/cache"))
                {
                    s.get("with")
                        .and_then(|w| w.get("path"))
                        .and_then(text)
                        .map(|p| {
                            p.lines()
                                .map(str::trim)
                                .filter(|l| !l.is_empty())
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default()
                } else {
                    vec![]
                };
                Step {
                    name: s
                        .get("name")
                        .and_then(text)
                        .or_else(|| uses.clone())
                        .or_else(|| run.clone())
                        .unwrap_or_default(),
                    make_targets: run.as_deref().map(make_targets).unwrap_or_default(),
                    action: uses.or(run).unwrap_or_default(),
                    cache_paths,
                }
            })
            .collect();
        out.push(Job {
            condition: job.get("if").and_then(text),
            runs_on: job.get("runs-on").and_then(text).unwrap_or_default(),
            container: job
                .get("container")
                .and_then(|c| text(c).or_else(|| c.get("image").and_then(text))),
            timeout_minutes: job.get("timeout-minutes").and_then(Value::as_u64),
            steps,
            id,
        });
    }
    Ok(Workflow {
        name: v.get("name").and_then(text).unwrap_or_default(),
        triggers,
        jobs: out,
    })
}

/// One row per job: when it runs, where, its time limit, its steps and what it caches.
pub fn jobs_table(w: &Workflow) -> Result<Table> {
    let mut cols: Vec<Vec<String>> = vec![vec![]; 6];
    for j in &w.jobs {
        cols[0].push(j.id.clone());
        cols[1].push(j.condition.clone().unwrap_or_else(|| "always".into()));
        cols[2].push(match &j.container {
            Some(c) => format!("{} in {c}", j.runs_on),
            None => j.runs_on.clone(),
        });
        cols[3].push(
            j.timeout_minutes
                .map(|m| format!("{m} min"))
                .unwrap_or_else(|| "-".into()),
        );
        cols[4].push(
            j.steps
                .iter()
                .map(|s| match s.make_targets.as_slice() {
                    [] => s.name.clone(),
                    t => format!("make {}", t.join(" ")),
                })
                .collect::<Vec<_>>()
                .join(" → "),
        );
        let caches: Vec<&str> = j
            .steps
            .iter()
            .flat_map(|s| s.cache_paths.iter().map(String::as_str))
            .collect();
        cols[5].push(if caches.is_empty() {
            "-".into()
        } else {
            caches.join(", ")
        });
    }
    Table::from_strings(
        &["Job", "Runs when", "Runs on", "Limit", "Steps", "Caches"],
        cols,
        &format!("workflow `{}`, triggers: {}", w.name, w.triggers.join(", ")),
    )
}

/// Which `make` target runs where: in `.ci/run` (what `make check` and the CI machine
/// run) and in which workflow jobs. A target in one and not the other is a CI drift.
pub fn parity(w: &Workflow, ci_run: &Path) -> Result<(Table, Vec<String>)> {
    let script = std::fs::read_to_string(ci_run).map_err(|e| Error::io(ci_run, "reading", e))?;
    let local = make_targets(&script);
    let mut targets = local.clone();
    for j in &w.jobs {
        for t in j.steps.iter().flat_map(|s| s.make_targets.iter()) {
            if !targets.contains(t) {
                targets.push(t.clone());
            }
        }
    }
    let mut drift = Vec::new();
    let mut cols: Vec<Vec<String>> = vec![vec![]; 3];
    for t in &targets {
        let jobs: Vec<&str> = w
            .jobs
            .iter()
            .filter(|j| j.steps.iter().any(|s| s.make_targets.contains(t)))
            .map(|j| j.id.as_str())
            .collect();
        let here = local.contains(t);
        // `setup` is a prerequisite of every target, explicit only on GitHub.
        if (!here || jobs.is_empty()) && t != "setup" {
            drift.push(t.clone());
        }
        cols[0].push(format!("make {t}"));
        cols[1].push(if here { "yes" } else { "no" }.into());
        cols[2].push(if jobs.is_empty() {
            "-".into()
        } else {
            jobs.join(", ")
        });
    }
    let table = Table::from_strings(
        &["Target", "In .ci/run (make check)", "Workflow jobs"],
        cols,
        "the same make targets locally and on GitHub Actions",
    )?;
    Ok((table, drift))
}

/// What a CI log says: each step's finishing time and every test binary's result.
#[derive(Debug, Clone, PartialEq)]
pub struct CiLog {
    /// `ci: <step> done at <s>s` lines of `.ci/run`.
    pub laps: Vec<(String, u64)>,
    /// (passed, failed, ignored) per `test result:` line, in order.
    pub tests: Vec<(u64, u64, u64)>,
    /// The last lap, or None when the log stops before the end.
    pub total_s: Option<u64>,
}

/// Reads a log of `.ci/run`.
pub fn read_ci_log(path: &Path) -> Result<CiLog> {
    let raw = std::fs::read_to_string(path).map_err(|e| Error::io(path, "reading", e))?;
    let mut laps = Vec::new();
    let mut tests = Vec::new();
    for line in raw.lines() {
        if let Some(rest) = line.strip_prefix("ci: ") {
            if let Some((step, at)) = rest.rsplit_once(" done at ") {
                if let Ok(s) = at.trim_end_matches('s').parse() {
                    laps.push((step.to_string(), s));
                }
            }
        } else if let Some(rest) = line.strip_prefix("test result: ") {
            let num = |key: &str| {
                rest.split(';')
                    .find_map(|p| p.trim().strip_suffix(key))
                    .and_then(|n| n.trim().rsplit(' ').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0)
            };
            tests.push((num(" passed"), num(" failed"), num(" ignored")));
        }
    }
    if laps.is_empty() {
        return Err(Error::bad_file(
            path,
            "no `ci: <step> done at <s>s` lines: not a .ci/run log",
        ));
    }
    Ok(CiLog {
        total_s: laps.last().map(|l| l.1),
        laps,
        tests,
    })
}

/// One row per `.ci/run` step: when it finished and how long it took.
pub fn ci_log_table(log: &CiLog, name: &str) -> Result<Table> {
    let mut cols: Vec<Vec<String>> = vec![vec![]; 3];
    let mut prev = 0;
    for (step, at) in &log.laps {
        cols[0].push(step.clone());
        cols[1].push(format!("{:.1}", (at - prev) as f64 / 60.0));
        cols[2].push(format!("{:.1}", *at as f64 / 60.0));
        prev = *at;
    }
    let (p, f, i) = log
        .tests
        .iter()
        .fold((0, 0, 0), |a, t| (a.0 + t.0, a.1 + t.1, a.2 + t.2));
    Table::from_strings(
        &["Step", "Took (min)", "Done at (min)"],
        cols,
        &format!(
            "{name}: {} test binaries, {p} tests passed, {f} failed, {i} ignored (slow)",
            log.tests.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const WF: &str = r#"
name: ci
on:
  push:
    branches: [main]
  schedule:
    - cron: "17 2 * * *"
jobs:
  check:
    if: github.event_name != 'schedule'
    runs-on: ubuntu-24.04
    timeout-minutes: 90
    steps:
      - uses: actions/checkout@v4
      - name: Cache
        uses: actions/cache@v4
        with:
          path: |
            target
            .venv
      - name: Tests
        run: make lint test
  slow:
    runs-on: ubuntu-24.04
    container: debian:12
    steps:
      - run: make test-slow
"#;

    fn workflow() -> (tempfile::TempDir, Workflow) {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("ci.yml"), WF).unwrap();
        let w = read_workflow(&d.path().join("ci.yml")).unwrap();
        (d, w)
    }

    #[test]
    fn workflow_jobs_steps_caches_and_triggers() {
        let (_d, w) = workflow();
        assert_eq!(w.triggers, ["push", "schedule (17 2 * * *)"]);
        assert_eq!(w.jobs.len(), 2);
        assert_eq!(w.jobs[0].timeout_minutes, Some(90));
        assert_eq!(w.jobs[0].steps[1].cache_paths, ["target", ".venv"]);
        assert_eq!(w.jobs[0].steps[2].make_targets, ["lint", "test"]);
        assert_eq!(w.jobs[1].container.as_deref(), Some("debian:12"));
        let md = jobs_table(&w).unwrap().to_markdown();
        assert!(md.contains("make lint test"), "{md}");
    }

    #[test]
    fn parity_names_targets_run_only_on_one_side() {
        let (d, w) = workflow();
        let ci = d.path().join("run");
        std::fs::write(&ci, "make test;  lap x\nmake demo # the demo\n").unwrap();
        let (_, drift) = parity(&w, &ci).unwrap();
        assert_eq!(drift, ["demo", "lint", "test-slow"]);
    }

    #[test]
    fn make_targets_stop_at_options_and_assignments() {
        assert_eq!(
            make_targets("make a b -j2; echo make x\nmake c V=1 && FUZZ_SECONDS=9 make d"),
            ["a", "b", "c", "d"]
        );
        assert_eq!(
            make_targets("make e 9>&-; make f >log 2>&1; make g <in"),
            ["e", "f", "g"]
        );
    }

    #[test]
    fn a_ci_log_gives_laps_and_test_counts() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        std::fs::write(
            &p,
            "test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out\n\
             ci: make test done at 600s\nci: make demo done at 660s\n",
        )
        .unwrap();
        let log = read_ci_log(&p).unwrap();
        assert_eq!(log.laps.len(), 2);
        assert_eq!(log.tests, [(3, 0, 1)]);
        assert_eq!(log.total_s, Some(660));
        let md = ci_log_table(&log, "log").unwrap().to_markdown();
        assert!(md.contains("| make demo | 1.0 | 11.0 |"), "{md}");
        std::fs::write(&p, "nothing\n").unwrap();
        assert!(read_ci_log(&p)
            .unwrap_err()
            .to_string()
            .contains("not a .ci/run log"));
    }
}
