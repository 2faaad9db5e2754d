package tfops

import (
	"fmt"
	"strings"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"
)

// Mode selects the behaviour of mode-dependent layers (batch norm, dropout).
type Mode int

// Modes a network can be built in.
const (
	Inference Mode = iota // moving BN statistics, no dropout
	Training              // batch statistics + moving-average updates, dropout
)

// String names the mode.
func (m Mode) String() string {
	if m == Training {
		return "training"
	}
	return "inference"
}

// Layer is one row of a network's layer table.
type Layer struct {
	Name         string  `json:"name"`                 // "/"-separated path, e.g. "inception3a/b2_3x3"
	Op           string  `json:"op"`                   // conv, dense, maxpool, batchnorm, ...
	Shape        []int64 `json:"output_shape"`         // output shape without the batch dimension
	Trainable    int64   `json:"trainable_params"`     // parameters created by this layer
	NonTrainable int64   `json:"non_trainable_params"` // moving statistics created by this layer
	FLOPs        int64   `json:"forward_flops"`        // per example: 2 × multiply-accumulates
}

// build is the state shared by a Net and all its sub-nets during one build.
type build struct {
	store   *Store
	mode    Mode
	layers  []Layer
	outputs map[string]tf.Output // layer name → its output, for LayerOutput
	reads   map[*Variable]tf.Output
	updates []*tf.Operation
	rngStep tf.Output // int64 scalar mixed into dropout's stateless seeds
}

// Net is what a network builder writes into: a name scope, the variable
// store and the mode. Sub-nets made by Sub share the store and the records.
type Net struct {
	s    *op.Scope
	path string
	b    *build
}

// NewNet starts a build of a network in mode under scope s. The scope names
// only the ops of this build (e.g. "train" or "infer"); variables are named
// by their layer path alone, so both builds share them.
func NewNet(s *op.Scope, store *Store, mode Mode) *Net {
	b := &build{store: store, mode: mode, reads: map[*Variable]tf.Output{}, outputs: map[string]tf.Output{}}
	if mode == Training {
		// Fed with the global step by the training loop so that dropout masks
		// are reproducible and survive a resume; defaults to 0.
		b.rngStep = op.PlaceholderWithDefault(s.SubScope("rng_step"), op.Const(s.SubScope("rng_step_default"), int64(0)), tf.ScalarShape())
	}
	return &Net{s: s, b: b}
}

// Sub returns a net whose layers and variables are named under name.
func (n *Net) Sub(name string) *Net {
	p := name
	if n.path != "" {
		p = n.path + "/" + name
	}
	return &Net{s: n.s.SubScope(name), path: p, b: n.b}
}

// Scope returns the scope ops of this net are added to.
func (n *Net) Scope() *op.Scope { return n.s }

// Mode returns the build mode.
func (n *Net) Mode() Mode { return n.b.mode }

// Training reports whether this is a training build.
func (n *Net) Training() bool { return n.b.mode == Training }

// Store returns the variable store.
func (n *Net) Store() *Store { return n.b.store }

// Layers returns the layer table recorded so far.
func (n *Net) Layers() []Layer { return append([]Layer(nil), n.b.layers...) }

// Reads maps each variable read by this build to its read tensor: gradients
// are taken with respect to these.
func (n *Net) Reads() map[*Variable]tf.Output { return n.b.reads }

// Updates returns the ops a training step must run besides the optimizer
// (batch-norm moving-average updates).
func (n *Net) Updates() []*tf.Operation { return append([]*tf.Operation(nil), n.b.updates...) }

// RNGStep returns the int64 scalar placeholder (default 0) that seeds
// dropout masks in a training build; the training loop feeds the step.
func (n *Net) RNGStep() tf.Output { return n.b.rngStep }

// Err returns the first error recorded while building.
func (n *Net) Err() error { return n.s.Err() }

// fail records a build error naming the layer.
func (n *Net) fail(name string, format string, args ...interface{}) {
	n.s.UpdateErr(n.join(name), fmt.Errorf(format, args...))
}

func (n *Net) join(name string) string {
	if n.path == "" {
		return name
	}
	return n.path + "/" + name
}

// variable returns the variable name under this net and its read in this build.
func (n *Net) variable(layer, name string, shape []int64, role Role, init Init) (*Variable, tf.Output) {
	v := n.b.store.Get(n.join(layer)+"/"+name, shape, role, init)
	if r, ok := n.b.reads[v]; ok {
		// A second use in one build would split its gradient over two reads.
		n.fail(layer, "variable %s used twice in one build", v.Name)
		return v, r
	}
	r := op.ReadVariableOp(n.s.SubScope(layer+"_"+name), v.Handle, tf.Float)
	n.b.reads[v] = r
	return v, r
}

// record appends a row to the layer table.
func (n *Net) record(name, kind string, out tf.Output, vars []*Variable, flops int64) {
	l := Layer{Name: n.join(name), Op: kind, FLOPs: flops}
	if out.Op == nil {
		return
	}
	if shape, err := out.Shape().ToSlice(); err == nil && len(shape) > 0 {
		l.Shape = shape[1:]
	}
	for _, v := range vars {
		if v.Trainable {
			l.Trainable += v.Size()
		} else {
			l.NonTrainable += v.Size()
		}
	}
	n.b.layers = append(n.b.layers, l)
	n.b.outputs[l.Name] = out
}

// LayerOutput returns the output of the layer called name (a row of Layers,
// e.g. "block4/conv2"): explanations such as Grad-CAM read a layer's
// feature map by the name the layer table shows.
func (n *Net) LayerOutput(name string) (tf.Output, bool) {
	o, ok := n.b.outputs[name]
	return o, ok
}

// dims returns the static shape of x or records an error.
func (n *Net) dims(name string, x tf.Output, rank int) []int64 {
	if x.Op == nil { // an earlier op failed; the scope holds the error
		return make([]int64, rank)
	}
	s, err := x.Shape().ToSlice()
	if err != nil || len(s) != rank {
		n.fail(name, "input must have a known rank-%d shape, got %v", rank, x.Shape())
		return make([]int64, rank)
	}
	for i, d := range s[1:] {
		if d < 0 {
			n.fail(name, "input dimension %d is unknown (%v)", i+1, x.Shape())
		}
	}
	return s
}

// Path returns the net's name path.
func (n *Net) Path() string { return n.path }

// LayerPrefix returns the first k components of a layer name: used to sum a
// layer table by block.
func LayerPrefix(name string, k int) string {
	parts := strings.Split(name, "/")
	if k < len(parts) {
		parts = parts[:k]
	}
	return strings.Join(parts, "/")
}
