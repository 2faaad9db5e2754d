// Package graphstest makes run folders for tests without training.
package graphstest

import (
	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// UntrainedRun writes a run folder at dir for cfg whose "last" checkpoint
// (state st) holds freshly initialised weights: a servable, exportable run
// in a fraction of a second. It returns the inference graph it used and the
// checkpoint's variables prefix.
func UntrainedRun(dir string, cfg runs.Config, st runs.CheckpointState) (*graphs.InferenceGraph, string, error) {
	ig, err := graphs.BuildInferenceGraph(cfg)
	if err != nil {
		return nil, "", err
	}
	sess, err := graphs.NewSession(ig.Graph, runs.SessionConfig{})
	if err != nil {
		return nil, "", err
	}
	defer sess.Close()
	if _, err := sess.Run(nil, nil, ig.Store.InitOps()); err != nil {
		return nil, "", err
	}
	run, err := runs.Create(dir, cfg)
	if err != nil {
		return nil, "", err
	}
	if err := run.Checkpoints().WriteWith(ig.Saver.SaveFunc(sess), []string{"last"}, st); err != nil {
		return nil, "", err
	}
	prefix, _, err := run.Checkpoints().Resolve("last")
	return ig, prefix, err
}
