#!/usr/bin/env bash
# 'make demo': the whole job on the built-in dataset, from nothing.
#
#   1. Fashion-MNIST: Debian's dataset-fashion-mnist package (installed here
#      when apt-get can), or FASHION_MNIST_DIR=/folder/of/the/four/.gz/files
#   2. kfash-tf data fashion-mnist   3 classes → PNG folders (Train/Validation/Test)
#   3. kfash-tf train vgg8           a few epochs, with a progress bar
#   4. kfash-tf evaluate             on the Test split
#   5. kfash-tf export               a SavedModel (TensorFlow Serving layout)
#   6. kfash-tf report               index.html + report.md with curves and confusion matrix
#
# It is resumable: run it again after Ctrl-C and finished steps are kept.
# Settings (environment): DEMO_OUT (default runs/demo), DEMO_EPOCHS (4),
# DEMO_TRAIN_IMAGES (2400 across the 3 classes, before the validation split),
# DEMO_CLASSES (pullover,coat,shirt: the three Fashion-MNIST classes that are
# hardest to tell apart, as the study's styles are), KFASH_TF_CACHE.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

KFASH=${KFASH:-bin/kfash-tf}
OUT=${DEMO_OUT:-runs/demo}
EPOCHS=${DEMO_EPOCHS:-4}
TRAIN_IMAGES=${DEMO_TRAIN_IMAGES:-2400}
CLASSES=${DEMO_CLASSES:-pullover,coat,shirt}
CACHE_ROOT=${KFASH_TF_CACHE:-$HOME/.cache/kfash-tf}
DEB_DIR=/usr/share/datasets/fashion-mnist
SRC=${FASHION_MNIST_DIR:-$DEB_DIR}
DATA="$CACHE_ROOT/demo-fashion-mnist-${CLASSES//,/-}-$TRAIN_IMAGES"
RUN="$OUT/vgg8"
START=$(date +%s)

step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }
have_idx() { [ -e "$1/train-images-idx3-ubyte.gz" ] || [ -e "$1/train-images-idx3-ubyte" ]; }

step "1/6 Fashion-MNIST"
if ! have_idx "$SRC"; then
	if [ -n "${FASHION_MNIST_DIR:-}" ]; then
		die "FASHION_MNIST_DIR=$SRC does not hold train-images-idx3-ubyte(.gz); it needs the four files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz"
	fi
	sudo=""
	[ "$(id -u)" = 0 ] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && sudo="sudo -n"; }
	if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || [ -n "$sudo" ]; }; then
		echo "installing Debian's dataset-fashion-mnist package (30 MB) ..." >&2
		export DEBIAN_FRONTEND=noninteractive
		$sudo apt-get install -y -q dataset-fashion-mnist >&2 ||
			{ $sudo apt-get update -q >&2 && $sudo apt-get install -y -q dataset-fashion-mnist >&2; } ||
			die "apt-get could not install dataset-fashion-mnist; install it by hand, or download the four Fashion-MNIST .gz files and run: FASHION_MNIST_DIR=/that/folder make demo"
	else
		die "Fashion-MNIST is not installed. Either: sudo apt-get install dataset-fashion-mnist (Debian/Ubuntu), then make demo again; or download the four files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz into a folder and run: FASHION_MNIST_DIR=/that/folder make demo"
	fi
	have_idx "$SRC" || die "dataset-fashion-mnist installed, but $SRC has no train-images-idx3-ubyte.gz"
fi
echo "Fashion-MNIST: $SRC" >&2

step "2/6 import $CLASSES ($TRAIN_IMAGES training images) → $DATA"
if [ -f "$DATA/.complete" ]; then
	echo "already imported" >&2
else
	rm -rf "$DATA.tmp"
	mkdir -p "$(dirname "$DATA")"
	"$KFASH" data fashion-mnist --src "$SRC" --out "$DATA.tmp" --classes "$CLASSES" --train-limit "$TRAIN_IMAGES"
	touch "$DATA.tmp/.complete"
	rm -rf "$DATA" && mv "$DATA.tmp" "$DATA"
fi

step "3/6 train vgg8, $EPOCHS epochs → $RUN"
state=$(sed -n 's/.*"state": *"\([a-z]*\)".*/\1/p' "$RUN/status.json" 2>/dev/null || true)
if [ "$state" = finished ]; then
	echo "already trained ($RUN/status.json: finished)" >&2
elif [ -f "$RUN/config.json" ] && [ -e "$RUN/checkpoints/last.json" ]; then
	"$KFASH" train --resume "$RUN"
else
	rm -rf "$RUN"
	"$KFASH" train vgg8 --data "$DATA" --classes "$CLASSES" --epochs "$EPOCHS" --out "$RUN"
fi

step "4/6 evaluate on the Test split"
"$KFASH" evaluate "$RUN" --data "$DATA" --split test

step "5/6 export a SavedModel → $OUT/export"
rm -rf "$OUT/export"
"$KFASH" export "$RUN" --out "$OUT/export"

step "6/6 report → $OUT/report"
"$KFASH" report "$RUN" --out "$OUT/report" --split test

secs=$(($(date +%s) - START))
photo=$(find "$DATA/Test" -type f -name '*.png' | sort | sed -n 1p) # sed, not head: no SIGPIPE under pipefail
cat >&2 <<EOF

demo done in $((secs / 60)) min $((secs % 60)) s.
  report:      $OUT/report/index.html   (also report.md; make screenshot renders it to PNG)
  run folder:  $RUN
  SavedModel:  $OUT/export/1

Try the model as a web service (TensorFlow Serving's REST API), in a second terminal:
  $KFASH serve $RUN --port 8501
  curl -s localhost:8501/v1/models/kfash:predict -d '{"instances":[{"b64":"'\$(base64 -w0 $photo)'"}]}'
or from the command line:
  $KFASH predict $OUT/export $photo
EOF
