//! `journal.md` wiring. Tables exported by notebooks and commands live in
//! `assets/tables/<name>.md` and appear in the journal between marker comments
//! (`<!-- pcam:table NAME -->` … `<!-- /pcam:table -->`); single numbers the prose quotes
//! live in `assets/values/<file>.json` (`pcam::report::values`) and appear inline as
//! `<!-- pcam:value FILE.KEY -->8,226<!-- /pcam:value -->`. `render` refreshes both kinds of
//! block, `check` reports stale or unknown blocks, missing figures and notebooks, images
//! outside `assets/`, and sub-questions without an answer. Questions whose issue is still
//! open are listed once, in [`PENDING`], and reported rather than failed.

use pcam::error::{Error, Result};
use pcam::report::Assets;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Sub-questions (by id prefix) answered by issues that are still open, with the issue.
/// Remove an entry when its issue lands and the answer is written.
pub const PENDING: &[(&str, u32)] = &[];

/// A kind of marked block: its opening marker's prefix and its closing marker.
struct Marker {
    open: &'static str,
    close: &'static str,
    what: &'static str,
}

const TABLE: Marker = Marker {
    open: "<!-- pcam:table ",
    close: "<!-- /pcam:table -->",
    what: "table",
};

const VALUE: Marker = Marker {
    open: "<!-- pcam:value ",
    close: "<!-- /pcam:value -->",
    what: "value",
};

/// The issue still open for sub-question `id`, if any.
pub fn pending_issue(id: &str) -> Option<u32> {
    pending_in(PENDING, id)
}

fn pending_in(list: &[(&str, u32)], id: &str) -> Option<u32> {
    list.iter()
        .find(|(p, _)| id == *p || id.starts_with(&format!("{p}.")))
        .map(|(_, i)| *i)
}

/// A marked block in the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    name: String,
    /// Byte range of the content between the markers.
    content: std::ops::Range<usize>,
    line: usize,
}

/// A value block's name, `FILE.KEY`, split; both parts are asset names.
fn value_name(name: &str) -> Option<(&str, &str)> {
    let (file, key) = name.split_once('.')?;
    let ok = |s: &str| pcam::report::check_name(s).is_ok();
    (ok(file) && ok(key)).then_some((file, key))
}

fn blocks(path: &Path, text: &str, m: &Marker) -> Result<Vec<Block>> {
    let what = m.what;
    let mut out = vec![];
    let mut pos = 0;
    while let Some(i) = text[pos..].find(m.open) {
        let start = pos + i;
        let line = text[..start].matches('\n').count() + 1;
        let head_end = text[start..]
            .find("-->")
            .map(|j| start + j + 3)
            .ok_or_else(|| {
                Error::bad_file(path, format!("line {line}: unterminated {what} marker"))
            })?;
        let name = text[start + m.open.len()..head_end - 3].trim().to_string();
        let named = match what {
            "value" => value_name(&name).is_some(),
            _ => pcam::report::check_name(&name).is_ok(),
        };
        if !named {
            return Err(Error::bad_file(
                path,
                format!("line {line}: bad {what} name `{name}`"),
            ));
        }
        let close = text[head_end..]
            .find(m.close)
            .map(|j| head_end + j)
            .ok_or_else(|| {
                Error::bad_file(
                    path,
                    format!("line {line}: {what} `{name}` has no {}", m.close),
                )
            })?;
        if let Some(nested) = text[head_end..close].find(m.open) {
            let l = text[..head_end + nested].matches('\n').count() + 1;
            return Err(Error::bad_file(
                path,
                format!("line {l}: {what} marker inside {what} `{name}`"),
            ));
        }
        if what == "value" && text[head_end..close].contains('\n') {
            return Err(Error::bad_file(
                path,
                format!("line {line}: value `{name}` spans lines; close it on the same line"),
            ));
        }
        out.push(Block {
            name,
            content: head_end..close,
            line,
        });
        pos = close + m.close.len();
    }
    Ok(out)
}

