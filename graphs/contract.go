package graphs

// The serving contract: what an exported SavedModel holds, what
// OpenServable expects of one (and presents for a run folder), and what
// the server answers with. TensorFlow Serving's predict method, two
// signatures over the same network and outputs.
const (
	SignatureImages     = "serving_default"            // InputImages → outputs
	SignatureBytes      = "serving_bytes"              // InputImageBytes → outputs
	InputImages         = "images"                     // float32 [N,S,S,3], RGB 0–255
	InputImageBytes     = "image_bytes"                // string [N]: encoded JPEG, PNG, GIF or BMP
	OutputProbabilities = "probabilities"              // float32 [N,C]
	OutputClasses       = "classes"                    // int64 [N]
	OutputClassNames    = "class_names"                // string [N]
	PredictMethod       = "tensorflow/serving/predict" // SignatureDef.method_name
	ServeTag            = "serve"                      // the MetaGraphDef's only tag

	// SignatureExplain is the optional Grad-CAM signature: InputImages (and
	// optionally InputTarget) → OutputProbabilities, OutputClasses,
	// OutputTarget, OutputMap, OutputMapMin, OutputMapMax, OutputNetwork,
	// OutputLayer. Exports take InputImages only and explain the predicted
	// class; Go feeds OutputTarget (a PlaceholderWithDefault) for others.
	SignatureExplain = "explain"
	InputTarget      = "target"  // int32 [N]: the class to explain (default: the predicted one)
	OutputTarget     = "target"  // int32 [N]: the class explained
	OutputMap        = "map"     // float32 [N,S,S]: Grad-CAM normalised to [0,1]
	OutputMapMin     = "map_min" // float32 [N]: the map's minimum before normalising
	OutputMapMax     = "map_max" // float32 [N]: the map's maximum before normalising
	// The network and the explained layer, repeated per image: TensorFlow
	// Serving's row format needs every output batched.
	OutputNetwork = "network" // string [N]
	OutputLayer   = "layer"   // string [N]

	// SavedModelFile is the SavedModel proto in a version folder: the file
	// that makes a folder a SavedModel.
	SavedModelFile = "saved_model.pb"
	// LabelsAsset is the class names, one a line in label order, relative
	// to the version folder.
	LabelsAsset = "assets/labels.txt"
)
