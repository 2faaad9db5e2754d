# shellcheck shell=bash
# What the installers of scripts/ (libtensorflow.sh, pyenv-lib.sh) share:
# messages, the per-install lock in the cache, and the free-space check.
# The sourcing script sets PROG (its name, for messages) and CACHE_ROOT.

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

# cache_lock NAME INSTALLED: takes the install lock of NAME in CACHE_ROOT
# (concurrent installs, e.g. two test binaries or two make runs, are
# serialised), waiting for another install if there is one; returns 1 when
# INSTALLED (a command) then succeeds, that is when the other install did
# the work. Without flock there is no lock and it returns 0.
cache_lock() {
	command -v flock >/dev/null 2>&1 || return 0
	exec 9>"$CACHE_ROOT/.$1.lock"
	if ! flock -n 9; then
		log "waiting for another install of $1 to finish ..."
		flock 9
	fi
	! "$2"
}

# need_free_mb MB: dies unless CACHE_ROOT's disk has MB megabytes free
# (unknown free space passes).
need_free_mb() {
	local avail_mb
	avail_mb=$(df -Pk "$CACHE_ROOT" 2>/dev/null | awk 'NR == 2 { print int($4 / 1024) }') || avail_mb=
	if [ -n "$avail_mb" ] && [ "$avail_mb" -lt "$1" ]; then
		die "not enough disk space in $CACHE_ROOT: installing needs about $1 MB, $avail_mb MB free; free some space or set KFASH_TF_CACHE to another disk"
	fi
}
