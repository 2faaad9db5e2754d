#!/usr/bin/env bash
# A Python virtualenv with PyTorch, the CPU peer of 'make bench' (bench/peers/torch_bench.py).
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

TORCH_VERSION=2.15.0
TORCH_PIP_REQ="torch==${TORCH_VERSION}"
NEED_FREE_MB=9000 # downloads + the installed venv (about 6 GB)

PROG=pyenv-torch.sh
NAME="pyenv-torch-${TORCH_VERSION}"

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

[ -n "${KFASH_TF_CACHE:-}" ] || [ -n "${HOME:-}" ] || die "neither KFASH_TF_CACHE nor HOME is set; set KFASH_TF_CACHE=/some/cache/dir"
CACHE_ROOT=${KFASH_TF_CACHE:-$HOME/.cache/kfash-tf}
case $CACHE_ROOT in /*) ;; *) CACHE_ROOT=$PWD/$CACHE_ROOT ;; esac
CACHE_ROOT=${CACHE_ROOT%/}
ENV_DIR="$CACHE_ROOT/$NAME"
BASE_PYTHON=${KFASH_TF_BASE_PYTHON:-python3}

installed() {
	[ -f "$ENV_DIR/.complete" ] && [ -x "$ENV_DIR/bin/python" ]
}

install() {
	installed && return 0

	if ! command -v "$BASE_PYTHON" >/dev/null 2>&1; then
		printf '%s: %s not found: the PyTorch benchmark peer needs Python 3.10-3.13 with the venv module\n' "$PROG" "$BASE_PYTHON" >&2
		exit 2
	fi
	local pyver
	pyver=$("$BASE_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])') ||
		die "$BASE_PYTHON does not run"
	case $pyver in
	3.10 | 3.11 | 3.12 | 3.13) ;;
	*) die "$BASE_PYTHON is Python $pyver, but torch $TORCH_VERSION is pinned for Python 3.10-3.13 here; set KFASH_TF_BASE_PYTHON=/path/to/python3.11" ;;
	esac
	"$BASE_PYTHON" -c 'import venv, ensurepip' 2>/dev/null ||
		die "$BASE_PYTHON has no working venv module (Debian/Ubuntu: apt-get install python3-venv)"

	mkdir -p "$CACHE_ROOT" || die "cannot create the cache dir $CACHE_ROOT; set KFASH_TF_CACHE to a writable dir"
	# Serialise concurrent installs; the loser finds the stamp.
	if command -v flock >/dev/null 2>&1; then
		exec 9>"$CACHE_ROOT/.$NAME.lock"
		if ! flock -n 9; then
			log "waiting for another install of $NAME to finish ..."
			flock 9
		fi
		installed && return 0
	fi

	local avail_mb
	avail_mb=$(df -Pk "$CACHE_ROOT" 2>/dev/null | awk 'NR == 2 { print int($4 / 1024) }') || avail_mb=
	if [ -n "$avail_mb" ] && [ "$avail_mb" -lt "$NEED_FREE_MB" ]; then
		die "not enough disk space in $CACHE_ROOT: the venv needs about $NEED_FREE_MB MB, $avail_mb MB free; set KFASH_TF_CACHE to another disk"
	fi

	rm -rf "$ENV_DIR"
	trap 'rm -rf "$ENV_DIR"' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	log "creating a virtualenv with Python $pyver in $ENV_DIR ..."
	"$BASE_PYTHON" -m venv "$ENV_DIR" >&2 || die "'$BASE_PYTHON -m venv $ENV_DIR' failed (output above)"
	local pipflags=(--no-cache-dir --only-binary=:all: --disable-pip-version-check)
	if [ -n "${CI:-}" ] || [ ! -t 2 ]; then
		pipflags+=(--progress-bar off)
	fi
	log "installing $TORCH_PIP_REQ and its dependencies from PyPI (about 3 GB of downloads, once) ..."
	"$ENV_DIR/bin/python" -m pip install "${pipflags[@]}" "$TORCH_PIP_REQ" numpy >&2 ||
		die "pip install $TORCH_PIP_REQ into $ENV_DIR failed (pip output above); check access to PyPI and run scripts/pyenv-torch.sh again"
	local got
	got=$("$ENV_DIR/bin/python" -c 'import torch; torch.ones(2, 2) @ torch.ones(2, 2); print(torch.__version__.split("+")[0])') ||
		die "torch does not import in $ENV_DIR (output above)"
	[ "$got" = "$TORCH_VERSION" ] || die "$ENV_DIR has torch $got, expected $TORCH_VERSION"

	printf 'version=%s\npython=%s\ninstalled=%s\n' "$TORCH_VERSION" "$pyver" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$ENV_DIR/.complete"
	trap - EXIT
	log "installed torch $TORCH_VERSION in $ENV_DIR"
}

case "${1:-}" in
--print-dir)
	printf '%s\n' "$ENV_DIR"
	;;
--version)
	printf '%s\n' "$TORCH_VERSION"
	;;
"")
	install
	printf '%s\n' "$ENV_DIR/bin/python"
	;;
-h | --help)
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
	;;
*)
	die "unknown argument '$1' (use --print-dir, --version or no argument)"
	;;
esac
