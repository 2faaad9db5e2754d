package graphs

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	graphpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/graph_go_proto"
	typespb "github.com/galeone/tensorflow/tensorflow/go/core/framework/types_go_proto"
	varpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/variable_go_proto"
	pb "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"
	"github.com/galeone/tensorflow/tensorflow/go/op"
	"google.golang.org/protobuf/proto"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/internal/atomicfile"
	"github.com/kfash-tf/kfash-tf/tfops"
)

// decoderPrefix names the nodes of the export graph's image decoder.
const decoderPrefix = "image_decoder"

// ExportGraph is the graph a SavedModel holds: an InferenceGraph whose
// Images input is a PlaceholderWithDefault defaulting to the decoded
// ImageBytes batch. Feeding Images (serving_default) cuts the decoder off;
// feeding ImageBytes (serving_bytes) runs it. One network, one set of
// variables, no placeholder either signature leaves unfed. The explain
// signature adds Grad-CAM at the network's default layer on Images.
type ExportGraph struct {
	*InferenceGraph
	Config     runs.Config
	ImageBytes tf.Output // input: string [N] of encoded images
	CAM        *GradCAM  // the explain signature's Grad-CAM
	// Network and Layer are string [N]: the names the explain signature
	// reports, one per image.
	Network, Layer tf.Output

	// snapshots reads each variable (VariableDef.snapshot_name, what
	// Python's variable objects read), in Saver order.
	snapshots []tf.Output
	// labels is the asset tensor of labels.txt (asset_file_def).
	labels tf.Output
}

// BuildExportGraph builds the export graph of a run's configuration.
func BuildExportGraph(cfg runs.Config) (*ExportGraph, error) {
	eg := &ExportGraph{Config: cfg}
	images := func(g *tf.Graph, s *op.Scope, size int64) (tf.Output, error) {
		eg.ImageBytes = op.Placeholder(s.SubScope(InputImageBytes), tf.String, op.PlaceholderShape(tf.MakeShape(-1)))
		if err := s.Err(); err != nil {
			return tf.Output{}, err
		}
		decoded, err := DecodeImages(g, decoderPrefix, eg.ImageBytes, int(size))
		if err != nil {
			return tf.Output{}, err
		}
		out := op.PlaceholderWithDefault(s, decoded, tf.MakeShape(-1, size, size, 3))
		return out, s.Err()
	}
	ig, err := buildInferenceGraph(cfg, images)
	if err != nil {
		return nil, err
	}
	eg.InferenceGraph = ig
	// A fresh root scope on the same graph: the names under these two
	// top-level scopes are used nowhere else.
	root := op.NewScopeWithGraph(ig.Graph)
	snap := root.SubScope("variable_snapshots")
	for _, v := range ig.Saver.Variables() {
		eg.snapshots = append(eg.snapshots, op.ReadVariableOp(snap.SubScope(v.Name), v.Handle, tf.Float))
	}
	eg.labels = op.Const(root.SubScope("assets").SubScope("labels"), filepath.Base(LabelsAsset))
	if eg.CAM, err = AddGradCAM(ig, ""); err != nil {
		return nil, fmt.Errorf("building the export graph of %s: %w", cfg.Network, err)
	}
	names := root.SubScope("explain_names")
	batch := op.Slice(names.SubScope("batch"), op.Shape(names, ig.Images, op.ShapeOutType(tf.Int32)),
		op.Const(names.SubScope("begin"), []int32{0}), op.Const(names.SubScope("len"), []int32{1}))
	eg.Network = op.Fill(names.SubScope("network"), batch, op.Const(names.SubScope("network_name"), ig.Spec.Name))
	eg.Layer = op.Fill(names.SubScope("layer"), batch, op.Const(names.SubScope("layer_name"), eg.CAM.Layer))
	if err := root.Err(); err != nil {
		return nil, fmt.Errorf("building the export graph of %s: %w", cfg.Network, err)
	}
	return eg, nil
}

