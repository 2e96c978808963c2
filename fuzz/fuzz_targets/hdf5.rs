//! The PCAM HDF5 reader on arbitrary bytes (seeded with small valid x files): opening,
//! inspecting and reading the first block must give tiles or a one-line error, never a
//! panic, a crash or an unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pcam::data::hdf5::{Images, OpenOptions};
use pcam::data::InvalidPolicy;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("pcam-fuzz-hdf5-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let path = dir.join("camelyonpatch_level_2_split_test_x.h5");
    std::fs::write(&path, data).expect("write input");
    let opts = OpenOptions {
        cache_dir: dir.join("cache"),
        chunk_cache_mb: 1,
        progress: pcam::progress::Progress { quiet: true },
    };
    if let Ok(images) = Images::open(&path, &opts) {
        if let Some(r) = images.block_ranges().into_iter().next() {
            for policy in [InvalidPolicy::Clip, InvalidPolicy::Error] {
                if let Ok(block) = images.read_block(r.clone(), policy) {
                    assert!(block.indices.len() <= r.len(), "more tiles than asked for");
                    assert_eq!(block.pixels.len(), block.indices.len() * 96 * 96 * 3);
                }
            }
        }
    }
    let _ = pcam::data::inspect::inspect(&path, &opts);
});
