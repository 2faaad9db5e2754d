package graphs

import (
	"bytes"
	"fmt"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	attrpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/attr_value_go_proto"
	funcpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/function_go_proto"
	graphpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/graph_go_proto"
	nodepb "github.com/galeone/tensorflow/tensorflow/go/core/framework/node_def_go_proto"
	opdefpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/op_def_go_proto"
	tensorpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_go_proto"
	shapepb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_shape_go_proto"
	typespb "github.com/galeone/tensorflow/tensorflow/go/core/framework/types_go_proto"
	versionspb "github.com/galeone/tensorflow/tensorflow/go/core/framework/versions_go_proto"
	"google.golang.org/protobuf/proto"
)

// The in-graph image decoder: a batch of encoded images (JPEG, PNG, GIF —
// the first frame of an animation — or BMP) becomes a float32 [N,S,S,3]
// batch of RGB 0–255 pixels, the input the networks take, made as the Go
// pipeline makes it (augment.DecodeBytes, augment.Resize):
//   - JPEG is decoded like image/jpeg (accurate IDCT, chroma by
//     replication), other formats by DecodeImage; gray becomes RGB. Unlike
//     augment, alpha is dropped rather than composited over black, so only
//     translucent PNG/GIF pixels differ.
//   - the resize is an antialiased triangle filter with pixel centres at
//     +0.5 and weights renormalised at the borders (gift's
//     LinearResampling; TensorFlow's ScaleAndTranslate with kernel
//     "triangle" and antialias), rounded half up to whole values as Go's
//     8-bit images are.
//
// TensorFlow has no batched decoder (images differ in size), so the batch
// is a functional While loop: element i is decoded, resized and written into
// a TensorList that is stacked at the end. The Go bindings cannot build
// functions, so the loop's cond and body (and the JPEG/other dispatch, a
// StatelessIf) are written here as FunctionDef protos in a GraphDef
// fragment, imported with Graph.ImportWithOptions.

// DecoderOutput is the node of the decoder fragment whose output 0 is the
// decoded batch (before the import prefix).
const DecoderOutput = "stack"

// decoderInput is the name the fragment uses for the encoded batch; the
// import maps it onto the caller's tensor, so no node carries it.
const decoderInput = "encoded"

// decoder function names: the body depends on the size, and importing the
// same definitions twice into one graph is allowed.
const (
	decoderCond  = "kfash_tf_decode_cond"
	decoderJPEG  = "kfash_tf_decode_jpeg"
	decoderOther = "kfash_tf_decode_other"
)

func decoderBody(size int) string { return fmt.Sprintf("kfash_tf_decode_resize_%d_body", size) }

// DecodeImages adds to g the decoder of encoded (string [N]) into a float32
// [N,size,size,3] batch, its nodes named prefix/..., and returns the batch.
// A bad image fails the Run that fetches the batch, with TensorFlow's
// message (e.g. "Unknown image file format").
func DecodeImages(g *tf.Graph, prefix string, encoded tf.Output, size int) (tf.Output, error) {
	if encoded.Op == nil {
		return tf.Output{}, fmt.Errorf("decoding images: the encoded-images tensor is missing")
	}
	if dt := encoded.DataType(); dt != tf.String {
		return tf.Output{}, fmt.Errorf("decoding images: encoded images must be a string tensor, got %v", dt)
	}
	if n := encoded.Shape().NumDimensions(); n != 1 && n != -1 {
		return tf.Output{}, fmt.Errorf("decoding images: encoded images must be a vector [N], got rank %d", n)
	}
	if prefix == "" {
		return tf.Output{}, fmt.Errorf("decoding images: empty name prefix")
	}
	gd, err := DecoderGraphDef(size)
	if err != nil {
		return tf.Output{}, err
	}
	def, err := proto.Marshal(gd)
	if err != nil {
		return tf.Output{}, fmt.Errorf("decoding images: %w", err)
	}
	opts := tf.GraphImportOptions{Prefix: prefix}
	opts.AddInputMapping(decoderInput, 0, encoded)
	if err := g.ImportWithOptions(def, opts); err != nil {
		return tf.Output{}, fmt.Errorf("adding the image decoder %s: %w", prefix, err)
	}
	out := g.Operation(prefix + "/" + DecoderOutput)
	if out == nil {
		return tf.Output{}, fmt.Errorf("adding the image decoder %s: no %s node after the import", prefix, DecoderOutput)
	}
	return out.Output(0), nil
}

