//! Synthetic PCAM generation speed: `cargo bench --bench synth`.
//! Reports tiles/s for rendering alone (one thread) and for whole datasets written to
//! disk with 2 threads, per variant. Target: >= 2,000 tiles/s on 2 cores (pcam variant).

use pcam::data::synth::{self, Sizes, SynthOptions, Variant};
use pcam::progress::Progress;
use std::time::Instant;

fn main() {
    let n_render = 2000;
    let t = Instant::now();
    let mut sink = 0u64;
    for i in 0..n_render {
        let px = synth::render_tile_for_bench(1, i);
        sink = sink.wrapping_add(px[i % px.len()] as u64);
    }
    let dt = t.elapsed().as_secs_f64();
    println!(
        "render only, 1 thread: {n_render} tiles in {dt:.2}s = {:.0} tiles/s (checksum {sink})",
        n_render as f64 / dt
    );
    for variant in [Variant::Pcam, Variant::Course] {
        let dir = tempfile::tempdir().expect("temp dir");
        let sizes = Sizes {
            train: 8192,
            valid: 1024,
            test: 1024,
        };
        let opts = SynthOptions {
            out: dir.path().join("d"),
            seed: 1,
            sizes,
            variant,
            threads: 2,
            force: false,
            progress: Progress { quiet: true },
        };
        let r = synth::generate(&opts).expect("generation");
        println!(
            "{variant:?} variant, 2 threads, written: {} tiles in {:.2}s = {:.0} tiles/s",
            r.tiles,
            r.seconds,
            r.tiles as f64 / r.seconds
        );
    }
}
