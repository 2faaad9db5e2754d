#!/usr/bin/env bash
# Obtain the TensorFlow C API (headers + shared libraries) that kfash-tf's cgo
# bindings compile and link against.
#
# By default the CPU wheel of TensorFlow is fetched from PyPI with pip (pinned
# file name and sha256 below) and only the parts the Go bindings need are kept:
#
#   ${KFASH_TF_CACHE:-$HOME/.cache/kfash-tf}/libtensorflow-<version>-<variant>/
#     include/   tensorflow/c, tensorflow/tsl, tsl, xla/tsl/c, tensorflow/core/platform/ctstring*
#     lib/       libtensorflow_cc.so.2, libtensorflow_framework.so.2 + symlinks
#                libtensorflow.so{,.2} -> libtensorflow_cc.so.2 (for -ltensorflow)
#     build-info.json  the wheel's tensorflow/python/platform/build_info.py (is_cuda_build,
#                cuda_version, cudnn_version) + "variant"; read by 'kfash-tf version'
#     nvidia/    (gpu only) <pkg>/lib/*.so* of the NVIDIA wheels, the wheel's own layout, so
#                libtensorflow's RUNPATH ($ORIGIN/../nvidia/cudnn/lib, ...) finds them;
#                cuda_nvcc/bin/ptxas and cuda_nvcc/nvvm/ for XLA. bin/kfash-tf puts every
#                nvidia/*/lib on LD_LIBRARY_PATH.
#     .complete  stamp, written last
#
# TF_VARIANT=cpu (default) fetches tensorflow-cpu; TF_VARIANT=gpu fetches tensorflow
# and the NVIDIA wheels of its and-cuda extra (~2.3 GB) into libtensorflow-<version>-gpu/.
# Both variants live side by side in the cache.
#
# Set LIBTENSORFLOW_DIR=/path to use an existing install instead (the official
# libtensorflow tarball layout: include/ and lib/); nothing is downloaded then.
#
# Usage:
#   scripts/libtensorflow.sh              ensure installed; progress on stderr, the dir on stdout
#   scripts/libtensorflow.sh --print-dir  print the dir that would be used (no download)
#   scripts/libtensorflow.sh --check      exit 0 if installed and complete, else 1 with a hint
#   scripts/libtensorflow.sh --version    print the pinned TensorFlow version
#   scripts/libtensorflow.sh --variant    print the variant (cpu or gpu; from TF_VARIANT)
set -euo pipefail

# --- pins: the only place to change when bumping TensorFlow -----------------
TF_VERSION=2.18.1
# TF_VARIANT=cpu (default): the tensorflow-cpu wheel. TF_VARIANT=gpu: the
# tensorflow wheel (built with CUDA 12.5.1 / cuDNN 9) plus the NVIDIA wheels
# its "and-cuda" extra pins (Requires-Dist ... extra == "and-cuda" in its
# METADATA), which carry the CUDA runtime, cuBLAS, cuDNN, ... shared libraries.
TF_VARIANT=${TF_VARIANT:-cpu}
case $TF_VARIANT in
cpu)
	TF_WHEEL=tensorflow_cpu-2.18.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
	TF_WHEEL_SHA256=810c75d7149d2da0cb2092187817b0dcabb80728ca9f9cf3a61f3f42fadd1298
	TF_WHEEL_MB=230      # download size, for messages
	TF_NEED_FREE_MB=1000 # wheel + unpacked libraries (~680 MB) during install
	TF_PIP_REQ="tensorflow-cpu==${TF_VERSION}"
	;;
gpu)
	TF_WHEEL=tensorflow-2.18.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
	TF_WHEEL_SHA256=c9f87e5d2a680a4595f5dc30daf6bbaec9d4129b46d7ef1b2af63c46ac7d2828
	TF_WHEEL_MB=2300     # the tensorflow wheel (587 MB) + the NVIDIA wheels (1726 MB)
	TF_NEED_FREE_MB=8000 # wheels (2.3 GB) + unpacked libraries (~4 GB) during install
	TF_PIP_REQ="tensorflow==${TF_VERSION}"
	;;
*)
	printf 'libtensorflow.sh: error: TF_VARIANT=%s: choose cpu (the default) or gpu\n' "$TF_VARIANT" >&2
	exit 1
	;;
