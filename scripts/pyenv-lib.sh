# shellcheck shell=bash
# The shared body of scripts/pyenv.sh and scripts/pyenv-torch.sh: a pinned
# Python virtualenv in the kfash-tf cache, built in place (venvs cannot be
# moved: their scripts hold absolute paths) with a stamp written last, so a
# folder without the stamp is an interrupted install and is rebuilt.
#
# The sourcing script sets, then calls pyenv_main "$@":
#   PROG          its name, for messages
#   NAME          the venv folder under the cache (pyenv-tf-2.18.1, ...)
#   VERSION       the pinned version of the main package (--version prints it)
#   PIP_REQS      array of pip requirements
#   NEED_FREE_MB  free disk space to insist on before installing
#   PY_VERSIONS   Python minor versions the pins have wheels for ("3.10 3.11")
#   WHY_PYTHON    what the venv is for, for the "python3 not found" message
#   DOWNLOAD_NOTE the size of the first download, for the progress line
# and defines:
#   pyenv_installed_extra  extra checks of an installed venv (return 0: fine)
#   pyenv_verify           checks after pip install; prints the version found

# shellcheck source=scripts/cache-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/cache-lib.sh"

pyenv_setup_paths() {
	[ -n "${KFASH_TF_CACHE:-}" ] || [ -n "${HOME:-}" ] || die "neither KFASH_TF_CACHE nor HOME is set; set KFASH_TF_CACHE=/some/cache/dir"
	CACHE_ROOT=${KFASH_TF_CACHE:-$HOME/.cache/kfash-tf}
	case $CACHE_ROOT in /*) ;; *) CACHE_ROOT=$PWD/$CACHE_ROOT ;; esac
	CACHE_ROOT=${CACHE_ROOT%/}
	ENV_DIR="$CACHE_ROOT/$NAME"
	BASE_PYTHON=${KFASH_TF_BASE_PYTHON:-python3}
}

pyenv_installed() {
	[ -f "$ENV_DIR/.complete" ] && [ -x "$ENV_DIR/bin/python" ] && pyenv_installed_extra
}

pyenv_install() {
	pyenv_installed && return 0

	if ! command -v "$BASE_PYTHON" >/dev/null 2>&1; then
		printf '%s: %s not found: %s needs Python %s with the venv module\n' "$PROG" "$BASE_PYTHON" "$WHY_PYTHON" "${PY_VERSIONS// /, }" >&2
		exit 2
	fi
	local pyver
	pyver=$("$BASE_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])') ||
		die "$BASE_PYTHON does not run"
	case " $PY_VERSIONS " in
	*" $pyver "*) ;;
	*) die "$BASE_PYTHON is Python $pyver, but the pinned ${PIP_REQS[0]} is used with Python ${PY_VERSIONS// /, } only; set KFASH_TF_BASE_PYTHON=/path/to/python3.11" ;;
	esac
	"$BASE_PYTHON" -c 'import venv, ensurepip' 2>/dev/null ||
		die "$BASE_PYTHON has no working venv module (Debian/Ubuntu: apt-get install python3-venv)"

	mkdir -p "$CACHE_ROOT" || die "cannot create the cache dir $CACHE_ROOT; set KFASH_TF_CACHE to a writable dir"
	cache_lock "$NAME" pyenv_installed || return 0
	need_free_mb "$NEED_FREE_MB"

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
	log "installing ${PIP_REQS[*]} and their dependencies from PyPI ($DOWNLOAD_NOTE) ..."
	"$ENV_DIR/bin/python" -m pip install "${pipflags[@]}" "${PIP_REQS[@]}" >&2 ||
		die "pip install ${PIP_REQS[*]} into $ENV_DIR failed (pip output above); check access to PyPI (or your pip index settings) and run scripts/$PROG again"
	local got
	got=$(pyenv_verify) || die "${PIP_REQS[0]} does not work in $ENV_DIR (output above)"
	[ "$got" = "$VERSION" ] || die "$ENV_DIR has version $got of ${PIP_REQS[0]}, expected $VERSION"

	printf 'version=%s\npython=%s\ninstalled=%s\n' "$VERSION" "$pyver" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$ENV_DIR/.complete"
	trap - EXIT
	log "installed ${PIP_REQS[*]} in $ENV_DIR"
}

# pyenv_main handles the command line of the sourcing script; its help is
# the script's own header comment.
pyenv_main() {
	pyenv_setup_paths
	case "${1:-}" in
	--print-dir)
		printf '%s\n' "$ENV_DIR"
		;;
	--version)
		printf '%s\n' "$VERSION"
		;;
	"")
		pyenv_install
		printf '%s\n' "$ENV_DIR/bin/python"
		;;
	-h | --help)
		sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
		;;
	*)
		die "unknown argument '$1' (use --print-dir, --version or no argument)"
		;;
	esac
}
