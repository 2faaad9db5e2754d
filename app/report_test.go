package app

import (
	"testing"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// The models registry gives the real #params (vgg8 with 3 classes: the
// figure `kfash-tf models` prints).
func TestRegistryParams(t *testing.T) {
	classes := []string{"resort", "retro", "sporty"}
	info, err := registryNetworks()(runs.Config{Network: "vgg8", Classes: classes, Dropout: 0.4})
	if err != nil {
		t.Fatal(err)
	}
	if info.Params != 299667 || info.HasDropout {
		t.Errorf("vgg8: %+v, want 299667 params, no dropout", info)
	}
	if _, err := registryNetworks()(runs.Config{Network: "nosuchnet", Classes: classes}); err == nil {
		t.Error("unknown network: no error")
	}
}
