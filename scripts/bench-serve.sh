#!/usr/bin/env bash
# Load test of `kfash-tf serve` (for `make bench-serve`).
#
# Builds kfash-tf, reuses a trained run (or trains a small one), serves it on
# loopback, then posts one base64 JPEG per request with wrk at concurrency 1,
# 8 and 32, a fixed number of requests each, and prints a Markdown table:
# throughput, p50/p99 latency, errors, and the server's RSS before and after
# the 10,000 requests of the three levels (after a warm-up).
#
# Environment (all optional):
#   RUN=runs/cs3          model to serve: a run folder or a SavedModel; trained
#                         into runs/bench-vgg8 from DATA when it does not exist
#   DATA=../shared/data/clothing-small   dataset for that training, and the JPEG
#   IMAGE=path.jpg        the image posted (default: the first JPEG of DATA)
#   REQUESTS="1:1000 8:3000 32:6000"     concurrency:requests levels
#   WARMUP=200            requests before the "before" RSS
#   SERVE_FLAGS="..."     extra flags for serve (e.g. --max-batch 16 --batch-wait 2ms)
#   BUILD=0               skip `make build`
#   BIN=path              the kfash-tf binary (default bin/kfash-tf)
#   OUT=file.md           also write the table there
#   ABUSE=1               then an abuse phase (ABUSE=only: the abuse phase alone):
#                         for ABUSE_SECONDS (60), two curl loops send 10,000-image
#                         requests, 256-image requests and GIF bombs (a 1x1 GIF with
#                         one 20000x20000 frame, 100 frames of 3000x3000) while wrk
#                         sends normal requests at concurrency 4; it reports crashes,
#                         the server's peak RSS (VmHWM), the abusive requests'
#                         statuses and the normal requests' p99 against a quiet run
#                         of the same length. Serve a SavedModel (RUN=EXPORT) to hit
#                         TensorFlow's in-graph GIF decoder.
#
# Needs wrk (Debian: apt-get install -y wrk), curl, base64, go (for the GIF bombs).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bin=${BIN:-$root/bin/kfash-tf}
DATA=${DATA:-../shared/data/clothing-small}
RUN=${RUN:-runs/cs3}
REQUESTS=${REQUESTS:-"1:1000 8:3000 32:6000"}
ABUSE=${ABUSE:-0}
ABUSE_SECONDS=${ABUSE_SECONDS:-60}
WARMUP=${WARMUP:-200}
SERVE_FLAGS=${SERVE_FLAGS:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-serve.XXXXXX")
pid=

cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

die() { echo "bench-serve: $*" >&2; exit 1; }

if ! command -v wrk >/dev/null; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "bench-serve: installing wrk" >&2
		apt-get install -y wrk >/dev/null || die "could not install wrk"
	else
		die "wrk is missing: apt-get install -y wrk"
	fi
fi
command -v curl >/dev/null || die "curl is missing"

if [ "${BUILD:-1}" != 0 ]; then
	make -s build >&2
fi

# The model: an existing run or SavedModel, else a one-epoch vgg8 run.
servable() {
	[ -f "$1/saved_model.pb" ] || ls "$1"/*/saved_model.pb >/dev/null 2>&1 ||
		[ -f "$1/checkpoints/best.json" ] || [ -f "$1/checkpoints/last.json" ]
}
if ! servable "$RUN"; then
	RUN=runs/bench-vgg8
	if ! servable "$RUN"; then
		[ -d "$DATA" ] || die "no model at \$RUN and no dataset at $DATA to train one: set RUN or DATA"
		echo "bench-serve: training $RUN (vgg8, 1 epoch) on $DATA" >&2
		"$bin" train vgg8 --data "$DATA" --classes t-shirt,pants,shoes --epochs 1 --out "$RUN" >&2
	fi
fi

if [ -z "${IMAGE:-}" ]; then
	IMAGE=$(find "$DATA" -type f \( -iname '*.jpg' -o -iname '*.jpeg' \) 2>/dev/null | sort | sed -n 1p)
	[ -n "$IMAGE" ] || die "no JPEG found in $DATA: set IMAGE=photo.jpg"
fi
printf '{"instances": [{"b64": "%s"}]}' "$(base64 -w0 "$IMAGE")" >"$work/body.json"

# wrk: POST the body; each thread stops after its share of the requests and
# leaves a marker file (wrk itself only stops at the end of -d or on SIGINT,
# which bench sends once every thread is done); done() prints one
# machine-readable line.
cat >"$work/post.lua" <<'EOF'
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

local threads = {}
function setup(thread)
	table.insert(threads, thread)
	thread:set("id", #threads)
	thread:set("quota", tonumber(os.getenv("BENCH_QUOTA")))
end

count, bad = 0, 0
function response(status, headers, body)
	count = count + 1
	if status ~= 200 then bad = bad + 1 end
	if count == quota then
		local m = assert(io.open(os.getenv("BENCH_DONE") .. "-" .. id, "w"))
		m:close()
		wrk.thread:stop()
	end
end

function done(summary, latency, requests)
	local n, nbad = 0, 0
	for _, t in ipairs(threads) do
		n = n + t:get("count")
		nbad = nbad + t:get("bad")
	end
	local e = summary.errors
	io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d non200=%d socket_errors=%d\n",
		n, summary.duration, latency:percentile(50), latency:percentile(99), nbad,
		e.connect + e.read + e.write + e.timeout))
end
EOF

# shellcheck disable=SC2086
"$bin" serve "$RUN" --host 127.0.0.1 --port 0 $SERVE_FLAGS 2>"$work/serve.log" &
pid=$!
url=
for _ in $(seq 1 600); do
	url=$(sed -n 's|^listening on \(http://[^ ]*\).*|\1|p' "$work/serve.log" | sed -n 1p)
	[ -n "$url" ] && break
	kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log" >&2; die "the server exited"; }
	sleep 0.1
done
[ -n "$url" ] || die "the server did not start"
curl -fsS "$url/healthz" >/dev/null || die "health check failed"
curl -fsS -d @"$work/body.json" "$url/v1/models/kfash:predict" >/dev/null || die "a first prediction failed"

rss() { awk '/^VmRSS/ {printf "%.0f", $2/1024}' "/proc/$pid/status"; }

# bench CONCURRENCY REQUESTS: one wrk run, its RESULT line on stdout.
bench() {
	local c=$1 n=$2 t=$(($1 < 2 ? 1 : 2)) wpid
	rm -f "$work"/done-*
	BENCH_BODY=$work/body.json BENCH_DONE=$work/done BENCH_QUOTA=$(((n + t - 1) / t)) \
		wrk -t "$t" -c "$c" -d 3600s --timeout 30s -s "$work/post.lua" "$url/v1/models/kfash:predict" >"$work/wrk-$c.txt" 2>&1 &
	wpid=$!
	while kill -0 "$wpid" 2>/dev/null; do
		if [ "$(find "$work" -name 'done-*' | wc -l)" -ge "$t" ]; then
			kill -INT "$wpid"
			break
		fi
		sleep 0.02
	done
	wait "$wpid" || true
	grep '^RESULT' "$work/wrk-$c.txt" || { cat "$work/wrk-$c.txt" >&2; die "wrk failed at concurrency $c"; }
}

bench 4 "$WARMUP" >/dev/null
if [ "$ABUSE" = only ]; then
	REQUESTS=
fi
rss_before=$(rss)
rows=()
total=0
for level in $REQUESTS; do
	c=${level%%:*}
	n=${level#*:}
	line=$(bench "$c" "$n")
	# shellcheck disable=SC2046
	eval $(echo "$line" | tr ' ' '\n' | grep '=')
	total=$((total + requests))
	rows+=("$(awk -v c="$c" -v n="$requests" -v d="$duration_us" -v p50="$p50_us" -v p99="$p99_us" -v bad="$non200" -v se="$socket_errors" -v rss="$(rss)" \
		'BEGIN { printf "| %d | %d | %.1f | %.1f | %.1f | %d | %d |", c, n, n / (d / 1e6), p50 / 1000, p99 / 1000, bad + se, rss }')")
done
rss_after=$(rss)

# timed SECONDS: normal requests at concurrency 4 for that long (wrk's
# RESULT line).
timed() {
	BENCH_BODY=$work/body.json BENCH_DONE=$work/never BENCH_QUOTA=1000000000 \
		wrk -t 1 -c 4 -d "${1}s" --timeout 60s -s "$work/post.lua" "$url/v1/models/kfash:predict" >"$work/wrk-timed.txt" 2>&1 || true
	grep '^RESULT' "$work/wrk-timed.txt" || { cat "$work/wrk-timed.txt" >&2; die "wrk failed"; }
}

# The abuse phase: its table row strings, filled below.
abuse_table=
if [ "$ABUSE" != 0 ]; then
	echo "bench-serve: abuse phase (${ABUSE_SECONDS}s quiet, then ${ABUSE_SECONDS}s under abuse)" >&2
	tiny=iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==
	instances() { # N: a row-format body of N tiny PNGs
		printf '{"instances": ['
		for i in $(seq 2 "$1"); do printf '{"b64": "%s"},' "$tiny"; done
		printf '{"b64": "%s"}]}' "$tiny"
	}
	instances 10000 >"$work/abuse-10k.json"
	instances 256 >"$work/abuse-256.json"
	(cd "$work" && go run "$root/scripts/gifbomb.go" -screen 1x1 -frame 20000x20000 -frames 1 -out bomb-frame.gif &&
		go run "$root/scripts/gifbomb.go" -screen 3000x3000 -frame 3000x3000 -frames 100 -out bomb-100.gif) ||
		die "could not write the GIF bombs"
	for g in bomb-frame bomb-100; do
		printf '{"instances": [{"b64": "%s"}]}' "$(base64 -w0 "$work/$g.gif")" >"$work/abuse-$g.json"
	done
	eval "$(timed "$ABUSE_SECONDS" | tr ' ' '\n' | grep '=' | sed 's/^/quiet_/')"
	hwm_quiet=$(awk '/^VmHWM/ {printf "%.0f", $2/1024}' "/proc/$pid/status")
	# Two abusers, each bounded in time and in count, on loopback only.
	end=$(($(date +%s) + ABUSE_SECONDS))
	for a in 1 2; do
		(
			i=0
			while [ "$(date +%s)" -lt "$end" ] && [ "$i" -lt 2000 ]; do
				for b in 10k bomb-frame 256 bomb-100; do
					curl -s -o /dev/null -m 60 -w "$b %{http_code}\n" -H 'Content-Type: application/json' \
						--data-binary @"$work/abuse-$b.json" "$url/v1/models/kfash:predict" >>"$work/abuse-codes-$a.txt" || true
				done
				i=$((i + 1))
			done
		) &
	done
	eval "$(timed "$ABUSE_SECONDS" | tr ' ' '\n' | grep '=' | sed 's/^/abuse_/')"
	wait $(jobs -p | grep -v "^$pid\$") 2>/dev/null || true
	alive=yes
	kill -0 "$pid" 2>/dev/null && curl -fsS -m 10 "$url/healthz" >/dev/null || alive=no
	hwm=$(awk '/^VmHWM/ {printf "%.0f", $2/1024}' "/proc/$pid/status" 2>/dev/null || echo "?")
	codes=$(cat "$work"/abuse-codes-*.txt | sort | uniq -c | awk '{printf "%s%s→%s ×%d", (NR > 1 ? ", " : ""), $2, $3, $1}')
	abuse_table=$(
		echo "| phase (${ABUSE_SECONDS}s, normal requests at concurrency 4) | normal requests | non-200 | p50 ms | p99 ms | server peak RSS (VmHWM), MiB |"
		echo "|---|---:|---:|---:|---:|---:|"
		awk -v n="$quiet_requests" -v bad="$((quiet_non200 + quiet_socket_errors))" -v p50="$quiet_p50_us" -v p99="$quiet_p99_us" -v h="$hwm_quiet" \
			'BEGIN { printf "| quiet | %d | %d | %.1f | %.1f | %s |\n", n, bad, p50 / 1000, p99 / 1000, h }'
		awk -v n="$abuse_requests" -v bad="$((abuse_non200 + abuse_socket_errors))" -v p50="$abuse_p50_us" -v p99="$abuse_p99_us" -v h="$hwm" \
			'BEGIN { printf "| under abuse | %d | %d | %.1f | %.1f | %s |\n", n, bad, p50 / 1000, p99 / 1000, h }'
		echo
		echo "Abusive requests (body → status × count): ${codes}. Server alive after the abuse: ${alive}."
	)
fi

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
# "stopped: N images in M model runs": the mean batch size.
batching=$(awk '/^stopped:/ { printf "%d images in %d model runs, %.1f images per run", $2, $5, ($5 ? $2 / $5 : 0) }' "$work/serve.log")

{
	echo "### kfash-tf serve on $(nproc) cores: $(sed -n 's/^serving \(.*\) as .*/\1/p' "$work/serve.log")"
	echo
	echo "One $(stat -c %s "$IMAGE")-byte JPEG per request as {\"b64\": ...}, wrk on loopback; serve flags: ${SERVE_FLAGS:-defaults (--max-batch 32 --batch-wait 5ms)}."
	if [ -n "$REQUESTS" ]; then
		echo
		echo "| concurrency | requests | req/s | p50 ms | p99 ms | errors | server RSS after, MiB |"
		echo "|---:|---:|---:|---:|---:|---:|---:|"
		printf '%s\n' "${rows[@]}"
		echo
		echo "Server RSS: ${rss_before} MiB after a ${WARMUP}-request warm-up, ${rss_after} MiB after ${total} more requests."
	fi
	if [ -n "$abuse_table" ]; then
		echo
		echo "$abuse_table"
	fi
	echo
	echo "Batching over the whole run: ${batching}. Exit status after SIGTERM: ${status}."
} | tee "${OUT:-/dev/null}"
