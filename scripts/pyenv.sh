#!/usr/bin/env bash
# A Python virtualenv with the same TensorFlow as the C library kfash-tf links
# (tensorflow-cpu 2.18.1 from PyPI), for the SavedModel interop tests:
# tf.saved_model.load and saved_model_cli must read what 'kfash-tf export' writes.
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

TF_VERSION=2.18.1
TF_PIP_REQ="tensorflow-cpu==${TF_VERSION}"
NEED_FREE_MB=2500 # the venv takes about 1.4 GB

PROG=pyenv.sh
NAME="pyenv-tf-${TF_VERSION}"

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

[ -n "${KFASH_TF_CACHE:-}" ] || [ -n "${HOME:-}" ] || die "neither KFASH_TF_CACHE nor HOME is set; set KFASH_TF_CACHE=/some/cache/dir"
CACHE_ROOT=${KFASH_TF_CACHE:-$HOME/.cache/kfash-tf}
case $CACHE_ROOT in /*) ;; *) CACHE_ROOT=$PWD/$CACHE_ROOT ;; esac
CACHE_ROOT=${CACHE_ROOT%/}
ENV_DIR="$CACHE_ROOT/$NAME"
BASE_PYTHON=${KFASH_TF_BASE_PYTHON:-python3}

installed() {
	[ -f "$ENV_DIR/.complete" ] && [ -x "$ENV_DIR/bin/python" ] && [ -x "$ENV_DIR/bin/saved_model_cli" ]
}

install() {
	installed && return 0

	if ! command -v "$BASE_PYTHON" >/dev/null 2>&1; then
		printf '%s: %s not found: the SavedModel interop checks need Python 3.9-3.12 with the venv module\n' "$PROG" "$BASE_PYTHON" >&2
		exit 2
	fi
	local pyver
	pyver=$("$BASE_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])') ||
		die "$BASE_PYTHON does not run"
	case $pyver in
	3.9 | 3.10 | 3.11 | 3.12) ;;
	*) die "$BASE_PYTHON is Python $pyver, but tensorflow-cpu $TF_VERSION has wheels for Python 3.9-3.12 only; set KFASH_TF_BASE_PYTHON=/path/to/python3.11" ;;
	esac
	"$BASE_PYTHON" -c 'import venv, ensurepip' 2>/dev/null ||
		die "$BASE_PYTHON has no working venv module (Debian/Ubuntu: apt-get install python3-venv)"

	mkdir -p "$CACHE_ROOT" || die "cannot create the cache dir $CACHE_ROOT; set KFASH_TF_CACHE to a writable dir"
	# Serialise concurrent installs (two test binaries); the loser finds the stamp.
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

	# Whatever is there lacks the stamp: an interrupted install.
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
	log "installing $TF_PIP_REQ and its dependencies from PyPI (about 310 MB of downloads) ..."
	"$ENV_DIR/bin/python" -m pip install "${pipflags[@]}" "$TF_PIP_REQ" >&2 ||
		die "pip install $TF_PIP_REQ into $ENV_DIR failed (pip output above); check access to PyPI (or your pip index settings) and run scripts/pyenv.sh again"
	local got
	got=$(TF_CPP_MIN_LOG_LEVEL=3 "$ENV_DIR/bin/python" -c 'import tensorflow as tf; print(tf.__version__)') ||
		die "tensorflow does not import in $ENV_DIR (output above)"
	[ "$got" = "$TF_VERSION" ] || die "$ENV_DIR has tensorflow $got, expected $TF_VERSION"
	[ -x "$ENV_DIR/bin/saved_model_cli" ] || die "$ENV_DIR has no bin/saved_model_cli after installing $TF_PIP_REQ"

	printf 'version=%s\npython=%s\ninstalled=%s\n' "$TF_VERSION" "$pyver" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$ENV_DIR/.complete"
	trap - EXIT
	log "installed tensorflow-cpu $TF_VERSION in $ENV_DIR"
}

case "${1:-}" in
--print-dir)
	printf '%s\n' "$ENV_DIR"
	;;
--version)
	printf '%s\n' "$TF_VERSION"
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