esac
# The "and-cuda" extra of tensorflow 2.18.1 (linux x86-64): requirement, file, sha256.
NV_WHEELS=(
	"nvidia-cublas-cu12==12.5.3.2 nvidia_cublas_cu12-12.5.3.2-py3-none-manylinux2014_x86_64.whl ca070ad70e9fa6654084575d01bd001f30cc4665e33d4bb9fc8e0f321caa034b"
	"nvidia-cuda-cupti-cu12==12.5.82 nvidia_cuda_cupti_cu12-12.5.82-py3-none-manylinux2014_x86_64.whl bde77a5feb66752ec61db2adfe47f56b941842825b4c7e2068aff27c9d107953"
	"nvidia-cuda-nvcc-cu12==12.5.82 nvidia_cuda_nvcc_cu12-12.5.82-py3-none-manylinux2014_x86_64.whl b03e545b8e8c3ce7ebcd7fc44063180ff52ff01d064ece2127ed90a04ef12cd0"
	"nvidia-cuda-nvrtc-cu12==12.5.82 nvidia_cuda_nvrtc_cu12-12.5.82-py3-none-manylinux2014_x86_64.whl 3dbd97b0104b4bfbc3c4f8c79cd2496307c89c43c29a9f83125f1d76296ff3fd"
	"nvidia-cuda-runtime-cu12==12.5.82 nvidia_cuda_runtime_cu12-12.5.82-py3-none-manylinux2014_x86_64.whl 3e79a060e126df40fd3a068f3f787eb000fa51b251ec6cd97d09579632687115"
	"nvidia-cudnn-cu12==9.3.0.75 nvidia_cudnn_cu12-9.3.0.75-py3-none-manylinux2014_x86_64.whl 9ad9c6929ebb5295eb4a1728024666d1c88283373e265a0c5c883e6f9d5cd76d"
	"nvidia-cufft-cu12==11.2.3.61 nvidia_cufft_cu12-11.2.3.61-py3-none-manylinux2014_x86_64.whl 9a6e8df162585750f61983a638104a48c756aa13f9f48e19ab079b38e3c828b8"
	"nvidia-curand-cu12==10.3.6.82 nvidia_curand_cu12-10.3.6.82-py3-none-manylinux2014_x86_64.whl 2823fb27de4e44dbb22394a6adf53aa6e1b013aca0f8c22867d1cfae58405536"
	"nvidia-cusolver-cu12==11.6.3.83 nvidia_cusolver_cu12-11.6.3.83-py3-none-manylinux2014_x86_64.whl 93cfafacde4428b71778eeb092ec615a02a3d05404da1bcf91c53e3fa1bce42b"
	"nvidia-cusparse-cu12==12.5.1.3 nvidia_cusparse_cu12-12.5.1.3-py3-none-manylinux2014_x86_64.whl 016df8e993c437e8301e62739f01775cba988fd5253cd4c64173f8e8d2f8e752"
	"nvidia-nccl-cu12==2.21.5 nvidia_nccl_cu12-2.21.5-py3-none-manylinux2014_x86_64.whl 8579076d30a8c24988834445f8d633c697d42397e92ffc3f63fa26766d25e0a0"
	"nvidia-nvjitlink-cu12==12.5.82 nvidia_nvjitlink_cu12-12.5.82-py3-none-manylinux2014_x86_64.whl f9b37bc5c8cf7509665cb6ada5aaa0ce65618f2332b7d3e78e9790511f111212"
)
# pip selectors that resolve to exactly the pinned files whatever the local Python is
TF_PIP_PYTHON=3.11
TF_PIP_PLATFORM=manylinux2014_x86_64
# -----------------------------------------------------------------------------

PROG=libtensorflow.sh
SETUP_ARGS=
[ "$TF_VARIANT" = cpu ] || SETUP_ARGS=" TF_VARIANT=$TF_VARIANT"
NAME="libtensorflow-${TF_VERSION}-${TF_VARIANT}"

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
		{ [ "$TF_VARIANT" = cpu ] || [ -d "$TF_DIR/nvidia/cudnn/lib" ]; } &&
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
		die "python3 not found; it is needed to fetch $TF_PIP_REQ from PyPI (Debian/Ubuntu: apt-get install python3-pip), or set LIBTENSORFLOW_DIR=/path/to/libtensorflow"
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
	# file sha256 pairs to verify, and the pip requirements that fetch them
	local pins=("$TF_WHEEL $TF_WHEEL_SHA256") reqs=("$TF_PIP_REQ") w
	if [ "$TF_VARIANT" = gpu ]; then
		for w in "${NV_WHEELS[@]}"; do
			set -- $w
			reqs+=("$1") pins+=("$2 $3")
		done
	fi
	log "downloading ${reqs[*]} (~$TF_WHEEL_MB MB) from PyPI with pip ..."
	python3 -m pip download "${pipflags[@]}" -d "$TMP/wheel" "${reqs[@]}" >&2 ||
		die "downloading ${reqs[*]} from PyPI failed (pip output above); check access to PyPI (or your pip index settings) and run 'make setup$SETUP_ARGS' again, or set LIBTENSORFLOW_DIR=/path/to/libtensorflow"
	for w in "${pins[@]}"; do
		set -- $w
		if [ ! -f "$TMP/wheel/$1" ]; then
			die "pip did not fetch the pinned file $1 (got: $(cd "$TMP/wheel" && ls | tr '\n' ' ')); update the pins at the top of scripts/libtensorflow.sh or set LIBTENSORFLOW_DIR=/path/to/libtensorflow"
		fi
		(cd "$TMP/wheel" && printf '%s  %s\n' "$2" "$1" | sha256sum -c --status) ||
			die "sha256 mismatch for $1 (expected $2): the download is corrupt or not the pinned file; nothing was installed, run 'make setup$SETUP_ARGS' again (if it persists, check your PyPI mirror)"
	done

	log "unpacking headers and libraries ..."
	python3 - "$TMP/wheel/$TF_WHEEL" "$TMP/$NAME" "$TF_VARIANT" <<'PY' || die "unpacking $TF_WHEEL failed (see above); nothing was installed, run 'make setup$SETUP_ARGS' again"
