# syntax=docker/dockerfile:1
#
# docker build -t kfash-tf .
# docker run --rm -p 8501:8501 kfash-tf --help
#
# go.mod asks for Go 1.24; GOTOOLCHAIN=auto below lets an older image fetch
# the required toolchain through the Go module proxy.
ARG GO_IMAGE=golang:1.24-bookworm

FROM ${GO_IMAGE} AS build
ENV GOTOOLCHAIN=auto \
    KFASH_TF_CACHE=/opt/kfash-tf \
    CI=true
# pip fetches the pinned tensorflow-cpu wheel (scripts/libtensorflow.sh);
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

FROM debian:bookworm-slim
# Same path as in the build stage (keep the version in sync with TF_VERSION in
# scripts/libtensorflow.sh): bin/kfash-tf.bin has it as rpath and the
# launcher bin/kfash-tf has it baked in.
COPY --from=build /opt/kfash-tf/libtensorflow-2.18.1-cpu/lib /opt/kfash-tf/libtensorflow-2.18.1-cpu/lib
COPY --from=build /src/bin/ /app/bin/
# Fail the image build if a shared library is missing (libstdc++ & co. are in bookworm-slim).
RUN if ldd /app/bin/kfash-tf.bin | grep 'not found'; then exit 1; fi
WORKDIR /app
EXPOSE 8501
ENTRYPOINT ["/app/bin/kfash-tf"]
