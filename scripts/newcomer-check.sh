#!/usr/bin/env bash
# 'make newcomer-check': what a new user does. Clones the committed repo into an
# empty temp folder and runs exactly the two set-up commands of README.md (the
# lines between the <!-- newcomer:begin --> and <!-- newcomer:end --> markers),
# failing if either fails. The TensorFlow library and the Python venv are
# fetched again into a fresh cache inside the temp folder (as on a new machine);
# NEWCOMER_CACHE=shared reuses ~/.cache/kfash-tf instead. KEEP=1 keeps the folder.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD

mapfile -t cmds < <(sed -n '/<!-- newcomer:begin -->/,/<!-- newcomer:end -->/p' README.md |
	sed -n '/^```/,/^```/p' | grep -v '^```' | sed 's/[[:space:]]*#.*$//' | grep -v '^[[:space:]]*$')
[ "${#cmds[@]}" = 2 ] || { echo "newcomer-check: README.md must hold exactly two commands between the newcomer markers; found ${#cmds[@]}: ${cmds[*]-}" >&2; exit 1; }

if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
	echo "newcomer-check: note: uncommitted changes are not part of the check (it clones HEAD)" >&2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kfash-newcomer.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$tmp"' EXIT
git clone -q "$repo" "$tmp/kfash-tf"
if [ "${NEWCOMER_CACHE:-fresh}" != shared ]; then
	export KFASH_TF_CACHE="$tmp/cache"
fi
cd "$tmp/kfash-tf"
echo "newcomer-check: fresh clone in $tmp/kfash-tf (commit $(git rev-parse --short HEAD)), cache ${KFASH_TF_CACHE:-$HOME/.cache/kfash-tf}" >&2
for cmd in "${cmds[@]}"; do
	echo "newcomer-check: \$ $cmd" >&2
	start=$(date +%s)
	if ! bash -c "$cmd"; then
		echo "newcomer-check: FAILED: '$cmd' (after $(($(date +%s) - start)) s)" >&2
		exit 1
	fi
	echo "newcomer-check: ok: '$cmd' in $(($(date +%s) - start)) s" >&2
done
echo "newcomer-check: both README commands passed on a fresh clone" >&2
