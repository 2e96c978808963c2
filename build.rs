//! Link-time set-up for the `pcam` binary: an rpath to the libtorch that torch-sys
//! found (pip torch in `.venv`), so `target/release/pcam` runs with no environment
//! variables; and libtorch_cuda re-linked with `--no-as-needed`, because with
//! `--as-needed` the linker drops it (nothing references it directly) and CUDA then
//! looks absent on a GPU machine.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        if std::path::Path::new(&dir).join("libtorch_cuda.so").exists() {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        }
    }
}
