package graphs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/internal/atomicfile"
	"github.com/kfash-tf/kfash-tf/tfops"
)

// Saver saves and restores a fixed list of variables in TensorFlow's own
// checkpoint format (SaveV2/RestoreV2: PREFIX.index and
// PREFIX.data-00000-of-00001). Tensor names are the variable names, so a
// checkpoint written during training can serve as a SavedModel's
// variables/ for any graph whose variables have the same names.
type Saver struct {
	vars         []*tfops.Variable
	scalarChecks map[string]string // EnsureShape op name → scalar variable name

	// Filename is the string scalar placeholder fed with the checkpoint
	// prefix by Save and Restore (a SavedModel's saver_def.filename_tensor_name).
	Filename tf.Output
	// SaveOp writes the checkpoint named by Filename.
	SaveOp *tf.Operation
	// SaveTensor is Filename passed through once SaveOp has run: fetching it
	// saves (TensorFlow's convention for saver_def.save_tensor_name).
	SaveTensor tf.Output
	// RestoreOp assigns every variable from the checkpoint named by Filename
	// (saver_def.restore_op_name).
	RestoreOp *tf.Operation
}

// NewSaver adds the save and restore ops for vars under s, which should be a
// scope of their own (e.g. root.SubScope("save")).
//
// Restoring checks every shape against the variable's: a tensor of another
// shape, or a missing one, is an error from TensorFlow that names it
// (through RestoreV2's shape_and_slices), never a silently reshaped variable.
func NewSaver(s *op.Scope, vars []*tfops.Variable) (*Saver, error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	if len(vars) == 0 {
		return nil, errors.New("a saver needs at least one variable")
	}
	names := make([]string, len(vars))
	specs := make([]string, len(vars))
	dtypes := make([]tf.DataType, len(vars))
	seen := map[string]bool{}
	for i, v := range vars {
		if v == nil {
			return nil, fmt.Errorf("variable %d is nil", i)
		}
		if seen[v.Name] {
			return nil, fmt.Errorf("variable %s is listed twice", v.Name)
		}
		seen[v.Name] = true
		names[i], specs[i], dtypes[i] = v.Name, shapeAndSlice(v.Shape), tf.Float
	}
	sv := &Saver{vars: append([]*tfops.Variable(nil), vars...)}
	sv.Filename = op.Placeholder(s.SubScope("filename"), tf.String, op.PlaceholderShape(tf.ScalarShape()))
	tensorNames := op.Const(s.SubScope("tensor_names"), names)

	// Saving writes whole tensors: an empty slice spec each.
	reads := make([]tf.Output, len(vars))
	for i, v := range vars {
		reads[i] = op.ReadVariableOp(s.SubScope("read"), v.Handle, tf.Float)
	}
	sv.SaveOp = op.SaveV2(s.SubScope("save"), sv.Filename, tensorNames,
		op.Const(s.SubScope("save_slices"), make([]string, len(vars))), reads)
	sv.SaveTensor = op.Identity(s.SubScope("control_dependency").WithControlDependencies(sv.SaveOp), sv.Filename)

	restored := op.RestoreV2(s.SubScope("restore"), sv.Filename, tensorNames,
		op.Const(s.SubScope("restore_slices"), specs), dtypes)
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("building the saver: %w", err)
	}
	// Scalars have no slice spec to carry their shape ("" means "whatever
	// is stored"), so EnsureShape checks them, in a scope named after the
	// variable so that TensorFlow's error names it. Every assignment waits
	// for every check: a failed restore assigns nothing.
	values := append([]tf.Output(nil), restored...)
	var checks []*tf.Operation
	sv.scalarChecks = map[string]string{}
	for i, v := range vars {
		if len(v.Shape) == 0 {
			values[i] = op.EnsureShape(s.SubScope("check_"+v.Name), values[i], tf.ScalarShape())
			if values[i].Op == nil {
				break // the scope holds the error, reported below
			}
			checks = append(checks, values[i].Op)
			sv.scalarChecks[values[i].Op.Name()] = v.Name
		}
	}
	as := s
	if len(checks) > 0 {
		as = s.WithControlDependencies(op.NoOp(s.SubScope("checked").WithControlDependencies(checks...)))
	}
	assigns := make([]*tf.Operation, len(vars))
	for i, v := range vars {
		assigns[i] = op.AssignVariableOp(as.SubScope("restore_"+v.Name), v.Handle, values[i], op.AssignVariableOpValidateShape(true))
	}
	sv.RestoreOp = op.NoOp(s.SubScope("restore_all").WithControlDependencies(assigns...))
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("building the saver: %w", err)
	}
	return sv, nil
}

