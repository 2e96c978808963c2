# Sourced by the Makefile and scripts: the one place that says where libtorch comes from.
# torch-sys asks the .venv's python for pip torch's location; the binary then carries an rpath.
PCAM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VIRTUAL_ENV="$PCAM_ROOT/.venv"
export PATH="$VIRTUAL_ENV/bin:$HOME/.cargo/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
export HDF5_USE_FILE_LOCKING=FALSE
