//! Link-time set-up for pcam:
//! - an rpath to the libtorch that torch-sys found (pip torch in `.venv`), so
//!   `target/release/pcam` runs with no environment variables;
//! - libtorch_cuda re-linked with `--no-as-needed`, because with `--as-needed` the
//!   linker drops it (nothing references it directly) and CUDA then looks absent;
//! - a small C++ shim for libtorch switches tch does not bind (deterministic
//!   algorithms), compiled against the headers that ship inside pip torch.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-changed=src/shim/determinism.cpp");
    let lib = PathBuf::from(
        std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys reports where libtorch is"),
    );
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
    // Recorded in run manifests: pip torch's own version string.
    let version = std::fs::read_to_string(lib.parent().unwrap_or(&lib).join("version.py"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("__version__"))
                .map(|l| l.split('\'').nth(1).unwrap_or("unknown").to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=PCAM_TORCH_VERSION={version}");
    let include = lib
        .parent()
        .expect("libtorch lib has a parent")
        .join("include");
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .file("src/shim/determinism.cpp")
        .compile("pcam_shim");
}
