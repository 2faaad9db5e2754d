"""Keras 3 (TensorFlow backend) trainer of 'make parity': trains the recipe of
a kfash-tf run (RUN/config.json) and scores its best epoch on Test.

The network is keras_bench.py's (built layer for layer as kfash-tf's
models/*.go); the input pipeline is tf.data as Keras's
image_dataset_from_directory builds it (tf.io.read_file, tf.io.decode_image,
tf.image.resize to input_size × input_size, a stretch) with the augmentation
as TensorFlow image ops (flip_left_right; a rotation about the centre through
ImageProjectiveTransformV3, bilinear, black fill: what keras.layers.RandomRotation
runs), drawn per image as kfash-tf draws them (parity_common.epoch_plan).
Training is model.fit, one call per epoch (the epoch's augmentation differs),
then a validation pass; the best epoch's weights are kept in memory.

Optimizers: AdamW (decoupled, keras.optimizers.AdamW), Adam with coupled L2
(L2(λ/2) regularizers, as keras_bench.py: Keras's Adam has no coupled decay),
SGD with momentum (L2 regularizers too); global_clipnorm for clip_norm; a
LearningRateSchedule with kfash-tf's per-step formula.

Ablation knobs (defaults follow kfash-tf/PyTorch, not Keras's own defaults):
--init, --bn-momentum/--bn-epsilon (Keras's own: 0.99/1e-3), --adam-epsilon
(Keras's own: 1e-7), --resize plain (tf.image.resize bilinear without
antialias, as image_dataset_from_directory) or antialias.

Run with the TensorFlow venv of scripts/pyenv.sh.
"""

import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

import keras_bench as kb  # noqa: E402
import parity_common as pc  # noqa: E402

OPS = {"identity": 0, "flip": 1, "rotate": 2}


def extra_flags(p):
    p.add_argument("--bn-momentum", type=float, default=0.9,
                   help="Keras BatchNormalization momentum (default 0.9 = PyTorch's/kfash-tf's 0.1; Keras's own: 0.99)")
    p.add_argument("--bn-epsilon", type=float, default=1e-5, help="default 1e-5 as kfash-tf; Keras's own: 1e-3")
    p.add_argument("--adam-epsilon", type=float, default=1e-8, help="default 1e-8 as kfash-tf; Keras's own: 1e-7")
    p.add_argument("--resize", choices=["plain", "antialias"], default="plain",
                   help="plain: tf.image.resize bilinear (image_dataset_from_directory); antialias: antialias=True")


class ParityBuilder(kb.Builder):
    """keras_bench's layers with the recipe's initialisation, BN constants,
    class count and weight-decay placement."""

    def __init__(self, reg, r, a):
        super().__init__(reg)
        self.classes = len(r["classes"])
        self.bn_momentum, self.bn_epsilon = a.bn_momentum, a.bn_epsilon
        self.scheme = r["init"]
        # kfash-tf's networks with their own kernel init under "torch":
        # ResNet's convolutions, He-normal fan-out (models/resnet.go).
        self.own_conv = r["network"] == "resnet34"
        if r["optimizer"]["no_decay_bn_bias"]:
            self.reg_other = None

    def _inits(self, fan_in, conv):
        if self.scheme == "glorot":
            return dict(kernel_initializer=keras.initializers.GlorotUniform(), bias_initializer="zeros")
        if self.scheme == "he":
            return dict(kernel_initializer=keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal"),
                        bias_initializer="zeros")
        bound = 1 / math.sqrt(fan_in)  # PyTorch's default: U(±1/√fan_in) for kernel and bias
        kernel = keras.initializers.RandomUniform(-bound, bound)
        if conv and self.own_conv:
            kernel = keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")
        return dict(kernel_initializer=kernel, bias_initializer=keras.initializers.RandomUniform(-bound, bound))

    def conv_init(self, fan_in, filters, kernel, bias):
        return self._inits(fan_in, True)

    def dense_init(self, fan_in, units):
        return self._inits(fan_in, False)


