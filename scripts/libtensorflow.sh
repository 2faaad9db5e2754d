#!/usr/bin/env bash
# Obtain the TensorFlow C API (headers + shared libraries) that kfash-tf's cgo
# bindings compile and link against.
#
# By default the CPU wheel of TensorFlow is fetched from PyPI with pip (pinned
# file name and sha256 below) and only the parts the Go bindings need are kept:
#
#   ${KFASH_TF_CACHE:-$HOME/.cache/kfash-tf}/libtensorflow-<version>-cpu/
#     include/   tensorflow/c, tensorflow/tsl, tsl, xla/tsl/c, tensorflow/core/platform/ctstring*
#     lib/       libtensorflow_cc.so.2, libtensorflow_framework.so.2 + symlinks
#                libtensorflow.so{,.2} -> libtensorflow_cc.so.2 (for -ltensorflow)
#     .complete  stamp, written last
#
# Set LIBTENSORFLOW_DIR=/path to use an existing install instead (the official
# libtensorflow tarball layout: include/ and lib/); nothing is downloaded then.
#
# Usage:
#   scripts/libtensorflow.sh              ensure installed; progress on stderr, the dir on stdout
#   scripts/libtensorflow.sh --print-dir  print the dir that would be used (no download)
#   scripts/libtensorflow.sh --check      exit 0 if installed and complete, else 1 with a hint
#   scripts/libtensorflow.sh --version    print the pinned TensorFlow version
set -euo pipefail

# --- pins: the only place to change when bumping TensorFlow -----------------
TF_VERSION=2.18.1
TF_WHEEL=tensorflow_cpu-2.18.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
TF_WHEEL_SHA256=810c75d7149d2da0cb2092187817b0dcabb80728ca9f9cf3a61f3f42fadd1298
TF_WHEEL_MB=230        # download size, for messages
TF_NEED_FREE_MB=1000   # wheel + unpacked libraries (~680 MB) during install
# pip selectors that resolve to exactly $TF_WHEEL whatever the local Python is
TF_PIP_REQ="tensorflow-cpu==${TF_VERSION}"
TF_PIP_PYTHON=3.11
TF_PIP_PLATFORM=manylinux2014_x86_64
# -----------------------------------------------------------------------------

PROG=libtensorflow.sh
NAME="libtensorflow-${TF_VERSION}-cpu"

# shellcheck source=scripts/cache-lib.sh
. "$(dirname "$0")/cache-lib.sh"

