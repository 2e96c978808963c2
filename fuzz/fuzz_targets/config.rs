//! The config resolver on arbitrary bytes: the input is a YAML layer file (and, after a
//! NUL byte, `key=value` overrides one per line). Any input must give a config or an
//! error, never a panic, and a resolved config must survive its own round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;

fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("pcam-fuzz-config-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("scratch folder");
    d.join("layer.yaml")
}

fuzz_target!(|data: &[u8]| {
    let (file, overrides) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[..0]),
    };
    let path = scratch();
    std::fs::write(&path, file).expect("write layer");
    let overrides: Vec<String> = String::from_utf8_lossy(overrides)
        .lines()
        .map(str::to_string)
        .collect();
    if let Ok(r) = pcam::config::resolve(&[path.clone()], &overrides) {
        // What pcam stores in a run folder must resolve again to the same config.
        std::fs::write(&path, &r.yaml).expect("write resolved");
        let again = pcam::config::resolve(&[path], &[]).expect("a resolved config resolves again");
        assert_eq!(again.sha256, r.sha256, "round trip changed the config");
    }
});