// shapeAndSlice is RestoreV2's spec for the whole of a tensor of the given
// shape ("3 3 16 -:-:-:-"): RestoreV2 then fails, naming the tensor, when the
// stored shape differs. Scalars get "" (the spec cannot express rank 0).
func shapeAndSlice(shape []int64) string {
	if len(shape) == 0 {
		return ""
	}
	parts := make([]string, 0, len(shape)+1)
	full := make([]string, len(shape))
	for i, d := range shape {
		parts = append(parts, strconv.FormatInt(d, 10))
		full[i] = "-"
	}
	return strings.Join(append(parts, strings.Join(full, ":")), " ")
}

// Variables returns the variables the saver saves and restores, in order.
func (sv *Saver) Variables() []*tfops.Variable { return append([]*tfops.Variable(nil), sv.vars...) }

// FilenameTensorName is saver_def.filename_tensor_name ("op:0").
func (sv *Saver) FilenameTensorName() string { return tensorName(sv.Filename) }

// SaveTensorName is saver_def.save_tensor_name.
func (sv *Saver) SaveTensorName() string { return tensorName(sv.SaveTensor) }

// RestoreOpName is saver_def.restore_op_name.
func (sv *Saver) RestoreOpName() string { return sv.RestoreOp.Name() }

func tensorName(o tf.Output) string { return fmt.Sprintf("%s:%d", o.Op.Name(), o.Index) }

// Save writes the variables' current values to prefix.index and
// prefix.data-00000-of-00001, creating prefix's folder, and fsyncs both
// files before returning.
func (sv *Saver) Save(sess *tf.Session, prefix string) error {
	if err := os.MkdirAll(filepath.Dir(prefix), 0o755); err != nil {
		return fmt.Errorf("saving checkpoint: %w", err)
	}
	name, err := tf.NewTensor(prefix)
	if err != nil {
		return err
	}
	if _, err := sess.Run(map[tf.Output]*tf.Tensor{sv.Filename: name}, nil, []*tf.Operation{sv.SaveOp}); err != nil {
		return fmt.Errorf("saving checkpoint %s: %w", prefix, StripTFHint(err))
	}
	// TensorFlow closes but does not fsync what it writes.
	files, err := checkpointFiles(prefix)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := atomicfile.Sync(f); err != nil {
			return fmt.Errorf("saving checkpoint %s: %w", prefix, err)
		}
	}
	return nil
}

// checkpointFiles lists the files of the checkpoint at prefix.
func checkpointFiles(prefix string) ([]string, error) {
	data, err := runs.DataFiles(prefix)
	if err != nil {
		return nil, err
	}
	return append(data, prefix+".index"), nil
}

// Restore assigns every variable its value in the checkpoint at prefix. A
// missing checkpoint, a variable absent from it or stored with another shape
// is an error naming it, and then no variable is assigned.
func (sv *Saver) Restore(sess *tf.Session, prefix string) error {
	if _, err := os.Stat(prefix + ".index"); err != nil {
		return fmt.Errorf("no checkpoint at %s: %w", prefix, err)
	}
	name, err := tf.NewTensor(prefix)
	if err != nil {
		return err
	}
	if _, err := sess.Run(map[tf.Output]*tf.Tensor{sv.Filename: name}, nil, []*tf.Operation{sv.RestoreOp}); err != nil {
		// TensorFlow's EnsureShape message names a tensor, not the
		// variable: name it from the failing node.
		for opName, varName := range sv.scalarChecks {
			if strings.Contains(err.Error(), "{{node "+opName+"}}") {
				return fmt.Errorf("restoring checkpoint %s: variable %s is a scalar but is stored with another shape: %w", prefix, varName, err)
			}
		}
		return fmt.Errorf("restoring checkpoint %s: %w", prefix, StripTFHint(err))
	}
	return nil
}

// SaveFunc returns sv.Save bound to sess, for runs.CheckpointDir.WriteWith:
// the run folder's checkpoints are written with the variables of sess.
func (sv *Saver) SaveFunc(sess *tf.Session) runs.SaveFunc {
	return func(prefix string) error { return sv.Save(sess, prefix) }
}
