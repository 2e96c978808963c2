//! `pcam-course journal` through the real binary: a journal's marked blocks render and
//! check, problems fail with one error line and exit code 2, and the committed journal is
//! consistent with the committed assets.

use std::path::Path;
use std::process::{Command, Output};

fn course(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pcam-course"))
        .args(args)
        .current_dir(cwd)
        .env_remove("PCAM_ASSETS_DIR")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("pcam-course runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn journal_render_then_check_through_the_cli() {
    let d = tempfile::tempdir().unwrap();
    let journal = "## Question 3\n\n### 3.1 Parameters\n\n<!-- pcam:table t -->\n<!-- /pcam:table -->\n\n![chart](assets/c.png)\n";
    std::fs::write(d.path().join("journal.md"), journal).unwrap();
    std::fs::create_dir_all(d.path().join("assets/tables")).unwrap();
    std::fs::write(d.path().join("assets/tables/t.md"), "| a |\n|---|\n| 1 |\n").unwrap();

    let o = course(d.path(), &["journal", "check"]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("journal.md") && err.contains("2 problems"),
        "{err}"
    );
    assert!(out.contains("`t` is stale"), "{out}");
    assert!(out.contains("assets/c.png does not exist"), "{out}");

    std::fs::write(d.path().join("assets/c.png"), b"png").unwrap();
    let o = course(d.path(), &["journal", "render"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("refreshed t"),
        "{}",
        text(&o.stdout)
    );
    let o = course(d.path(), &["journal", "check"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    assert!(out.contains("1 of 1 sub-questions answered"), "{out}");
}

#[test]
fn the_committed_journal_is_consistent_with_assets() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let o = course(root, &["journal", "check"]);
    let out = text(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "journal check failed:\n{out}{}",
        text(&o.stderr)
    );
    assert!(out.contains("42 of 42 sub-questions answered"), "{out}");
}

#[test]
fn no_journal_is_one_error_line_naming_the_file() {
    let d = tempfile::tempdir().unwrap();
    let o = course(d.path(), &["journal", "check", "--assets", "assets"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("journal.md"), "{err}");
}
