"""Keras 3 (TensorFlow backend) peer of 'kfash-tf bench NETWORK'.

Builds the six study networks layer for layer as kfash-tf does (models/*.go:
NHWC, the same padding, pooling with -inf padding where kfash-tf pads
explicitly, BN with PyTorch's momentum and epsilon), checks the trainable
parameter count against kfash-tf's, and times

- training: model.train_on_batch on one random batch held in memory (the
  compiled train function; Keras 3 leaves XLA off on CPU-only machines with
  jit_compile="auto", which is what --jit-compile auto keeps);
- inference: model.predict_on_batch at --infer-batch (compiled predict);
- latency: model(x, training=False) on one image (the eager call the issue
  names), and predict_on_batch on one image as latency_compiled.

The optimizer is the study's: AdamW (decoupled decay) or Adam with coupled L2,
the latter as L2(λ/2) regularizers on every trainable weight (Keras's Adam
has no coupled decay; the gradient of λ/2·w² is PyTorch's g + λ·w).

Run with the TensorFlow venv of scripts/pyenv.sh; prints JSON on stdout.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

import common  # noqa: E402


class Builder:
    """Layer helpers mirroring tfops (layers.go): same padding rules.

    The defaults are what 'make bench' times: Keras's own initialisers, BN
    with PyTorch's momentum and epsilon, coupled L2 (reg) on every weight,
    common.CLASSES outputs. The parity trainer (keras_train.py) changes them
    through the attributes and the two *_init hooks."""

    classes = common.CLASSES
    bn_momentum, bn_epsilon = 0.9, 1e-5  # PyTorch's 0.1 momentum in Keras's convention

    def __init__(self, reg):
        self.reg = reg  # a regularizer for coupled L2, or None
        self.reg_other = reg  # the same for biases and BN parameters

    def conv_init(self, fan_in, filters, kernel, bias):
        """Extra Conv2D kwargs (kernel_initializer, ...); none: Keras's defaults."""
        return {}

    def dense_init(self, fan_in, units):
        """Extra Dense kwargs; none: Keras's defaults."""
        return {}

    def conv(self, x, filters, kernel, stride=1, pad=0, bias=True):
        fan_in = int(x.shape[-1]) * kernel * kernel
        if pad == 0:
            padding = "valid"
        elif stride == 1 and kernel == 2 * pad + 1:
            padding = "same"
        else:
            x = layers.ZeroPadding2D(pad)(x)
            padding = "valid"
        return layers.Conv2D(filters, kernel, strides=stride, padding=padding, use_bias=bias,
                             kernel_regularizer=self.reg, bias_regularizer=self.reg_other if bias else None,
                             **self.conv_init(fan_in, filters, kernel, bias))(x)

    def relu(self, x):
        return layers.ReLU()(x)

    def dense(self, x, units):
        return layers.Dense(units, kernel_regularizer=self.reg, bias_regularizer=self.reg_other,
                            **self.dense_init(int(x.shape[-1]), units))(x)

    def maxpool(self, x, size, stride=None, pad=0):
        stride = stride or size
        if pad == 0:
            return layers.MaxPooling2D(size, strides=stride, padding="valid")(x)
        if stride == 1 and size == 2 * pad + 1:
            return layers.MaxPooling2D(size, strides=stride, padding="same")(x)
        x = NegInfPad(pad)(x)
        return layers.MaxPooling2D(size, strides=stride, padding="valid")(x)

    def bn(self, x):
        return layers.BatchNormalization(momentum=self.bn_momentum, epsilon=self.bn_epsilon,
                                         gamma_regularizer=self.reg_other, beta_regularizer=self.reg_other)(x)


class NegInfPad(layers.Layer):
    """Pads height and width with -inf (PyTorch's padded max pool)."""

    def __init__(self, pad, **kw):
        super().__init__(**kw)
        self.pad = pad

    def call(self, x):
        p = self.pad
        return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], constant_values=float("-inf"))

    def compute_output_shape(self, s):
        grow = lambda d: None if d is None else d + 2 * self.pad  # noqa: E731
        return (s[0], grow(s[1]), grow(s[2]), s[3])


