// Command kfash-tf trains, evaluates, exports and serves the fashion-style
// CNNs of the K-Fashion study on TensorFlow's C library. The commands live in
// package app; this file only wires the build-time version to them.
package main

import (
	"os"

	"github.com/kfash-tf/kfash-tf/app"
)

// version is set at build time by `make build` (-X main.version=...).
var version = "0.1.0-dev"

func main() { os.Exit(app.Main(version, os.Args)) }
