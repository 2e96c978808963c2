//! An rpath to the libtorch that torch-sys found (pip torch in `.venv`): the binary links
//! the pcam library, and so libtorch, and must start with no environment variables.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys reports where libtorch is");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
}
