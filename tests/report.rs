//! Report commands through the real CLI: a figure or table exported by a command is
//! byte-identical to the one the library (and so a notebook) makes; `report check-assets`
//! fails where it should. (The journal commands are tested in course/tests/journal.rs.)

mod common;
use common::*;
use pcam::data::hdf5::OpenOptions;
use pcam::progress::Progress;

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

/// `pcam report check-assets` (what `make notebooks-check` runs) through the real CLI on
/// assets written by the library's own export functions: a training-derived table within
/// its tolerance passes on another machine and prints its largest deviation; beyond the
/// tolerance, or with an exact asset changed, it exits non-zero naming the asset; on the
/// recorded machine the derived table must match byte for byte.
#[test]
fn check_assets_fails_beyond_tolerance_and_on_any_exact_difference() {
    use pcam::polars::df;
    use pcam::report::{AcrossCpus, Assets, Table};
    let d = tempfile::tempdir().unwrap();
    let across = AcrossCpus::within(0.005, 0.0, "test tolerance").varies("sha");
    let write = |dir: &str, auc: f64, config: &str| {
        let assets = Assets::at(d.path().join(dir));
        let t = Table::new(
            df!("run" => ["a", "b"], "sha" => [format!("{auc}"), "x".into()], "auc" => [auc, 0.5])
                .unwrap(),
        );
        t.export_derived(&assets, "auc", &across).unwrap();
        let c = Table::new(df!("key" => [config]).unwrap());
        c.export(&assets, "config").unwrap();
    };
    let check = |extra: &[&str]| {
        let mut args = vec![
            "report",
            "check-assets",
            "--assets",
            "committed",
            "--fresh",
            "fresh",
        ];
        args.extend_from_slice(extra);
        pcam(d.path(), &args)
    };
    write("committed", 0.8123, "lr");
    write("fresh", 0.8154, "lr");
    let o = check(&["--complete"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout
            .contains("assets/tables/auc.md: largest deviation 62% of tolerance at `auc`[0]"),
        "{}",
        o.stdout
    );
    // a failing check: non-zero exit, every expected line on stderr
    let fails = |extra: &[&str], needles: &[&str]| {
        let o = check(extra);
        assert_ne!(o.code, 0);
        for n in needles {
            assert!(o.stderr.contains(n), "{n} not in:\n{}", o.stderr);
        }
    };
    fails(
        &["--same-machine"],
        &["assets/tables/auc.md or its numbers differ"],
    );

    write("fresh", 0.8223, "lr");
    fails(&[], &["beyond tolerance: `auc`[0]"]);

    write("fresh", 0.8123, "momentum");
    fails(
        &[],
        &[
            "assets/tables/config.md differs from a fresh run",
            "1 failure(s) among 1 exact and 1 training-derived",
        ],
    );
}