def alexnet(b, x, dropout):
    x = b.relu(b.conv(x, 96, 11, stride=4))
    x = b.bn(b.maxpool(x, 3, 2))
    x = b.relu(b.conv(x, 256, 5, pad=2))
    x = b.bn(b.maxpool(x, 3, 2))
    x = b.relu(b.conv(x, 384, 3, pad=1))
    x = b.relu(b.conv(x, 384, 3, pad=1))
    x = b.relu(b.conv(x, 256, 3, pad=1))
    x = layers.Flatten()(b.maxpool(x, 3, 2))
    x = b.relu(b.dense(layers.Dropout(dropout)(x), 4096))
    x = b.relu(b.dense(layers.Dropout(dropout)(x), 4096))
    return b.dense(x, b.classes)


def vgg(blocks):
    def build(b, x, dropout):
        for filters in blocks:
            for f in filters:
                x = b.relu(b.conv(x, f, 3))
            x = b.maxpool(x, 3, 2)
        return b.dense(layers.Flatten()(x), b.classes)
    return build


INCEPTION = [
    [(64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64)],
    [(192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64),
     (112, 144, 288, 32, 64, 64), (256, 160, 320, 32, 128, 128)],
    [(256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)],
]


def googlenet(b, x, dropout):
    x = b.conv(x, 64, 7, stride=2, pad=3)
    x = b.maxpool(x, 3, 2, pad=1)
    x = b.conv(x, 192, 3, pad=1)
    x = b.maxpool(x, 3, 2, pad=1)
    for i, stage in enumerate(INCEPTION):
        if i > 0:
            x = b.maxpool(x, 3, 2, pad=1)
        for c1, c3r, c3, c5r, c5, proj in stage:
            conv = lambda y, f, k: b.relu(b.conv(y, f, k, pad=k // 2))  # noqa: E731
            b1 = conv(x, c1, 1)
            b2 = conv(conv(x, c3r, 1), c3, 3)
            b3 = conv(conv(x, c5r, 1), c5, 5)
            b4 = conv(b.maxpool(x, 3, 1, pad=1), proj, 1)
            x = layers.Concatenate(axis=-1)([b1, b2, b3, b4])
    x = layers.Flatten()(layers.AveragePooling2D(7, strides=1)(x))
    return b.dense(layers.Dropout(dropout)(x), b.classes)


def resnet34(b, x, dropout):
    x = b.conv(x, 64, 7, stride=2, pad=3, bias=False)
    x = b.relu(b.bn(x))
    x = b.maxpool(x, 3, 2, pad=1)
    channels = 64
    for i, (blocks, width) in enumerate([(3, 64), (4, 128), (6, 256), (3, 512)]):
        for j in range(blocks):
            stride = 2 if i > 0 and j == 0 else 1
            shortcut = x
            if stride != 1 or channels != width:
                shortcut = b.bn(b.conv(x, width, 1, stride=stride, bias=False))
            y = b.relu(b.bn(b.conv(x, width, 3, stride=stride, pad=1, bias=False)))
            y = b.bn(b.conv(y, width, 3, pad=1, bias=False))
            x = b.relu(layers.Add()([y, shortcut]))
            channels = width
    x = layers.GlobalAveragePooling2D()(x)
    return b.dense(x, b.classes)


def densenet(b, x, dropout):
    growth = 12
    x = b.conv(x, 2 * growth, 7, stride=2, pad=3)
    x = b.maxpool(x, 3, 2, pad=1)
    channels = 2 * growth
    blocks = [6, 12, 24, 16]
    for i, n in enumerate(blocks):
        for _ in range(n):
            y = b.conv(b.relu(b.bn(x)), 4 * growth, 1, bias=False)
            y = b.conv(b.relu(b.bn(y)), growth, 3, pad=1, bias=False)
            x = layers.Concatenate(axis=-1)([x, y])
            channels += growth
        if i < len(blocks) - 1:
            channels //= 2
            x = b.conv(b.relu(b.bn(x)), channels, 1, bias=False)
            x = layers.AveragePooling2D(2, strides=2)(x)
    x = layers.GlobalAveragePooling2D()(b.relu(b.bn(x)))
    return b.dense(x, b.classes)


BUILDERS = {"alexnet": alexnet, "vgg8": vgg([[16, 16], [32, 32], [64, 64], [128, 128]]),
            "vgg10": vgg([[64, 64], [128, 128], [256, 256, 256], [512, 512, 512]]),
            "googlenet": googlenet, "resnet34": resnet34, "densenet": densenet}


def build_model(network):
    net = common.NETWORKS[network]
    coupled = net["optimizer"] == "adam" and net["weight_decay"] > 0
    reg = keras.regularizers.L2(net["weight_decay"] / 2) if coupled else None
    inp = keras.Input((net["size"], net["size"], 3))
    out = BUILDERS[network](Builder(reg), inp, net["dropout"])
    model = keras.Model(inp, out, name=network)
    if net["optimizer"] == "adamw":
        opt = keras.optimizers.AdamW(learning_rate=common.LR, weight_decay=net["weight_decay"], epsilon=1e-8)
    else:
        opt = keras.optimizers.Adam(learning_rate=common.LR, epsilon=1e-8)
    return model, opt


def extra_flags(p):
    p.add_argument("--jit-compile", default="auto", choices=["auto", "true", "false"],
                   help="Keras compile(jit_compile=...): auto is Keras's default (no XLA on CPU)")


def main():
    a = common.parse_args("Keras", extra_flags)
    net = common.NETWORKS[a.network]
    model, opt = build_model(a.network)
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    common.check_params(a.network, trainable, a.expect_params)
    jit = {"auto": "auto", "true": True, "false": False}[a.jit_compile]
    model.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], jit_compile=jit)
    size = net["size"]
    rng = np.random.default_rng(1)
    report = dict(system="keras", network=a.network, input_size=size, trainable_params=trainable,
                  tensorflow_version=tf.__version__, keras_version=keras.__version__, cores=common.cores(),
                  jit_compile=bool(model.jit_compile), image_data_format=keras.config.image_data_format())
    if "train" in a.measures:
        common.log(f"keras {a.network}: training at batch {a.batch} ...")
        x = (rng.random((a.batch, size, size, 3), dtype=np.float32) * 255)
        y = (np.arange(a.batch) % common.CLASSES).astype(np.int32)
        last = {}

        def step():
            last["loss"] = model.train_on_batch(x, y)

        times = common.time_steps(a.warmup, a.steps, a.min_seconds, step)
        rec = common.summary(times, a.batch, a.warmup, a.step_times)
        rec.update(optimizer=net["optimizer"], weight_decay=net["weight_decay"], peak_rss_bytes=common.peak_rss(),
                   last_loss=float(np.ravel(last["loss"])[0]))
        report["train"] = rec
    if "infer" in a.measures:
        common.log(f"keras {a.network}: inference at batch {a.infer_batch} ...")
        x = rng.random((a.infer_batch, size, size, 3), dtype=np.float32) * 255
        times = common.time_steps(a.warmup, a.steps, a.min_seconds, lambda: model.predict_on_batch(x))
        report["infer"] = common.summary(times, a.infer_batch, a.warmup, a.step_times)
    if "latency" in a.measures:
        common.log(f"keras {a.network}: latency of one image ...")
        x1 = rng.random((1, size, size, 3), dtype=np.float32) * 255

        def eager():
            np.asarray(model(x1, training=False))

        times = common.time_steps(a.warmup, a.steps, a.min_seconds, eager)
        report["latency"] = common.summary(times, 1, a.warmup, a.step_times)
        times = common.time_steps(a.warmup, a.steps, a.min_seconds, lambda: model.predict_on_batch(x1))
        report["latency_compiled"] = common.summary(times, 1, a.warmup, a.step_times)
    common.emit(report)


if __name__ == "__main__":
    main()