class Schedule(keras.optimizers.schedules.LearningRateSchedule):
    """kfash-tf's schedule at the optimizer's 0-based step (parity_common.lr_at)."""

    def __init__(self, s, epochs, steps_per_epoch):
        self.s, self.epochs, self.spe = s, epochs, float(max(steps_per_epoch, 1))

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        base = tf.constant(self.s["lr"], tf.float32)
        if self.s["kind"] == "cosine":
            warm = self.s["warmup_epochs"] * self.spe
            span = self.epochs * self.spe - warm
            ramp = base * (step + 1) / max(warm, 1e-12)
            if span <= 0:
                decay = base
            else:
                p = tf.minimum(1.0, (step - warm) / span)
                decay = base * 0.5 * (1 + tf.cos(math.pi * p))
            return tf.where(step < warm, ramp, decay)
        if self.s["kind"] == "step":
            return base * tf.pow(self.s["gamma"], tf.floor(step / (self.s["step_epochs"] * self.spe)))
        return base

    def get_config(self):
        return dict(s=self.s, epochs=self.epochs, steps_per_epoch=self.spe)


def rotate(img, degrees, size):
    """Rotation about the centre, bilinear, black fill, same size (the
    transform keras.layers.RandomRotation builds)."""
    t = degrees * math.pi / 180
    c, s = tf.cos(t), tf.sin(t)
    w = h = float(size - 1)
    x_off = (w - (c * w - s * h)) / 2
    y_off = (h - (s * w + c * h)) / 2
    transform = tf.reshape(tf.stack([c, -s, x_off, s, c, y_off, 0.0, 0.0]), [1, 8])
    out = tf.raw_ops.ImageProjectiveTransformV3(images=img[None], transforms=transform, output_shape=[size, size],
                                                fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")
    return out[0]


def make_dataset(samples, plan, r, a, shuffle_seed=None):
    """A tf.data pipeline over plan [(sample index, op, angle)]."""
    size, k = r["input_size"], len(r["classes"])
    paths = tf.constant([samples[i][0] for i, _, _ in plan])
    labels = tf.constant([samples[i][1] for i, _, _ in plan], tf.int32)
    ops = tf.constant([OPS[op] for _, op, _ in plan], tf.int32)
    angles = tf.constant([ang for _, _, ang in plan], tf.float32)
    mean = tf.constant(r["mean"], tf.float32)
    std = tf.constant(r["std"], tf.float32)
    antialias = a.resize == "antialias"

    def load(path, label, op, angle):
        img = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        img = tf.image.resize(img, [size, size], method="bilinear", antialias=antialias)
        img.set_shape([size, size, 3])
        img = tf.switch_case(op, [lambda: img, lambda: tf.image.flip_left_right(img),
                                  lambda: rotate(img, angle, size)])
        img.set_shape([size, size, 3])
        return (img - mean) / std, tf.one_hot(label, k)

    ds = tf.data.Dataset.from_tensor_slices((paths, labels, ops, angles))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(plan), seed=shuffle_seed)
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(r["batch_size"]).prefetch(tf.data.AUTOTUNE)


