//! The README audit (journal Q9.2): the sections the journal asks for, and for every
//! command the README shows, where it is exercised — an integration test, `make demo`, a
//! Slurm script that `tests/slurm.rs` submits, or a `make` target CI runs.

use pcam::error::{Error, Result};
use pcam::report::Table;
use std::path::Path;

/// Sections the journal (Q9.2) and issue 10 ask for, with the words a heading may use.
pub const TOPICS: &[(&str, &[&str])] = &[
    ("installation", &["installation", "install"]),
    ("data set-up", &["data set-up", "data setup"]),
    ("training", &["training"]),
    ("inference", &["inference"]),
    ("offline handover", &["offline"]),
    ("Slurm", &["slurm"]),
    ("notebooks", &["notebooks"]),
    ("tracking", &["tracking"]),
    ("troubleshooting", &["troubleshooting"]),
];

/// A command shown in the README's code blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocCommand {
    /// The README heading it appears under.
    pub section: String,
    pub line: usize,
    pub text: String,
    /// What is looked for: `pcam <subcommand words>`, `make <target>`, `submit.sh <job>`.
    pub key: String,
    /// Files that run it (empty: not exercised).
    pub evidence: Vec<String>,
}

/// The README's commands and sections, checked.
#[derive(Debug, Clone)]
pub struct ReadmeAudit {
    /// (topic, the heading that covers it).
    pub sections: Vec<(&'static str, Option<String>)>,
    pub commands: Vec<DocCommand>,
}

impl ReadmeAudit {
    /// Commands no test, demo or CI step runs.
    pub fn unexercised(&self) -> Vec<&DocCommand> {
        self.commands
            .iter()
            .filter(|c| c.evidence.is_empty())
            .collect()
    }

    /// Topics without a section.
    pub fn missing_sections(&self) -> Vec<&'static str> {
        self.sections
            .iter()
            .filter(|(_, h)| h.is_none())
            .map(|(t, _)| *t)
            .collect()
    }
}

/// The subcommand words of a pcam command line (`pcam data audit DIR --x` → `data audit`).
fn pcam_key(words: &[&str]) -> String {
    words
        .iter()
        .skip_while(|w| w.starts_with('-'))
        .take_while(|w| {
            !w.starts_with('-')
                && w.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                && !w.is_empty()
        })
        .take(2)
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The key of one shell line, if it is a command the audit follows.
pub fn command_key(line: &str) -> Option<String> {
    let line = line.split(" #").next().unwrap_or("").trim();
    let words: Vec<&str> = line.split_whitespace().collect();
    let (first, rest) = words.split_first()?;
    match *first {
        "target/release/pcam" | "pcam" | "./pcam" => {
            let k = pcam_key(rest);
            (!k.is_empty()).then(|| format!("pcam {k}"))
        }
        "target/release/pcam-course" | "pcam-course" => {
            let k = pcam_key(rest);
            (!k.is_empty()).then(|| format!("pcam-course {k}"))
        }
        "make" => rest.first().map(|t| format!("make {t}")),
        "slurm/submit.sh" => rest.first().map(|j| format!("submit.sh {j}")),
        _ => None,
    }
}

/// Words of a source file with quotes, commas and brackets taken out, so that
/// `&["data", "synth"]` and `"-q data synth"` both read `data synth`.
fn words_of(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if "\"',[]&(){};".contains(c) { ' ' } else { c })
        .collect();
    format!(
        " {} ",
        cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
    )
}

