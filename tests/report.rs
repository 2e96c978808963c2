//! Report and journal commands through the real CLI: a figure or table exported by a
//! command is byte-identical to the one the library (and so a notebook) makes; the
//! journal's marked blocks render and check; the committed journal is consistent.

mod common;
use common::*;
use pcam::data::hdf5::OpenOptions;
use pcam::progress::Progress;
use std::path::Path;

#[test]
fn cli_and_library_make_identical_assets() {
    let d = tempfile::tempdir().unwrap();
    for v in ["pcam", "course"] {
        let o = pcam(
            d.path(),
            &[
                "data",
                "synth",
                "--out",
                v,
                "--variant",
                v,
                "--sizes",
                "train=64,valid=16,test=16",
            ],
        );
        assert_eq!(o.code, 0, "{}", o.stderr);
    }
    let o = pcam(
        d.path(),
        &[
            "report",
            "dataset-size",
            "pcam",
            "course",
            "--name",
            "sizes",
            "--assets",
            "out",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);

    let opts = OpenOptions {
        cache_dir: d.path().join("cache"),
        chunk_cache_mb: 8,
        progress: Progress { quiet: true },
    };
    let reports: Vec<_> = ["pcam", "course"]
        .iter()
        .map(|v| pcam::data::inspect::inspect(&d.path().join(v), &opts).unwrap())
        .collect();
    let fig = pcam::report::dataset::size_figure("sizes", &reports).unwrap();
    assert_eq!(
        std::fs::read(d.path().join("out/sizes.png")).unwrap(),
        fig.png()
    );
    let table = pcam::report::dataset::size_table(&reports).unwrap();
    let md = std::fs::read_to_string(d.path().join("out/tables/sizes.md")).unwrap();
    assert_eq!(md, table.to_markdown());
    assert!(
        md.contains("| course | train | 64 | float32 | contiguous | none |"),
        "{md}"
    );
    assert!(md.contains("SYNTHETIC"), "{md}");
}

#[test]
fn journal_render_then_check_through_the_cli() {
    let d = tempfile::tempdir().unwrap();
    let journal = "## Question 3\n\n### 3.1 Parameters\n\n<!-- pcam:table t -->\n<!-- /pcam:table -->\n\n![chart](assets/c.png)\n";
    std::fs::write(d.path().join("journal.md"), journal).unwrap();
    std::fs::create_dir_all(d.path().join("assets/tables")).unwrap();
    std::fs::write(d.path().join("assets/tables/t.md"), "| a |\n|---|\n| 1 |\n").unwrap();

    let o = pcam(d.path(), &["journal", "check"]);
    assert_error(&o, &["journal.md", "2 problems"]);
    assert!(o.stdout.contains("`t` is stale"), "{}", o.stdout);
    assert!(
        o.stdout.contains("assets/c.png does not exist"),
        "{}",
        o.stdout
    );

    std::fs::write(d.path().join("assets/c.png"), b"png").unwrap();
    let o = pcam(d.path(), &["journal", "render"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("refreshed t"), "{}", o.stdout);
    let o = pcam(d.path(), &["journal", "check"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("1 of 1 sub-questions answered"),
        "{}",
        o.stdout
    );
}

#[test]
fn the_committed_journal_is_consistent_with_assets() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = pcam(root, &["journal", "check"]);
    assert_eq!(o.code, 0, "journal check failed:\n{}{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("42 of 42 sub-questions answered"),
        "{}",
        o.stdout
    );
}
