"""PyTorch (CPU) peer of 'kfash-tf bench NETWORK'.

Builds the six study networks as kfash-tf does (models/*.go, which follow the
study's PyTorch code: symmetric padding, padded max pools, BN momentum 0.1,
eps 1e-5), checks the trainable parameter count against kfash-tf's, and times

- training: the standard loop (zero_grad, forward, cross_entropy, backward,
  optimizer.step, loss.item()) on one random batch held in memory, with the
  study's optimizer: torch.optim.Adam(weight_decay=λ) (coupled L2) or
  torch.optim.AdamW, default implementation;
- inference: model.eval() under torch.inference_mode() at --infer-batch;
- latency: the same on one image.

Tensors are PyTorch's default NCHW layout; torch.set_num_threads(cores).
Run with the venv of scripts/pyenv-torch.sh; prints JSON on stdout.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

import common


def conv(cin, cout, k, stride=1, pad=0, bias=True):
    return nn.Conv2d(cin, cout, k, stride=stride, padding=pad, bias=bias)


class AlexNet(nn.Module):
    def __init__(self, dropout, classes=common.CLASSES):
        super().__init__()
        self.features = nn.Sequential(
            conv(3, 96, 11, 4), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2), nn.BatchNorm2d(96),
            conv(96, 256, 5, pad=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2), nn.BatchNorm2d(256),
            conv(256, 384, 3, pad=1), nn.ReLU(inplace=True),
            conv(384, 384, 3, pad=1), nn.ReLU(inplace=True),
            conv(384, 256, 3, pad=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(9216, 4096), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Linear(4096, classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class VGG(nn.Module):
    def __init__(self, blocks, flat, classes=common.CLASSES):
        super().__init__()
        mods, cin = [], 3
        for filters in blocks:
            for f in filters:
                mods += [conv(cin, f, 3), nn.ReLU(inplace=True)]
                cin = f
            mods.append(nn.MaxPool2d(3, 2))
        self.features = nn.Sequential(*mods)
        self.fc = nn.Linear(flat, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


class ConvReLU(nn.Sequential):
    def __init__(self, cin, cout, k):
        super().__init__(conv(cin, cout, k, pad=k // 2), nn.ReLU(inplace=True))


class Inception(nn.Module):
    def __init__(self, cin, c1, c3r, c3, c5r, c5, proj):
        super().__init__()
        self.b1 = ConvReLU(cin, c1, 1)
        self.b2 = nn.Sequential(ConvReLU(cin, c3r, 1), ConvReLU(c3r, c3, 3))
        self.b3 = nn.Sequential(ConvReLU(cin, c5r, 1), ConvReLU(c5r, c5, 5))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), ConvReLU(cin, proj, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


INCEPTION = [
    [(64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64)],
    [(192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64),
     (112, 144, 288, 32, 64, 64), (256, 160, 320, 32, 128, 128)],
    [(256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)],
]


class GoogLeNet(nn.Module):
    def __init__(self, dropout, classes=common.CLASSES):
        super().__init__()
        mods = [conv(3, 64, 7, 2, 3), nn.MaxPool2d(3, 2, 1), conv(64, 192, 3, pad=1), nn.MaxPool2d(3, 2, 1)]
        cin = 192
        for i, stage in enumerate(INCEPTION):
            if i > 0:
                mods.append(nn.MaxPool2d(3, 2, 1))
            for m in stage:
                mods.append(Inception(cin, *m))
                cin = m[0] + m[2] + m[4] + m[5]
        mods += [nn.AvgPool2d(7, 1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, classes)]
        self.net = nn.Sequential(*mods)

    def forward(self, x):
        return self.net(x)


class BasicBlock(nn.Module):
    def __init__(self, cin, width, stride):
        super().__init__()
        self.conv1 = conv(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.proj = None
        if stride != 1 or cin != width:
            self.proj = nn.Sequential(conv(cin, width, 1, stride, bias=False), nn.BatchNorm2d(width))

    def forward(self, x):
        shortcut = x if self.proj is None else self.proj(x)
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(self.bn2(self.conv2(y)) + shortcut, inplace=True)


class ResNet34(nn.Module):
    def __init__(self, dropout, classes=common.CLASSES):
        super().__init__()
        mods = [conv(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
        cin = 64
        for i, (blocks, width) in enumerate([(3, 64), (4, 128), (6, 256), (3, 512)]):
            for j in range(blocks):
                mods.append(BasicBlock(cin, width, 2 if i > 0 and j == 0 else 1))
                cin = width
        mods += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
        self.net = nn.Sequential(*mods)

    def forward(self, x):
        return self.net(x)


class DenseLayer(nn.Module):
    def __init__(self, cin, growth):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = conv(cin, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = conv(4 * growth, growth, 3, pad=1, bias=False)

    def forward(self, x):
        y = self.conv1(F.relu(self.bn1(x)))
        y = self.conv2(F.relu(self.bn2(y)))
        return torch.cat([x, y], 1)


class DenseNet(nn.Module):
    def __init__(self, dropout, classes=common.CLASSES, growth=12, blocks=(6, 12, 24, 16)):
        super().__init__()
        mods = [conv(3, 2 * growth, 7, 2, 3), nn.MaxPool2d(3, 2, 1)]
        c = 2 * growth
        for i, n in enumerate(blocks):
            for _ in range(n):
                mods.append(DenseLayer(c, growth))
                c += growth
            if i < len(blocks) - 1:
                mods += [nn.BatchNorm2d(c), nn.ReLU(), conv(c, c // 2, 1, bias=False), nn.AvgPool2d(2, 2)]
                c //= 2
        mods += [nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes)]
        self.net = nn.Sequential(*mods)

    def forward(self, x):
        return self.net(x)


# BUILDERS[network](dropout, classes=common.CLASSES) returns the model.
BUILDERS = {
    "alexnet": AlexNet,
    "vgg8": lambda d, classes=common.CLASSES: VGG([[16, 16], [32, 32], [64, 64], [128, 128]], 128 * 4 * 4, classes),
    "vgg10": lambda d, classes=common.CLASSES: VGG([[64, 64], [128, 128], [256, 256, 256], [512, 512, 512]],
                                                  512 * 3 * 3, classes),
    "googlenet": GoogLeNet,
    "resnet34": ResNet34,
    "densenet": DenseNet,
}


def main():
    a = common.parse_args("PyTorch")
    torch.set_num_threads(common.cores())
    torch.manual_seed(1)
    net = common.NETWORKS[a.network]
    model = BUILDERS[a.network](net["dropout"])
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    common.check_params(a.network, trainable, a.expect_params)
    size = net["size"]
    report = dict(system="pytorch", network=a.network, input_size=size, trainable_params=trainable,
                  torch_version=torch.__version__, cores=common.cores(), threads=torch.get_num_threads())
    if "train" in a.measures:
        common.log(f"pytorch {a.network}: training at batch {a.batch} ...")
        opt_cls = torch.optim.AdamW if net["optimizer"] == "adamw" else torch.optim.Adam
        opt = opt_cls(model.parameters(), lr=common.LR, weight_decay=net["weight_decay"])
        x = torch.rand(a.batch, 3, size, size) * 255
        y = torch.arange(a.batch) % common.CLASSES
        model.train()
        last = {}

        def step():
            opt.zero_grad()
            out = model(x)
            loss = F.cross_entropy(out, y)
            loss.backward()
            opt.step()
            last["loss"] = loss.item()
            last["correct"] = (out.argmax(1) == y).sum().item()

        times = common.time_steps(a.warmup, a.steps, a.min_seconds, step)
        rec = common.summary(times, a.batch, a.warmup, a.step_times)
        rec.update(optimizer=net["optimizer"], weight_decay=net["weight_decay"], peak_rss_bytes=common.peak_rss(),
                   last_loss=last["loss"])
        report["train"] = rec
    model.eval()
    for measure, n in (("infer", a.infer_batch), ("latency", 1)):
        if measure not in a.measures:
            continue
        common.log(f"pytorch {a.network}: {measure} at batch {n} ...")
        x = torch.rand(n, 3, size, size) * 255

        def run():
            with torch.inference_mode():
                model(x).softmax(1)

        times = common.time_steps(a.warmup, a.steps, a.min_seconds, run)
        report[measure] = common.summary(times, n, a.warmup, a.step_times)
    common.emit(report)


if __name__ == "__main__":
    main()