abspath() { # absolute path without requiring it to exist
	case $1 in
	/*) printf '%s\n' "$1" ;;
	*) printf '%s/%s\n' "$PWD" "${1#./}" ;;
	esac
}

no_spaces() { # cgo flags and the baked-in rpath cannot carry whitespace
	case $2 in
	*[[:space:]]*) die "$1 '$2' contains whitespace, which cgo flags and the rpath cannot handle; choose a path without spaces" ;;
	esac
}

if [ -n "${LIBTENSORFLOW_DIR:-}" ]; then
	TF_DIR=$(abspath "${LIBTENSORFLOW_DIR%/}")
	if [ -d "$TF_DIR" ]; then TF_DIR=$(cd "$TF_DIR" && pwd); fi # normalise ../ (keeps symlinks)
	no_spaces LIBTENSORFLOW_DIR "$TF_DIR"
	CACHE_ROOT=
else
	[ -n "${KFASH_TF_CACHE:-}" ] || [ -n "${HOME:-}" ] || die "neither KFASH_TF_CACHE nor HOME is set; set KFASH_TF_CACHE=/some/cache/dir"
	CACHE_ROOT=$(abspath "${KFASH_TF_CACHE:-$HOME/.cache/kfash-tf}")
	CACHE_ROOT=${CACHE_ROOT%/}
	no_spaces "the cache dir (KFASH_TF_CACHE)" "$CACHE_ROOT"
	TF_DIR="$CACHE_ROOT/$NAME"
fi

# validate_user_dir: LIBTENSORFLOW_DIR must look like the libtensorflow tarball.
validate_user_dir() {
	local d=$TF_DIR
	[ -d "$d" ] || die "LIBTENSORFLOW_DIR=$d does not exist (expected a libtensorflow install with include/ and lib/)"
	[ -f "$d/include/tensorflow/c/c_api.h" ] ||
		die "LIBTENSORFLOW_DIR=$d has no include/tensorflow/c/c_api.h (expected the libtensorflow tarball layout: include/ and lib/)"
	if [ -e "$d/lib/libtensorflow.so" ]; then
		return 0
	fi
	if [ -e "$d/lib/libtensorflow_cc.so.2" ]; then
		die "LIBTENSORFLOW_DIR=$d has lib/libtensorflow_cc.so.2 but no lib/libtensorflow.so for -ltensorflow; create the symlinks: cd $d/lib && ln -s libtensorflow_cc.so.2 libtensorflow.so && ln -s libtensorflow_cc.so.2 libtensorflow.so.2 && ln -s libtensorflow_framework.so.2 libtensorflow_framework.so"
	fi
	die "LIBTENSORFLOW_DIR=$d has no lib/libtensorflow.so (expected lib/libtensorflow.so* from the libtensorflow tarball, or lib/libtensorflow_cc.so.2 plus a libtensorflow.so symlink)"
}

installed() {
	[ -f "$TF_DIR/.complete" ] &&
		[ -f "$TF_DIR/include/tensorflow/c/c_api.h" ] &&
		[ -e "$TF_DIR/lib/libtensorflow.so" ] &&
		[ -e "$TF_DIR/lib/libtensorflow_framework.so.2" ]
}

install() {
	installed && return 0

	local os arch
	os=$(uname -s) arch=$(uname -m)
	[ "$os/$arch" = Linux/x86_64 ] ||
		die "no pinned TensorFlow C library for $os/$arch (only Linux/x86_64 is fetched automatically); install libtensorflow $TF_VERSION yourself and set LIBTENSORFLOW_DIR=/path/to/libtensorflow (with include/ and lib/)"
	command -v python3 >/dev/null 2>&1 ||
		die "python3 not found; it is needed to fetch tensorflow-cpu $TF_VERSION from PyPI (Debian/Ubuntu: apt-get install python3-pip), or set LIBTENSORFLOW_DIR=/path/to/libtensorflow"
	python3 -m pip --version >/dev/null 2>&1 ||
		die "'python3 -m pip' is not available; install pip (Debian/Ubuntu: apt-get install python3-pip), or set LIBTENSORFLOW_DIR=/path/to/libtensorflow"
	command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found (coreutils); it is needed to verify $TF_WHEEL"

	mkdir -p "$CACHE_ROOT" || die "cannot create the cache dir $CACHE_ROOT; set KFASH_TF_CACHE to a writable dir"

	cache_lock "$NAME" installed || return 0
	if command -v flock >/dev/null 2>&1; then
		# We hold the lock, so temp dirs left behind by killed runs are stale.
		rm -rf "$CACHE_ROOT/.$NAME.tmp."*
	fi
	need_free_mb "$TF_NEED_FREE_MB"

	TMP=$(mktemp -d "$CACHE_ROOT/.$NAME.tmp.XXXXXX")
	trap 'rm -rf "$TMP"' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	local pipflags=(--no-deps --no-cache-dir --only-binary=:all:
		--python-version "$TF_PIP_PYTHON" --platform "$TF_PIP_PLATFORM")
	if [ -n "${CI:-}" ] || [ ! -t 2 ]; then
		pipflags+=(--progress-bar off)
	fi
	log "downloading $TF_WHEEL (~$TF_WHEEL_MB MB) from PyPI with pip ..."
	python3 -m pip download "${pipflags[@]}" -d "$TMP/wheel" "$TF_PIP_REQ" >&2 ||
		die "downloading $TF_WHEEL from PyPI failed (pip output above); check access to PyPI (or your pip index settings) and run 'make setup' again, or set LIBTENSORFLOW_DIR=/path/to/libtensorflow"
	if [ ! -f "$TMP/wheel/$TF_WHEEL" ]; then
		die "pip did not fetch the pinned file $TF_WHEEL (got: $(cd "$TMP/wheel" && ls | tr '\n' ' ')); update the pins at the top of scripts/libtensorflow.sh or set LIBTENSORFLOW_DIR=/path/to/libtensorflow"
	fi
	(cd "$TMP/wheel" && printf '%s  %s\n' "$TF_WHEEL_SHA256" "$TF_WHEEL" | sha256sum -c --status) ||
		die "sha256 mismatch for $TF_WHEEL (expected $TF_WHEEL_SHA256): the download is corrupt or not the pinned file; nothing was installed, run 'make setup' again (if it persists, check your PyPI mirror)"

	log "unpacking headers and libraries ..."
	python3 - "$TMP/wheel/$TF_WHEEL" "$TMP/$NAME" <<'PY' || die "unpacking $TF_WHEEL failed (see above); nothing was installed, run 'make setup' again"
import os, shutil, sys, zipfile

whl, out = sys.argv[1], sys.argv[2]
INC = "tensorflow/include/"
HEADER_TREES = (
    "tensorflow/c/",
    "tensorflow/tsl/",
    "tsl/",
    "xla/tsl/c/",
    "tensorflow/core/platform/ctstring",
)
LIBS = {
    "tensorflow/libtensorflow_cc.so.2": "libtensorflow_cc.so.2",
    "tensorflow/libtensorflow_framework.so.2": "libtensorflow_framework.so.2",
}
REQUIRED = [
    "include/tensorflow/c/c_api.h",
    "include/tensorflow/c/eager/c_api.h",
    "include/tensorflow/core/platform/ctstring.h",
    "include/xla/tsl/c/tsl_status.h",
    "lib/libtensorflow_cc.so.2",
    "lib/libtensorflow_framework.so.2",
]

with zipfile.ZipFile(whl) as z:
    for info in z.infolist():
        name = info.filename
        if info.is_dir():
            continue
        if name in LIBS:
            dst, mode = os.path.join(out, "lib", LIBS[name]), 0o755
        elif name.startswith(INC) and name[len(INC):].startswith(HEADER_TREES):
            rel = name[len(INC):]
            if rel.startswith("/") or ".." in rel.split("/"):
                sys.exit("unsafe path in wheel: " + name)
            dst, mode = os.path.join(out, "include", rel), 0o644
        else:
            continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with z.open(info) as src, open(dst, "wb") as f:  # CRC-checked by zipfile
            shutil.copyfileobj(src, f, 1 << 20)
        os.chmod(dst, mode)

missing = [p for p in REQUIRED if not os.path.isfile(os.path.join(out, p))]
if missing:
    sys.exit("not found in the wheel: " + ", ".join(missing))
PY
	rm -rf "$TMP/wheel"

	ln -s libtensorflow_cc.so.2 "$TMP/$NAME/lib/libtensorflow.so"
	ln -s libtensorflow_cc.so.2 "$TMP/$NAME/lib/libtensorflow.so.2"
	ln -s libtensorflow_framework.so.2 "$TMP/$NAME/lib/libtensorflow_framework.so"

	# A leftover without the stamp is an interrupted install: replace it.
	rm -rf "$TF_DIR"
	mv "$TMP/$NAME" "$TF_DIR"
	printf 'version=%s\nwheel=%s\nsha256=%s\ninstalled=%s\n' \
		"$TF_VERSION" "$TF_WHEEL" "$TF_WHEEL_SHA256" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$TF_DIR/.complete"
	log "installed TensorFlow C library $TF_VERSION in $TF_DIR"
}

case "${1:-}" in
--print-dir)
	printf '%s\n' "$TF_DIR"
	;;
--version)
	printf '%s\n' "$TF_VERSION"
	;;
--check)
	if [ -n "${LIBTENSORFLOW_DIR:-}" ]; then
		validate_user_dir
	elif ! installed; then
		printf '%s: TensorFlow C library %s is not installed in %s; run '\''make setup'\'' (fetches tensorflow-cpu %s from PyPI) or set LIBTENSORFLOW_DIR=/path/to/libtensorflow (with include/ and lib/)\n' \
			"$PROG" "$TF_VERSION" "$TF_DIR" "$TF_VERSION" >&2
		exit 1
	fi
	;;
"")
	if [ -n "${LIBTENSORFLOW_DIR:-}" ]; then
		validate_user_dir
	else
		install
	fi
	printf '%s\n' "$TF_DIR"
	;;
-h | --help)
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
	;;
*)
	die "unknown argument '$1' (use --print-dir, --check, --version or no argument)"
	;;
esac
