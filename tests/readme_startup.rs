//! README's table of what opening a notebook costs is the one the committed measurements
//! give (`results/notebooks/startup.json`, written by `scripts/notebooks.sh measure`): a
//! re-measurement that is not copied into the README, or a number edited by hand, fails.

use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The cases README shows, in its order, with the words it uses for them.
const CASES: [(&str, &str); 4] = [
    (
        "warm",
        "warm: `target/evcxr` up to date (after `make lab` or `make notebooks`)",
    ),
    (
        "stale_pcam",
        "pcam's sources newer than `target/evcxr` (`touch src/lib.rs`)",
    ),
    (
        "cold_clone",
        "cold: new clone, evcxr's compile cache filled by an earlier one",
    ),
    (
        "cold_no_cache",
        "cold: new machine, evcxr's compile cache empty",
    ),
];

fn seconds(v: &serde_json::Value) -> String {
    let Some(s) = v.as_f64() else {
        return "not measured".into();
    };
    if s >= 120.0 {
        format!("{}:{:02} min", s as u64 / 60, s as u64 % 60)
    } else {
        format!("{s:.1} s")
    }
}

fn table(measured: &serde_json::Value) -> String {
    let mut t = String::from(
        "| target/evcxr | kernel start | setup cell | first result | then a one-line cell |\n|---|---|---|---|---|\n",
    );
    for (case, words) in CASES {
        let c = &measured["cases"][case];
        assert!(
            c.is_object(),
            "results/notebooks/startup.json has no case {case}"
        );
        t.push_str(&format!(
            "| {words} | {} | {} | {} | {} |\n",
            seconds(&c["kernel_start_seconds"]),
            seconds(&c["setup_cell_seconds"]),
            seconds(&c["first_result_seconds"]),
            seconds(&c["one_line_cell_seconds"]),
        ));
    }
    t
}

#[test]
fn readme_startup_table_is_the_measured_one() {
    let path = root().join("results/notebooks/startup.json");
    let text = std::fs::read_to_string(&path).expect("results/notebooks/startup.json");
    let measured: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let expected = table(&measured);
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    assert!(
        readme.contains(&expected),
        "README.md's notebook start-up table differs from {}; it should read:\n{expected}",
        path.display()
    );
    assert!(
        readme.contains(&format!(
            "({}, measured by",
            measured["machine"].as_str().unwrap_or("?")
        )),
        "README.md should name the machine the start-up times were measured on: {}",
        measured["machine"]
    );
}
