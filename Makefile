# kfash-tf build. Needs GNU make, Go, a C compiler (cgo) and, for the first
# 'make setup', python3 + pip (the TensorFlow C library comes from the pinned
# tensorflow-cpu wheel on PyPI; see scripts/libtensorflow.sh).
#
#   make demo           the main job on the built-in dataset (Fashion-MNIST, 3 classes):
#                       import, train, evaluate, export, report (scripts/demo.sh)
#   make setup          fetch the TensorFlow C library (once; cached)
#   make build          bin/kfash-tf (launcher) + bin/kfash-tf.bin
#   make test           go test ./... (TESTFLAGS='-run X -v' to narrow), then make fuzz
#   make fuzz           each fuzz target for FUZZTIME (default 10s)
#   make bench          kfash-tf vs Keras vs PyTorch on this CPU → BENCHMARKS.md, bench/results.json
#                       (BENCH=quick: vgg8 only, ~10 min; fetches the peers' venvs once, ~3.3 GB)
#   make parity         accuracy parity: kfash-tf vs Keras vs PyTorch, same recipe, 3 seeds → PARITY.md,
#                       parity/results.json (PARITY_* settings: see bench/parity.py --help)
#   make bench-serve    load test of kfash-tf serve (throughput, latency, RSS)
#   make newcomer-check clone into an empty temp folder and run the README's two commands
#   make screenshot     headless-Chromium PNG of a report (REPORT=runs/demo/report)
#   make vet fmt-check clean print-tf-dir
#
# LIBTENSORFLOW_DIR=/path uses an existing libtensorflow (include/ + lib/);
# KFASH_TF_CACHE=/dir moves the download cache (default ~/.cache/kfash-tf).
# TF_VARIANT=gpu (setup, build, test, ...) uses the CUDA build of TensorFlow and the
# NVIDIA wheels it pins (~2.3 GB, cached beside the default TF_VARIANT=cpu);
# BIN=/dir builds the launcher and binary elsewhere (default ./bin).

.DEFAULT_GOAL := build
.SUFFIXES:

ifeq ($(origin GO),undefined)
GO := $(or $(shell command -v go 2>/dev/null),/usr/local/go/bin/go)
endif
GOFMT = $(shell $(GO) env GOROOT)/bin/gofmt

# cpu (default) or gpu: which TensorFlow wheel scripts/libtensorflow.sh fetches.
TF_VARIANT ?= cpu
export TF_VARIANT
# Passed explicitly: make 4.3 does not export command-line variables to $(shell).
LIBTF_SH   := TF_VARIANT=$(TF_VARIANT) LIBTENSORFLOW_DIR=$(LIBTENSORFLOW_DIR) KFASH_TF_CACHE=$(KFASH_TF_CACHE) bash $(CURDIR)/scripts/libtensorflow.sh
TF_DIR     := $(shell $(LIBTF_SH) --print-dir)
TF_VERSION := $(shell $(LIBTF_SH) --version)
TF_LIBDIR  := $(TF_DIR)/lib
# The NVIDIA wheels' libraries of the gpu variant (scripts/libtensorflow.sh),
# for the test binaries; bin/kfash-tf sets the same itself.
NV_PKGS    := cublas cuda_cupti cuda_nvrtc cuda_runtime cudnn cufft curand cusolver cusparse nccl nvjitlink
ifeq ($(TF_VARIANT),gpu)
ifeq ($(LIBTENSORFLOW_DIR),)
export LD_LIBRARY_PATH := $(subst $(eval) ,:,$(foreach p,$(NV_PKGS),$(TF_DIR)/nvidia/$(p)/lib))$(if $(LD_LIBRARY_PATH),:$(LD_LIBRARY_PATH))
endif
endif

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
LDFLAGS := -X main.version=$(VERSION)
TESTFLAGS ?=

BIN      ?= $(CURDIR)/bin
LAUNCHER := $(BIN)/kfash-tf
REALBIN  := $(BIN)/kfash-tf.bin