import ast, json, os, shutil, sys, zipfile

whl, out, variant = sys.argv[1], sys.argv[2], sys.argv[3]
BUILD_INFO = "tensorflow/python/platform/build_info.py"
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

info_text = None
with zipfile.ZipFile(whl) as z:
    for info in z.infolist():
        name = info.filename
        if info.is_dir():
            continue
        if name == BUILD_INFO:
            info_text = z.read(info).decode()
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

# build_info.py is generated: build_info = collections.OrderedDict([(k, v), ...])
build = {}
if info_text is not None:
    for node in ast.walk(ast.parse(info_text)):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.List):
            try:
                build = dict(ast.literal_eval(node.args[0]))
            except ValueError:
                pass
            break
build["variant"] = variant
build["wheel"] = os.path.basename(whl)
with open(os.path.join(out, "build-info.json"), "w") as f:
    json.dump(build, f, indent=2, sort_keys=True)
    f.write("\n")
PY
	if [ "$TF_VARIANT" = gpu ]; then
		log "unpacking the NVIDIA libraries ..."
		python3 - "$TMP/$NAME" "$TMP/wheel"/nvidia_*.whl <<'PY' || die "unpacking the NVIDIA wheels failed (see above); nothing was installed, run 'make setup$SETUP_ARGS' again"
import os, re, shutil, sys, zipfile

out, wheels = sys.argv[1], sys.argv[2:]
# nvidia/<pkg>/lib/*.so*; the CUDA compiler's ptxas and nvvm (libdevice) for XLA.
KEEP = re.compile(r"^nvidia/[a-z0-9_]+/lib/[^/]+\.so[0-9.]*$|^nvidia/cuda_nvcc/(bin/ptxas|nvvm/(lib64|libdevice)/[^/]+)$")
for whl in wheels:
    with zipfile.ZipFile(whl) as z:
        for info in z.infolist():
            name = info.filename
            if info.is_dir() or not KEEP.match(name) or ".." in name.split("/"):
                continue
            dst = os.path.join(out, name)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with z.open(info) as src, open(dst, "wb") as f:
                shutil.copyfileobj(src, f, 1 << 20)
            os.chmod(dst, 0o755 if "/bin/" in name or ".so" in name else 0o644)
for need in ("nvidia/cudnn/lib/libcudnn.so.9", "nvidia/cuda_runtime/lib/libcudart.so.12", "nvidia/cublas/lib/libcublas.so.12"):
    if not os.path.isfile(os.path.join(out, need)):
        sys.exit("not found in the NVIDIA wheels: " + need)
PY
	fi
	rm -rf "$TMP/wheel"

	ln -s libtensorflow_cc.so.2 "$TMP/$NAME/lib/libtensorflow.so"
	ln -s libtensorflow_cc.so.2 "$TMP/$NAME/lib/libtensorflow.so.2"
	ln -s libtensorflow_framework.so.2 "$TMP/$NAME/lib/libtensorflow_framework.so"

	# A leftover without the stamp is an interrupted install: replace it.
	rm -rf "$TF_DIR"
	mv "$TMP/$NAME" "$TF_DIR"
	printf 'version=%s\nvariant=%s\nwheel=%s\nsha256=%s\ninstalled=%s\n' \
		"$TF_VERSION" "$TF_VARIANT" "$TF_WHEEL" "$TF_WHEEL_SHA256" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$TF_DIR/.complete"
	log "installed TensorFlow C library $TF_VERSION in $TF_DIR"
}

case "${1:-}" in
--print-dir)
	printf '%s\n' "$TF_DIR"
	;;
--version)
	printf '%s\n' "$TF_VERSION"
	;;
--variant)
	printf '%s\n' "$TF_VARIANT"
	;;
--check)
	if [ -n "${LIBTENSORFLOW_DIR:-}" ]; then
		validate_user_dir
	elif ! installed; then
		printf '%s: TensorFlow C library %s is not installed in %s; run '\''make setup$SETUP_ARGS'\'' (fetches %s from PyPI) or set LIBTENSORFLOW_DIR=/path/to/libtensorflow (with include/ and lib/)\n' \
			"$PROG" "$TF_VERSION" "$TF_DIR" "$TF_PIP_REQ" >&2
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
	die "unknown argument '$1' (use --print-dir, --check, --version, --variant or no argument)"
	;;
esac
