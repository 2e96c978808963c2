//! The foundation's "done when" checks, through the real CLI on tiny synthetic data:
//! byte-identical synthesis per seed, inspection facts per variant, `.h5.gz` input,
//! the pixel policies on the course copy, config show, and an independent h5py read.

mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

const SIZES: &str = "train=120,valid=40,test=40";

fn synth(cwd: &Path, out: &str, seed: &str, variant: &str) {
    let o = pcam(
        cwd,
        &[
            "data",
            "synth",
            "--out",
            out,
            "--seed",
            seed,
            "--sizes",
            SIZES,
            "--variant",
            variant,
        ],
    );
    assert_eq!(o.code, 0, "synth failed: {}", o.stderr);
    assert!(o.stdout.contains("SYNTHETIC"), "{}", o.stdout);
}

fn hashes(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, pcam::fsutil::sha256_file(&p).unwrap())
        })
        .collect()
}

/// The `synthetic.json` ground truth of a generated dataset.
fn manifest(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("synthetic.json")).unwrap()).unwrap()
}

fn inspect_json(cwd: &Path, path: &str) -> Value {
    let o = pcam(cwd, &["data", "inspect", path, "--json"]);
    assert_eq!(o.code, 0, "inspect failed: {}", o.stderr);
    serde_json::from_str(&o.stdout).unwrap()
}

#[test]
fn same_seed_gives_identical_files_and_another_seed_does_not() {
    let d = tempfile::tempdir().unwrap();
    for v in ["pcam", "course"] {
        synth(d.path(), &format!("{v}-a"), "3", v);
        synth(d.path(), &format!("{v}-b"), "3", v);
        synth(d.path(), &format!("{v}-c"), "4", v);
        let a = hashes(&d.path().join(format!("{v}-a")));
        assert_eq!(a.len(), 10, "9 PCAM files + synthetic.json: {a:?}");
        assert_eq!(
            a,
            hashes(&d.path().join(format!("{v}-b"))),
            "{v}: same seed differs"
        );
        let c = hashes(&d.path().join(format!("{v}-c")));
        assert_ne!(
            a[&x_name("train")],
            c[&x_name("train")],
            "{v}: seed ignored"
        );
    }
}

#[test]
fn thread_count_does_not_change_the_bytes() {
    let d = tempfile::tempdir().unwrap();
    for (out, t) in [("t1", "1"), ("t3", "3")] {
        let o = pcam(
            d.path(),
            &[
                "data",
                "synth",
                "--out",
                out,
                "--sizes",
                SIZES,
                "--threads",
                t,
            ],
        );
        assert_eq!(o.code, 0, "{}", o.stderr);
    }
    assert_eq!(hashes(&d.path().join("t1")), hashes(&d.path().join("t3")));
}

#[test]
fn inspect_reports_float32_uncompressed_course_and_gzip_uint8_pcam() {
    let d = tempfile::tempdir().unwrap();
    synth(d.path(), "course", "1", "course");
    synth(d.path(), "pcam", "1", "pcam");
    let c = inspect_json(d.path(), "course");
    let train = &c["splits"][0];
    assert_eq!(train["split"], "train");
    assert_eq!(train["x"]["dtype"], "float32");
    assert_eq!(train["x"]["filters"], Value::Array(vec![]));
    assert_eq!(train["x"]["chunks"], Value::Null);
    let n = train["tiles"].as_u64().unwrap();
    assert_eq!(
        train["x"]["logical_bytes"].as_u64().unwrap(),
        n * 96 * 96 * 3 * 4
    );
    assert_eq!(train["x"]["storage_bytes"], train["x"]["logical_bytes"]);
    assert!(train["gzip_uint8"]["bytes"].as_u64().unwrap() < n * 96 * 96 * 3);
    assert!(c["synthetic"].as_str().unwrap().contains("SYNTHETIC"));

    // The injected out-of-range tiles are exactly the tiles inspect flags.
    let oor = manifest(&d.path().join("course"))["corruptions"]["out_of_range"]
        .as_array()
        .unwrap()
        .len() as u64;
    assert!(oor > 0);
    assert_eq!(train["pixels"]["bad_tiles"].as_u64().unwrap(), oor);

    let p = inspect_json(d.path(), "pcam");
    let x = &p["splits"][0]["x"];
    assert_eq!(x["dtype"], "uint8");
    assert_eq!(x["filters"][0], "gzip(4)");
    assert_eq!(x["chunks"][0], 32);
    assert!(x["storage_bytes"].as_u64().unwrap() < x["logical_bytes"].as_u64().unwrap());
    assert_eq!(p["splits"][0]["pixels"]["bad_tiles"], 0);
    assert_eq!(p["splits"].as_array().unwrap().len(), 3);

    let text = pcam(d.path(), &["data", "inspect", "course"]).stdout;
    assert!(
        text.contains("float32, contiguous (not chunked), filters: none"),
        "{text}"
    );
    assert!(text.contains("SYNTHETIC"), "{text}");
}

