# syntax=docker/dockerfile:1
#
# docker build -t kfash-tf .
# docker run --rm -p 8501:8501 kfash-tf --help
#
# GPU image (TensorFlow's CUDA build and the NVIDIA wheels it pins, ~2.3 GB
# downloaded, ~3.9 GB in the image; needs the NVIDIA Container Toolkit and a
# driver >= 525.60.13 on the host):
# docker build --build-arg TF_VARIANT=gpu -t kfash-tf:gpu .
# docker run --rm --gpus all kfash-tf:gpu version
#
# go.mod asks for Go 1.24; GOTOOLCHAIN=auto below lets an older image fetch
# the required toolchain through the Go module proxy.
ARG GO_IMAGE=golang:1.24-bookworm
# cpu (default) or gpu: the TensorFlow wheel scripts/libtensorflow.sh fetches
# and the runtime stage's base image (runtime-cpu or runtime-gpu below).
ARG TF_VARIANT=cpu
# The CUDA 12 line the gpu wheels pin (tensorflow 2.18.1: CUDA 12.5.1). Only
# the base of the image (the driver hooks of the NVIDIA Container Toolkit) is
# needed: cuDNN, cuBLAS & co. come from the pinned wheels, in the library dir.
ARG CUDA_IMAGE=nvidia/cuda:12.5.1-base-ubuntu24.04

FROM ${GO_IMAGE} AS build
ARG TF_VARIANT
ENV TF_VARIANT=${TF_VARIANT} \
    GOTOOLCHAIN=auto \
    KFASH_TF_CACHE=/opt/kfash-tf \
    CI=true
# pip fetches the pinned tensorflow-cpu (or tensorflow + NVIDIA) wheels (scripts/libtensorflow.sh);
# gcc and make are already in the golang image (cgo).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src

COPY go.mod go.sum ./
RUN go mod download

# The TensorFlow C library gets its own layer so source edits do not refetch it.
COPY scripts/libtensorflow.sh scripts/cache-lib.sh scripts/
RUN bash scripts/libtensorflow.sh

COPY . .
# .git is not in the build context; pass --build-arg VERSION=$(git describe --tags --always --dirty)
ARG VERSION=0.1.0-dev
RUN make build VERSION=${VERSION}

# BuildKit builds only the runtime stage TF_VARIANT names (the CUDA image is
# not pulled for cpu).
FROM debian:bookworm-slim AS runtime-cpu
FROM ${CUDA_IMAGE} AS runtime-gpu

FROM runtime-${TF_VARIANT}
ARG TF_VARIANT
# Same path as in the build stage (keep the version in sync with TF_VERSION in
# scripts/libtensorflow.sh): bin/kfash-tf.bin has it as rpath and the
# launcher bin/kfash-tf has it baked in. The folder carries lib/,
# build-info.json (read by 'kfash-tf version') and, for gpu, nvidia/.
COPY --from=build /opt/kfash-tf/libtensorflow-2.18.1-${TF_VARIANT} /opt/kfash-tf/libtensorflow-2.18.1-${TF_VARIANT}
COPY --from=build /src/bin/ /app/bin/
# Fail the image build if a shared library is missing (libstdc++ & co. are in bookworm-slim).
RUN if ldd /app/bin/kfash-tf.bin | grep 'not found'; then exit 1; fi
WORKDIR /app
EXPOSE 8501
ENTRYPOINT ["/app/bin/kfash-tf"]
