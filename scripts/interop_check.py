#!/usr/bin/env python3
"""Load a SavedModel written by 'kfash-tf export' with TensorFlow's Python API
and run its signatures; print what came out as one JSON object.

    interop_check.py --dir EXPORT/1 [--images images.npy] [--bytes a.png b.jpg ...]

--images is a float32 [N,S,S,3] .npy fed to serving_default (and to explain,
when the model has it); --bytes are
image files fed, as one batch, to serving_bytes. The JSON holds the
TensorFlow version, the signature names with their inputs and outputs, the
model's variables and assets as tf.saved_model.load sees them, and the
outputs of each signature run. Errors go to stderr with exit status 1.
"""
import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402  (after the log level is set)
import tensorflow as tf  # noqa: E402


def spec_json(spec):
    return {"dtype": spec.dtype.name, "shape": None if spec.shape.rank is None else
            [-1 if d is None else d for d in spec.shape.as_list()]}


def outputs_json(out):
    res = {}
    for key, value in out.items():
        v = value.numpy()
        if v.dtype.kind in ("S", "O"):
            res[key] = [x.decode("utf-8") for x in v.tolist()]
        else:
            res[key] = v.tolist()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", required=True, help="the SavedModel folder (EXPORT/<version>)")
    ap.add_argument("--images", help="float32 [N,S,S,3] .npy for serving_default")
    ap.add_argument("--bytes", nargs="*", default=[], help="image files for serving_bytes")
    args = ap.parse_args()

    model = tf.saved_model.load(args.dir)
    report = {
        "tensorflow": tf.__version__,
        "signatures": {},
        "variables": sorted(v.name for v in getattr(model, "variables", [])),
        "assets": sorted(os.path.basename(a.asset_path.numpy().decode()) for a in getattr(model, "asset_paths", [])),
    }
    for name, fn in model.signatures.items():
        _, inputs = fn.structured_input_signature
        report["signatures"][name] = {
            "inputs": {k: spec_json(v) for k, v in inputs.items()},
            "outputs": {k: spec_json(v) for k, v in fn.structured_outputs.items()},
        }
    if args.images:
        images = np.load(args.images)
        if images.dtype != np.float32 or images.ndim != 4:
            sys.exit("%s: want a float32 [N,S,S,3] array, got %s %s" % (args.images, images.dtype, images.shape))
        report["serving_default"] = outputs_json(model.signatures["serving_default"](images=tf.constant(images)))
        # The Grad-CAM signature, in exports that carry it: same pixels.
        if "explain" in model.signatures:
            report["explain"] = outputs_json(model.signatures["explain"](images=tf.constant(images)))
    if args.bytes:
        files = []
        for path in args.bytes:
            with open(path, "rb") as f:
                files.append(f.read())
        report["serving_bytes"] = outputs_json(model.signatures["serving_bytes"](image_bytes=tf.constant(files)))
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one line for the Go test's message, the traceback above it
        import traceback
        traceback.print_exc()
        sys.exit("interop_check.py: %s: %s" % (type(e).__name__, e))
