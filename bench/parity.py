#!/usr/bin/env python3
"""'make parity': does kfash-tf reach the accuracy of Keras and PyTorch on the
same recipe? A benchmark, not a test.

For each network, recipe and seed, kfash-tf trains first ('kfash-tf train';
its run's config.json is the recipe) and is scored on the Test split
('kfash-tf evaluate --split test', best checkpoint); then each peer
(bench/peers/keras_train.py on Keras 3 + the same TensorFlow,
bench/peers/torch_train.py on PyTorch) trains that config.json on the same
folder and scores its best epoch on Test. One run at a time.

Settings (environment; make parity passes it through):
  PARITY_DATA      dataset folder (default ../shared/data/clothing-small from the repo)
  PARITY_CLASSES   classes in label order (default t-shirt,pants,shoes; empty: all)
  PARITY_NETWORKS  networks (default vgg8)
  PARITY_EPOCHS    epochs (default 5), or per network: vgg8:5,googlenet:3
  PARITY_SEEDS     seeds (default 1,2,3)
  PARITY_SYSTEMS   systems (default kfash-tf,keras,pytorch; the seed recipe: kfash-tf,pytorch)
  PARITY_RECIPES   default (kfash-tf's defaults) and/or seed (--recipe seed) (default "default,seed")
  PARITY_FLAGS     extra kfash-tf train flags for the default recipe (the peers follow through config.json)
  PARITY_TAG       label of this configuration (default: PARITY_FLAGS, or "default")
  PARITY_RESULTS   results JSON, merged across invocations (default parity/results.json)
  PARITY_FRESH     1: retrain records already in PARITY_RESULTS
  PARITY_WORK      run folders (default parity/runs)
  PARITY_MD        Markdown file whose parity:begin/end block is replaced (default PARITY.md; empty: none)
  PARITY_MAX_IMAGES  peers only: at most this many images per split (smoke tests of the peers; 0: all)

Standard library only: the peers run in their own venvs.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time

from run import cpu_model, replace_block  # noqa: E402  (bench/run.py, make bench's harness)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(ROOT, "bench", "peers")
SYSTEMS = ["kfash-tf", "keras", "pytorch"]
BEGIN, END = "<!-- parity:begin -->", "<!-- parity:end -->"
KEY = ("tag", "dataset", "classes", "network", "recipe", "system", "seed")


def log(msg):
    print(f"[parity {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def env(name, default):
    v = os.environ.get(name)
    return default if v is None else v


def split_list(s):
    return [x.strip() for x in s.split(",") if x.strip()]


def parse_epochs(s, networks):
    """"5" or "vgg8:5,googlenet:3" (networks not named: 5)."""
    out = {n: 5 for n in networks}
    for part in split_list(s):
        if ":" in part:
            n, e = part.split(":", 1)
            out[n.strip()] = int(e)
        else:
            out = {n: int(part) for n in networks}
    return out


def run(cmd, log_path, timeout):
    """Runs cmd with stdout and stderr to log_path; returns (exit code, stdout text, stderr tail)."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "w") as err:
        err.write("$ " + shlex.join(cmd) + "\n")
        err.flush()
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, cwd=ROOT, timeout=timeout,
                               env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1", TF_CPP_MIN_LOG_LEVEL="2"))
            code, out = p.returncode, p.stdout.decode(errors="replace")
        except subprocess.TimeoutExpired:
            code, out = -1, ""
    with open(log_path, errors="replace") as f:
        tail = "\n".join(f.read().strip().splitlines()[-8:])
    if code == -1:
        tail += f"\n(timed out after {timeout} s)"
    return code, out, tail


