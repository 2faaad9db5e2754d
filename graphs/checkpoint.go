package graphs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"

	"github.com/kfash-tf/kfash-tf/augment"
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
		return fmt.Errorf("saving checkpoint %s: %w", prefix, err)
	}
	// TensorFlow closes but does not fsync what it writes.
	files, err := checkpointFiles(prefix)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := augment.SyncPath(f); err != nil {
			return fmt.Errorf("saving checkpoint %s: %w", prefix, err)
		}
	}
	return nil
}

// checkpointFiles lists the files of the checkpoint at prefix.
func checkpointFiles(prefix string) ([]string, error) {
	data, err := filepath.Glob(globQuote(prefix) + ".data-*-of-*")
	if err != nil {
		return nil, err
	}
	return append(data, prefix+".index"), nil
}

// globQuote escapes the glob metacharacters of a literal path.
func globQuote(p string) string {
	var b strings.Builder
	for _, r := range p {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteRune('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
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
		return fmt.Errorf("restoring checkpoint %s: %w", prefix, err)
	}
	return nil
}

// CheckpointState is what a checkpoint records besides the variables.
type CheckpointState struct {
	Epoch   int                `json:"epoch"`   // epochs completed
	Step    int64              `json:"step"`    // optimizer steps completed
	Metrics map[string]float64 `json:"metrics"` // e.g. val_acc; NaN and ±Inf survive the round trip
	Time    time.Time          `json:"time"`
	Seed    int64              `json:"seed"`
	// Loop is the training loop's full position (best epoch, early-stopping
	// counter, a partial epoch's sums), when the writer records it.
	Loop *LoopState `json:"loop,omitempty"`
}

// MarshalJSON writes non-finite metrics and Loop figures as the strings
// "NaN", "+Inf" and "-Inf": a diverged run must still be able to write its
// checkpoint, and JSON has no such numbers.
func (st CheckpointState) MarshalJSON() ([]byte, error) {
	type plain CheckpointState
	aux := struct {
		plain
		Metrics map[string]checkpointMetric `json:"metrics"`
		Loop    json.RawMessage             `json:"loop,omitempty"`
	}{plain: plain(st)}
	if st.Metrics != nil {
		aux.Metrics = make(map[string]checkpointMetric, len(st.Metrics))
		for k, v := range st.Metrics {
			aux.Metrics[k] = checkpointMetric(v)
		}
	}
	if st.Loop != nil {
		var err error
		if aux.Loop, err = marshalFloatSafe(st.Loop); err != nil {
			return nil, fmt.Errorf("checkpoint loop state: %w", err)
		}
	}
	return json.Marshal(aux)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (st *CheckpointState) UnmarshalJSON(data []byte) error {
	type plain CheckpointState
	aux := struct {
		*plain
		Metrics map[string]checkpointMetric `json:"metrics"`
		Loop    json.RawMessage             `json:"loop"`
	}{plain: (*plain)(st)}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	st.Metrics = nil
	if aux.Metrics != nil {
		st.Metrics = make(map[string]float64, len(aux.Metrics))
		for k, v := range aux.Metrics {
			st.Metrics[k] = float64(v)
		}
	}
	st.Loop = nil
	if len(aux.Loop) > 0 && string(aux.Loop) != "null" {
		st.Loop = new(LoopState)
		if err := unmarshalFloatSafe(aux.Loop, st.Loop); err != nil {
			return fmt.Errorf("checkpoint loop state: %w", err)
		}
	}
	return nil
}

// marshalFloatSafe encodes the struct *ptr as a JSON object like
// encoding/json (json tag names honoured, "-" skipped), except that its
// float64 fields may be NaN or infinite. It is generic so that fields added
// to LoopState need no change here.
func marshalFloatSafe(ptr any) (json.RawMessage, error) {
	v := reflect.ValueOf(ptr).Elem()
	obj := map[string]any{}
	for i := 0; i < v.NumField(); i++ {
		name, ok := jsonFieldName(v.Type().Field(i))
		if !ok {
			continue
		}
		if f := v.Field(i); f.Kind() == reflect.Float64 {
			obj[name] = checkpointMetric(f.Float())
		} else {
			obj[name] = f.Interface()
		}
	}
	return json.Marshal(obj)
}

// unmarshalFloatSafe decodes what marshalFloatSafe encodes into *ptr;
// fields absent from data keep their value.
func unmarshalFloatSafe(data []byte, ptr any) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return err
	}
	v := reflect.ValueOf(ptr).Elem()
	for i := 0; i < v.NumField(); i++ {
		name, ok := jsonFieldName(v.Type().Field(i))
		raw, present := obj[name]
		if !ok || !present {
			continue
		}
		f := v.Field(i)
		if f.Kind() == reflect.Float64 {
			var m checkpointMetric
			if err := json.Unmarshal(raw, &m); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			f.SetFloat(float64(m))
			continue
		}
		if err := json.Unmarshal(raw, f.Addr().Interface()); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// jsonFieldName is the key encoding/json gives a struct field, and whether
// it encodes the field at all.
func jsonFieldName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	switch name {
	case "-":
		return "", false
	case "":
		return f.Name, true
	}
	return name, true
}

// checkpointMetric is a float64 that JSON-encodes NaN and ±Inf as strings.
type checkpointMetric float64

func (m checkpointMetric) MarshalJSON() ([]byte, error) {
	f := float64(m)
	switch {
	case math.IsNaN(f):
		return []byte(`"NaN"`), nil
	case math.IsInf(f, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(f, -1):
		return []byte(`"-Inf"`), nil
	}
	return json.Marshal(f)
}

func (m *checkpointMetric) UnmarshalJSON(data []byte) error {
	var s string
	if json.Unmarshal(data, &s) == nil {
		f, err := strconv.ParseFloat(s, 64) // accepts NaN, +Inf, -Inf
		if err != nil {
			return fmt.Errorf("metric %q is not a number", s)
		}
		*m = checkpointMetric(f)
		return nil
	}
	var f float64
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	*m = checkpointMetric(f)
	return nil
}

// ErrNoCheckpoint is wrapped by the error Resolve returns when the named
// checkpoint does not exist (a fresh run, or no best yet).
var ErrNoCheckpoint = errors.New("no checkpoint")

// CheckpointDir manages a run's checkpoint folder (runs/NAME/checkpoints).
//
// Each checkpoint is a folder epoch-NNNN/ holding variables.index,
// variables.data-00000-of-00001 (a Saver checkpoint; the same layout as a
// SavedModel's variables/) and state.json. Names such as "last" and "best"
// are pointer files NAME.json, replaced atomically once the folder they
// point at is complete on disk; folders no pointer references are removed.
// So a crash at any moment leaves every name pointing at a complete
// checkpoint. One process writes a folder at a time.
type CheckpointDir struct {
	Dir string
}

// checkpointPointer is the content of NAME.json.
type checkpointPointer struct {
	Folder string    `json:"folder"`
	Epoch  int       `json:"epoch"` // informative: state.json is authoritative
	Step   int64     `json:"step"`
	Time   time.Time `json:"time"`
}

const (
	checkpointFolderPrefix = "epoch-"
	checkpointVariables    = "variables"  // the Saver prefix inside a folder
	checkpointStateFile    = "state.json" // CheckpointState inside a folder
	checkpointTempMarker   = ".json.tmp-" // in the names of pointer files being written
)

// checkpointNameRE is what a checkpoint name may look like: it becomes a
// file name, so no separators and no leading dot.
var checkpointNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

func checkCheckpointName(name string) error {
	if !checkpointNameRE.MatchString(name) {
		return fmt.Errorf("invalid checkpoint name %q: use letters, digits, '_' and '-'", name)
	}
	return nil
}

// Write saves the variables of sv and st into a fresh folder
// epoch-NNNN/, fsyncs it, then points each of names ("last", "best") at it
// by atomically replacing NAME.json, and finally removes every folder no
// name points at any more (including half-written ones left by a crash).
func (d CheckpointDir) Write(sess *tf.Session, sv *Saver, names []string, st CheckpointState) error {
	if d.Dir == "" {
		return errors.New("checkpoint folder not set")
	}
	if len(names) == 0 {
		return errors.New("writing a checkpoint needs at least one name (last, best)")
	}
	for i, n := range names {
		if err := checkCheckpointName(n); err != nil {
			return err
		}
		for _, m := range names[:i] {
			if m == n {
				return fmt.Errorf("checkpoint name %q given twice", n)
			}
		}
	}
	if st.Epoch < 0 {
		return fmt.Errorf("checkpoint epoch %d is negative", st.Epoch)
	}
	if err := os.MkdirAll(d.Dir, 0o755); err != nil {
		return err
	}

	// A folder still referenced (e.g. "best" at this very epoch, written
	// before a resume) is never written into: take the next free name.
	referenced := d.referenced()
	folder := fmt.Sprintf("%s%04d", checkpointFolderPrefix, st.Epoch)
	for k := 1; referenced[folder]; k++ {
		folder = fmt.Sprintf("%s%04d.%d", checkpointFolderPrefix, st.Epoch, k)
	}
	path := filepath.Join(d.Dir, folder)
	// Whatever is there is unreferenced: a half-written folder from a crash.
	if err := os.RemoveAll(path); err != nil {
		return err
	}
	if err := os.Mkdir(path, 0o755); err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			os.RemoveAll(path)
		}
	}()
	if err := sv.Save(sess, filepath.Join(path, checkpointVariables)); err != nil {
		return err
	}
	state, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("checkpoint state: %w", err)
	}
	if err := writeSynced(filepath.Join(path, checkpointStateFile), append(state, '\n')); err != nil {
		return err
	}
	// The folder's entries, then the folder's own entry in Dir.
	if err := augment.SyncPath(path); err != nil {
		return err
	}
	if err := augment.SyncPath(d.Dir); err != nil {
		return err
	}

	ptr, err := json.MarshalIndent(checkpointPointer{Folder: folder, Epoch: st.Epoch, Step: st.Step, Time: st.Time}, "", "  ")
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := d.writePointer(n, append(ptr, '\n')); err != nil {
			return fmt.Errorf("pointing checkpoint %q at %s: %w", n, folder, err)
		}
		committed = true
	}
	if err := d.prune(); err != nil {
		return fmt.Errorf("checkpoint %s written, but removing old ones failed: %w", folder, err)
	}
	return nil
}