/// Audits `README.md` under `root` against `tests/*.rs` and `course/tests/*.rs`, `scripts/demo.sh` (make demo),
/// `slurm/*.sbatch` (submitted by tests/slurm.rs), `.ci/run` and the workflows.
pub fn audit_readme(root: &Path) -> Result<ReadmeAudit> {
    let readme = root.join("README.md");
    let text = std::fs::read_to_string(&readme).map_err(|e| Error::io(&readme, "reading", e))?;
    let mut sources: Vec<(String, String)> = Vec::new();
    let mut add = |dir: &str, ext: &str| -> Result<()> {
        let d = root.join(dir);
        let mut files: Vec<_> = std::fs::read_dir(&d)
            .map_err(|e| Error::io(&d, "listing", e))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(ext))
            .collect();
        files.sort();
        for f in files {
            let t = std::fs::read_to_string(&f).map_err(|e| Error::io(&f, "reading", e))?;
            let name = f.strip_prefix(root).unwrap_or(&f).display().to_string();
            sources.push((name, words_of(&t)));
        }
        Ok(())
    };
    add("tests", ".rs")?;
    if root.join("course/tests").is_dir() {
        add("course/tests", ".rs")?;
    }
    add("slurm", ".sbatch")?;
    let demo = root.join("scripts/demo.sh");
    let demo_text = std::fs::read_to_string(&demo).map_err(|e| Error::io(&demo, "reading", e))?;
    sources.push(("make demo".into(), words_of(&demo_text)));
    let makefile = std::fs::read_to_string(root.join("Makefile")).unwrap_or_default();
    let ci = root.join(".ci/run");
    let ci_text = std::fs::read_to_string(&ci).map_err(|e| Error::io(&ci, "reading", e))?;
    let ci_targets = crate::ci::make_targets(&ci_text);
    let wf = root.join(".github/workflows/ci.yml");
    let wf_targets: Vec<String> = if wf.is_file() {
        crate::ci::read_workflow(&wf)?
            .jobs
            .iter()
            .flat_map(|j| j.steps.iter().flat_map(|s| s.make_targets.clone()))
            .collect()
    } else {
        vec![]
    };

    let mut section = String::new();
    let mut headings = Vec::new();
    let mut commands = Vec::new();
    let mut in_code = false;
    let mut continued = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            if let Some(h) = line
                .strip_prefix("## ")
                .or_else(|| line.strip_prefix("### "))
            {
                section = h.trim().to_string();
                headings.push(section.clone());
            }
            continue;
        }
        let was_continued = continued;
        continued = line.trim_end().ends_with('\\');
        if was_continued {
            continue;
        }
        for part in line.split("&&") {
            let Some(key) = command_key(part) else {
                continue;
            };
            let ctx = Context {
                sources: &sources,
                ci: &ci_targets,
                workflow: &wf_targets,
                makefile: &makefile,
            };
            let evidence = ctx.evidence_for(&key);
            commands.push(DocCommand {
                section: section.clone(),
                line: i + 1,
                text: part.split(" #").next().unwrap_or("").trim().to_string(),
                key,
                evidence,
            });
        }
    }
    let sections = TOPICS
        .iter()
        .map(|(topic, words)| {
            let h = headings
                .iter()
                .find(|h| words.iter().any(|w| h.to_lowercase().contains(w)))
                .cloned();
            (*topic, h)
        })
        .collect();
    Ok(ReadmeAudit { sections, commands })
}

struct Context<'a> {
    sources: &'a [(String, String)],
    ci: &'a [String],
    workflow: &'a [String],
    makefile: &'a str,
}

impl Context<'_> {
    fn evidence_for(&self, key: &str) -> Vec<String> {
        if let Some(target) = key.strip_prefix("make ") {
            return self.make_evidence(target);
        }
        if let Some(job) = key.strip_prefix("submit.sh ") {
            // tests/slurm.rs passes the job as the first argument of its submit helper
            let needle = format!(" {job} ");
            return self
                .sources
                .iter()
                .filter(|(_, w)| w.contains("submit.sh") && w.contains(&needle))
                .map(|(n, _)| n.clone())
                .collect();
        }
        let needle = match key
            .strip_prefix("pcam ")
            .or_else(|| key.strip_prefix("pcam-course "))
        {
            Some(k) => format!(" {k} "),
            None => format!(" {key} "),
        };
        self.sources
            .iter()
            .filter(|(_, words)| words.contains(&needle))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// A make target is exercised when CI runs it, or when every command of its recipe
    /// that the audit can follow (pcam subcommands, scripts) is exercised.
    fn make_evidence(&self, target: &str) -> Vec<String> {
        let mut e = Vec::new();
        if self.ci.iter().any(|t| t == target) {
            e.push(".ci/run".to_string());
        }
        if self.workflow.iter().any(|t| t == target) {
            e.push(".github/workflows/ci.yml".to_string());
        }
        if !e.is_empty() {
            return e;
        }
        let mut all = Vec::new();
        for line in recipe(self.makefile, target) {
            let line = line.trim_start_matches(['@', '-']).replace("$(ENV)", "");
            // shell segments: `a; b && c`, `if …; then pcam …; else …; fi`
            let segments: Vec<&str> = line
                .split([';', '&'])
                .map(|p| {
                    let p = p.trim();
                    ["then ", "else ", "if "]
                        .iter()
                        .fold(p, |p, w| p.strip_prefix(w).unwrap_or(p))
                        .trim()
                })
                .collect();
            for seg in segments {
                if let Some(k) = command_key(seg) {
                    let found = self.evidence_for(&k);
                    if found.is_empty() {
                        return vec![];
                    }
                    all.extend(found.into_iter().map(|f| format!("{f} ({k})")));
                } else if let Some(script) = seg
                    .split_whitespace()
                    .find(|w| w.starts_with("scripts/") || w.starts_with("bench/"))
                {
                    let ci_runs = self
                        .ci
                        .iter()
                        .find(|t| recipe(self.makefile, t).iter().any(|l| l.contains(script)));
                    let name = script.rsplit('/').next().unwrap_or(script);
                    let tested = self.sources.iter().find(|(_, w)| w.contains(name));
                    match (ci_runs, tested) {
                        (Some(t), _) => all.push(format!(".ci/run (make {t} runs {script})")),
                        (None, Some((n, _))) => all.push(format!("{n} ({script})")),
                        (None, None) => return vec![],
                    }
                }
            }
        }
        all.dedup();
        all
    }
}