fn block_body(table_md: &str) -> String {
    format!("\n{}\n", table_md.trim())
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, "reading", e))
}

/// The value files the journal cites, each read once.
struct ValueFiles<'a> {
    assets: &'a Assets,
    files: BTreeMap<String, Option<pcam::report::values::ValuesFile>>,
}

impl ValueFiles<'_> {
    /// The text of value `FILE.KEY`, or why there is none.
    fn text(&mut self, name: &str) -> Result<std::result::Result<String, String>> {
        let (file, key) = value_name(name).expect("value names are checked when parsed");
        let path = pcam::report::values::path(self.assets, file);
        if !self.files.contains_key(file) {
            let f = pcam::report::values::read(&path)?;
            self.files.insert(file.to_string(), f);
        }
        Ok(match &self.files[file] {
            None => Err(format!("has no file {}", path.display())),
            Some(f) => match f.values.get(key) {
                Some(v) => Ok(v.text.clone()),
                None => Err(format!("is not in {}", path.display())),
            },
        })
    }
}

/// Every marked block of `text` with what `assets` says it should hold (`Err`: why
/// nothing can be said), in the order they appear.
type Expected = Vec<(Block, &'static str, std::result::Result<String, String>)>;

fn expected(journal: &Path, text: &str, assets: &Assets) -> Result<Expected> {
    let tables = blocks(journal, text, &TABLE)?;
    let values = blocks(journal, text, &VALUE)?;
    if let Some(v) = values
        .iter()
        .find(|v| tables.iter().any(|t| t.content.contains(&v.content.start)))
    {
        return Err(Error::bad_file(
            journal,
            format!("line {}: value marker inside a table block", v.line),
        ));
    }
    let mut out = Vec::with_capacity(tables.len() + values.len());
    for b in tables {
        let p = assets.table_path(&b.name);
        let want = std::fs::read_to_string(&p)
            .map(|t| block_body(&t))
            .map_err(|_| format!("has no file {}", p.display()));
        out.push((b, "table", want));
    }
    let mut files = ValueFiles {
        assets,
        files: BTreeMap::new(),
    };
    for b in values {
        let want = files.text(&b.name)?;
        out.push((b, "value", want));
    }
    out.sort_by_key(|(b, _, _)| b.content.start);
    Ok(out)
}

/// Refreshes every marked block of `journal` (tables and values) from `assets`; returns
/// the names changed. A block whose table or value does not exist fails the render.
pub fn render(journal: &Path, assets: &Assets) -> Result<Vec<String>> {
    let text = read(journal)?;
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut changed = vec![];
    for (b, what, want) in expected(journal, &text, assets)? {
        let body = want.map_err(|why| {
            Error::bad_file(
                journal,
                format!("line {}: {what} `{}` {why}", b.line, b.name),
            )
        })?;
        out.push_str(&text[last..b.content.start]);
        out.push_str(&body);
        if text[b.content.clone()] != body {
            changed.push(b.name.clone());
        }
        last = b.content.end;
    }
    out.push_str(&text[last..]);
    if !changed.is_empty() {
        pcam::fsutil::write_atomic(journal, out.as_bytes())?;
    }
    Ok(changed)
}

/// Status of one sub-question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub id: String,
    pub title: String,
    pub answered: bool,
    pub pending_issue: Option<u32>,
}

/// What `check` found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub questions: Vec<Question>,
    /// Failures, one line each.
    pub problems: Vec<String>,
}

impl CheckReport {
    /// What `pcam-course journal check` prints: answered / total, pending sub-questions
    /// with their issues, then one line per problem.
    pub fn summary(&self, journal: &Path) -> String {
        let answered = self.questions.iter().filter(|q| q.answered).count();
        let mut pending: Vec<String> = self
            .questions
            .iter()
            .filter(|q| !q.answered)
            .filter_map(|q| q.pending_issue.map(|i| format!("{} (issue {i})", q.id)))
            .collect();
        pending.dedup();
        let mut out = format!(
            "{}: {answered} of {} sub-questions answered\n",
            journal.display(),
            self.questions.len()
        );
        if !pending.is_empty() {
            out += &format!(
                "  pending, their issues still open: {}\n",
                pending.join(", ")
            );
        }
        for p in &self.problems {
            out += &format!("  problem: {p}\n");
        }
        out
    }