// writePointer replaces NAME.json atomically: temp file, fsync, rename,
// fsync of the folder.
func (d CheckpointDir) writePointer(name string, data []byte) error {
	return augment.WriteFileAtomicTemp(filepath.Join(d.Dir, name+".json"), "."+name+checkpointTempMarker+"*", data)
}

// readPointer reads NAME.json.
func (d CheckpointDir) readPointer(name string) (checkpointPointer, error) {
	var p checkpointPointer
	data, err := os.ReadFile(filepath.Join(d.Dir, name+".json"))
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return p, fmt.Errorf("checkpoint pointer %s.json: %w", name, err)
	}
	// The folder must be a plain entry of Dir: a pointer never leads out.
	if !strings.HasPrefix(p.Folder, checkpointFolderPrefix) || filepath.Base(p.Folder) != p.Folder {
		return p, fmt.Errorf("checkpoint pointer %s.json: invalid folder %q", name, p.Folder)
	}
	return p, nil
}

// referenced returns the folders the valid pointers of Dir point at. An
// unreadable pointer references nothing: Resolve could not use it either.
func (d CheckpointDir) referenced() map[string]bool {
	refs := map[string]bool{}
	entries, err := os.ReadDir(d.Dir)
	if err != nil {
		return refs
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || e.IsDir() || checkCheckpointName(name) != nil {
			continue
		}
		if p, err := d.readPointer(name); err == nil {
			refs[p.Folder] = true
		}
	}
	return refs
}