// DecoderGraphDef returns the decoder as a GraphDef fragment: its input is
// the tensor "encoded:0", which no node of the fragment defines (the import
// must map it), and its output is DecoderOutput:0.
func DecoderGraphDef(size int) (*graphpb.GraphDef, error) {
	if size <= 0 {
		return nil, fmt.Errorf("decoding images: size must be positive, got %d", size)
	}
	versions, err := currentGraphVersions()
	if err != nil {
		return nil, err
	}
	s := int32(size)
	in := decoderInput + ":0"
	nodes := []*nodepb.NodeDef{
		node("n", "Size", []string{in}, attrs{"T": typeAttr(typespb.DataType_DT_STRING), "out_type": typeAttr(typespb.DataType_DT_INT32)}),
		constNode("element_shape", int32Tensor([]int32{s, s, 3}, 3)),
		node("reserve", "TensorListReserve", []string{"element_shape", "n"}, attrs{
			"element_dtype": typeAttr(typespb.DataType_DT_FLOAT), "shape_type": typeAttr(typespb.DataType_DT_INT32)}),
		constNode("start", int32Tensor([]int32{0})),
		node("while", "While", []string{"start", "n", "reserve", in}, attrs{
			"T":    typeListAttr(loopTypes...),
			"cond": funcAttr(decoderCond),
			"body": funcAttr(decoderBody(size)),
			// Without output_shapes, shape inference would give the
			// outputs the inputs' shapes; these are the same anyway, but
			// the encoded vector's length is only known at run time.
			"output_shapes":       shapeListAttr([]int64{}, []int64{}, []int64{}, []int64{-1}),
			"parallel_iterations": intAttr(10),
		}),
		node(DecoderOutput, "TensorListStack", []string{"while:2", "element_shape"}, attrs{
			"element_dtype": typeAttr(typespb.DataType_DT_FLOAT), "num_elements": intAttr(-1)}),
	}
	return &graphpb.GraphDef{
		Node:     nodes,
		Versions: versions,
		Library: &funcpb.FunctionDefLibrary{Function: []*funcpb.FunctionDef{
			decoderCondDef(), decoderBodyDef(size), decoderBranchDef(decoderJPEG), decoderBranchDef(decoderOther)}},
	}, nil
}

// loopTypes are the While loop's variables: the index i, the count n, the
// TensorList of resized images and the encoded batch.
var loopTypes = []typespb.DataType{typespb.DataType_DT_INT32, typespb.DataType_DT_INT32, typespb.DataType_DT_VARIANT, typespb.DataType_DT_STRING}

func loopArgs(suffix string) []*opdefpb.OpDef_ArgDef {
	names := []string{"i", "n", "images", "encoded"}
	args := make([]*opdefpb.OpDef_ArgDef, len(names))
	for k, name := range names {
		args[k] = &opdefpb.OpDef_ArgDef{Name: name + suffix, Type: loopTypes[k]}
	}
	return args
}

// decoderCondDef is cond(i, n, images, encoded) = i < n.
func decoderCondDef() *funcpb.FunctionDef {
	return &funcpb.FunctionDef{
		Signature: &opdefpb.OpDef{
			Name:      decoderCond,
			InputArg:  loopArgs(""),
			OutputArg: []*opdefpb.OpDef_ArgDef{{Name: "more", Type: typespb.DataType_DT_BOOL}},
		},
		NodeDef: []*nodepb.NodeDef{
			node("less", "Less", []string{"i", "n"}, attrs{"T": typeAttr(typespb.DataType_DT_INT32)}),
		},
		Ret: map[string]string{"more": "less:z:0"},
	}
}