/// The recipe lines of `target` in a Makefile.
fn recipe<'a>(makefile: &'a str, target: &str) -> Vec<&'a str> {
    let head = format!("{target}:");
    makefile
        .lines()
        .skip_while(|l| !l.starts_with(&head))
        .skip(1)
        .take_while(|l| l.starts_with('\t'))
        .map(str::trim)
        .collect()
}

/// Sections table: each topic and the heading that covers it.
pub fn sections_table(a: &ReadmeAudit) -> Result<Table> {
    let mut cols: Vec<Vec<String>> = vec![vec![]; 3];
    for (topic, h) in &a.sections {
        let n = a
            .commands
            .iter()
            .filter(|c| Some(&c.section) == h.as_ref())
            .count();
        cols[0].push((*topic).to_string());
        cols[1].push(
            h.clone()
                .map(|h| format!("## {h}"))
                .unwrap_or_else(|| "MISSING".into()),
        );
        cols[2].push(n.to_string());
    }
    Table::from_strings(
        &["Journal / issue topic", "README section", "Commands shown"],
        cols,
        "README.md sections",
    )
}

/// Commands table: every command the README shows and what exercises it.
pub fn commands_table(a: &ReadmeAudit) -> Result<Table> {
    let mut cols: Vec<Vec<String>> = vec![vec![]; 4];
    for c in &a.commands {
        cols[0].push(c.section.clone());
        cols[1].push(format!("`{}`", c.key));
        cols[2].push(c.line.to_string());
        cols[3].push(match c.evidence.len() {
            0 => "NOT EXERCISED".into(),
            1..=3 => c.evidence.join(", "),
            n => format!("{} (+{} more)", c.evidence[..3].join(", "), n - 3),
        });
    }
    let missing = a.unexercised().len();
    Table::from_strings(
        &["Section", "Command", "README line", "Exercised by"],
        cols,
        &format!(
            "{} commands in README.md code blocks, {} not exercised by a test, make demo or CI",
            a.commands.len(),
            missing
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_keys() {
        assert_eq!(
            command_key("target/release/pcam data audit data/demo --runs runs/").as_deref(),
            Some("pcam data audit")
        );
        assert_eq!(
            command_key("pcam -q train --config x.yaml").as_deref(),
            Some("pcam train")
        );
        assert_eq!(
            command_key("./pcam predict --run run x.h5 # comment").as_deref(),
            Some("pcam predict")
        );
        assert_eq!(
            command_key("pcam eval --run RUN_DIR --split test").as_deref(),
            Some("pcam eval")
        );
        assert_eq!(
            command_key("make test   # tests").as_deref(),
            Some("make test")
        );
        assert_eq!(
            command_key("slurm/submit.sh bench --gpu").as_deref(),
            Some("submit.sh bench")
        );
        assert_eq!(
            command_key("target/release/pcam-course journal check").as_deref(),
            Some("pcam-course journal check")
        );
        assert_eq!(command_key("export X=1"), None);
        assert_eq!(command_key("pcam [--quiet] <command>"), None);
    }

    #[test]
    fn the_projects_readme_has_every_section_and_every_command_is_exercised() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let a = audit_readme(root).unwrap();
        assert!(
            a.missing_sections().is_empty(),
            "{:?}",
            a.missing_sections()
        );
        assert!(a.commands.len() > 30, "{}", a.commands.len());
        let bad: Vec<String> = a
            .unexercised()
            .iter()
            .map(|c| format!("README.md:{} `{}`", c.line, c.text))
            .collect();
        assert!(
            bad.is_empty(),
            "README commands no test runs:\n{}",
            bad.join("\n")
        );
    }

    #[test]
    fn an_unexercised_command_is_reported() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        for dir in ["tests", "slurm", "scripts", ".ci"] {
            std::fs::create_dir_all(p.join(dir)).unwrap();
        }
        std::fs::write(
            p.join("README.md"),
            "## Training\n```bash\npcam train --config a.yaml\npcam twin-run \\\n  --x\nmake lint\n```\n",
        )
        .unwrap();
        std::fs::write(p.join("tests/t.rs"), r#"pcam(&["-q", "train", "x"]);"#).unwrap();
        std::fs::write(p.join("scripts/demo.sh"), "").unwrap();
        std::fs::write(p.join(".ci/run"), "make lint; lap x\n").unwrap();
        let a = audit_readme(p).unwrap();
        let keys: Vec<(&str, bool)> = a
            .commands
            .iter()
            .map(|c| (c.key.as_str(), c.evidence.is_empty()))
            .collect();
        assert_eq!(
            keys,
            [
                ("pcam train", false),
                ("pcam twin-run", true),
                ("make lint", false)
            ]
        );
        assert!(a.missing_sections().contains(&"inference"));
    }
}