// SavedModel returns the SavedModel proto (saved_model.pb) of the graph:
// one MetaGraphDef tagged "serve" with the graph, the saver, both
// signatures, the labels asset and the variables collections. description
// goes into meta_info_def.meta_graph_version.
func (eg *ExportGraph) SavedModel(description string) (*pb.SavedModel, error) {
	var buf bytes.Buffer
	if _, err := eg.Graph.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("serialising the export graph: %w", err)
	}
	gd := &graphpb.GraphDef{}
	if err := proto.Unmarshal(buf.Bytes(), gd); err != nil {
		return nil, fmt.Errorf("serialising the export graph: %w", err)
	}
	classes := int64(len(eg.Config.Classes))
	outputs := map[string]*pb.TensorInfo{
		OutputProbabilities: tensorInfo(eg.Probs, -1, classes),
		OutputClasses:       tensorInfo(eg.Classes, -1),
		OutputClassNames:    tensorInfo(eg.ClassNames, -1),
	}
	size := int64(eg.Spec.InputSize)
	signatures := map[string]*pb.SignatureDef{
		SignatureImages: {
			Inputs:     map[string]*pb.TensorInfo{InputImages: tensorInfo(eg.Images, -1, size, size, 3)},
			Outputs:    outputs,
			MethodName: PredictMethod,
		},
		SignatureBytes: {
			Inputs:     map[string]*pb.TensorInfo{InputImageBytes: tensorInfo(eg.ImageBytes, -1)},
			Outputs:    outputs,
			MethodName: PredictMethod,
		},
		// Pixels only, like serving_default: the Explainer takes pixels, and
		// an optional target input would trouble TensorFlow Serving, which
		// wants every input fed.
		SignatureExplain: {
			Inputs: map[string]*pb.TensorInfo{InputImages: tensorInfo(eg.Images, -1, size, size, 3)},
			Outputs: map[string]*pb.TensorInfo{
				OutputProbabilities: tensorInfo(eg.Probs, -1, classes),
				OutputClasses:       tensorInfo(eg.Classes, -1),
				OutputTarget:        tensorInfo(eg.CAM.Target, -1),
				OutputMap:           tensorInfo(eg.CAM.Map, -1, size, size),
				OutputMapMin:        tensorInfo(eg.CAM.Min, -1),
				OutputMapMax:        tensorInfo(eg.CAM.Max, -1),
				OutputNetwork:       tensorInfo(eg.Network, -1),
				OutputLayer:         tensorInfo(eg.Layer, -1),
			},
			MethodName: PredictMethod,
		},
	}
	collections, err := eg.variableCollections()
	if err != nil {
		return nil, err
	}
	mg := &pb.MetaGraphDef{
		MetaInfoDef: &pb.MetaGraphDef_MetaInfoDef{
			MetaGraphVersion:  description,
			Tags:              []string{ServeTag},
			TensorflowVersion: tf.Version(),
		},
		GraphDef: gd,
		SaverDef: &pb.SaverDef{
			FilenameTensorName:        eg.Saver.FilenameTensorName(),
			SaveTensorName:            eg.Saver.SaveTensorName(),
			RestoreOpName:             eg.Saver.RestoreOpName(),
			MaxToKeep:                 5,
			KeepCheckpointEveryNHours: 10000,
			Version:                   pb.SaverDef_V2,
		},
		CollectionDef: collections,
		SignatureDef:  signatures,
		AssetFileDef: []*pb.AssetFileDef{{
			TensorInfo: tensorInfo(eg.labels),
			Filename:   filepath.Base(LabelsAsset),
		}},
	}
	return &pb.SavedModel{SavedModelSchemaVersion: 1, MetaGraphs: []*pb.MetaGraphDef{mg}}, nil
}

// variableCollections returns the "variables" and "trainable_variables"
// collections (VariableDef protos of resource variables), which make
// Python's tf.saved_model.load list the model's variables.
func (eg *ExportGraph) variableCollections() (map[string]*pb.CollectionDef, error) {
	var all, trainable [][]byte
	for i, v := range eg.Saver.Variables() {
		def, err := proto.Marshal(variableDef(v, eg.snapshots[i]))
		if err != nil {
			return nil, fmt.Errorf("variable %s: %w", v.Name, err)
		}
		all = append(all, def)
		if v.Trainable {
			// The same bytes: Python keeps one object per distinct proto.
			trainable = append(trainable, def)
		}
	}
	bytesList := func(v [][]byte) *pb.CollectionDef {
		return &pb.CollectionDef{Kind: &pb.CollectionDef_BytesList_{BytesList: &pb.CollectionDef_BytesList{Value: v}}}
	}
	c := map[string]*pb.CollectionDef{"variables": bytesList(all)}
	if len(trainable) > 0 {
		c["trainable_variables"] = bytesList(trainable)
	}
	return c, nil
}