// decoderBodyDef decodes encoded[i], resizes it to size×size and stores it
// at images[i]. Inside a FunctionDef a node's output is "node:arg:index".
func decoderBodyDef(size int) *funcpb.FunctionDef {
	s := int32(size)
	f32 := typeAttr(typespb.DataType_DT_FLOAT)
	i32 := typeAttr(typespb.DataType_DT_INT32)
	return &funcpb.FunctionDef{
		Signature: &opdefpb.OpDef{
			Name:      decoderBody(size),
			InputArg:  loopArgs(""),
			OutputArg: loopArgs("_next"),
		},
		NodeDef: []*nodepb.NodeDef{
			constNode("axis", int32Tensor([]int32{0})),
			node("element", "GatherV2", []string{"encoded", "i", "axis:output:0"}, attrs{
				"Tparams": typeAttr(typespb.DataType_DT_STRING), "Tindices": i32, "Taxis": i32, "batch_dims": intAttr(0)}),
			// JPEGs go to DecodeJpeg set up to decode like Go's image/jpeg,
			// everything else to DecodeImage (see decoderBranchDef).
			constNode("jpeg_magic", stringTensor("\xff\xd8\xff")),
			constNode("magic_pos", int32Tensor([]int32{0})),
			constNode("magic_len", int32Tensor([]int32{3})),
			node("magic", "Substr", []string{"element:output:0", "magic_pos:output:0", "magic_len:output:0"}, attrs{
				"T": i32, "unit": stringAttr("BYTE")}),
			node("is_jpeg", "Equal", []string{"magic:output:0", "jpeg_magic:output:0"}, attrs{
				"T": typeAttr(typespb.DataType_DT_STRING), "incompatible_shape_error": boolAttr(true)}),
			node("decode", "StatelessIf", []string{"is_jpeg:z:0", "element:output:0"}, attrs{
				"Tcond":         typeAttr(typespb.DataType_DT_BOOL),
				"Tin":           typeListAttr(typespb.DataType_DT_STRING),
				"Tout":          typeListAttr(typespb.DataType_DT_UINT8),
				"then_branch":   funcAttr(decoderJPEG),
				"else_branch":   funcAttr(decoderOther),
				"output_shapes": shapeListAttr([]int64{-1, -1, 3}),
			}),
			node("shape", "Shape", []string{"decode:output:0"}, attrs{"T": typeAttr(typespb.DataType_DT_UINT8), "out_type": i32}),
			constNode("hw_begin", int32Tensor([]int32{0}, 1)),
			constNode("hw_size", int32Tensor([]int32{2}, 1)),
			node("hw", "Slice", []string{"shape:output:0", "hw_begin:output:0", "hw_size:output:0"}, attrs{"T": i32, "Index": i32}),
			node("hw_float", "Cast", []string{"hw:output:0"}, attrs{"SrcT": i32, "DstT": f32, "Truncate": boolAttr(false)}),
			constNode("size_float", float32Tensor([]float32{float32(size), float32(size)}, 2)),
			// ScaleAndTranslate's scale is output/input per axis (height, width).
			node("scale", "RealDiv", []string{"size_float:output:0", "hw_float:y:0"}, attrs{"T": f32}),
			constNode("batch_axis", int32Tensor([]int32{0})),
			node("batch", "ExpandDims", []string{"decode:output:0", "batch_axis:output:0"}, attrs{
				"T": typeAttr(typespb.DataType_DT_UINT8), "Tdim": i32}),
			constNode("size", int32Tensor([]int32{s, s}, 2)),
			constNode("translation", float32Tensor([]float32{0, 0}, 2)),
			node("resize", "ScaleAndTranslate", []string{"batch:output:0", "size:output:0", "scale:z:0", "translation:output:0"}, attrs{
				"T": typeAttr(typespb.DataType_DT_UINT8), "kernel_type": stringAttr("triangle"), "antialias": boolAttr(true)}),
			// The Go pipeline resizes 8-bit images into 8-bit images,
			// rounding half up (gift's f32u8): floor(x + 0.5), clamped.
			constNode("half", float32Tensor([]float32{0.5})),
			node("shifted", "AddV2", []string{"resize:resized_images:0", "half:output:0"}, attrs{"T": f32}),
			node("rounded", "Floor", []string{"shifted:z:0"}, attrs{"T": f32}),
			constNode("lo", float32Tensor([]float32{0})),
			constNode("hi", float32Tensor([]float32{255})),
			node("clipped", "ClipByValue", []string{"rounded:y:0", "lo:output:0", "hi:output:0"}, attrs{"T": f32}),
			constNode("image_shape", int32Tensor([]int32{s, s, 3}, 3)),
			node("image", "Reshape", []string{"clipped:output:0", "image_shape:output:0"}, attrs{"T": f32, "Tshape": i32}),
			node("store", "TensorListSetItem", []string{"images", "i", "image:output:0"}, attrs{"element_dtype": f32}),
			constNode("one", int32Tensor([]int32{1})),
			node("next", "AddV2", []string{"i", "one:output:0"}, attrs{"T": i32}),
			node("n_same", "Identity", []string{"n"}, attrs{"T": i32}),
			node("encoded_same", "Identity", []string{"encoded"}, attrs{"T": typeAttr(typespb.DataType_DT_STRING)}),
		},
		Ret: map[string]string{
			"i_next":       "next:z:0",
			"n_next":       "n_same:output:0",
			"images_next":  "store:output_handle:0",
			"encoded_next": "encoded_same:output:0",
		},
	}
}

