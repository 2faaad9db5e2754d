"""What the Keras and PyTorch trainers of 'make parity' share (standard
library only, so either venv can import it): the command line, kfash-tf's
run config.json read into one recipe, the dataset folder listed as kfash-tf
lists it, the augmentation draws, the learning-rate schedule, and the result
JSON.

A peer reproduces the recipe of one kfash-tf run (RUN/config.json, written by
'kfash-tf train'): network, classes in label order, input size (a stretch
resize), pixel normalisation, augmentation policy, batch size, epochs,
optimizer, schedule, label smoothing, dropout, seed and initialisation. It
trains, validates after every epoch, keeps the best epoch's weights (the
first with the highest val_acc, or the lowest val_loss with select val_loss)
and scores them on the Test split.
"""

import argparse
import json
import math
import os
import random
import sys
import time

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp")  # augment/dataset.go
MAX_ROTATION = 30.0  # degrees either way (augment.MaxRotation)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def parse_args(system, extra=None):
    p = argparse.ArgumentParser(description=f"{system} peer of 'make parity': trains kfash-tf's recipe (RUN/config.json)")
    p.add_argument("--config", required=True, help="a kfash-tf run's config.json")
    p.add_argument("--data", help="dataset folder (default: the config's data)")
    p.add_argument("--seed", type=int, help="default: the config's")
    p.add_argument("--epochs", type=int, help="default: the config's")
    p.add_argument("--out", help="write the result JSON here (default: stdout)")
    p.add_argument("--expect-params", type=int, default=0,
                   help="fail before training unless the model has this many trainable parameters "
                        "(kfash-tf models --classes K)")
    p.add_argument("--init", choices=["torch", "glorot", "he"], help="initialisation (default: the config's, torch if absent)")
    p.add_argument("--max-images", type=int, default=0,
                   help="use at most this many images of each split (0: all; for smoke tests only)")
    if extra:
        extra(p)
    return p.parse_args()


def recipe(a):
    """The recipe: kfash-tf's config.json with the peer's overrides and the
    defaults of older run folders filled in."""
    with open(a.config) as f:
        c = json.load(f)
    opt = c.get("optimizer") or {}
    sch = c.get("schedule") or {}
    r = dict(
        network=c["network"],
        input_size=int(c["input_size"]),
        classes=list(c["classes"]),
        data=os.path.abspath(a.data or c["data"]),
        normalize=c.get("normalize", "none"),
        mean=[float(v) for v in c.get("mean", [0, 0, 0])],
        std=[float(v) for v in c.get("std", [1, 1, 1])],
        augment=c.get("augment", "online") or "none",
        epochs=int(a.epochs if a.epochs is not None else c["epochs"]),
        batch_size=int(c.get("batch_size", 32)),
        optimizer=dict(name=opt.get("name", "adamw"), momentum=float(opt.get("momentum", 0.9)),
                       weight_decay=float(opt.get("weight_decay", 0.0)),
                       no_decay_bn_bias=bool(opt.get("no_decay_bn_bias", False)),
                       clip_norm=float(opt.get("clip_norm", 0.0) or 0.0)),
        schedule=dict(kind=sch.get("kind", "constant"), lr=float(sch.get("lr", 3e-4)),
                      warmup_epochs=float(sch.get("warmup_epochs", 0) or 0),
                      step_epochs=int(sch.get("step_epochs", 30) or 30), gamma=float(sch.get("gamma", 0.1))),
        label_smoothing=float(c.get("label_smoothing", 0) or 0),
        dropout=float(c.get("dropout", 0) or 0),
        class_weights=c.get("class_weights", "none") or "none",
        seed=int(a.seed if a.seed is not None else c.get("seed", 1)),
        select=c.get("select", "val_acc"),
        init=a.init or c.get("init") or "torch",
        kfash_tf_run=os.path.dirname(os.path.abspath(a.config)),
    )
    if r["augment"] not in ("none", "online", "double"):
        sys.exit(f"unknown augment {r['augment']!r} in {a.config}")
    if r["optimizer"]["name"] not in ("adam", "adamw", "sgd"):
        sys.exit(f"unknown optimizer {r['optimizer']['name']!r} in {a.config}")
    if r["class_weights"] not in ("none", "auto"):
        sys.exit(f"unknown class_weights {r['class_weights']!r} in {a.config}")
    return r


def split_dir(data, name):
    """The split folder (Train, Validation, Test) in any letter case."""
    for e in sorted(os.listdir(data)):
        if e.lower() == name.lower() and os.path.isdir(os.path.join(data, e)):
            return os.path.join(data, e)
    sys.exit(f"{data} has no {name}/ folder (any letter case)")