def main():
    a = pc.parse_args("Keras", extra_flags)
    r = pc.recipe(a)
    cores = os.cpu_count() or 1
    tf.config.threading.set_intra_op_parallelism_threads(cores)
    keras.utils.set_random_seed(r["seed"])
    r.update(bn_momentum_keras=a.bn_momentum, bn_epsilon=a.bn_epsilon, adam_epsilon=a.adam_epsilon, resize=a.resize)

    train, val, test, n_epoch, steps = pc.load_splits(r, a.max_images)
    k = len(r["classes"])

    o = r["optimizer"]
    coupled = o["name"] in ("adam", "sgd") and o["weight_decay"] > 0
    reg = keras.regularizers.L2(o["weight_decay"] / 2) if coupled else None
    size = r["input_size"]
    inp = keras.Input((size, size, 3))
    out = kb.BUILDERS[r["network"]](ParityBuilder(reg, r, a), inp, r["dropout"])
    model = keras.Model(inp, out, name=r["network"])
    params = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    pc.check_params(r["network"], params, a.expect_params)

    lr = Schedule(r["schedule"], r["epochs"], steps)
    clip = dict(global_clipnorm=o["clip_norm"]) if o["clip_norm"] > 0 else {}
    if o["name"] == "adamw":
        opt = keras.optimizers.AdamW(learning_rate=lr, weight_decay=o["weight_decay"], epsilon=a.adam_epsilon, **clip)
        if o["no_decay_bn_bias"]:
            opt.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    elif o["name"] == "adam":
        opt = keras.optimizers.Adam(learning_rate=lr, epsilon=a.adam_epsilon, **clip)
    else:
        opt = keras.optimizers.SGD(learning_rate=lr, momentum=o["momentum"], **clip)
    model.compile(optimizer=opt,
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=r["label_smoothing"]),
                  metrics=[keras.metrics.CategoricalAccuracy(name="acc")])
    cw = None
    if r["class_weights"] == "auto":
        cw = dict(enumerate(pc.class_weights(train, k)))

    ce = keras.losses.CategoricalCrossentropy(from_logits=True, reduction="sum")

    @tf.function
    def eval_step(x, y):
        logits = model(x, training=False)
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1), tf.argmax(y, 1)), tf.float32))
        return ce(y, logits), correct

    def evaluate(ds, n):
        loss = correct = 0.0
        for x, y in ds:
            l_, c_ = eval_step(x, y)
            loss += float(l_)
            correct += float(c_)
        return loss / n, correct / n

    val_ds = make_dataset(val, pc.epoch_plan(len(val), "none", 0, 0), r, a)
    pc.log(f"keras {r['network']}: {len(train)} train ({n_epoch} per epoch, {steps} steps), {len(val)} val, "
           f"{len(test)} test images, {params:,} params, init {r['init']}, seed {r['seed']}")
    rows, best, best_weights = [], None, None
    for epoch in range(1, r["epochs"] + 1):
        t = pc.Timer()
        plan = pc.epoch_plan(len(train), r["augment"], r["seed"], epoch)
        ds = make_dataset(train, plan, r, a, shuffle_seed=r["seed"] * 100003 + epoch)
        h = model.fit(ds, epochs=1, verbose=0, shuffle=False, class_weight=cw).history
        val_loss, val_acc = evaluate(val_ds, len(val))
        row = dict(epoch=epoch, train_loss=float(h["loss"][-1]), train_acc=float(h["acc"][-1]),
                   val_loss=val_loss, val_acc=val_acc, seconds=t.seconds(),
                   lr_end=float(lr(opt.iterations - 1)))
        rows.append(row)
        if pc.better(r["select"], row, best):
            best, best_weights = row, [w.copy() for w in model.get_weights()]
        pc.log(f"keras epoch {epoch}/{r['epochs']}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}, "
               f"val loss {val_loss:.4f} acc {val_acc:.4f} ({row['seconds']:.1f} s)")
    model.set_weights(best_weights)
    test_loss, test_acc = evaluate(make_dataset(test, pc.epoch_plan(len(test), "none", 0, 0), r, a), len(test))
    pc.log(f"keras best epoch {best['epoch']}: test acc {test_acc:.4f} loss {test_loss:.4f}")
    versions = dict(tensorflow=tf.__version__, keras=keras.__version__)
    pc.emit(a, pc.result("keras", r, rows, best, test_loss, test_acc, params, versions,
                         dict(threads=cores, images=dict(train=len(train), validation=len(val), test=len(test)))))


if __name__ == "__main__":
    main()
