//! Every bad input named in the foundation issue, driven through the real CLI: each
//! must end with one `error:` line naming the file or field, exit code 2, no panic,
//! and no file written.

mod common;
use common::*;
use std::path::Path;

/// Runs `pcam data inspect <dir>` and checks the error and that nothing was written.
fn inspect_fails(dir: &Path, needles: &[&str]) {
    let before = listing(dir);
    let o = pcam(dir, &["data", "inspect", "."]);
    assert_error(&o, needles);
    assert_eq!(listing(dir), before, "inspect wrote files");
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn missing_file() {
    let d = tmp();
    valid_split(d.path(), "train", 2);
    std::fs::remove_file(d.path().join(y_name("train"))).unwrap();
    inspect_fails(
        d.path(),
        &["camelyonpatch_level_2_split_train_y.h5", "file not found"],
    );
    let o = pcam(d.path(), &["data", "inspect", "nowhere/x.h5"]);
    assert_error(&o, &["nowhere/x.h5", "file not found"]);
}

#[test]
fn folder_without_pcam_files() {
    let d = tmp();
    inspect_fails(d.path(), &["no PCAM files here"]);
}

#[test]
fn not_hdf5() {
    let d = tmp();
    valid_split(d.path(), "train", 2);
    std::fs::write(
        d.path().join(x_name("train")),
        "this is a text file, not HDF5\n",
    )
    .unwrap();
    inspect_fails(d.path(), &["train_x.h5", "not an HDF5 file"]);
}

#[test]
fn gzip_file_under_an_h5_name() {
    let d = tmp();
    valid_split(d.path(), "train", 2);
    std::fs::write(d.path().join(x_name("train")), b"\x1f\x8b\x08\x00rest").unwrap();
    inspect_fails(d.path(), &["train_x.h5", "gzip-compressed", ".h5.gz"]);
}

/// The first 256 bytes of an x file that `make fuzz` found (the rest zeros, 93,767 bytes in
/// all): its root group's local heap claims a size that makes libhdf5 1.10 copy past its
/// buffer inside `H5Dopen` — a SIGSEGV in the C library, which pcam must turn into one line.
const HDF5_CRASHER: &str = "894844460d0a1a0a000000000008080004001000000000000000000000000000ffffffffffffffffb66d010000000000\
    ffffffffffffffff0000000000000000600000000000000001000000000000008800000000000000a802000000000000\
    0100010001000000180000000000000011001000000000008800000000000000ffffffffffffffffffffffffffffffff\
    ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
    ffffffffffffffffffffffffffffffffffffffffffffffffffffffa8020000000000005452454500000100ffffffffff\
    ffffffffffffffffffffff0000000000";

#[test]
fn a_file_that_crashes_the_hdf5_library() {
    let d = tmp();
    valid_split(d.path(), "train", 2);
    let hex: String = HDF5_CRASHER.split_whitespace().collect();
    let mut bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(bytes.len(), 256);
    bytes.resize(93_767, 0);
    std::fs::write(d.path().join(x_name("train")), &bytes).unwrap();
    inspect_fails(
        d.path(),
        &[
            "train_x.h5",
            "corrupt HDF5 file",
            "HDF5 library crashed (signal 11)",
        ],
    );
}

#[test]
fn truncated_file() {
    let d = tmp();
    valid_split(d.path(), "train", 8);
    let x = d.path().join(x_name("train"));
    let bytes = std::fs::read(&x).unwrap();
    std::fs::write(&x, &bytes[..bytes.len() / 2]).unwrap();
    inspect_fails(d.path(), &["train_x.h5", "truncated"]);
}

#[test]
fn missing_dataset_key() {
    let d = tmp();
    valid_split(d.path(), "train", 2);
    let px = vec![0u8; 2 * 96 * 96 * 3];
    write_ds(
        &d.path().join(x_name("train")),
        "images",
        &[2, 96, 96, 3],
        &px,
    );
    inspect_fails(d.path(), &["train_x.h5", "no dataset `x`", "`images`"]);
}

#[test]
fn x_y_length_mismatch() {
    let d = tmp();
    valid_split(d.path(), "train", 4);
    write_ds(
        &d.path().join(y_name("train")),
        "y",
        &[3, 1, 1, 1],
        &[0u8, 1, 0],
    );
    inspect_fails(d.path(), &["train_y.h5", "3 labels", "4 tiles"]);
}

/// Replaces the train x file with zeros of `shape` and expects `needles` in the error.
fn wrong_x_shape(shape: &[usize], needles: &[&str]) {
    let d = tmp();
    valid_split(d.path(), "train", shape[0]);
    let zeros = vec![0u8; shape.iter().product()];
    write_ds(&d.path().join(x_name("train")), "x", shape, &zeros);
    inspect_fails(d.path(), needles);
}

#[test]
fn grayscale_tiles() {
    wrong_x_shape(&[2, 96, 96], &["train_x.h5", "(2,96,96)", "grayscale"]);
    wrong_x_shape(&[2, 96, 96, 1], &["train_x.h5", "(2,96,96,1)", "grayscale"]);
}

#[test]
fn tiles_of_64_by_64() {
    wrong_x_shape(&[2, 64, 64, 3], &["train_x.h5", "64x64", "96x96"]);
}

#[test]
fn channels_first() {
    wrong_x_shape(&[2, 3, 96, 96], &["train_x.h5", "channels-first"]);
}

#[test]
fn labels_outside_zero_one() {
    let d = tmp();
    valid_split(d.path(), "train", 3);
    write_ds(
        &d.path().join(y_name("train")),
        "y",
        &[3],
        &[0.0f32, 2.0, 1.0],
    );
    inspect_fails(d.path(), &["train_y.h5", "not 0 or 1", "index 1 = 2"]);
}

#[test]
fn empty_split() {
    let d = tmp();
    write_ds::<u8>(&d.path().join(x_name("valid")), "x", &[0, 96, 96, 3], &[]);
    write_ds::<u8>(&d.path().join(y_name("valid")), "y", &[0], &[]);
    inspect_fails(d.path(), &["valid_x.h5", "split is empty"]);
}

#[test]
fn nan_pixels_under_the_error_policy() {
    let d = tmp();
    valid_split(d.path(), "train", 3);
    let mut px = vec![100.0f32; 3 * 96 * 96 * 3];
    px[96 * 96 * 3 + 7] = f32::NAN;
    write_ds(&d.path().join(x_name("train")), "x", &[3, 96, 96, 3], &px);
    let before = listing(d.path());
    let o = pcam(
        d.path(),
        &["data", "check", "data.dir=.", "data.invalid=error"],
    );
    assert_error(&o, &["train_x.h5", "tile 1", "1 NaN", "data.invalid"]);
    assert_eq!(listing(d.path()), before);
    // The same file passes under clip and drop, with the NaN counted.
    let o = pcam(
        d.path(),
        &["data", "check", "data.dir=.", "data.invalid=drop"],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.contains("3 tiles,       2 kept, 1 dropped"),
        "{}",
        o.stdout
    );
}

#[test]
fn corrupt_meta_csv() {
    let d = tmp();
    valid_split(d.path(), "train", 3);
    std::fs::write(
        d.path().join("camelyonpatch_level_2_split_train_meta.csv"),
        "coord_y,coord_x,wsi\n1,2,a\n",
    )
    .unwrap();
    inspect_fails(d.path(), &["train_meta.csv", "1 rows", "3 tiles"]);
}

fn config_fails(yaml: &str, extra: &[&str], needles: &[&str]) {
    let d = tmp();
    std::fs::write(d.path().join("exp.yaml"), yaml).unwrap();
    let mut args = vec!["config", "show", "--config", "exp.yaml"];
    args.extend_from_slice(extra);
    let before = listing(d.path());
    let o = pcam(d.path(), &args);
    assert_error(&o, needles);
    assert!(
        o.stdout.is_empty(),
        "printed a config despite the error: {}",
        o.stdout
    );
    assert_eq!(listing(d.path()), before);
}

#[test]
fn yaml_syntax_error() {
    config_fails(
        "train: [unclosed\n",
        &[],
        &["exp.yaml", "invalid YAML", "line"],
    );
}

#[test]
fn unknown_key() {
    config_fails(
        "train:\n  lrr: 0.1\n",
        &[],
        &["`train.lrr`", "unknown key", "exp.yaml"],
    );
    config_fails(
        "",
        &["train.lrr=0.1"],
        &["`train.lrr`", "unknown key", "override train.lrr=0.1"],
    );
}

#[test]
fn wrong_type() {
    config_fails(
        "train:\n  batch_size: many\n",
        &[],
        &["`train.batch_size`", "wrong type", "exp.yaml"],
    );
    config_fails(
        "model:\n  hidden: 128\n",
        &[],
        &["`model.hidden`", "wrong type"],
    );
}

#[test]
fn out_of_range_value() {
    config_fails(
        "",
        &["train.lr=-1"],
        &["`train.lr`", "> 0", "override train.lr=-1"],
    );
    config_fails(
        "model:\n  dropout: 1.5\n",
        &[],
        &["`model.dropout`", "[0, 1)", "exp.yaml"],
    );
    config_fails(
        "train:\n  batch_size: 0\n",
        &[],
        &["`train.batch_size`", "at least 1"],
    );
    config_fails(
        "",
        &["eval.min_recall=1.5"],
        &["`eval.min_recall`", "(0, 1]"],
    );
    config_fails(
        "eval:\n  threshold_policy: best\n",
        &[],
        &["`eval.threshold_policy`", "exp.yaml"],
    );
}

#[test]
fn missing_config_file_and_data_dir() {
    let d = tmp();
    let o = pcam(d.path(), &["config", "show", "--config", "nope.yaml"]);
    assert_error(&o, &["nope.yaml", "file not found"]);
    let o = pcam(d.path(), &["data", "check", "data.dir=absent"]);
    assert_error(&o, &["`data.dir`", "absent", "does not exist"]);
}

#[test]
fn synth_refuses_to_overwrite_and_bad_sizes() {
    let d = tmp();
    let o = pcam(
        d.path(),
        &[
            "data",
            "synth",
            "--out",
            "ds",
            "--sizes",
            "train=8,valid=2,test=2",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let before: Vec<_> = listing(d.path())
        .iter()
        .map(|p| (p.clone(), std::fs::read(p).ok()))
        .collect();
    let o = pcam(
        d.path(),
        &[
            "data",
            "synth",
            "--out",
            "ds",
            "--seed",
            "9",
            "--sizes",
            "train=8,valid=2,test=2",
        ],
    );
    assert_error(&o, &["already exists", "--force"]);
    let o = pcam(
        d.path(),
        &["data", "synth", "--out", "ds2", "--sizes", "train=eight"],
    );
    assert_error(&o, &["--sizes", "eight"]);
    assert!(!d.path().join("ds2").join(x_name("train")).exists());
    let after: Vec<_> = listing(d.path())
        .iter()
        .filter(|p| !p.starts_with(d.path().join("ds2")))
        .map(|p| (p.clone(), std::fs::read(p).ok()))
        .collect();
    assert_eq!(before, after, "a failed synth changed existing files");
}

#[test]
fn synth_into_an_unwritable_place_leaves_nothing() {
    let d = tmp();
    std::fs::write(d.path().join("blocker"), "a file where a folder should be").unwrap();
    let o = pcam(
        d.path(),
        &[
            "data",
            "synth",
            "--out",
            "blocker/ds",
            "--sizes",
            "train=4,valid=2,test=2",
        ],
    );
    assert_error(&o, &["blocker/ds"]);
    assert_eq!(listing(d.path()).len(), 1);
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let d = tempfile::tempdir().unwrap();
    let o = pcam(
        d.path(),
        &[
            "-q",
            "data",
            "synth",
            "--out",
            "s",
            "--sizes",
            "train=64,valid=32,test=32",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    // `head` closes the pipe after a few bytes; the later runs write into a closed pipe and
    // must end quietly instead of panicking on the broken pipe.
    let pcam_bin = env!("CARGO_BIN_EXE_pcam");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "(for i in 1 2 3; do '{pcam_bin}' data inspect s; done) | head -c 5 >/dev/null"
        ))
        .current_dir(d.path())
        .env("PCAM_CACHE", d.path().join(".cache"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
}

#[test]
fn tracking_commands_refuse_bad_input_in_one_line() {
    let d = tmp();
    let o = pcam(d.path(), &["tracking", "sync", "nowhere"]);
    assert_error(&o, &["nowhere", "file not found"]);
    let o = pcam(d.path(), &["tracking", "list", "--experiment", "e"]);
    assert_error(&o, &["MLFLOW_TRACKING_URI"]);
    let o = pcam(
        d.path(),
        &[
            "tracking",
            "list",
            "--uri",
            "ftp://host",
            "--experiment",
            "e",
        ],
    );
    assert_error(&o, &["ftp://host", "http"]);
    std::fs::create_dir_all(d.path().join("full")).unwrap();
    std::fs::write(d.path().join("full/f"), "x").unwrap();
    let o = pcam(
        d.path(),
        &[
            "tracking",
            "fetch",
            "--uri",
            "http://127.0.0.1:9",
            "--run-id",
            "r",
            "--out",
            "full",
        ],
    );
    assert_error(&o, &["full", "already holds files"]);
    let o = pcam(
        d.path(),
        &[
            "tracking",
            "server",
            "start",
            "--dir",
            "m",
            "--mlflow",
            "/no/mlflow",
        ],
    );
    assert_error(&o, &["/no/mlflow", "file not found"]);
    let o = pcam(d.path(), &["tracking", "server", "status", "--dir", "m"]);
    assert_error(&o, &["no MLflow server running"]);
    for (spec, needle) in [("1", "at least two"), ("1,1", "repeats"), ("a,2", "`a`")] {
        let o = pcam(d.path(), &["train", "--seeds", spec]);
        assert_error(&o, &["--seeds", needle]);
    }
    let o = pcam(
        d.path(),
        &["train", "data.dir=d", "run.tracking_uri=file:///x"],
    );
    assert_error(&o, &["run.tracking_uri", "http"]);
}

#[test]
fn bench_throughput_and_report_bench_refuse_bad_input_in_one_line() {
    let d = tmp();
    ok(
        d.path(),
        "-q data synth --out data --variant pcam --seed 1 --sizes train=8,valid=8,test=8",
    );
    std::fs::write(
        d.path().join("b.yaml"),
        "batch_sizes: [1]\nmodels:\n  - {name: m, kind: mlp, hiden: [8]}\n",
    )
    .unwrap();
    let o = pcam(
        d.path(),
        &["bench", "throughput", "--spec", "b.yaml", "data.dir=data"],
    );
    assert_error(&o, &["b.yaml", "models[0]", "hiden"]);
    std::fs::write(
        d.path().join("c.yaml"),
        "batch_sizes: [1]\nmodels:\n  - {name: m, kind: cnn, hidden: [8]}\n",
    )
    .unwrap();
    let o = pcam(
        d.path(),
        &["bench", "throughput", "--spec", "c.yaml", "data.dir=data"],
    );
    assert_error(&o, &["c.yaml", "models[0].channels"]);
    let o = pcam(
        d.path(),
        &["bench", "throughput", "--batch-sizes", "0", "data.dir=data"],
    );
    assert_error(&o, &["batch_sizes"]);
    let o = pcam(
        d.path(),
        &["bench", "throughput", "--models", "resnet", "data.dir=data"],
    );
    assert_error(&o, &["--models", "resnet", "mlp, cnn"]);
    let o = pcam(d.path(), &["bench", "throughput", "data.dir=nowhere"]);
    assert_error(&o, &["nowhere"]);
    assert!(
        !d.path().join("results").exists(),
        "no result file from a failed run"
    );

    std::fs::create_dir_all(d.path().join("empty")).unwrap();
    let o = pcam(
        d.path(),
        &["report", "bench", "--dir", "empty", "--assets", "a"],
    );
    assert_error(&o, &["empty", "no throughput-*.json"]);
    std::fs::create_dir_all(d.path().join("bad")).unwrap();
    std::fs::write(d.path().join("bad/throughput-x.json"), "{\"kind\": 3}").unwrap();
    let o = pcam(
        d.path(),
        &["report", "bench", "--dir", "bad", "--assets", "a"],
    );
    assert_error(&o, &["throughput-x.json", "not a pcam bench result"]);
}