def load_splits(r, max_images=0):
    """The recipe's train, validation and test samples, the examples of one
    training epoch and the optimizer steps in it."""
    train, val, test = (list_split(r["data"], split, r["classes"], max_images)
                        for split in ("train", "validation", "test"))
    n_epoch = len(epoch_plan(len(train), r["augment"], r["seed"], 1))
    return train, val, test, n_epoch, math.ceil(n_epoch / r["batch_size"])


def list_split(data, split, classes, max_images=0):
    """[(path, label)] of the split, classes in label order, files sorted by
    name; a class folder is matched in any letter case."""
    root = split_dir(data, split)
    folders = {e.lower(): e for e in os.listdir(root) if os.path.isdir(os.path.join(root, e))}
    out = []
    for label, cls in enumerate(classes):
        if cls.lower() not in folders:
            sys.exit(f"{root} has no class folder {cls!r}")
        d = os.path.join(root, folders[cls.lower()])
        files = sorted(f for f in os.listdir(d) if f.lower().endswith(IMAGE_EXTENSIONS))
        out += [(os.path.join(d, f), label) for f in files]
    if max_images and len(out) > max_images:
        rnd = random.Random(0)
        out = sorted(rnd.sample(out, max_images), key=lambda s: (s[1], s[0]))
    return out


def class_weights(samples, k):
    """kfash-tf's 'auto' weights: n / (k × count_c) (augment/weights.go)."""
    counts = [0] * k
    for _, label in samples:
        counts[label] += 1
    n = sum(counts)
    return [n / (k * c) if c else 0.0 for c in counts]


def transform(rng, online):
    """One augmentation draw, as kfash-tf draws it (augment/augment.go):
    online: identity 1/2, else flip or rotation (1/4 each); a doubling copy
    (online False): flip or rotation, 1/2 each. Rotation angles are uniform
    in ±30°. Returns ("identity"|"flip"|"rotate", angle in degrees)."""
    if online and rng.random() < 0.5:
        return "identity", 0.0
    if rng.random() < 0.5:
        return "flip", 0.0
    return "rotate", (rng.random() * 2 - 1) * MAX_ROTATION


def epoch_plan(n, augment, seed, epoch):
    """The training examples of one epoch before shuffling, as (sample index,
    op, angle): online: every image with a fresh draw per (seed, epoch,
    index); double: every original plus its one copy, fixed per (seed, index)
    for the whole run; none: every original."""
    plan = []
    for i in range(n):
        if augment == "online":
            op, angle = transform(random.Random(f"{seed}/{epoch}/{i}"), True)
            plan.append((i, op, angle))
        else:
            plan.append((i, "identity", 0.0))
            if augment == "double":
                op, angle = transform(random.Random(f"{seed}/copy/{i}"), False)
                plan.append((i, op, angle))
    return plan


def lr_at(schedule, epochs, steps_per_epoch, step):
    """kfash-tf's learning rate at 0-based optimizer step (graphs/runs/schedule.go)."""
    base, spe = schedule["lr"], float(max(steps_per_epoch, 1))
    if schedule["kind"] == "cosine":
        warm = schedule["warmup_epochs"] * spe
        if step < warm:
            return base * (step + 1) / warm
        span = epochs * spe - warm
        if span <= 0:
            return base
        p = min(1.0, (step - warm) / span)
        return base * 0.5 * (1 + math.cos(math.pi * p))
    if schedule["kind"] == "step":
        return base * schedule["gamma"] ** math.floor(step / (schedule["step_epochs"] * spe))
    return base


def better(select, row, best):
    """Whether the epoch row beats the best so far (the first best wins)."""
    if best is None:
        return True
    if select == "val_loss":
        return row["val_loss"] < best["val_loss"]
    return row["val_acc"] > best["val_acc"]


class Timer:
    def __init__(self):
        self.t0 = time.perf_counter()

    def seconds(self):
        return time.perf_counter() - self.t0


def result(system, r, epochs, best, test_loss, test_acc, params, versions, extra=None):
    rows = [dict(e) for e in epochs]
    out = dict(system=system, network=r["network"], seed=r["seed"], epochs=r["epochs"], per_epoch=rows,
               best_epoch=best["epoch"], best_val_acc=best["val_acc"], best_val_loss=best["val_loss"],
               test_acc=test_acc, test_loss=test_loss,
               seconds_per_epoch=sum(e["seconds"] for e in rows) / len(rows) if rows else None,
               params=params, versions=versions, recipe=r)
    out.update(extra or {})
    return out


def emit(a, rep):
    text = json.dumps(rep, indent=1) + "\n"
    if a.out:
        tmp = a.out + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, a.out)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def check_params(network, got, want):
    if want and got != want:
        sys.exit(f"{network}: the peer model has {got:,} trainable parameters, kfash-tf has {want:,}: "
                 "the architectures differ")