func variableDef(v *tfops.Variable, snapshot tf.Output) *varpb.VariableDef {
	return &varpb.VariableDef{
		VariableName:     tensorName(v.Handle),
		InitialValueName: tensorName(v.Initial),
		InitializerName:  v.Init.Name(),
		SnapshotName:     tensorName(snapshot),
		IsResource:       true,
		Trainable:        v.Trainable,
	}
}

// tensorInfo describes o for a signature; dims are its shape (-1: any),
// none for a scalar.
func tensorInfo(o tf.Output, dims ...int64) *pb.TensorInfo {
	return &pb.TensorInfo{
		Encoding:    &pb.TensorInfo_Name{Name: tensorName(o)},
		Dtype:       typespb.DataType(o.DataType()),
		TensorShape: shapeProto(dims),
	}
}

// ExportOptions configures ExportSavedModel.
type ExportOptions struct {
	// Checkpoint is the run's checkpoint to export, "best" or "last"; ""
	// takes best, or last when the run has no best.
	Checkpoint string
	// Version is the version folder's number (TensorFlow Serving's
	// layout OUT/<version>/); 0 means 1.
	Version int64
	// Session configures the sessions that restore and check the model.
	Session runs.SessionConfig
	// Program is kfash-tf's version, recorded in the MetaGraphDef.
	Program string
}

// ExportResult says what ExportSavedModel wrote.
type ExportResult struct {
	Dir        string               // OUT/<version>
	Network    string               // the run's network
	Classes    []string             // label order
	Checkpoint string               // the checkpoint exported: "best" or "last"
	State      runs.CheckpointState // its epoch, step and metrics
	// Notes are what the caller must show about the checkpoint chosen:
	// last exported because the run has no best, or a checkpoint found
	// without its pointer file after a kill.
	Notes     []string
	Variables int // tensors in variables/
	// CheckDiff is the largest |p − p'| between the probabilities of the
	// restored graph and those of the written SavedModel, loaded back by
	// TensorFlow, over a check batch fed through both signatures.
	CheckDiff float64
}

// checkTolerance bounds CheckDiff: the loaded SavedModel runs the very same
// graph and weights, so only TensorFlow's graph rewrites can differ.
const checkTolerance = 1e-5

// ExportSavedModel writes a run's checkpoint as a SavedModel in
// OUT/<version>/: saved_model.pb, variables/ and assets/labels.txt. It is
// written into a temporary folder beside it, loaded back by TensorFlow and
// checked against the restored graph, then renamed into place: OUT/<version>
// either does not exist or is complete. An existing OUT/<version> is never
// overwritten.
func ExportSavedModel(runDir, outDir string, opt ExportOptions) (ExportResult, error) {
	var res ExportResult
	if opt.Version < 0 {
		return res, fmt.Errorf("version %d is negative: TensorFlow Serving versions are numbers ≥ 0", opt.Version)
	}
	if opt.Version == 0 {
		opt.Version = 1
	}
	run, cfg, err := runs.Open(runDir)
	if err != nil {
		return res, err
	}
	prefix, name, st, notes, err := resolveExportCheckpoint(run, opt.Checkpoint)
	if err != nil {
		return res, err
	}
	res = ExportResult{Network: cfg.Network, Classes: cfg.Classes, Checkpoint: name, State: st, Notes: notes}
	final := filepath.Join(outDir, strconv.FormatInt(opt.Version, 10))
	res.Dir = final
	if err := refuseExisting(final); err != nil {
		return res, err
	}
	for _, c := range cfg.Classes {
		if c == "" || strings.ContainsAny(c, "\r\n") {
			return res, fmt.Errorf("%s: class name %q cannot be written to %s (one class a line)", run.ConfigPath(), c, LabelsAsset)
		}
	}

	eg, err := BuildExportGraph(cfg)
	if err != nil {
		return res, err
	}
	sess, err := NewSession(eg.Graph, opt.Session)
	if err != nil {
		return res, err
	}
	defer sess.Close()
	if err := eg.Saver.Restore(sess, prefix); err != nil {
		return res, err
	}
	res.Variables = len(eg.Saver.Variables())

	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return res, fmt.Errorf("creating the export folder: %w", err)
	}
	tmp, err := os.MkdirTemp(outDir, "."+filepath.Base(final)+".tmp-")
	if err != nil {
		return res, fmt.Errorf("creating a temporary folder in %s: %w", outDir, err)
	}
	committed := false
	defer func() {
		if !committed {
			os.RemoveAll(tmp)
		}
	}()
	// MkdirTemp makes a private folder; a model server running as another
	// user must be able to read the version folder it becomes.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return res, err
	}

	if err := eg.Saver.Save(sess, filepath.Join(tmp, "variables", "variables")); err != nil {
		return res, err
	}
	desc := fmt.Sprintf("kfash-tf %s: %s, %d classes, run %s, checkpoint %s (epoch %d, step %d)",
		opt.Program, cfg.Network, len(cfg.Classes), runDir, name, st.Epoch, st.Step)
	sm, err := eg.SavedModel(desc)
	if err != nil {
		return res, err
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(sm)
	if err != nil {
		return res, fmt.Errorf("serialising %s: %w", SavedModelFile, err)
	}
	if err := atomicfile.Create(filepath.Join(tmp, SavedModelFile), data); err != nil {
		return res, err
	}
	if err := os.MkdirAll(filepath.Join(tmp, filepath.Dir(LabelsAsset)), 0o755); err != nil {
		return res, err
	}
	labels := strings.Join(cfg.Classes, "\n") + "\n"
	if err := atomicfile.Create(filepath.Join(tmp, LabelsAsset), []byte(labels)); err != nil {
		return res, err
	}

	if res.CheckDiff, err = checkExport(eg, sess, tmp, opt.Session); err != nil {
		return res, fmt.Errorf("the SavedModel written for %s fails its check (nothing was exported): %w", runDir, err)
	}

	for _, d := range []string{filepath.Join(tmp, "variables"), filepath.Join(tmp, filepath.Dir(LabelsAsset)), tmp} {
		if err := atomicfile.Sync(d); err != nil {
			return res, err
		}
	}
	// Checked again: a folder created meanwhile must not be replaced (a
	// rename onto an empty folder would succeed).
	if err := refuseExisting(final); err != nil {
		return res, err
	}
	if err := os.Rename(tmp, final); err != nil {
		return res, fmt.Errorf("moving the export into %s: %w", final, err)
	}
	committed = true
	return res, atomicfile.Sync(outDir)
}