// decoderBranchDef is one branch of the decode dispatch: contents (a
// string scalar) → image (uint8 [H,W,3]; gray is repeated, alpha dropped).
//
// decoderJPEG uses DecodeJpeg with an accurate integer IDCT and chroma
// upsampled by replication, as Go's image/jpeg does: TF's pixels then come
// within ±3 of Go's on real photos, where DecodeImage's defaults (fast IDCT,
// "fancy" upsampling) differ by up to ±40. decoderOther uses DecodeImage
// for PNG, GIF (first frame of an animation) and BMP, which DecodeJpeg
// refuses.
//
// For GIF, expand_animations=false makes DecodeImage return the first
// frame only (a 3-D tensor), which is all the pipeline uses; but it only
// truncates the output: TensorFlow's gif::Decode reads the file with
// giflib's DGifSlurp, which decompresses every frame into memory first, and
// slicing a DecodeGif output would cost the same. No attribute limits that,
// so callers feeding untrusted bytes check the frames' headers first
// (augment.ImageLimits, through Servable.CheckImage).
func decoderBranchDef(name string) *funcpb.FunctionDef {
	var decode *nodepb.NodeDef
	if name == decoderJPEG {
		decode = node("decode", "DecodeJpeg", []string{"contents"}, attrs{
			"channels": intAttr(3), "ratio": intAttr(1), "fancy_upscaling": boolAttr(false),
			"try_recover_truncated": boolAttr(false), "acceptable_fraction": floatAttr(1),
			"dct_method": stringAttr("INTEGER_ACCURATE")})
	} else {
		decode = node("decode", "DecodeImage", []string{"contents"}, attrs{
			"channels": intAttr(3), "dtype": typeAttr(typespb.DataType_DT_UINT8), "expand_animations": boolAttr(false)})
	}
	return &funcpb.FunctionDef{
		Signature: &opdefpb.OpDef{
			Name:      name,
			InputArg:  []*opdefpb.OpDef_ArgDef{{Name: "contents", Type: typespb.DataType_DT_STRING}},
			OutputArg: []*opdefpb.OpDef_ArgDef{{Name: "image", Type: typespb.DataType_DT_UINT8}},
		},
		NodeDef: []*nodepb.NodeDef{decode},
		Ret:     map[string]string{"image": "decode:image:0"},
	}
}

