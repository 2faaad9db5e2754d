#!/usr/bin/env bash
# A Python virtualenv with PyTorch, the CPU peer of 'make bench'
# (bench/peers/torch_bench.py) and 'make parity' (bench/peers/torch_train.py).
#
#   ${KFASH_TF_CACHE:-$HOME/.cache/kfash-tf}/pyenv-torch-<version>/
#     bin/python, ...
#     .complete  stamp, written last
#
# PyPI's Linux x86_64 torch wheel is the CUDA build: it will not even import
# without the nvidia-* wheels it depends on (libcudart, cuBLAS, ... are loaded
# at import time), and PyTorch's own CPU-only index is not a package registry
# this project may rely on. So this installs the pinned torch with all its
# dependencies from PyPI: about 3 GB of downloads (6 GB installed), once; the
# benchmark runs it on the CPU (no GPU is used or needed). Later runs only
# check the stamp. Like scripts/pyenv.sh, the venv is built in place and a
# folder without the stamp is an interrupted install, rebuilt.
#
# Usage:
#   scripts/pyenv-torch.sh              ensure installed; progress on stderr, the python path on stdout
#   scripts/pyenv-torch.sh --print-dir  print the venv folder (no install)
#   scripts/pyenv-torch.sh --version    print the pinned torch version
#
# Exit status: 0 ready; 2 python3 is not installed (callers may skip);
# 1 anything else (no venv module, PyPI unreachable, no disk space, ...).
# KFASH_TF_BASE_PYTHON=/path/to/python3 picks the interpreter the venv is made from.
set -euo pipefail

PROG=pyenv-torch.sh
VERSION=2.15.0
NAME="pyenv-torch-${VERSION}"
# pillow decodes the photos in the parity peer (bench/peers/torch_train.py).
PIP_REQS=("torch==${VERSION}" numpy pillow)
NEED_FREE_MB=9000 # downloads + the installed venv (about 6 GB)
PY_VERSIONS="3.10 3.11 3.12 3.13"
WHY_PYTHON="the PyTorch benchmark peer"
DOWNLOAD_NOTE="about 3 GB of downloads, once"

# A venv from before pillow was in PIP_REQS lacks it: not installed, rebuilt.
pyenv_installed_extra() { compgen -G "$ENV_DIR/lib/python3.*/site-packages/PIL/__init__.py" >/dev/null; }

pyenv_verify() {
	"$ENV_DIR/bin/python" -c 'import PIL.Image, numpy, torch; torch.ones(2, 2) @ torch.ones(2, 2); print(torch.__version__.split("+")[0])'
}

# shellcheck source=scripts/pyenv-lib.sh
. "$(dirname "$0")/pyenv-lib.sh"
pyenv_main "$@"
