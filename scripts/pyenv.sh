#!/usr/bin/env bash
# A Python virtualenv with the same TensorFlow as the C library kfash-tf links
# (tensorflow-cpu 2.18.1 from PyPI), for the SavedModel interop tests:
# tf.saved_model.load and saved_model_cli must read what 'kfash-tf export' writes,
# and for the Keras peer of 'make bench' (bench/peers/keras_bench.py, Keras pinned).
#
#   ${KFASH_TF_CACHE:-$HOME/.cache/kfash-tf}/pyenv-tf-<version>/
#     bin/python, bin/saved_model_cli, ...
#     .complete  stamp, written last
#
# The first run downloads about 310 MB of wheels (tensorflow-cpu and its
# dependencies; 1.4 GB installed, ~35 s on a fast link); later runs only check
# the stamp (a few ms). The venv is built in place (venvs cannot be moved:
# their scripts hold absolute paths), so a folder without the stamp is an
# interrupted install and is rebuilt.
#
# Usage:
#   scripts/pyenv.sh              ensure installed; progress on stderr, the python path on stdout
#   scripts/pyenv.sh --print-dir  print the venv folder (no install)
#   scripts/pyenv.sh --version    print the pinned TensorFlow version
#
# Exit status: 0 ready; 2 python3 is not installed (callers may skip);
# 1 anything else (no venv module, PyPI unreachable, ...), with the reason.
# KFASH_TF_BASE_PYTHON=/path/to/python3 picks the interpreter the venv is made from.
set -euo pipefail

PROG=pyenv.sh
VERSION=2.18.1 # the TensorFlow C library's version (scripts/libtensorflow.sh)
NAME="pyenv-tf-${VERSION}"
# Keras is pinned too: tensorflow-cpu only asks for keras>=3.5, and the
# benchmark's Keras peer must not change under it.
PIP_REQS=("tensorflow-cpu==${VERSION}" "keras==3.15.1")
NEED_FREE_MB=2500 # the venv takes about 1.4 GB
PY_VERSIONS="3.9 3.10 3.11 3.12"
WHY_PYTHON="the SavedModel interop checks and the Keras benchmark peer"
DOWNLOAD_NOTE="about 310 MB of downloads"

pyenv_installed_extra() { [ -x "$ENV_DIR/bin/saved_model_cli" ]; }

pyenv_verify() {
	[ -x "$ENV_DIR/bin/saved_model_cli" ] || { echo "no bin/saved_model_cli" >&2; return 1; }
	TF_CPP_MIN_LOG_LEVEL=3 "$ENV_DIR/bin/python" -c 'import tensorflow as tf; print(tf.__version__)'
}

# shellcheck source=scripts/pyenv-lib.sh
. "$(dirname "$0")/pyenv-lib.sh"
pyenv_main "$@"