    /// Sub-questions that are neither answered nor pending.
    pub fn unanswered(&self) -> impl Iterator<Item = &Question> {
        self.questions
            .iter()
            .filter(|q| !q.answered && q.pending_issue.is_none())
    }
}

/// Checks `journal` against `assets` and the files it links (relative to its folder).
pub fn check(journal: &Path, assets: &Assets) -> Result<CheckReport> {
    let text = read(journal)?;
    let root = journal.parent().unwrap_or(Path::new("."));
    let mut r = CheckReport::default();
    for (b, what, want) in expected(journal, &text, assets)? {
        match want {
            Err(why) => r
                .problems
                .push(format!("line {}: {what} `{}` {why}", b.line, b.name)),
            Ok(body) if text[b.content.clone()] != body => r.problems.push(format!(
                "line {}: {what} `{}` is stale ({}): run `pcam-course journal render`",
                b.line,
                b.name,
                match what {
                    "value" => format!("journal says {}, assets say {body}", &text[b.content]),
                    _ => "differs from its asset".into(),
                }
            )),
            Ok(_) => {}
        }
    }
    for (line, target, image) in links(&text) {
        if target.starts_with("http://")
            || target.starts_with("https://")
            || target.starts_with('#')
        {
            continue;
        }
        let path = PathBuf::from(&target);
        if image && (path.is_absolute() || !target.starts_with("assets/")) {
            r.problems.push(format!(
                "line {line}: image {target} is not under assets/ (relative)"
            ));
        } else if !root.join(&path).exists() {
            r.problems
                .push(format!("line {line}: linked file {target} does not exist"));
        }
    }
    r.questions = questions(&text);
    let unanswered: Vec<String> = r
        .unanswered()
        .map(|q| format!("question {} ({}) has no answer", q.id, q.title))
        .collect();
    r.problems.extend(unanswered);
    Ok(r)
}

/// Markdown links and images: (line, target, is_image).
fn links(text: &str) -> Vec<(usize, String, bool)> {
    let mut out = vec![];
    for (n, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            let image = rest[..i]
                .rfind("![")
                .is_some_and(|j| !rest[j..i].contains(']'));
            let after = &rest[i + 2..];
            if let Some(end) = after.find(')') {
                let target = after[..end]
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_string();
                if !target.is_empty() {
                    out.push((n + 1, target, image));
                }
                rest = &after[end..];
            } else {
                break;
            }
        }
    }
    out
}

/// Sub-questions: `### <id> <title>` headings and whether text follows them.
fn questions(text: &str) -> Vec<Question> {
    let mut out: Vec<Question> = vec![];
    let mut body = String::new();
    let finish = |out: &mut Vec<Question>, body: &mut String| {
        if let Some(q) = out.last_mut() {
            q.answered = !strip_comments(body).trim().is_empty();
        }
        body.clear();
    };
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("### ") {
            finish(&mut out, &mut body);
            let (id, title) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
            if id.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                out.push(Question {
                    id: id.to_string(),
                    title: title.to_string(),
                    answered: false,
                    pending_issue: pending_issue(id),
                });
            }
        } else if line.starts_with("## ") || line.trim() == "---" {
            finish(&mut out, &mut body);
            // Text after a section break belongs to no sub-question.
            out.push(Question {
                id: String::new(),
                title: String::new(),
                answered: true,
                pending_issue: None,
            });
        } else {
            body.push_str(line);
            body.push('\n');
        }
    }
    finish(&mut out, &mut body);
    out.retain(|q| !q.id.is_empty());
    out
}

