package app

import (
	"encoding/json"
	"fmt"
	"runtime"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/urfave/cli/v2"
)

// versionInfo is what `kfash-tf version` reports.
type versionInfo struct {
	Version    string   `json:"version"`
	TensorFlow string   `json:"tensorflow"`
	Go         string   `json:"go"`
	Platform   string   `json:"platform"`
	Devices    []string `json:"devices"`
}

func versionCommand(version string) *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the program's version, the TensorFlow library's version and the devices it sees",
		Flags: []cli.Flag{formatFlag("text", "json")},
		Action: func(c *cli.Context) error {
			format := c.String("format")
			if err := checkFormat(format, "text", "json"); err != nil {
				return err
			}
			devices, err := listDevices()
			if err != nil {
				return fmt.Errorf("listing TensorFlow devices: %w", err)
			}
			info := versionInfo{Version: version, TensorFlow: tf.Version(), Go: runtime.Version(),
				Platform: runtime.GOOS + "/" + runtime.GOARCH, Devices: devices}
			w := out(c)
			if format == "json" {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			}
			fmt.Fprintf(w, "kfash-tf   %s\nTensorFlow %s\nGo         %s (%s)\n", info.Version, info.TensorFlow, info.Go, info.Platform)
			for _, d := range devices {
				fmt.Fprintf(w, "device     %s\n", d)
			}
			return nil
		},
	}
}

// listDevices opens a session on an empty graph and lists what TensorFlow's
// placement can use (CPU, and GPUs with a GPU build of the library).
func listDevices() ([]string, error) {
	sess, err := tf.NewSession(tf.NewGraph(), nil)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	devs, err := sess.ListDevices()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, d := range devs {
		names = append(names, fmt.Sprintf("%s (%s)", d.Name, d.Type))
	}
	return names, nil
}