#[test]
fn inspect_accepts_a_single_file_and_gzipped_downloads() {
    let d = tempfile::tempdir().unwrap();
    synth(d.path(), "pcam", "2", "pcam");
    let one = inspect_json(d.path(), &format!("pcam/{}", x_name("valid")));
    assert_eq!(one["splits"][0]["tiles"], 40);
    assert!(one["splits"][0]["slides"].as_u64().unwrap() > 0);

    // The same split as .h5.gz files, decompressed into the cache on first use.
    std::fs::create_dir(d.path().join("gz")).unwrap();
    for name in [x_name("valid"), y_name("valid")] {
        let bytes = std::fs::read(d.path().join("pcam").join(&name)).unwrap();
        let f = std::fs::File::create(d.path().join("gz").join(format!("{name}.gz"))).unwrap();
        let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        std::io::Write::write_all(&mut e, &bytes).unwrap();
        e.finish().unwrap();
    }
    let gz = inspect_json(d.path(), "gz");
    assert_eq!(gz["splits"][0]["split"], "valid");
    assert_eq!(gz["splits"][0]["labels"], one["splits"][0]["labels"]);
    assert_eq!(gz["splits"][0]["pixels"], one["splits"][0]["pixels"]);
    let single = inspect_json(d.path(), &format!("gz/{}.gz", x_name("valid")));
    assert_eq!(single["splits"][0]["pixels"], one["splits"][0]["pixels"]);
    let cached = listing(&d.path().join(".cache-for-tests"));
    assert_eq!(cached.len(), 2, "{cached:?}");
}

#[test]
fn check_applies_the_pixel_policy_to_the_course_copy() {
    let d = tempfile::tempdir().unwrap();
    synth(d.path(), "course", "5", "course");
    let oor = manifest(&d.path().join("course"))["corruptions"]["out_of_range"]
        .as_array()
        .unwrap()
        .len() as u64;
    let check = |policy: &str| -> Value {
        let o = pcam(
            d.path(),
            &["data", "check", "--json", "data.dir=course", policy],
        );
        assert_eq!(o.code, 0, "{}", o.stderr);
        serde_json::from_str(&o.stdout).unwrap()
    };
    let r = check("data.invalid=drop");
    assert_eq!(r[0]["tiles"], 120);
    assert_eq!(r[0]["kept"].as_u64().unwrap(), 120 - oor);
    let r = check("data.invalid=clip");
    assert_eq!(r[0]["kept"], 120);
    assert_eq!(r[0]["pixels"]["bad_tiles"].as_u64().unwrap(), oor);
    let o = pcam(
        d.path(),
        &["data", "check", "data.dir=course", "data.invalid=error"],
    );
    assert_error(&o, &["train_x.h5", "out-of-range", "data.invalid"]);
}

#[test]
fn course_variant_carries_its_ground_truth() {
    let d = tempfile::tempdir().unwrap();
    synth(d.path(), "course", "6", "course");
    let m = manifest(&d.path().join("course"));
    assert_eq!(m["synthetic"], true);
    let c = &m["corruptions"];
    for k in [
        "blank",
        "saturated",
        "out_of_range",
        "trigger",
        "exact_duplicate_of_test",
        "near_duplicate_of_test",
    ] {
        assert!(!c[k].as_array().unwrap().is_empty(), "{k} empty");
    }
    // Imbalanced: fewer positives than negatives in train, balanced-ish elsewhere.
    let train = &m["splits"]["train"];
    assert!(train["positives"].as_u64().unwrap() * 2 < train["tiles"].as_u64().unwrap() + 20);
    // Train and valid share slides (by name) only in the course copy.
    let slides = |split: &str| -> std::collections::BTreeSet<String> {
        let text = std::fs::read_to_string(d.path().join(format!(
            "course/camelyonpatch_level_2_split_{split}_meta.csv"
        )))
        .unwrap();
        text.lines()
            .skip(1)
            .map(|l| l.rsplit(',').next().unwrap().to_string())
            .collect()
    };
    assert!(!slides("train").is_disjoint(&slides("valid")));
    assert!(slides("train").is_disjoint(&slides("test")));
}

#[test]
fn config_show_prints_yaml_and_hash_and_writes_them() {
    let d = tempfile::tempdir().unwrap();
    let o = pcam(
        d.path(),
        &[
            "config",
            "show",
            "train.lr=3e-4",
            "model.hidden=[128,64]",
            "--write",
            "out",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("lr: 0.0003"), "{}", o.stdout);
    assert!(o.stdout.contains("- 128\n  - 64"), "{}", o.stdout);
    let hash = o
        .stdout
        .lines()
        .last()
        .unwrap()
        .strip_prefix("# sha256: ")
        .unwrap()
        .to_string();
    let yaml = std::fs::read_to_string(d.path().join("out/config.yaml")).unwrap();
    assert_eq!(pcam::fsutil::sha256_hex(yaml.as_bytes()), hash);
    // Experiment files in the repository resolve.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = pcam(
        root,
        &[
            "-q",
            "config",
            "show",
            "--config",
            "configs/experiment/cnn_course.yaml",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.contains("kind: cnn") && o.stdout.contains("invalid: drop"),
        "{}",
        o.stdout
    );
}

#[test]
fn h5py_reads_what_pcam_writes() {
    let d = tempfile::tempdir().unwrap();
    synth(d.path(), "pcam", "8", "pcam");
    synth(d.path(), "course", "8", "course");
    let script = r#"
import csv, sys, h5py, numpy as np
for variant, dtype in (("pcam", "uint8"), ("course", "float32")):
    for split in ("train", "valid", "test"):
        base = f"{variant}/camelyonpatch_level_2_split_{split}"
        x = h5py.File(base + "_x.h5", "r")["x"]
        y = h5py.File(base + "_y.h5", "r")["y"][:].reshape(-1)
        assert x.dtype == dtype and x.shape[1:] == (96, 96, 3), (x.dtype, x.shape)
        assert (x.compression == "gzip") == (variant == "pcam"), x.compression
        rows = list(csv.DictReader(open(base + "_meta.csv")))
        assert len(rows) == x.shape[0] == y.shape[0]
        if variant == "pcam":
            assert all((r["center_tumor_patch"] == "True") == (v == 1) for r, v in zip(rows, y))
            a = x[:]
            assert a.std() > 10 and 0 <= a.min() and a.max() <= 255
print("ok")
"#;
    let o = std::process::Command::new(venv_python())
        .arg("-c")
        .arg(script)
        .current_dir(d.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
