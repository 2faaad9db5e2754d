"""PyTorch (CPU) trainer of 'make parity': trains the recipe of a kfash-tf
run (RUN/config.json) and scores its best epoch on Test.

The network is torch_bench.py's (built as kfash-tf's models/*.go); the input
pipeline is a map-style Dataset decoding with PIL (convert RGB, resize to
input_size × input_size with bilinear resampling, a stretch; PIL's bilinear
widens its filter when downscaling, like kfash-tf's), the augmentation in
PIL (FLIP_LEFT_RIGHT; rotate about the centre, bilinear, black fill, same
size) drawn per image as kfash-tf draws them (parity_common.epoch_plan), and
a DataLoader with worker processes so decoding overlaps training. The loop
is the standard one: zero_grad, forward, cross_entropy (label_smoothing,
class weights), backward, clip_grad_norm_ if set, step; the learning rate is
set on the param groups before every step (kfash-tf's per-step schedule).

Optimizers: torch.optim.AdamW (decoupled), torch.optim.Adam(weight_decay)
(coupled L2), torch.optim.SGD(momentum, weight_decay); with
no_decay_bn_bias, decay applies to conv and linear weights only.

Run with the venv of scripts/pyenv-torch.sh.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

import parity_common as pc
import torch_bench as tb


class Photos(torch.utils.data.Dataset):
    """The examples of one epoch's plan: (CHW float tensor, label)."""

    def __init__(self, samples, plan, r):
        self.samples, self.plan, self.size = samples, plan, r["input_size"]
        self.mean = np.array(r["mean"], np.float32)
        self.std = np.array(r["std"], np.float32)

    def __len__(self):
        return len(self.plan)

    def __getitem__(self, j):
        i, op, angle = self.plan[j]
        path, label = self.samples[i]
        with Image.open(path) as im:
            img = im.convert("RGB").resize((self.size, self.size), Image.BILINEAR)
        if op == "flip":
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        elif op == "rotate":
            img = img.rotate(angle, resample=Image.BILINEAR, expand=False, fillcolor=(0, 0, 0))
        x = (np.asarray(img, np.float32) - self.mean) / self.std
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))), label


def extra_flags(p):
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (0: min(2, cores))")


def init_weights(model, scheme, network):
    """kfash-tf's schemes (tfops/store.go). torch: PyTorch's defaults, which
    the modules already have, plus ResNet's He-normal fan-out convolutions."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if scheme == "glorot":
                nn.init.xavier_uniform_(m.weight)
            elif scheme == "he":
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            elif network == "resnet34" and isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None and scheme in ("glorot", "he"):
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def main():
    a = pc.parse_args("PyTorch", extra_flags)
    r = pc.recipe(a)
    cores = os.cpu_count() or 1
    torch.set_num_threads(cores)
    torch.manual_seed(r["seed"])
    workers = a.workers or max(1, min(2, cores))
    r.update(loader_workers=workers)

    train, val, test, n_epoch, steps = pc.load_splits(r, a.max_images)
    k = len(r["classes"])

    model = tb.BUILDERS[r["network"]](r["dropout"], classes=k)
    init_weights(model, r["init"], r["network"])
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    pc.check_params(r["network"], params, a.expect_params)

    o = r["optimizer"]
    if o["no_decay_bn_bias"]:
        decay = [p for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)) for p in [m.weight]]
        ids = {id(p) for p in decay}
        groups = [dict(params=decay, weight_decay=o["weight_decay"]),
                  dict(params=[p for p in model.parameters() if id(p) not in ids], weight_decay=0.0)]
    else:
        groups = [dict(params=list(model.parameters()), weight_decay=o["weight_decay"])]
    lr0 = r["schedule"]["lr"]
    if o["name"] == "adamw":
        opt = torch.optim.AdamW(groups, lr=lr0)
    elif o["name"] == "adam":
        opt = torch.optim.Adam(groups, lr=lr0)
    else:
        opt = torch.optim.SGD(groups, lr=lr0, momentum=o["momentum"])
    cw = torch.tensor(pc.class_weights(train, k)) if r["class_weights"] == "auto" else None

    def loader(samples, plan, shuffle_seed=None):
        g = None
        if shuffle_seed is not None:
            g = torch.Generator()
            g.manual_seed(shuffle_seed)
        return torch.utils.data.DataLoader(Photos(samples, plan, r), batch_size=r["batch_size"],
                                           shuffle=shuffle_seed is not None, generator=g, num_workers=workers,
                                           prefetch_factor=4)

    def evaluate(dl, n):
        model.eval()
        loss = correct = 0.0
        with torch.inference_mode():
            for x, y in dl:
                out = model(x)
                loss += F.cross_entropy(out, y, reduction="sum").item()
                correct += (out.argmax(1) == y).sum().item()
        return loss / n, correct / n

    val_dl = loader(val, pc.epoch_plan(len(val), "none", 0, 0))
    pc.log(f"pytorch {r['network']}: {len(train)} train ({n_epoch} per epoch, {steps} steps), {len(val)} val, "
           f"{len(test)} test images, {params:,} params, init {r['init']}, seed {r['seed']}")
    rows, best, best_state, step = [], None, None, 0
    for epoch in range(1, r["epochs"] + 1):
        t = pc.Timer()
        plan = pc.epoch_plan(len(train), r["augment"], r["seed"], epoch)
        model.train()
        loss_sum = correct = seen = 0.0
        for x, y in loader(train, plan, shuffle_seed=r["seed"] * 100003 + epoch):
            lr = pc.lr_at(r["schedule"], r["epochs"], steps, step)
            for grp in opt.param_groups:
                grp["lr"] = lr
            opt.zero_grad()
            out = model(x)
            loss = F.cross_entropy(out, y, weight=cw, label_smoothing=r["label_smoothing"])
            loss.backward()
            if o["clip_norm"] > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), o["clip_norm"])
            opt.step()
            step += 1
            loss_sum += loss.item() * len(y)
            correct += (out.argmax(1) == y).sum().item()
            seen += len(y)
        val_loss, val_acc = evaluate(val_dl, len(val))
        row = dict(epoch=epoch, train_loss=loss_sum / seen, train_acc=correct / seen, val_loss=val_loss,
                   val_acc=val_acc, seconds=t.seconds(), lr_end=lr)
        rows.append(row)
        if pc.better(r["select"], row, best):
            best = row
            best_state = {name: v.detach().clone() for name, v in model.state_dict().items()}
        pc.log(f"pytorch epoch {epoch}/{r['epochs']}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}, "
               f"val loss {val_loss:.4f} acc {val_acc:.4f} ({row['seconds']:.1f} s)")
    model.load_state_dict(best_state)
    test_loss, test_acc = evaluate(loader(test, pc.epoch_plan(len(test), "none", 0, 0)), len(test))
    pc.log(f"pytorch best epoch {best['epoch']}: test acc {test_acc:.4f} loss {test_loss:.4f}")
    versions = dict(torch=torch.__version__.split("+")[0], numpy=np.__version__, pillow=Image.__version__)
    pc.emit(a, pc.result("pytorch", r, rows, best, test_loss, test_acc, params, versions,
                         dict(threads=torch.get_num_threads(), images=dict(train=len(train), validation=len(val),
                                                                            test=len(test)))))


if __name__ == "__main__":
    main()