def mean_sd(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


class Parity:
    def __init__(self, a):
        self.a = a
        self.errors = []
        self.records = []
        self.versions = {}
        if os.path.exists(a.results):
            with open(a.results) as f:
                doc = json.load(f)
            self.records = doc.get("records", [])
            self.versions = doc.get("versions", {})
        self.params = {}

    # --- records --------------------------------------------------------

    def key(self, r):
        return tuple(r[k] for k in KEY)

    def find(self, key):
        for r in self.records:
            if self.key(r) == key:
                return r
        return None

    def put(self, rec):
        k = self.key(rec)
        self.records = [r for r in self.records if self.key(r) != k] + [rec]
        self.save()

    def save(self):
        doc = dict(versions=self.versions, records=self.records)
        os.makedirs(os.path.dirname(os.path.abspath(self.a.results)), exist_ok=True)
        tmp = self.a.results + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        os.replace(tmp, self.a.results)

    # --- runs -----------------------------------------------------------

    def expect_params(self, network, k):
        if (network, k) not in self.params:
            out = subprocess.run([self.a.kfash_tf, "models", "--classes", str(k), "--format", "json"],
                                 capture_output=True, text=True, check=True, cwd=ROOT)
            for m in json.loads(out.stdout):
                self.params[(m["name"], k)] = m["trainable_params"]
        return self.params[(network, k)]

    def fail(self, what, cmd, tail):
        msg = f"{what} failed: {shlex.join(cmd)}\n{tail}"
        self.errors.append(msg)
        log(f"  FAILED: {what}\n    $ {shlex.join(cmd)}\n" + "\n".join("    | " + ln for ln in tail.splitlines()))

    def kfash_tf(self, base, network, recipe, seed, epochs):
        """Trains and evaluates kfash-tf; returns its record (None on failure)."""
        a = self.a
        folder = os.path.join(base, "kfash-tf")
        if os.path.exists(folder):
            shutil.rmtree(folder)
        cmd = [a.kfash_tf, "train", network, "--data", a.data, "--epochs", str(epochs), "--seed", str(seed),
               "--out", folder]
        if a.classes:
            cmd += ["--classes", a.classes]
        cmd += ["--recipe", "seed"] if recipe == "seed" else shlex.split(a.flags)
        t0 = time.time()
        code, _, tail = run(cmd, folder + ".train.log", a.timeout)
        if code != 0:
            self.fail(f"kfash-tf train {network} {recipe} seed {seed}", cmd, tail)
            return None
        train_wall = time.time() - t0
        ecmd = [a.kfash_tf, "evaluate", folder, "--data", a.data, "--split", "test", "--format", "json"]
        code, out, tail = run(ecmd, folder + ".evaluate.log", a.timeout)
        if code != 0:
            self.fail(f"kfash-tf evaluate {network} {recipe} seed {seed}", ecmd, tail)
            return None
        ev = json.loads(out)
        with open(os.path.join(folder, "config.json")) as f:
            config = json.load(f)
        rows = []
        with open(os.path.join(folder, "metrics.jsonl")) as f:
            for line in f:
                if line.strip():
                    m = json.loads(line)
                    rows.append(dict(epoch=m["epoch"], train_loss=m["train_loss"], train_acc=m["train_acc"],
                                     val_loss=m["val_loss"], val_acc=m["val_acc"], seconds=m.get("epoch_seconds"),
                                     lr=m.get("lr")))
        best = None
        for r in rows:
            if best is None or (r["val_loss"] < best["val_loss"] if config.get("select") == "val_loss"
                                else r["val_acc"] > best["val_acc"]):
                best = r
        secs = [r["seconds"] for r in rows if r["seconds"] is not None]
        if ev.get("epoch") not in (None, best["epoch"]):
            log(f"  note: kfash-tf evaluated epoch {ev.get('epoch')}, metrics.jsonl's best is {best['epoch']}")
        return dict(test_acc=ev["accuracy"], test_loss=ev["loss"], best_epoch=ev.get("epoch", best["epoch"]),
                    best_val_acc=best["val_acc"], best_val_loss=best["val_loss"],
                    seconds_per_epoch=statistics.mean(secs) if secs else None, per_epoch=rows,
                    params=self.expect_params(network, len(config["classes"])), config=config,
                    command=shlex.join(cmd), run=os.path.relpath(folder, ROOT), train_wall_seconds=round(train_wall, 1))

    def peer(self, system, base, config, network, seed, epochs):
        a = self.a
        os.makedirs(base, exist_ok=True)
        cfg_path = os.path.join(base, "kfash-tf-config.json")
        with open(cfg_path, "w") as f:
            json.dump(config, f, indent=1)
        out = os.path.join(base, f"{system}.json")
        if os.path.exists(out):
            os.remove(out)
        py, script = (a.keras_python, "keras_train.py") if system == "keras" else (a.torch_python, "torch_train.py")
        if not py:
            self.fail(f"{system} {network} seed {seed}", [script], f"no python for {system} (--{system}-python)")
            return None
        cmd = [py, os.path.join(PEERS, script), "--config", cfg_path, "--data", a.data, "--seed", str(seed),
               "--epochs", str(epochs), "--out", out,
               "--expect-params", str(self.expect_params(network, len(config["classes"])))]
        if a.max_images:
            cmd += ["--max-images", str(a.max_images)]
        code, _, tail = run(cmd, os.path.join(base, f"{system}.log"), a.timeout)
        if code != 0 or not os.path.exists(out):
            self.fail(f"{system} {network} seed {seed}", cmd, tail)
            return None
        with open(out) as f:
            rep = json.load(f)
        for k, v in rep.get("versions", {}).items():
            self.versions[k] = v
        rep["command"] = shlex.join(cmd)
        return rep

    def run(self, networks, epochs, seeds, recipes):
        a = self.a
        ds = os.path.basename(os.path.normpath(a.data))
        classes = a.classes or "all"
        for network in networks:
            for recipe in recipes:
                systems = a.systems if (recipe == "default" or a.systems_given) else ["kfash-tf", "pytorch"]
                for seed in seeds:
                    base = os.path.join(a.work, safe(a.tag), f"{ds}-{safe(classes)}", network, recipe, f"seed{seed}")
                    ident = dict(tag=a.tag, dataset=ds, classes=classes, network=network, recipe=recipe)
                    kkey = tuple({**ident, "system": "kfash-tf", "seed": seed}[k] for k in KEY)
                    krec = None if a.fresh else self.find(kkey)
                    if krec is not None and krec.get("epochs") != epochs[network]:
                        krec = None
                    if krec is None:
                        log(f"{network} {recipe} seed {seed}: kfash-tf ({epochs[network]} epochs) ...")
                        got = self.kfash_tf(base, network, recipe, seed, epochs[network])
                        if got is None:
                            continue
                        krec = dict(ident, system="kfash-tf", seed=seed, epochs=epochs[network], **got,
                                    date=now())
                        self.put(krec)
                        log(f"  kfash-tf test acc {krec['test_acc']:.4f} (best epoch {krec['best_epoch']}, "
                            f"{krec['seconds_per_epoch'] or 0:.1f} s/epoch)")
                    else:
                        log(f"{network} {recipe} seed {seed}: kfash-tf reused from {a.results}")
                    for system in systems:
                        if system == "kfash-tf":
                            continue
                        key = tuple({**ident, "system": system, "seed": seed}[k] for k in KEY)
                        old = None if a.fresh else self.find(key)
                        if old is not None and old.get("epochs") == epochs[network] and \
                                old.get("kfash_tf_date") == krec.get("date"):
                            log(f"  {system}: reused from {a.results}")
                            continue
                        log(f"  {system} ...")
                        rep = self.peer(system, base, krec["config"], network, seed, epochs[network])
                        if rep is None:
                            continue
                        rec = dict(ident, system=system, seed=seed, epochs=epochs[network],
                                   kfash_tf_date=krec.get("date"), date=now(),
                                   **{k: rep[k] for k in ("test_acc", "test_loss", "best_epoch", "best_val_acc",
                                                          "best_val_loss", "seconds_per_epoch", "per_epoch",
                                                          "params", "versions", "command")},
                                   resolved_recipe=rep["recipe"])
                        self.put(rec)
                        log(f"  {system} test acc {rec['test_acc']:.4f} (best epoch {rec['best_epoch']}, "
                            f"{rec['seconds_per_epoch']:.1f} s/epoch)")


def safe(s):
    return re.sub(r"[^A-Za-z0-9_.,=+-]+", "_", s).strip("_") or "_"


def display(path):
    """path relative to the repository when inside it, else absolute."""
    rel = os.path.relpath(path, ROOT)
    return path if rel.startswith("..") else rel


def now():
    return datetime.datetime.now().isoformat(timespec="seconds")


# --- the table ------------------------------------------------------------

def pct(x):
    return "—" if x is None else f"{100 * x:.1f}"


def pm(m, s):
    return "—" if m is None else f"{100 * m:.1f} ± {100 * s:.1f}"


def table(records, header):
    """Markdown: the header, then one table per (dataset, classes, network,
    recipe, tag) with a row per system, then the verdict lines."""
    L = list(header) + [""]
    groups = {}
    for r in records:
        groups.setdefault((r["dataset"], r["classes"], r["network"], r["recipe"], r["tag"]), []).append(r)
    for (ds, classes, network, recipe, tag), recs in sorted(groups.items()):
        epochs = sorted({r["epochs"] for r in recs})
        L.append(f"### {ds} ({classes}), {network}, recipe {recipe}, tag `{tag}`, "
                 f"{'/'.join(map(str, epochs))} epochs")
        L.append("")
        L.append("| system | n | test acc % (mean ± sd) | best val acc % (mean ± sd) | s/epoch | test acc % per seed |")
        L.append("|---|---:|---:|---:|---:|---|")
        stats = {}
        for system in SYSTEMS:
            rs = sorted((r for r in recs if r["system"] == system), key=lambda r: r["seed"])
            if not rs:
                continue
            tm, ts = mean_sd([r["test_acc"] for r in rs])
            vm, vs = mean_sd([r["best_val_acc"] for r in rs])
            sec, _ = mean_sd([r.get("seconds_per_epoch") for r in rs])
            stats[system] = (len(rs), tm, ts)
            per = ", ".join(f"s{r['seed']} {pct(r['test_acc'])}" for r in rs)
            L.append(f"| {system} | {len(rs)} | {pm(tm, ts)} | {pm(vm, vs)} | "
                     f"{'—' if sec is None else f'{sec:.1f}'} | {per} |")
        L.append("")
        k = stats.get("kfash-tf")
        peers = {s: v for s, v in stats.items() if s != "kfash-tf"}
        if k and peers:
            if recipe == "default":
                best = max(peers, key=lambda s: peers[s][1])
                n, m, sd = peers[best]
                bar = m - sd
                L.append(f"- Verdict: kfash-tf mean test acc {pct(k[1])} ≥ best peer ({best}, {pct(m)}) mean − sd "
                         f"= {pct(bar)}: **{'yes' if k[1] >= bar - 1e-12 else 'no'}**")
            else:
                for s in [s for s in peers if s == "pytorch"]:
                    d = abs(k[1] - peers[s][1])
                    noise, df = welch_noise(k[0], k[2], peers[s][0], peers[s][2])
                    L.append(f"- Verdict: kfash-tf vs {s}: |Δmean| {pct(d)} vs noise t(0.975, df {df:.1f})·"
                             f"sqrt(sd1²/n1 + sd2²/n2) = {pct(noise)} (Welch, n {k[0]} and {peers[s][0]}): "
                             f"within noise **{'yes' if d <= noise + 1e-12 else 'no'}**")
            L.append("")
    return "\n".join(L) + "\n"


# Two-sided 95% critical values of Student's t by degrees of freedom.
T975 = [(1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (5, 2.571), (6, 2.447), (7, 2.365), (8, 2.306),
        (9, 2.262), (10, 2.228), (12, 2.179), (15, 2.131), (20, 2.086), (30, 2.042), (60, 2.000)]


def welch_noise(n1, sd1, n2, sd2):
    """The half-width of the 95% interval of a difference of two means
    (Welch's t: unequal variances; the degrees of freedom rounded down to a
    tabled value, which widens it), and the degrees of freedom."""
    v1, v2 = sd1 ** 2 / n1, sd2 ** 2 / n2
    se = (v1 + v2) ** 0.5
    if se == 0 or n1 < 2 or n2 < 2:
        return se, float(max(n1 + n2 - 2, 1))
    df = (v1 + v2) ** 2 / (v1 ** 2 / (n1 - 1) + v2 ** 2 / (n2 - 1))
    t = 1.960
    for d, v in T975:
        if df >= d:
            t = v
    if df < 1:
        t = T975[0][1]
    return t * se, df


def update_markdown(path, block):
    """Replaces the text between the markers (the rest of the file is kept),
    or creates the file with them."""
    replace_block(path, block, BEGIN, END,
                  "# Accuracy parity: kfash-tf vs Keras vs PyTorch\n\n"
                  "The same network and recipe trained by each framework on the same folder, several seeds, "
                  "scored on the held-out Test split (`make parity`, bench/parity.py).\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 2)[2])
    p.add_argument("--kfash-tf", default=os.path.join(ROOT, "bin", "kfash-tf"))
    p.add_argument("--keras-python", help="python of the TensorFlow venv (scripts/pyenv.sh)")
    p.add_argument("--torch-python", help="python of the PyTorch venv (scripts/pyenv-torch.sh)")
    p.add_argument("--timeout", type=float, default=6 * 3600, help="seconds one process may take")
    p.add_argument("--command", default="make parity", help="the command named in the output")
    a = p.parse_args()
    a.data = os.path.abspath(env("PARITY_DATA", os.path.join(os.path.dirname(ROOT), "shared", "data", "clothing-small")))
    if not os.path.isdir(a.data):
        sys.exit(f"parity: the dataset folder {a.data} is not there: set PARITY_DATA=/path/to/dataset "
                 "(Train/ Validation/ Test/ of class folders)")
    a.classes = ",".join(split_list(env("PARITY_CLASSES", "t-shirt,pants,shoes")))
    networks = split_list(env("PARITY_NETWORKS", "vgg8"))
    epochs = parse_epochs(env("PARITY_EPOCHS", "5"), networks)
    seeds = [int(s) for s in split_list(env("PARITY_SEEDS", "1,2,3"))]
    a.systems_given = bool(os.environ.get("PARITY_SYSTEMS"))
    a.systems = split_list(env("PARITY_SYSTEMS", "") or ",".join(SYSTEMS))
    for s in a.systems:
        if s not in SYSTEMS:
            sys.exit(f"parity: unknown system {s!r} in PARITY_SYSTEMS: use {', '.join(SYSTEMS)}")
    recipes = split_list(env("PARITY_RECIPES", "default,seed"))
    for r in recipes:
        if r not in ("default", "seed"):
            sys.exit(f"parity: unknown recipe {r!r} in PARITY_RECIPES: use default and/or seed")
    a.flags = env("PARITY_FLAGS", "")
    a.tag = env("PARITY_TAG", "") or (" ".join(a.flags.split()) or "default")
    a.results = os.path.abspath(env("PARITY_RESULTS", os.path.join(ROOT, "parity", "results.json")))
    a.fresh = env("PARITY_FRESH", "") == "1"
    a.work = os.path.abspath(env("PARITY_WORK", os.path.join(ROOT, "parity", "runs")))
    md = env("PARITY_MD", os.path.join(ROOT, "PARITY.md"))
    a.max_images = int(env("PARITY_MAX_IMAGES", "0") or 0)

    settings = {k: v for k, v in sorted(os.environ.items()) if k.startswith("PARITY_")}
    command = " ".join([f"{k}={shlex.quote(v)}" for k, v in settings.items()] + [a.command])
    log(f"{command}: {a.data} ({a.classes or 'all classes'}), networks {networks}, epochs {epochs}, seeds {seeds}, "
        f"recipes {recipes}, systems {a.systems}, tag {a.tag!r}")
    par = Parity(a)
    t0 = time.time()
    par.run(networks, epochs, seeds, recipes)
    ver = subprocess.run([a.kfash_tf, "--version"], capture_output=True, text=True, cwd=ROOT)
    par.versions["kfash-tf"] = ver.stdout.strip().split()[-1] if ver.returncode == 0 and ver.stdout.strip() else "?"
    par.save()

    v = par.versions
    header = [f"Generated by `{command}` (bench/parity.py) on {now().replace('T', ' ')[:16]}; "
              f"this invocation took {(time.time() - t0) / 60:.1f} min; results file "
              f"{display(a.results)} (records of earlier invocations included).",
              "",
              f"- Machine: {cpu_model()}, {os.cpu_count()} cores; one training at a time.",
              f"- kfash-tf {v.get('kfash-tf', '?')} on the TensorFlow C library; Keras {v.get('keras', '?')} on "
              f"TensorFlow {v.get('tensorflow', '?')}; PyTorch {v.get('torch', '?')} (CPU) with Pillow "
              f"{v.get('pillow', '?')}; Python {platform.python_version()} (orchestrator).",
              "- Each peer reads the kfash-tf run's config.json (network, classes, input size, normalisation, "
              "augmentation, batch, epochs, optimizer, schedule, smoothing, dropout, seed, init) and trains it "
              "with its own input pipeline; test accuracy is the best epoch's (by the run's select rule) on the "
              "Test split. sd is the sample standard deviation; s/epoch is the wall time of training plus "
              "validation, input pipeline included."]
    block = table(par.records, header)
    if par.errors:
        block += "\n### Failures in this invocation\n\n" + "".join(f"- `{e.splitlines()[0]}`\n" for e in par.errors)
    if md:
        update_markdown(md, block)
    print(block)
    if par.errors:
        log(f"{len(par.errors)} run(s) failed:")
        for e in par.errors:
            print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
