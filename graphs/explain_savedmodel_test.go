package graphs_test

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// An export's explain signature is the run folder's Grad-CAM: the same
// network, layer, probabilities and maps, for the predicted class and for
// a class fed as the target.
func TestExplainExportedSavedModel(t *testing.T) {
	base := t.TempDir()
	run := filepath.Join(base, "run")
	ig, prefix := servableRun(t, run)
	// A SavedModel without the signature (TensorFlow Serving's minimum)
	// cannot explain, and says why.
	plain := filepath.Join(base, "plain")
	servableSavedModel(t, ig, prefix, plain)
	p, err := graphs.OpenServable(plain, "", runs.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := graphs.NewExplainer(p, ""); !errors.Is(err, graphs.ErrNoExplain) {
		t.Errorf("NewExplainer(SavedModel without explain) = %v, want ErrNoExplain", err)
	}

	export := filepath.Join(base, "export")
	if _, err := graphs.ExportSavedModel(run, export, graphs.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	m, err := graphs.OpenServable(export, "", runs.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r, err := graphs.OpenServable(run, "", runs.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, ok := m.Signatures()[graphs.SignatureExplain]; !ok {
		t.Fatalf("the export has no %s signature: %v", graphs.SignatureExplain, m.Signatures())
	}
	me, err := graphs.NewExplainer(m, "")
	if err != nil {
		t.Fatal(err)
	}
	re, err := graphs.NewExplainer(r, "")
	if err != nil {
		t.Fatal(err)
	}
	if me.Network() != re.Network() || me.Layer() != re.Layer() {
		t.Errorf("export explains %s/%s, the run %s/%s", me.Network(), me.Layer(), re.Network(), re.Layer())
	}
	if _, err := graphs.NewExplainer(m, "no_such_layer"); err == nil || errors.Is(err, graphs.ErrNoExplain) {
		t.Errorf("NewExplainer(export, another layer) = %v, want an error naming the exported layer", err)
	}

	const n = 2
	images := servableImages(n, m.InputSize(), 9)
	for _, targets := range [][]int{nil, {2, -1}} {
		got, err := me.Explain(images, n, targets)
		if err != nil {
			t.Fatal(err)
		}
		want, err := re.Explain(images, n, targets)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			g, w := got[i], want[i]
			if g.Target != w.Target || g.Predicted != w.Predicted || g.Size != w.Size {
				t.Errorf("targets %v, image %d: export target %d predicted %d size %d; run %d %d %d",
					targets, i, g.Target, g.Predicted, g.Size, w.Target, w.Predicted, w.Size)
			}
			if k, ok := closeEnough(g.Probs, w.Probs, 1e-5); !ok {
				t.Errorf("targets %v, image %d: probability %d is %g, the run says %g", targets, i, k, g.Probs[k], w.Probs[k])
			}
			if k, ok := closeEnough(g.Map, w.Map, 1e-5); !ok {
				t.Errorf("targets %v, image %d: map value %d is %g, the run says %g", targets, i, k, g.Map[k], w.Map[k])
			}
			if k, ok := closeEnough([]float32{g.Min, g.Max}, []float32{w.Min, w.Max}, 1e-5); !ok {
				t.Errorf("targets %v, image %d: map range [%g,%g], the run says [%g,%g] (%d)", targets, i, g.Min, g.Max, w.Min, w.Max, k)
			}
		}
		// A flat map would make the comparison vacuous.
		if slices.Max(want[0].Map)+slices.Max(want[1].Map) <= 0 {
			t.Errorf("targets %v: the run's maps are flat: nothing to compare", targets)
		}
		if targets != nil && got[0].Target != 2 {
			t.Errorf("target 2 fed, export explained %d", got[0].Target)
		}
	}
}