// resolveExportCheckpoint finds the checkpoint called name, or best then
// last when name is "", with the notes to show about the choice.
func resolveExportCheckpoint(run runs.Run, name string) (prefix, used string, st runs.CheckpointState, notes []string, err error) {
	names := []string{name}
	if name == "" {
		names = []string{"best", "last"}
	}
	for _, n := range names {
		rc, err := run.ResolveCheckpoint(n)
		if err == nil {
			if rc.Recovered != "" {
				notes = append(notes, rc.Recovered)
			}
			if n != names[0] {
				notes = append(notes, fmt.Sprintf("run %s has no best checkpoint: exporting last (epoch %d) instead", run.Dir, rc.State.Epoch))
			}
			return rc.Prefix, n, rc.State, notes, nil
		}
		if !errors.Is(err, runs.ErrNoCheckpoint) {
			return "", "", st, nil, err
		}
	}
	if _, lerr := run.ResolveCheckpoint("last"); errors.Is(lerr, runs.ErrNoCheckpoint) {
		return "", "", st, nil, fmt.Errorf("run %s has no checkpoint yet: train it first", run.Dir)
	}
	return "", "", st, nil, &MissingCheckpointError{Dir: run.Dir, Checkpoint: name}
}

// MissingCheckpointError is ExportSavedModel's error for a checkpoint asked
// for by name that the run lacks, although it has another one to export.
type MissingCheckpointError struct {
	Dir        string // the run folder
	Checkpoint string // the checkpoint asked for: "best" or "last"
}

// Error names the run and the missing checkpoint.
func (e *MissingCheckpointError) Error() string {
	return fmt.Sprintf("run %s has no '%s' checkpoint", e.Dir, e.Checkpoint)
}

// Unwrap returns runs.ErrNoCheckpoint.
func (e *MissingCheckpointError) Unwrap() error { return runs.ErrNoCheckpoint }

// ExportExistsError is ExportSavedModel's error for a version folder that
// already exists: an export never overwrites one.
type ExportExistsError struct {
	Path string // OUT/<version>
}

// Error names the folder.
func (e *ExportExistsError) Error() string { return e.Path + " already exists" }

// Unwrap returns fs.ErrExist.
func (e *ExportExistsError) Unwrap() error { return fs.ErrExist }

// refuseExisting fails with an *ExportExistsError when path exists.
func refuseExisting(path string) error {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return &ExportExistsError{Path: path}
	case errors.Is(err, fs.ErrNotExist):
		return nil
	default:
		return err
	}
}

