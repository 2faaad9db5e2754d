#!/usr/bin/env python3
"""'make bench': kfash-tf against Keras 3 and PyTorch on this machine.

For each network, at batch 32 and at the study's batch size, every system
(kfash-tf, Keras on the same TensorFlow, PyTorch on the CPU) is run in its own
process, one after the other in an order rotated at every step, and times:

- training throughput (images/s over timed steps after warm-up) and the
  process's peak RSS when training ended, at both batch sizes;
- inference throughput at batch 32 and the latency of one image (in the
  batch-32 process, after training);

plus, in the same run, the machine's achievable float32 FLOP/s (a 4096²
MatMul through TensorFlow, 'kfash-tf bench matmul') and the data pipeline
alone ('kfash-tf bench pipeline' on the real JPEGs, when the data is there).
Every measure is repeated --repeats times; medians are reported.

Each peer checks its trainable-parameter count against kfash-tf's before it
times anything (bench/peers/*.py), so a mismatch aborts instead of comparing
different networks.

Results: bench/results.json (one record per system × network × batch ×
measure) and the generated part of BENCHMARKS.md (between the bench:begin and
bench:end markers; the rest of the file is kept). BENCH=quick runs one
network and writes bench/results-quick.json only, printing the tables.

Standard library only: the peers run in their own venvs (scripts/pyenv.sh,
scripts/pyenv-torch.sh); this script only starts processes.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(ROOT, "bench", "peers")
SYSTEMS = ["kfash-tf", "keras", "pytorch"]
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

# Study batch sizes (models/registry.go) and the timing plan per network:
# (warm-up steps, min timed steps) at batch 32 and at the study batch. Each
# training measure also runs for at least --min-seconds; the heavy networks
# take 5-30 s per step on two cores, so they get one warm-up step and one or
# two timed steps at the study batch.
PLAN = {
    "alexnet": dict(study=128, b32=(1, 3), study_steps=(1, 2)),
    "vgg8": dict(study=128, b32=(2, 3), study_steps=(1, 3)),
    "vgg10": dict(study=128, b32=(1, 2), study_steps=(1, 1)),
    "googlenet": dict(study=64, b32=(1, 2), study_steps=(1, 2)),
    "resnet34": dict(study=128, b32=(1, 2), study_steps=(1, 1)),
    "densenet": dict(study=64, b32=(1, 3), study_steps=(1, 2)),
}
ORDER = list(PLAN)

# Targets of issue 6: (measure, peer, minimum ratio kfash-tf/peer) for
# throughputs; latency must be below Keras's model(x).
# Measure names in bench/results.json.
NAMES = {"train": "train_throughput", "rss": "train_peak_rss", "train_peak_fraction": "train_flops_fraction_of_peak",
         "infer": "infer_throughput", "latency": "latency", "latency_compiled": "latency_compiled",
         "pipeline": "pipeline_throughput", "matmul": "matmul_peak"}

TARGETS = [("train", "keras", 1.1), ("train", "pytorch", 1.0), ("infer", "keras", 1.1)]
PIPELINE_FACTOR = 3.0


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_json(cmd, env=None, timeout=1800):
    """Runs cmd, returns (parsed JSON stdout, peak RSS of the process in bytes
    from wait4, error string or None)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.time()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=full_env, cwd=ROOT)
        deadline = t0 + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.time() > deadline:
                p.kill()
                pid, status, ru = os.wait4(p.pid, 0)
                return None, 0, f"timed out after {timeout} s: {shlex.join(cmd)}"
            time.sleep(0.05)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    rss = ru.ru_maxrss * 1024  # kB on Linux
    if p.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-6:])
        return None, rss, f"exit {p.returncode}: {shlex.join(cmd)}\n{tail}"
    try:
        return json.loads(stdout), rss, None
    except json.JSONDecodeError as e:
        return None, rss, f"bad JSON from {shlex.join(cmd)}: {e}"


