package benchmark

import (
	"bytes"
	"encoding/json"
	"fmt"

	tf "github.com/galeone/tensorflow/tensorflow/go"

	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/internal/atomicfile"
)

// WriteGraph writes tg's GraphDef to path and the names a profiler needs to
// run a training step to path.json, each atomically: what Plan.OnGraph
// does for `kfash-tf bench --graph-out`.
func WriteGraph(path string, tg *graphs.TrainGraph) error {
	var def bytes.Buffer
	if _, err := tg.Graph.WriteTo(&def); err != nil {
		return fmt.Errorf("serialising the graph for %s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, def.Bytes()); err != nil {
		return err
	}
	var inits []string
	for _, o := range tg.Store.InitOps() {
		inits = append(inits, o.Name())
	}
	name := func(o tf.Output) string { return fmt.Sprintf("%s:%d", o.Op.Name(), o.Index) }
	names := map[string]interface{}{
		"images": name(tg.Images), "labels": name(tg.Labels), "lr": name(tg.LR), "rng_step": name(tg.RNGStep),
		"loss": name(tg.Loss), "correct": name(tg.Correct), "step": tg.Step.Name(), "init": inits,
		"logits": name(tg.Logits), "probs": name(tg.Probs),
	}
	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	enc.SetIndent("", "  ") // as the command's JSON output
	if err := enc.Encode(names); err != nil {
		return err
	}
	return atomicfile.WriteFile(path+".json", js.Bytes())
}
