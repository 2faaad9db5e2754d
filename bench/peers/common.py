"""What the Keras and PyTorch peers of 'kfash-tf bench' share: the command
line, the timing loop, peak RSS and the JSON report, whose layout is the one
'kfash-tf bench NETWORK --format json' prints (app/bench.go)."""

import argparse
import json
import os
import statistics
import sys
import time

# The six networks: input size, the study's optimizer and weight decay, and
# the dropout rate (models/registry.go).
NETWORKS = {
    "alexnet": dict(size=227, optimizer="adam", weight_decay=1e-3, dropout=0.8),
    "vgg8": dict(size=150, optimizer="adamw", weight_decay=0.0, dropout=0.0),
    "vgg10": dict(size=150, optimizer="adamw", weight_decay=0.0, dropout=0.0),
    "googlenet": dict(size=224, optimizer="adamw", weight_decay=5e-3, dropout=0.4),
    "resnet34": dict(size=227, optimizer="adam", weight_decay=1e-4, dropout=0.0),
    "densenet": dict(size=227, optimizer="adam", weight_decay=1e-4, dropout=0.0),
}
CLASSES = 3
LR = 1e-4


def parse_args(system, extra=None):
    """The flags of 'kfash-tf bench NETWORK', plus --expect-params."""
    p = argparse.ArgumentParser(description=f"{system} peer of 'kfash-tf bench'")
    p.add_argument("network", choices=sorted(NETWORKS))
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--infer-batch", type=int, default=32)
    p.add_argument("--measure", default="train,infer,latency")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--min-seconds", type=float, default=5)
    p.add_argument("--expect-params", type=int, default=0,
                   help="fail before timing unless the model has this many trainable parameters")
    p.add_argument("--step-times", action="store_true")
    if extra:
        extra(p)
    a = p.parse_args()
    a.measures = {m.strip() for m in a.measure.split(",") if m.strip()}
    unknown = a.measures - {"train", "infer", "latency"}
    if unknown or not a.measures:
        p.error(f"--measure: use train, infer and/or latency, got {a.measure!r}")
    return a


def check_params(network, got, want):
    """Exit with an error, before anything is timed, on a parameter mismatch."""
    if want and got != want:
        sys.exit(f"{network}: the peer model has {got:,} trainable parameters, kfash-tf has {want:,}: "
                 "the architectures differ, timing them would compare different networks")


def time_steps(warmup, min_steps, min_seconds, step):
    """Runs step warmup times untimed, then at least min_steps times and until
    min_seconds have passed; returns the timed durations in seconds."""
    for _ in range(warmup):
        step()
    times = []
    while len(times) < min_steps or sum(times) < min_seconds:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


def _percentile(sorted_vals, q):
    if not sorted_vals:
        return 0.0
    pos = q * (len(sorted_vals) - 1)
    i = int(pos)
    if i + 1 >= len(sorted_vals):
        return sorted_vals[-1]
    return sorted_vals[i] + (pos - i) * (sorted_vals[i + 1] - sorted_vals[i])


def summary(times, batch, warmup, keep):
    """A timing record: images/s over the timed steps, median and p90 step ms."""
    total = sum(times)
    ms = sorted(t * 1000 for t in times)
    rec = dict(batch=batch, warmup_steps=warmup, steps=len(times), seconds=total,
               images_per_second=batch * len(times) / total if total else 0.0,
               median_ms=statistics.median(ms) if ms else 0.0, p90_ms=_percentile(ms, 0.9))
    if keep:
        rec["step_ms"] = [t * 1000 for t in times]
    return rec


def peak_rss():
    """The process's peak resident set size (VmHWM) in bytes; 0 without /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def emit(report):
    """Prints the report as JSON on stdout (progress goes to stderr)."""
    report["peak_rss_bytes"] = peak_rss()
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    sys.stdout.flush()


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def cores():
    return os.cpu_count() or 1