# One cgo environment for every go command run by make.
export CGO_ENABLED := 1
export CGO_CFLAGS  := -I$(TF_DIR)/include
export CGO_LDFLAGS := -L$(TF_LIBDIR) -Wl,-rpath,$(TF_LIBDIR)
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: fuzz setup build test vet fmt-check clean print-tf-dir help bench parity bench-serve demo newcomer-check screenshot

setup:
	@dir=$$($(LIBTF_SH)) && echo "TensorFlow C library $(TF_VERSION) ($(TF_VARIANT)): $$dir"

build: setup
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(REALBIN) ./cmd/kfash-tf
	@sed -e 's|@TF_LIBDIR@|$(TF_LIBDIR)|g' -e 's|@TF_VERSION@|$(TF_VERSION)|g' \
		-e 's|@TF_VARIANT@|$(TF_VARIANT)|g' \
		$(CURDIR)/scripts/launcher.sh.in >$(LAUNCHER).tmp
	@chmod +x $(LAUNCHER).tmp && mv -f $(LAUNCHER).tmp $(LAUNCHER)
	@echo "built $(LAUNCHER) (version $(VERSION))"

# CLI tests exec the launcher through $$KFASH_TF_BIN. Then a short run of
# every fuzz target (seed corpora in testdata/fuzz/; FUZZTIME=0 skips it).
test: setup build
	KFASH_TF_BIN=$(LAUNCHER) $(GO) test -count=1 $(TESTFLAGS) ./...
	@$(MAKE) --no-print-directory fuzz

# Each parser of untrusted bytes, fuzzed for FUZZTIME (go test -fuzz takes
# one target per run). Crashers are written under the package's testdata/fuzz.
FUZZTIME ?= 10s
FUZZ_TARGETS := app/serve:FuzzPredictRequest augment:FuzzImageLimits augment:FuzzDecodeBytes
fuzz: setup
	@if [ "$(FUZZTIME)" != 0 ]; then for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t#*:}; echo "fuzz $$name ($(FUZZTIME)) in ./$$pkg"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -parallel 2 ./$$pkg || exit 1; \
	done; fi

# Training/inference speed against Keras (scripts/pyenv.sh) and PyTorch
# (scripts/pyenv-torch.sh): bench/run.py. BENCH=full (default) or quick.
BENCH ?= full
bench: build
	@keras=$$(bash scripts/pyenv.sh) && torch=$$(bash scripts/pyenv-torch.sh) && \
	python3 bench/run.py --mode $(BENCH) --keras-python "$$keras" --torch-python "$$torch"

# Accuracy against Keras and PyTorch on the same recipe and folder (a
# benchmark, not a test): bench/parity.py, configured by PARITY_* variables
# from the environment (PARITY_NETWORKS, PARITY_EPOCHS, PARITY_SEEDS, ...).
parity: build
	@keras=$$(bash scripts/pyenv.sh) && torch=$$(bash scripts/pyenv-torch.sh) && \
	python3 bench/parity.py --keras-python "$$keras" --torch-python "$$torch"

# Load test of 'kfash-tf serve' on loopback (wrk; figures go to BENCHMARKS.md).
bench-serve: build
	BUILD=0 bash scripts/bench-serve.sh

demo: build
	bash scripts/demo.sh

# What a new user does: a fresh clone, then exactly the README's two commands.
newcomer-check:
	bash scripts/newcomer-check.sh

REPORT ?= runs/demo/report
SCREENSHOT_SIZE ?= 1400,3400
screenshot:
	bash scripts/screenshot.sh $(REPORT)/index.html $(REPORT)/screenshot.png $(SCREENSHOT_SIZE)

vet: setup
	$(GO) vet ./...

fmt-check:
	@out=$$($(GOFMT) -l .) || exit 1; \
	if [ -n "$$out" ]; then echo "gofmt -l reports unformatted files (run gofmt -w):"; echo "$$out"; exit 1; fi

clean:
	rm -rf $(BIN)

print-tf-dir:
	@echo $(TF_DIR)

help:
	@sed -n '1,/^$$/p' $(firstword $(MAKEFILE_LIST))
