package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// binary returns the launcher `make test` built (KFASH_TF_BIN), or skips.
func binary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("KFASH_TF_BIN")
	if bin == "" {
		t.Skip("KFASH_TF_BIN is not set: run the CLI tests through 'make test'")
	}
	return bin
}

func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func TestModelsJSONListsTheStudyNetworks(t *testing.T) {
	stdout, stderr, code := run(t, "models", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var list []struct {
		Name               string `json:"name"`
		InputSize          int    `json:"input_size"`
		TrainableParams    int64  `json:"trainable_params"`
		NonTrainableParams *int64 `json:"non_trainable_params"`
		ForwardFLOPs       int64  `json:"forward_flops"`
	}
	if err := json.Unmarshal([]byte(stdout), &list); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	want := []struct {
		name   string
		size   int
		params int64
	}{{"alexnet", 227, 58294339}, {"vgg8", 150, 299667}, {"vgg10", 150, 7649091},
		{"googlenet", 224, 5972467}, {"resnet34", 227, 21286211}, {"densenet", 227, 1000827}}
	if len(list) != len(want) {
		t.Fatalf("%d networks listed, want %d", len(list), len(want))
	}
	for i, w := range want {
		got := list[i]
		if got.Name != w.name || got.InputSize != w.size || got.TrainableParams != w.params || got.NonTrainableParams == nil || got.ForwardFLOPs <= 0 {
			t.Errorf("row %d = %+v, want %s %d %d with non-trainable and FLOPs", i, got, w.name, w.size, w.params)
		}
	}
}

func TestShowUnknownNetworkFails(t *testing.T) {
	_, stderr, code := run(t, "models", "show", "nosuchnet")
	if code == 0 {
		t.Fatal("exit status 0 for an unknown network")
	}
	for _, name := range []string{"alexnet", "vgg8", "vgg10", "googlenet", "resnet34", "densenet"} {
		if !strings.Contains(stderr, name) {
			t.Errorf("message %q does not name %s", stderr, name)
		}
	}
}

func TestShowPrintsLayerTable(t *testing.T) {
	stdout, stderr, code := run(t, "models", "show", "resnet34", "--depth", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// The spec's per-part counts of ResNet-34.
	for _, want := range []string{"stem", "9,536", "stage1", "221,952", "stage4", "13,114,368", "21,286,211"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("layer table lacks %q:\n%s", want, stdout)
		}
	}
}

func TestVersionReportsLibraryAndDevices(t *testing.T) {
	stdout, stderr, code := run(t, "version", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var v struct {
		Version, TensorFlow string
		Devices             []string
	}
	if err := json.Unmarshal([]byte(stdout), &v); err != nil {
		t.Fatal(err)
	}
	if v.Version == "" || !strings.HasPrefix(v.TensorFlow, "2.") || len(v.Devices) == 0 || !strings.Contains(v.Devices[0], "CPU") {
		t.Errorf("version report %+v", v)
	}
}

// The launcher turns a missing library into one message saying what to run.
func TestLauncherExplainsMissingLibrary(t *testing.T) {
	tmpl, err := os.ReadFile(filepath.Join("..", "..", "scripts", "launcher.sh.in"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := strings.NewReplacer("@TF_LIBDIR@", filepath.Join(dir, "no-such-lib"), "@TF_VERSION@", "2.x", "@TF_VARIANT@", "cpu").Replace(string(tmpl))
	launcher := filepath.Join(dir, "kfash-tf")
	if err := os.WriteFile(launcher, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(launcher, "models").CombinedOutput()
	if err == nil {
		t.Fatal("launcher succeeded without the library")
	}
	for _, want := range []string{"TensorFlow C library not found", "make setup", "LIBTENSORFLOW_DIR"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("message %q lacks %q", out, want)
		}
	}
}