// checkExport loads the SavedModel in dir with TensorFlow's loader and
// compares its signatures' probabilities with the restored export graph on a
// synthetic batch: whole-valued pixels at the input size, so that the PNG
// files fed to serving_bytes decode and "resize" (at scale 1) to exactly the
// same input. It returns the largest probability difference.
func checkExport(eg *ExportGraph, sess *tf.Session, dir string, sc runs.SessionConfig) (float64, error) {
	const n = 2
	size := eg.Spec.InputSize
	rng := rand.New(rand.NewSource(1))
	pixels := make([]float32, n*size*size*3)
	for i := range pixels {
		pixels[i] = float32(rng.Intn(256))
	}
	images, err := tfops.Float32Tensor(pixels, []int64{n, int64(size), int64(size), 3})
	if err != nil {
		return 0, err
	}
	files := make([]string, n)
	for k := range files {
		if files[k], err = encodePNG(pixels[k*size*size*3:(k+1)*size*size*3], size); err != nil {
			return 0, err
		}
	}
	encoded, err := tf.NewTensor(files)
	if err != nil {
		return 0, err
	}

	out, err := sess.Run(map[tf.Output]*tf.Tensor{eg.Images: images}, []tf.Output{eg.Probs}, nil)
	if err != nil {
		return 0, fmt.Errorf("running the restored graph: %w", err)
	}
	want, err := tfops.Float32s(out[0])
	if err != nil {
		return 0, err
	}

	opts, err := SessionOptions(sc)
	if err != nil {
		return 0, err
	}
	sm, err := tf.LoadSavedModel(dir, []string{ServeTag}, opts)
	if err != nil {
		return 0, fmt.Errorf("TensorFlow cannot load it: %w", err)
	}
	defer sm.Session.Close()
	worst := 0.0
	for _, c := range []struct {
		sig, input string
		value      *tf.Tensor
	}{{SignatureImages, InputImages, images}, {SignatureBytes, InputImageBytes, encoded}, {SignatureExplain, InputImages, images}} {
		got, err := runSignature(sm, c.sig, c.input, c.value)
		if err != nil {
			return 0, err
		}
		if len(got) != len(want) {
			return 0, fmt.Errorf("signature %s gives %d probabilities, want %d", c.sig, len(got), len(want))
		}
		for i := range got {
			d := math.Abs(float64(got[i] - want[i]))
			if !(d <= checkTolerance) { // NaN fails too
				return 0, fmt.Errorf("signature %s: probability %d is %g, the restored graph says %g", c.sig, i, got[i], want[i])
			}
			worst = math.Max(worst, d)
		}
	}
	return worst, nil
}

// runSignature feeds value to a loaded SavedModel's signature input and
// returns its probabilities.
func runSignature(sm *tf.SavedModel, sig, input string, value *tf.Tensor) ([]float32, error) {
	s, ok := sm.Signatures[sig]
	if !ok {
		return nil, fmt.Errorf("no signature %s", sig)
	}
	in, err := signatureOutput(sm.Graph, s.Inputs, input)
	if err != nil {
		return nil, fmt.Errorf("signature %s: %w", sig, err)
	}
	probs, err := signatureOutput(sm.Graph, s.Outputs, OutputProbabilities)
	if err != nil {
		return nil, fmt.Errorf("signature %s: %w", sig, err)
	}
	out, err := sm.Session.Run(map[tf.Output]*tf.Tensor{in: value}, []tf.Output{probs}, nil)
	if err != nil {
		return nil, fmt.Errorf("signature %s: %w", sig, err)
	}
	return tfops.Float32s(out[0])
}

// signatureOutput finds the graph tensor of a signature's input or output.
func signatureOutput(g *tf.Graph, infos map[string]tf.TensorInfo, key string) (tf.Output, error) {
	info, ok := infos[key]
	if !ok {
		return tf.Output{}, fmt.Errorf("no tensor %q", key)
	}
	o, err := graphOutput(g, info.Name)
	if err != nil {
		return tf.Output{}, fmt.Errorf("tensor %q: %w", key, err)
	}
	return o, nil
}

// encodePNG encodes size×size HWC whole-valued 0–255 pixels as a PNG.
func encodePNG(px []float32, size int) (string, error) {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	for i := 0; i < size*size; i++ {
		img.SetRGBA(i%size, i/size, color.RGBA{uint8(px[3*i]), uint8(px[3*i+1]), uint8(px[3*i+2]), 255})
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return "", err
	}
	return buf.String(), nil
}