// prune removes the checkpoint folders no pointer references and pointer
// temp files left by a crash. Nothing else in Dir is touched.
func (d CheckpointDir) prune() error {
	refs := d.referenced()
	entries, err := os.ReadDir(d.Dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		n := e.Name()
		stale := (e.IsDir() && strings.HasPrefix(n, checkpointFolderPrefix) && !refs[n]) ||
			(!e.IsDir() && strings.HasPrefix(n, ".") && strings.Contains(n, checkpointTempMarker))
		if stale {
			if err := os.RemoveAll(filepath.Join(d.Dir, n)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Resolve returns the Saver prefix and the state of the checkpoint called
// name ("last", "best"). An absent one is an error wrapping ErrNoCheckpoint:
// "no checkpoint 'best' in DIR".
func (d CheckpointDir) Resolve(name string) (prefix string, st CheckpointState, err error) {
	if err := checkCheckpointName(name); err != nil {
		return "", st, err
	}
	p, err := d.readPointer(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", st, fmt.Errorf("%w '%s' in %s", ErrNoCheckpoint, name, d.Dir)
	}
	if err != nil {
		return "", st, err
	}
	folder := filepath.Join(d.Dir, p.Folder)
	data, err := os.ReadFile(filepath.Join(folder, checkpointStateFile))
	if err != nil {
		return "", st, fmt.Errorf("checkpoint '%s' in %s: %w", name, d.Dir, err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return "", st, fmt.Errorf("checkpoint '%s' in %s: %s: %w", name, d.Dir, checkpointStateFile, err)
	}
	prefix = filepath.Join(folder, checkpointVariables)
	if _, err := os.Stat(prefix + ".index"); err != nil {
		return "", st, fmt.Errorf("checkpoint '%s' in %s: %w", name, d.Dir, err)
	}
	return prefix, st, nil
}

// writeSynced writes a new file and fsyncs it.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