// currentGraphVersions returns the GraphDef versions of the linked
// TensorFlow, so that the fragment is read with today's semantics.
func currentGraphVersions() (*versionspb.VersionDef, error) {
	var buf bytes.Buffer
	if _, err := tf.NewGraph().WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("reading TensorFlow's graph version: %w", err)
	}
	var gd graphpb.GraphDef
	if err := proto.Unmarshal(buf.Bytes(), &gd); err != nil {
		return nil, fmt.Errorf("reading TensorFlow's graph version: %w", err)
	}
	return gd.Versions, nil
}

// Proto helpers: NodeDef and AttrValue literals are verbose.

type attrs = map[string]*attrpb.AttrValue

func node(name, op string, inputs []string, a attrs) *nodepb.NodeDef {
	return &nodepb.NodeDef{Name: name, Op: op, Input: inputs, Attr: a}
}

func constNode(name string, t *tensorpb.TensorProto) *nodepb.NodeDef {
	return node(name, "Const", nil, attrs{
		"dtype": typeAttr(t.Dtype),
		"value": {Value: &attrpb.AttrValue_Tensor{Tensor: t}},
	})
}

func typeAttr(t typespb.DataType) *attrpb.AttrValue {
	return &attrpb.AttrValue{Value: &attrpb.AttrValue_Type{Type: t}}
}

func typeListAttr(ts ...typespb.DataType) *attrpb.AttrValue {
	return &attrpb.AttrValue{Value: &attrpb.AttrValue_List{List: &attrpb.AttrValue_ListValue{Type: ts}}}
}

func intAttr(v int64) *attrpb.AttrValue { return &attrpb.AttrValue{Value: &attrpb.AttrValue_I{I: v}} }

func floatAttr(v float32) *attrpb.AttrValue {
	return &attrpb.AttrValue{Value: &attrpb.AttrValue_F{F: v}}
}

func boolAttr(v bool) *attrpb.AttrValue { return &attrpb.AttrValue{Value: &attrpb.AttrValue_B{B: v}} }

func stringAttr(v string) *attrpb.AttrValue {
	return &attrpb.AttrValue{Value: &attrpb.AttrValue_S{S: []byte(v)}}
}

func funcAttr(name string) *attrpb.AttrValue {
	return &attrpb.AttrValue{Value: &attrpb.AttrValue_Func{Func: &attrpb.NameAttrList{Name: name}}}
}

func shapeListAttr(shapes ...[]int64) *attrpb.AttrValue {
	list := make([]*shapepb.TensorShapeProto, len(shapes))
	for i, s := range shapes {
		list[i] = shapeProto(s)
	}
	return &attrpb.AttrValue{Value: &attrpb.AttrValue_List{List: &attrpb.AttrValue_ListValue{Shape: list}}}
}

// shapeProto is the shape with dimensions dims (-1: unknown).
func shapeProto(dims []int64) *shapepb.TensorShapeProto {
	sp := &shapepb.TensorShapeProto{}
	for _, d := range dims {
		sp.Dim = append(sp.Dim, &shapepb.TensorShapeProto_Dim{Size: d})
	}
	return sp
}

// int32Tensor is a constant with the given values: a scalar without dims.
func int32Tensor(v []int32, dims ...int64) *tensorpb.TensorProto {
	return &tensorpb.TensorProto{Dtype: typespb.DataType_DT_INT32, TensorShape: shapeProto(dims), IntVal: v}
}

func stringTensor(v string) *tensorpb.TensorProto {
	return &tensorpb.TensorProto{Dtype: typespb.DataType_DT_STRING, TensorShape: shapeProto(nil), StringVal: [][]byte{[]byte(v)}}
}

func float32Tensor(v []float32, dims ...int64) *tensorpb.TensorProto {
	return &tensorpb.TensorProto{Dtype: typespb.DataType_DT_FLOAT, TensorShape: shapeProto(dims), FloatVal: v}
}
