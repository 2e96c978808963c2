# Sourced by the Makefile and scripts: the one place that says where libtorch comes from.
# torch-sys asks the .venv's python for pip torch's location; the binary then carries an rpath.
PCAM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VIRTUAL_ENV="$PCAM_ROOT/.venv"
export PATH="$VIRTUAL_ENV/bin:$HOME/.cargo/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
export HDF5_USE_FILE_LOCKING=FALSE

# Notebook kernel environment (evcxr): the dynamic loader must find libtorch for the
# cells' dylibs, and one EVCXR_TMPDIR lets every notebook reuse the compiled crates.
PCAM_TORCH_LIB="$(ls -d "$VIRTUAL_ENV"/lib/python3*/site-packages/torch/lib 2>/dev/null | head -n 1 || true)"
export PCAM_TORCH_LIB
export LD_LIBRARY_PATH="${PCAM_TORCH_LIB}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export EVCXR_TMPDIR="$PCAM_ROOT/target/evcxr"
# evcxr's startup file, notebooks/evcxr/init.evcxr, turns on its compilation cache
# (~/.cache/evcxr, at most 4 GB, keyed by the compiler's arguments with the target folder
# left out): a dependency compiled once for the notebooks is copied, not compiled, by the
# next clone or after `make clean`. The crate pcam itself is always compiled afresh.
export EVCXR_CONFIG_DIR="$PCAM_ROOT/notebooks/evcxr"
export JUPYTER_PATH="$VIRTUAL_ENV/share/jupyter"
export PCAM_KERNEL=pcam-rust