fn strip_comments(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("<!--") {
        out.push_str(&rest[..i]);
        match rest[i..].find("-->") {
            Some(j) => rest = &rest[i + j + 3..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(journal: &str, table: Option<&str>) -> (tempfile::TempDir, PathBuf, Assets) {
        let d = tempfile::tempdir().unwrap();
        let j = d.path().join("journal.md");
        std::fs::write(&j, journal).unwrap();
        let a = Assets::at(d.path().join("assets"));
        if let Some(t) = table {
            std::fs::create_dir_all(d.path().join("assets/tables")).unwrap();
            std::fs::write(a.table_path("t1"), t).unwrap();
        }
        (d, j, a)
    }

    const J: &str = "## Question 3\n\n### 3.1 Centralized parameters\n\nSee below.\n\n<!-- pcam:table t1 -->\nold\n<!-- /pcam:table -->\n\n### 3.2 Loading\n\n<!-- nothing yet -->\n\n### 7.1 Consolidation\n";

    #[test]
    fn render_refreshes_blocks_and_check_then_passes_them() {
        let (_d, j, a) = setup(J, Some("| a |\n|---|\n| 1 |\n"));
        let before = check(&j, &a).unwrap();
        assert!(
            before.problems.iter().any(|p| p.contains("`t1` is stale")),
            "{:?}",
            before.problems
        );
        assert_eq!(render(&j, &a).unwrap(), vec!["t1".to_string()]);
        let text = std::fs::read_to_string(&j).unwrap();
        assert!(text.contains("<!-- pcam:table t1 -->\n| a |\n|---|\n| 1 |\n<!-- /pcam:table -->"));
        assert!(
            render(&j, &a).unwrap().is_empty(),
            "second render changes nothing"
        );
        let after = check(&j, &a).unwrap();
        assert!(
            !after.problems.iter().any(|p| p.contains("t1")),
            "{:?}",
            after.problems
        );
    }

    #[test]
    fn unanswered_questions_fail() {
        let (_d, j, a) = setup(J, Some("x"));
        let r = check(&j, &a).unwrap();
        let ids: Vec<_> = r
            .questions
            .iter()
            .map(|q| (q.id.as_str(), q.answered))
            .collect();
        assert_eq!(ids, vec![("3.1", true), ("3.2", false), ("7.1", false)]);
        assert!(r.problems.iter().any(|p| p.contains("question 3.2")));
        // no issue is pending any more: 7.1 unanswered is a failure too
        assert!(r.problems.iter().any(|p| p.contains("question 7.1")));
        assert_eq!(r.questions[2].pending_issue, None);
    }

    #[test]
    fn missing_tables_figures_notebooks_and_outside_images_are_reported() {
        let text = "### 3.1 A\n\n![f](assets/missing.png) [nb](notebooks/none.ipynb) ![g](/tmp/x.png) [web](https://example.org)\n<!-- pcam:table t1 -->\n<!-- /pcam:table -->\n";
        let (_d, j, a) = setup(text, None);
        let p = check(&j, &a).unwrap().problems;
        assert!(
            p.iter()
                .any(|l| l.contains("assets/missing.png does not exist")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|l| l.contains("notebooks/none.ipynb does not exist")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|l| l.contains("/tmp/x.png is not under assets/")),
            "{p:?}"
        );
        assert!(p.iter().any(|l| l.contains("`t1` has no file")), "{p:?}");
        assert_eq!(p.len(), 4, "{p:?}");
    }

    #[test]
    fn malformed_markers_are_errors() {
        let (_d, j, a) = setup("<!-- pcam:table t1 -->\nno end\n", Some("x"));
        assert!(check(&j, &a)
            .unwrap_err()
            .to_string()
            .contains("has no <!-- /pcam:table -->"));
        let (_d, j, a) = setup("<!-- pcam:table Bad -->\n<!-- /pcam:table -->\n", Some("x"));
        assert!(render(&j, &a)
            .unwrap_err()
            .to_string()
            .contains("bad table name"));
    }

    #[test]
    fn values_are_rendered_inline_and_checked() {
        use pcam::report::{values, AcrossCpus, NamedValue};
        let text = "### 5.1 Rates\n\nBatched <!-- pcam:value q5a.rate -->9,300<!-- /pcam:value --> points/s, \
                    AUC <!-- pcam:value q5a.auc -->?<!-- /pcam:value -->.\n\n<!-- pcam:table t1 -->\nold\n<!-- /pcam:table -->\n";
        let (_d, j, a) = setup(text, Some("| a |\n"));
        let tol = AcrossCpus::within(0.01, 0.0, "test");
        values::record(
            &a,
            "q5a",
            &[
                ("rate", NamedValue::measured(8226.3, 0, 5.0)),
                ("auc", NamedValue::derived(0.95238, 4, &tol)),
            ],
        )
        .unwrap();
        let p = check(&j, &a).unwrap().problems;
        assert!(
            p.iter().any(|l| l.contains(
                "line 3: value `q5a.rate` is stale (journal says 9,300, assets say 8,226)"
            )),
            "{p:?}"
        );
        assert_eq!(p.len(), 3, "rate, auc and the table are stale: {p:?}");
        let mut changed = render(&j, &a).unwrap();
        changed.sort();
        assert_eq!(changed, ["q5a.auc", "q5a.rate", "t1"]);
        let after = std::fs::read_to_string(&j).unwrap();
        assert!(after.contains("Batched <!-- pcam:value q5a.rate -->8,226<!-- /pcam:value --> points/s, AUC <!-- pcam:value q5a.auc -->0.9524<!-- /pcam:value -->."));
        assert!(after.contains("<!-- pcam:table t1 -->\n| a |\n<!-- /pcam:table -->"));
        assert!(check(&j, &a).unwrap().problems.is_empty());

        // an unknown key or file is a problem for check and an error for render
        let more = format!("{after}\n<!-- pcam:value q5a.gone -->1<!-- /pcam:value --> <!-- pcam:value q9.x -->2<!-- /pcam:value -->\n");
        std::fs::write(&j, &more).unwrap();
        let p = check(&j, &a).unwrap().problems;
        assert!(
            p.iter().any(|l| l.contains("value `q5a.gone` is not in")),
            "{p:?}"
        );
        assert!(
            p.iter().any(|l| l.contains("value `q9.x` has no file")),
            "{p:?}"
        );
        let e = render(&j, &a).unwrap_err().to_string();
        assert!(e.contains("value `q5a.gone` is not in"), "{e}");
        assert_eq!(
            std::fs::read_to_string(&j).unwrap(),
            more,
            "a failed render writes nothing"
        );

        // malformed value markers
        for (bad, msg) in [
            ("<!-- pcam:value q5a -->1<!-- /pcam:value -->", "bad value name `q5a`"),
            ("<!-- pcam:value q5a.rate -->1\n<!-- /pcam:value -->", "spans lines"),
            ("<!-- pcam:value q5a.rate -->1", "has no <!-- /pcam:value -->"),
            ("<!-- pcam:table t1 -->\n<!-- pcam:value q5a.rate -->1<!-- /pcam:value -->\n<!-- /pcam:table -->", "value marker inside a table"),
        ] {
            std::fs::write(&j, bad).unwrap();
            let e = check(&j, &a).unwrap_err().to_string();
            assert!(e.contains(msg), "{bad}: {e}");
        }
    }

    #[test]
    fn pending_matches_whole_id_segments() {
        let list = [("7", 10), ("5.1", 4)];
        assert_eq!(pending_in(&list, "7.3"), Some(10));
        assert_eq!(pending_in(&list, "7"), Some(10));
        assert_eq!(pending_in(&list, "70.1"), None);
        assert_eq!(pending_in(&list, "5.1.3"), Some(4));
        assert_eq!(pending_in(&list, "5.12"), None);
        assert_eq!(pending_in(&list, "5.2.4"), None);
        assert_eq!(pending_issue("9.1"), None);
    }
}