class Bench:
    def __init__(self, a):
        self.a = a
        self.samples = {}  # (system, network, batch, measure) -> [values]
        self.errors = []
        self.versions = {}
        self.jit = {}
        self.params = {}
        self.flops = {}
        self.date = None

    def add(self, system, network, batch, measure, value):
        if value is not None:
            self.samples.setdefault((system, network, batch, measure), []).append(value)

    # --- processes -------------------------------------------------------

    def cmd(self, system, network, batch, measures, warmup, steps, min_seconds):
        common = [network, "--batch", str(batch), "--infer-batch", "32", "--measure", ",".join(measures),
                  "--warmup", str(warmup), "--steps", str(steps), "--min-seconds", str(min_seconds)]
        if system == "kfash-tf":
            return [self.a.kfash_tf, "bench"] + common + ["--format", "json"]
        expect = ["--expect-params", str(self.params[network])]
        if system == "keras":
            return [self.a.keras_python, os.path.join(PEERS, "keras_bench.py")] + common + expect
        return [self.a.torch_python, os.path.join(PEERS, "torch_bench.py")] + common + expect

    def run_system(self, system, network, batch, measures, warmup, steps):
        cmd = self.cmd(system, network, batch, measures, warmup, steps, self.a.min_seconds)
        env = {"PYTHONDONTWRITEBYTECODE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
        t0 = time.time()
        rep, rss, err = run_json(cmd, env, timeout=self.a.timeout)
        took = time.time() - t0
        if err:
            self.errors.append(f"{system} {network} batch {batch}: {err}")
            log(f"  {system:8s} FAILED ({took:.0f} s): {err.splitlines()[0]}")
            return
        self.record(system, network, batch, rep, rss)
        parts = []
        if "train" in rep:
            parts.append(f"train {rep['train']['images_per_second']:.1f} img/s")
        if "infer" in rep:
            parts.append(f"infer {rep['infer']['images_per_second']:.1f} img/s")
        if "latency" in rep:
            parts.append(f"latency {rep['latency']['median_ms']:.1f} ms")
        log(f"  {system:8s} {', '.join(parts)} ({took:.0f} s)")

    def record(self, system, network, batch, rep, rss):
        for k in ("tensorflow_version", "keras_version", "torch_version", "go_version"):
            if k in rep:
                self.versions[k] = rep[k]
        if "jit_compile" in rep:
            self.jit[system] = rep["jit_compile"]
        if "train" in rep:
            t = rep["train"]
            self.add(system, network, batch, "train", t["images_per_second"])
            self.add(system, network, batch, "rss", t.get("peak_rss_bytes") or rss)
        if "infer" in rep:
            self.add(system, network, 32, "infer", rep["infer"]["images_per_second"])
        if "latency" in rep:
            self.add(system, network, 1, "latency", rep["latency"]["median_ms"])
        if "latency_compiled" in rep:
            self.add(system, network, 1, "latency_compiled", rep["latency_compiled"]["median_ms"])

    def matmul(self):
        rep, _, err = run_json([self.a.kfash_tf, "bench", "matmul", "--format", "json", "--min-seconds", "4"])
        if err:
            self.errors.append(f"matmul: {err}")
            return
        self.add("tensorflow", "", 0, "matmul", rep["gflops_per_second"])
        log(f"  matmul {rep['size']}²: {rep['gflops_per_second']:.1f} GFLOP/s")

    def pipeline(self, networks):
        if not os.path.isdir(self.a.data):
            return
        sizes = sorted({self.sizes[n] for n in networks})
        rep, _, err = run_json([self.a.kfash_tf, "bench", "pipeline", "--data", self.a.data, "--workers", str(os.cpu_count() or 1),
                                "--size", ",".join(map(str, sizes)), "--min-seconds", "4", "--format", "json"])
        if err:
            self.errors.append(f"pipeline: {err}")
            return
        for r in rep:
            self.add("kfash-tf", f"size{r['size']}", 32, "pipeline", r["images_per_second"])
        log("  pipeline " + ", ".join(f"{r['size']}px {r['images_per_second']:.0f} img/s" for r in rep))

    # --- the run ---------------------------------------------------------

    def load_models(self):
        out = subprocess.run([self.a.kfash_tf, "models", "--format", "json"], capture_output=True, text=True, check=True, cwd=ROOT)
        self.sizes = {}
        for m in json.loads(out.stdout):
            self.params[m["name"]] = m["trainable_params"]
            self.flops[m["name"]] = m["forward_flops"]
            self.sizes[m["name"]] = m["input_size"]
        ver = subprocess.run([self.a.kfash_tf, "--version"], capture_output=True, text=True, cwd=ROOT)
        self.versions["kfash_tf"] = ver.stdout.strip().split()[-1] if ver.returncode == 0 else "?"

    def run(self, networks, systems):
        self.load_models()
        settle()
        self.started = time.time()
        self.load_before = os.getloadavg()
        cpu0, ours0 = cpu_times(), own_cpu_seconds()
        for r in range(self.a.repeats):
            log(f"repeat {r + 1}/{self.a.repeats}")
            self.matmul()
            self.pipeline(networks)
            step = 0
            for n in networks:
                plan = PLAN[n]
                configs = [(32, ["train", "infer", "latency"], plan["b32"]), (plan["study"], ["train"], plan["study_steps"])]
                for batch, measures, (warmup, steps) in configs:
                    k = (r + step) % len(systems)
                    order = systems[k:] + systems[:k]
                    step += 1
                    log(f" {n} batch {batch}: {' → '.join(order)}")
                    for s in order:
                        self.run_system(s, n, batch, measures, warmup, steps)
        self.load_after = os.getloadavg()
        self.elapsed = time.time() - self.started
        cpu1, ours1 = cpu_times(), own_cpu_seconds()
        if cpu0 and cpu1:
            # What the rest of the machine used while the benchmark ran: all
            # busy CPU time minus the benchmark's own processes, in cores.
            busy = cpu1[0] - cpu0[0]
            self.other_cores = max(0.0, busy - (ours1 - ours0)) / self.elapsed
            self.steal_cores = (cpu1[1] - cpu0[1]) / self.elapsed
        self.date = datetime.datetime.now().isoformat(timespec="seconds")

    # --- results ---------------------------------------------------------

    def median(self, system, network, batch, measure):
        v = self.samples.get((system, network, batch, measure))
        if not v:
            return None
        # The peak is what the machine can do: the best of the repeats, so
        # that another process running during one of them does not lower it.
        return max(v) if measure == "matmul" else statistics.median(v)

    def records(self, networks, systems):
        units = {"train": "images/s", "infer": "images/s", "latency": "ms", "latency_compiled": "ms",
                 "rss": "MiB", "train_peak_fraction": "fraction", "pipeline": "images/s", "matmul": "GFLOP/s"}
        recs = []

        def rec(system, network, batch, measure, value, values, **extra):
            if value is None:
                return
            scale = 1 / 2**20 if measure == "rss" else 1
            r = dict(system=system, network=network, batch=batch, measure=NAMES[measure], value=round(value * scale, 4),
                     unit=units[measure], repeats=[round(v * scale, 4) for v in values])
            r.update(extra)
            recs.append(r)

        peak = self.median("tensorflow", "", 0, "matmul")
        rec("tensorflow", "", 0, "matmul", peak, self.samples.get(("tensorflow", "", 0, "matmul"), []), size=4096)
        for n in networks:
            for s in systems:
                for batch in (32, PLAN[n]["study"]):
                    for m in ("train", "rss"):
                        rec(s, n, batch, m, self.median(s, n, batch, m), self.samples.get((s, n, batch, m), []))
                    tp = self.median(s, n, batch, "train")
                    if tp and peak:
                        frac = 3 * self.flops[n] * tp / (peak * 1e9)
                        rec(s, n, batch, "train_peak_fraction", frac, [], flops_per_image=3 * self.flops[n])
                rec(s, n, 32, "infer", self.median(s, n, 32, "infer"), self.samples.get((s, n, 32, "infer"), []))
                for m in ("latency", "latency_compiled"):
                    rec(s, n, 1, m, self.median(s, n, 1, m), self.samples.get((s, n, 1, m), []))
            size = self.sizes[n]
            p = self.median("kfash-tf", f"size{size}", 32, "pipeline")
            rec("kfash-tf", n, 32, "pipeline", p, self.samples.get(("kfash-tf", f"size{size}", 32, "pipeline"), []),
                input_size=size)
        return recs


# BUSY_CORES: above this many cores of other processes' work, on average,
# the run is labelled busy (a compile or a test suite uses 1-2 cores).
BUSY_CORES = 0.15


def cpu_times():
    """(busy, steal) CPU seconds of the whole machine since boot, from
    /proc/stat; None where there is no /proc."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal ...
    busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6]
    steal = fields[7] if len(fields) > 7 else 0
    return busy / hz, steal / hz


def own_cpu_seconds():
    """CPU seconds used by this script and its finished children."""
    import resource
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def settle(limit=120.0):
    """Waits (up to limit seconds) until the machine is idle, so the first
    measures are not taken while a build or a test suite winds down."""
    start = time.time()
    while True:
        c0 = cpu_times()
        if c0 is None:
            return
        time.sleep(2)
        busy = (cpu_times()[0] - c0[0]) / 2
        if busy <= BUSY_CORES:
            return
        if time.time() - start > limit:
            log(f"the machine is still busy ({busy:.2f} cores used by other processes); measuring anyway")
            return
        log(f"waiting for the machine to be idle ({busy:.2f} cores busy) ...")


def load_results(a, paths):
    """Rebuilds a Bench from results files (for --regenerate): the samples of
    every record, the versions and the machine's load. Several files (runs of
    the same code) are merged: their repeats add up."""
    b = Bench(a)
    b.elapsed, a.repeats = 0, 0
    internal = {v: k for k, v in NAMES.items()}
    networks, docs = [], []
    for path in paths:
        doc = json.load(open(path))
        docs.append(doc)
        b.versions, b.errors = doc.get("versions", {}), b.errors + doc.get("errors", [])
        b.jit = {"keras": doc.get("keras_jit_compile")}
        load = doc["machine"]
        b.load_before = max(tuple(load["load_before"]), getattr(b, "load_before", (0, 0, 0)))
        b.load_after = max(tuple(load["load_after"]), getattr(b, "load_after", (0, 0, 0)))
        for k in ("other_cores", "steal_cores"):
            if load.get(k) is not None:
                setattr(b, k, max(load[k], getattr(b, k, None) or 0.0))
        b.elapsed += doc.get("elapsed_seconds", 0)
        b.date = doc.get("date")
        a.repeats += doc.get("repeats", 1)
        seen = set()
        for r in doc["records"]:
            m = internal.get(r["measure"], r["measure"])
            n = r["network"]
            if n and n not in networks:
                networks.append(n)
            if m == "train_peak_fraction":
                continue  # derived
            values = [v * 2**20 if m == "rss" else v for v in r["repeats"]]
            key = (r["system"], n, r["batch"], m)
            if m == "pipeline":  # one record per network, one measure per size
                key = ("kfash-tf", f"size{r['input_size']}", 32, "pipeline")
            if key in seen:
                continue
            seen.add(key)
            b.samples.setdefault(key, []).extend(values)
    return b, docs[-1], [n for n in ORDER if n in networks]


# --- Markdown ------------------------------------------------------------

def fmt(v, digits=1):
    if v is None:
        return "—"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt_ratio(r, good_above=True, target=None):
    if r is None:
        return "—"
    s = f"{r:.2f}×"
    if target is not None:
        ok = r >= target if good_above else r < target
        s += "" if ok else " ✗"
    return s


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        m = re.search(r"^Model name:\s*(.+)$", out, re.M)
        if m:
            return m.group(1).strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def mem_total():
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            return f"{kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        return "?"


def markdown(b, networks, recs, command):
    """The tables, columns always in SYSTEMS order (a system not measured
    shows as —)."""
    med = b.median
    peak = med("tensorflow", "", 0, "matmul")
    L = []
    when = (b.date or datetime.datetime.now().isoformat(timespec="seconds")).replace("T", " ")[:16]
    L.append(f"Generated by `{command}` (bench/run.py) on {when}; "
             f"{b.a.repeats} repeats, medians; run time {b.elapsed / 60:.0f} min.")
    L.append("")
    other, steal = getattr(b, "other_cores", None), getattr(b, "steal_cores", None)
    if other is not None:
        L.append(f"- Machine: {cpu_model()}, {os.cpu_count()} cores, {mem_total()} RAM. While the benchmark ran, other "
                 f"processes used {other:.2f} cores on average (the machine's busy CPU time minus the benchmark's own), "
                 f"and the hypervisor took {steal:.2f} cores as steal time.")
        busy = other > BUSY_CORES
    else:  # results of an older run.py, which recorded only load averages
        L.append(f"- Machine: {cpu_model()}, {os.cpu_count()} cores, {mem_total()} RAM; load average "
                 f"{b.load_before[0]:.2f} before, {b.load_after[0]:.2f} after the run.")
        busy = max(b.load_before[0], b.load_after[0]) > 0.5 * (os.cpu_count() or 1)
    v = b.versions
    L.append(f"- kfash-tf {v.get('kfash_tf', '?')} ({v.get('go_version', 'Go ?')}) on the TensorFlow C library "
             f"{v.get('tensorflow_version', '?')}; Keras {v.get('keras_version', '?')} on TensorFlow "
             f"{v.get('tensorflow_version', '?')} (jit_compile={b.jit.get('keras', '?')}); PyTorch "
             f"{v.get('torch_version', '?')} (CPU, {os.cpu_count()} threads); Python {platform.python_version()}.")
    L.append("- Synthetic data held in memory (no loader) for all three; one process per system × network × batch, "
             "systems in rotated order; each peer asserted kfash-tf's trainable-parameter count before timing.")
    L.append("- Ratios are kfash-tf / peer: above 1 is faster for throughput; below 1 is better for latency and RSS. "
             "✗ marks a missed target.")
    if busy:
        L.append("- **The machine was busy** (other processes competed for the cores): every figure is "
                 "noisy, and PyTorch's figures are worst hit: its OpenMP threads spin-wait at every op, so a "
                 "process competing for the cores can make it 10-100× slower (DenseNet batch-1 latency 7.7 s "
                 "busy vs 25 ms quiet, measured here). Re-run on an idle machine before quoting them.")
    L.append("")
    L.append(f"### Machine peak: float32 MatMul 4096² through TensorFlow: **{fmt(peak)} GFLOP/s** (best of the repeats)")
    L.append("")

    for batch_kind in ("32", "study"):
        title = "batch 32" if batch_kind == "32" else "the study's batch size"
        L.append(f"### Training throughput, {title} (images/s; training FLOP/s as a fraction of the MatMul peak)")
        L.append("")
        L.append("| network | batch | kfash-tf | Keras | PyTorch | kfash-tf/Keras (≥1.1) | kfash-tf/PyTorch (≥1.0) | "
                 "peak fraction kfash-tf / Keras / PyTorch |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---|")
        for n in networks:
            batch = 32 if batch_kind == "32" else PLAN[n]["study"]
            k, ke, t = (med(s, n, batch, "train") for s in SYSTEMS)
            fr = [3 * b.flops[n] * x / (peak * 1e9) if x and peak else None for x in (k, ke, t)]
            L.append(f"| {n} | {batch} | {fmt(k)} | {fmt(ke)} | {fmt(t)} | {fmt_ratio(ratio(k, ke), True, 1.1)} | "
                     f"{fmt_ratio(ratio(k, t), True, 1.0)} | {' / '.join(fmt(x, 2) for x in fr)} |")
        L.append("")

    L.append("### Inference throughput, batch 32 (images/s)")
    L.append("")
    L.append("| network | kfash-tf | Keras (predict_on_batch) | PyTorch | kfash-tf/Keras (≥1.1) | kfash-tf/PyTorch |")
    L.append("|---|---:|---:|---:|---:|---:|")
    for n in networks:
        k, ke, t = (med(s, n, 32, "infer") for s in SYSTEMS)
        L.append(f"| {n} | {fmt(k)} | {fmt(ke)} | {fmt(t)} | {fmt_ratio(ratio(k, ke), True, 1.1)} | {fmt_ratio(ratio(k, t))} |")
    L.append("")

    L.append("### Latency, one image (median ms)")
    L.append("")
    L.append("| network | kfash-tf | Keras model(x) | Keras predict_on_batch | PyTorch | kfash-tf/Keras model(x) (<1) | kfash-tf/PyTorch |")
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    for n in networks:
        k, ke, t = (med(s, n, 1, "latency") for s in SYSTEMS)
        kc = med("keras", n, 1, "latency_compiled")
        L.append(f"| {n} | {fmt(k)} | {fmt(ke)} | {fmt(kc)} | {fmt(t)} | {fmt_ratio(ratio(k, ke), False, 1.0)} | "
                 f"{fmt_ratio(ratio(k, t))} |")
    L.append("")

    L.append("### Peak RSS of the training process (MiB)")
    L.append("")
    L.append("| network | batch | kfash-tf | Keras | PyTorch | kfash-tf/Keras | kfash-tf/PyTorch |")
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    for n in networks:
        for batch in (32, PLAN[n]["study"]):
            k, ke, t = (med(s, n, batch, "rss") for s in SYSTEMS)
            k, ke, t = (x / 2**20 if x else None for x in (k, ke, t))
            L.append(f"| {n} | {batch} | {fmt(k)} | {fmt(ke)} | {fmt(t)} | {fmt_ratio(ratio(k, ke))} | {fmt_ratio(ratio(k, t))} |")
    L.append("")

    L.append(f"### Data pipeline alone vs training consumption (images/s; target: pipeline ≥ {PIPELINE_FACTOR:g}× the fastest network)")
    L.append("")
    have_pipeline = any(m == "pipeline" for (_, _, _, m) in b.samples)
    if not have_pipeline:
        L.append(f"Skipped: {b.a.data} is not there.")
    else:
        L.append(f"`kfash-tf bench pipeline`: decode + resize + online augmentation of the real JPEGs in "
                 f"{os.path.relpath(b.a.data, ROOT)} (train split), {os.cpu_count()} workers, batch 32, uncached.")
        L.append("")
        L.append("| network | input | pipeline | kfash-tf training, batch 32 | at the study batch | pipeline / training |")
        L.append("|---|---:|---:|---:|---:|---:|")
        for n in networks:
            size = b.sizes[n]
            p = med("kfash-tf", f"size{size}", 32, "pipeline")
            t32, ts = med("kfash-tf", n, 32, "train"), med("kfash-tf", n, PLAN[n]["study"], "train")
            fastest = max(x for x in (t32, ts) if x) if (t32 or ts) else None
            L.append(f"| {n} | {size} | {fmt(p)} | {fmt(t32)} | {fmt(ts)} | {fmt_ratio(ratio(p, fastest))} |")
    L.append("")

    L.append("### Targets")
    L.append("")
    L.extend(target_lines(b, networks))
    if b.errors:
        L.append("")
        L.append("### Errors")
        L.append("")
        for e in b.errors:
            L.append(f"- `{e.splitlines()[0]}`")
    return "\n".join(L) + "\n"


def target_lines(b, networks):
    med = b.median
    missed, met = [], 0
    for n in networks:
        for measure, peer, want in TARGETS:
            batches = (32, PLAN[n]["study"]) if measure == "train" else (32,)
            for batch in batches:
                r = ratio(med("kfash-tf", n, batch, measure), med(peer, n, batch, measure))
                if r is None:
                    continue
                if r >= want:
                    met += 1
                else:
                    missed.append(f"- {measure} {n} batch {batch}: kfash-tf/{peer} {r:.2f}× (target {want}×, "
                                  f"short by {100 * (want - r) / want:.1f}%)")
        r = ratio(med("kfash-tf", n, 1, "latency"), med("keras", n, 1, "latency"))
        if r is not None:
            if r < 1:
                met += 1
            else:
                missed.append(f"- latency {n}: kfash-tf/Keras model(x) {r:.2f}× (target below 1×)")
    fastest = None
    for n in networks:
        for batch in (32, PLAN[n]["study"]):
            t = med("kfash-tf", n, batch, "train")
            if t and (fastest is None or t > fastest[0]):
                fastest = (t, n, batch)
    if fastest:
        t, n, batch = fastest
        p = med("kfash-tf", f"size{b.sizes[n]}", 32, "pipeline")
        if p is not None:
            if p >= PIPELINE_FACTOR * t:
                met += 1
            else:
                missed.append(f"- pipeline: {p:.0f} images/s at {b.sizes[n]}px is {p / t:.2f}× the fastest training "
                              f"({n}, batch {batch}: {t:.0f} images/s), target {PIPELINE_FACTOR:g}×")
    out = [f"{met} targets met, {len(missed)} missed" + (":" if missed else ".")]
    if missed:
        out.append("")
        out.extend(missed)
    return out


def update_markdown(path, block):
    """Replaces the text between the markers, or appends them under the
    make bench heading when the file has none."""
    replace_block(path, block, BEGIN, END, "# Benchmarks\n", "## kfash-tf vs Keras vs PyTorch (`make bench`)\n\n")


def replace_block(path, block, begin, end, new_file, lead=""):
    """Writes block between the markers begin and end of the Markdown file
    path, keeping the rest of it. A file without the markers gets them at
    its end after lead; a missing one starts as new_file. Written whole and
    renamed into place."""
    text = open(path).read() if os.path.exists(path) else new_file
    gen = f"{begin}\n{block}{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + gen + tail
    else:
        text = text.rstrip("\n") + "\n\n" + lead + gen + "\n"
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=["full", "quick"], default="full")
    p.add_argument("--networks", help="comma-separated networks (default: all; quick: vgg8)")
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--min-seconds", type=float, default=None, help="minimum timed seconds per measure (default 4, quick 3)")
    p.add_argument("--kfash-tf", default=os.path.join(ROOT, "bin", "kfash-tf"))
    p.add_argument("--keras-python", help="python of the TensorFlow venv (scripts/pyenv.sh)")
    p.add_argument("--torch-python", help="python of the PyTorch venv (scripts/pyenv-torch.sh)")
    p.add_argument("--data", default=os.path.join(os.path.dirname(ROOT), "shared", "data", "clothing-small"))
    p.add_argument("--timeout", type=float, default=1800, help="seconds one process may take")
    p.add_argument("--results", help="JSON output (default bench/results.json; quick: bench/results-quick.json)")
    p.add_argument("--markdown", help="Markdown file to update (default BENCHMARKS.md for a full run, none for quick)")
    p.add_argument("--command", default=None, help="the command named in BENCHMARKS.md")
    p.add_argument("--regenerate", metavar="RESULTS", nargs="+",
                   help="measure nothing: the tables again from RESULTS (several files of runs of the same code are "
                        "merged); writes --results (default: the first RESULTS) and the Markdown")
    a = p.parse_args()
    if a.regenerate:
        return regenerate(a)
    if not a.keras_python or not a.torch_python:
        p.error("--keras-python and --torch-python are required (make bench finds them)")
    quick = a.mode == "quick"
    networks = a.networks.split(",") if a.networks else (["vgg8"] if quick else ORDER)
    for n in networks:
        if n not in PLAN:
            p.error(f"unknown network {n!r}: use {', '.join(ORDER)}")
    systems = a.systems.split(",")
    for s in systems:
        if s not in SYSTEMS:
            p.error(f"unknown system {s!r}: use {', '.join(SYSTEMS)}")
    if a.min_seconds is None:
        a.min_seconds = 3.0 if quick else 4.0
    a.results = a.results or os.path.join(ROOT, "bench", "results-quick.json" if quick else "results.json")
    if a.markdown is None and not quick:
        a.markdown = os.path.join(ROOT, "BENCHMARKS.md")
    command = a.command or ("make bench BENCH=quick" if quick else "make bench")

    b = Bench(a)
    b.run(networks, systems)
    write_outputs(a, b, networks, systems, command)
    return 1 if b.errors else 0


def regenerate(a):
    """--regenerate: the tables again from a results file, e.g. after a change
    of this script's Markdown."""
    b, doc, networks = load_results(a, a.regenerate)
    versions = dict(b.versions)
    b.load_models()
    b.versions = versions
    a.results = a.results or a.regenerate[0]
    if a.markdown is None and doc.get("mode") == "full":
        a.markdown = os.path.join(ROOT, "BENCHMARKS.md")
    write_outputs(a, b, networks, SYSTEMS, a.command or doc.get("command", "make bench"), doc)
    return 0


def write_outputs(a, b, networks, systems, command, old=None):
    """Writes the results file and the Markdown, and prints the Markdown."""
    recs = b.records(networks, systems)
    machine = (old or {}).get("machine") or dict(cpu=cpu_model(), cores=os.cpu_count(), memory=mem_total(),
                                                 load_before=b.load_before, load_after=b.load_after,
                                                 other_cores=getattr(b, "other_cores", None),
                                                 steal_cores=getattr(b, "steal_cores", None))
    doc = dict(command=command, mode=(old or {}).get("mode", a.mode),
               date=b.date, machine=machine,
               versions=b.versions, keras_jit_compile=b.jit.get("keras"), repeats=a.repeats,
               elapsed_seconds=round(b.elapsed), errors=b.errors, records=recs)
    tmp = a.results + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(tmp, a.results)
    block = markdown(b, networks, recs, command)
    if a.markdown:
        update_markdown(a.markdown, block)
    print(block)
    log(f"done in {b.elapsed / 60:.1f} min: {a.results}" + (f", {a.markdown}" if a.markdown else ""))


if __name__ == "__main__":
    sys.exit(main())
