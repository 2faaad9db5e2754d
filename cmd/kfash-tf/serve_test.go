package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kfash-tf/kfash-tf/augment/augmenttest"
	"github.com/kfash-tf/kfash-tf/graphs/graphstest"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/internal/testlog"
)

// The serve command's flags and process; the server itself is tested in
// app/serve.

// untrainedServeRun writes a run folder whose "last" checkpoint (epoch 2)
// holds freshly initialised vgg8 weights: enough to serve.
func untrainedServeRun(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run")
	cfg := runs.Config{Network: "vgg8", InputSize: 150, Classes: []string{"circle", "square", "stripe"}, Normalize: "none",
		Std: [3]float32{1, 1, 1}, Seed: 5, Created: time.Now()}
	if _, _, err := graphstest.UntrainedRun(dir, cfg, runs.CheckpointState{Epoch: 2, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The serve command end to end: flags, the startup lines, a prediction,
// then SIGTERM: a clean exit that reports what was served.
func TestServeCommandSIGTERM(t *testing.T) {
	bin := binary(t)
	run := untrainedServeRun(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve"}, "serve needs one MODEL"},
		{[]string{"serve", run, "--max-body", "lots"}, "--max-body: invalid size"},
		{[]string{"serve", run, "--max-batch", "0"}, "--max-batch must be between 1"},
		// Every numeric flag is checked, naming it, before the model loads.
		// (NaN and Inf may be refused by the flag layer before serve's own
		// range check: either way the message names the flag and the value.)
		{[]string{"serve", run, "--max-pixels", "nan"}, "--max-pixels"},
		{[]string{"serve", run, "--max-request-pixels", "inf"}, "--max-request-pixels"},
		{[]string{"serve", run, "--max-request-pixels", "-5"}, "--max-request-pixels must be a number from 1 to 1e+15, got -5"},
		{[]string{"serve", run, "--max-instances", "0"}, "--max-instances must be between 1"},
		{[]string{"serve", run, "--max-gif-frames", "-1"}, "--max-gif-frames must be between 1"},
		{[]string{"serve", run, "--max-inflight", "0"}, "--max-inflight must be between 1"},
		{[]string{"serve", run, "--port", "70000"}, "--port must be between 0 and 65535"},
		{[]string{"serve", run, "--shutdown-timeout", "0s"}, "--shutdown-timeout must be positive"},
		{[]string{"serve", run, "--request-timeout", "90s"}, "--request-timeout (1m30s) must be shorter than --write-timeout (1m0s)"},
		{[]string{"serve", t.TempDir()}, "is neither a run folder (config.json) nor a SavedModel (saved_model.pb)"},
	} {
		out, err := exec.Command(bin, c.args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) || strings.Contains(string(out), "-9223372036854775808") {
			t.Errorf("kfash-tf %s: %v\n%s\nwant an error containing %q", strings.Join(c.args, " "), err, out, c.want)
		}
	}

	cmd := exec.Command(bin, "serve", run, "--port", "0", "--name", "tiny", "--batch-wait", "1ms")
	stderr := &testlog.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	log := stderr.WaitFor("listening on http://", 60*time.Second)
	_, rest, ok := strings.Cut(log, "listening on ")
	if !ok {
		t.Fatalf("no 'listening on' line:\n%s", log)
	}
	addr, _, _ := strings.Cut(rest, " ")
	body := `{"instances": [{"b64": "` + base64.StdEncoding.EncodeToString(augmenttest.PNG(0, 30, 1)) + `"}]}`
	resp, err := http.Post(addr+"/v1/models/tiny:predict", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		Predictions []struct {
			ClassNames string `json:"class_names"`
		} `json:"predictions"`
	}
	err = json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	if resp.StatusCode != 200 || err != nil || len(answer.Predictions) != 1 || answer.Predictions[0].ClassNames == "" {
		t.Fatalf("prediction: %d %+v %v", resp.StatusCode, answer, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM:\n%s", err, stderr.WaitFor("", 0))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
	log = stderr.WaitFor("stopped:", time.Second)
	for _, want := range []string{`as "tiny" version 2: 3 classes (circle, square, stripe), 150×150 input`, "POST /v1/models/tiny:predict 200 1 images", "stopped: 1 images in 1 model runs"} {
		if !strings.Contains(log, want) {
			t.Errorf("stderr lacks %q:\n%s", want, log)
		}
	}
}
