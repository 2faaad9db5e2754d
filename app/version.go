package app

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/urfave/cli/v2"

	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// versionInfo is what `kfash-tf version` reports.
type versionInfo struct {
	Version    string             `json:"version"`
	TensorFlow string             `json:"tensorflow"`
	Go         string             `json:"go"`
	Platform   string             `json:"platform"`
	Library    graphs.LibraryInfo `json:"library"` // variant, CUDA build and the CUDA/cuDNN it expects
	Devices    []string           `json:"devices"` // "name (type, memory)"
	GPUs       int                `json:"gpus"`    // GPUs TensorFlow sees
}

func versionCommand(version string) *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the program's version, the TensorFlow library's version, variant and CUDA build, and the devices it sees",
		Flags: []cli.Flag{formatFlag("text", "json")},
		Action: func(c *cli.Context) error {
			format := c.String("format")
			if err := checkFormat(format, "text", "json"); err != nil {
				return err
			}
			devs, err := listDevices()
			if err != nil {
				return fmt.Errorf("listing TensorFlow devices: %w", err)
			}
			info := versionInfo{Version: version, TensorFlow: tf.Version(), Go: runtime.Version(),
				Platform: runtime.GOOS + "/" + runtime.GOARCH, Library: graphs.Library(), GPUs: countGPUs(devs)}
			for _, d := range devs {
				info.Devices = append(info.Devices, deviceWords(d))
			}
			w := out(c)
			if format == "json" {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			}
			lib := info.Library
			fmt.Fprintf(w, "kfash-tf   %s\nTensorFlow %s\nlibrary    %s\nvariant    %s\nCUDA build %s\nGo         %s (%s)\n",
				info.Version, info.TensorFlow, lib.Path, orUnknown(lib.Variant), cudaWords(lib), info.Go, info.Platform)
			for _, d := range info.Devices {
				fmt.Fprintf(w, "device     %s\n", d)
			}
			fmt.Fprintf(w, "GPUs seen  %d\n", info.GPUs)
			return nil
		},
	}
}

// libraryLine is train's one line on the library and devices it runs on.
func libraryLine(devs []tf.Device) string {
	lib := graphs.Library()
	names := make([]string, len(devs))
	for i, d := range devs {
		names[i] = deviceWords(d)
	}
	return fmt.Sprintf("TensorFlow %s, %s variant, CUDA build %s; %d GPUs seen; devices: %s",
		tf.Version(), orUnknown(lib.Variant), cudaWords(lib), countGPUs(devs), strings.Join(names, ", "))
}

// cudaWords: whether the library was built with CUDA, and the CUDA and
// cuDNN versions it expects.
func cudaWords(lib graphs.LibraryInfo) string {
	if !lib.CUDABuild {
		return "no"
	}
	s := "yes"
	if lib.CUDAVersion != "" {
		s += fmt.Sprintf(" (expects CUDA %s, cuDNN %s)", lib.CUDAVersion, orUnknown(lib.CUDNNVersion))
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// deviceWords is a device's name, type and memory.
func deviceWords(d tf.Device) string {
	name := d.Name
	if i := strings.Index(name, "/device:"); i >= 0 {
		name = name[i+len("/device:"):]
	}
	if d.MemoryLimitBytes > 0 {
		return fmt.Sprintf("%s (%s, %d MiB)", name, d.Type, d.MemoryLimitBytes>>20)
	}
	return fmt.Sprintf("%s (%s)", name, d.Type)
}

func countGPUs(devs []tf.Device) int {
	n := 0
	for _, d := range devs {
		if d.Type == "GPU" {
			n++
		}
	}
	return n
}

// listDevices opens a session on an empty graph and lists what TensorFlow's
// placement can use (CPU, and GPUs with a GPU build of the library). Memory
// growth is on, as in every session kfash-tf opens (the process's GPU
// allocator keeps the options of its first session).
func listDevices() ([]tf.Device, error) {
	opts, err := graphs.SessionOptions(runs.SessionConfig{})
	if err != nil {
		return nil, err
	}
	sess, err := tf.NewSession(tf.NewGraph(), opts)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	return sess.ListDevices()
}
