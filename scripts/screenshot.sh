#!/usr/bin/env bash
# Screenshot of a report page with headless Chromium (Debian's chromium
# package; installed here with apt-get when missing and allowed).
#   scripts/screenshot.sh runs/demo/report/index.html [out.png] [WIDTHxHEIGHT]
set -euo pipefail
page=${1:?usage: screenshot.sh PAGE.html [OUT.png] [1400x2600]}
out=${2:-${page%.html}.png}
size=${3:-1400,2600}
size=${size/x/,}
[ -f "$page" ] || { echo "screenshot: $page not found: make a report first (kfash-tf report RUN --out DIR)" >&2; exit 1; }

chrome=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$chrome" ]; then
	if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
		echo "screenshot: installing Debian's chromium ..." >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2 ||
			{ apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2; }
		chrome=$(command -v chromium)
	else
		echo "screenshot: no chromium; install it (sudo apt-get install chromium) and run again" >&2
		exit 1
	fi
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
abs=$(cd "$(dirname "$page")" && pwd)/$(basename "$page")
# The flags keep Chromium off the network (this machine refuses outside
# connections) and away from the user's profile.
"$chrome" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
	--disable-background-networking --disable-component-update --disable-sync \
	--hide-scrollbars --user-data-dir="$profile" --window-size="$size" \
	--screenshot="$(realpath -m "$out")" "file://$abs" 2>/dev/null
[ -s "$out" ] || { echo "screenshot: chromium wrote no $out" >&2; exit 1; }
echo "$out"
