package serve

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/kfash-tf/kfash-tf/graphs"
)

// The parsing of requests: bodies within MaxBody, TensorFlow Serving's
// row ("instances") and columnar ("inputs") formats, b64 values and
// numeric arrays, within MaxInstances images. Nothing here decodes an
// image or touches the model.

// imageInput is one image of a request: pixels (S×S×3 floats) or encoded
// bytes.
type imageInput struct {
	pixels  []float32
	encoded []byte
	format  string // of encoded, once checkImages has read its header
}

// predictRequest is the body of :predict. The raw messages stay nil when
// their key is absent.
type predictRequest struct {
	SignatureName string          `json:"signature_name"`
	Instances     json.RawMessage `json:"instances"`
	Inputs        json.RawMessage `json:"inputs"`
	// Explain asks for a Grad-CAM explanation of each image (kfash-tf's
	// extension; TensorFlow Serving has no such key).
	Explain bool `json:"explain"`
}

// parsePredictRequest reads the body of :predict into its images, within
// MaxInstances; rowFormat tells which format the answer takes, explain
// whether it asks for explanations.
func (s *Server) parsePredictRequest(body []byte) (images []imageInput, rowFormat, explain bool, herr *httpError) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, false, false, httpErrorf(http.StatusBadRequest, `empty request body: send {"instances": [...]} (row format) or {"inputs": ...} (columnar format)`)
	}
	var req predictRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, false, false, httpErrorf(http.StatusBadRequest, "malformed JSON request: %v", err)
	}
	hasInstances, hasInputs := req.Instances != nil, req.Inputs != nil
	switch {
	case hasInstances && hasInputs:
		return nil, false, false, httpErrorf(http.StatusBadRequest, `the request has both "instances" and "inputs": send one (row or columnar format), not both`)
	case !hasInstances && !hasInputs:
		return nil, false, false, httpErrorf(http.StatusBadRequest, `the request has neither "instances" (row format) nor "inputs" (columnar format)`)
	}
	sig := req.SignatureName
	if sig == "" {
		sig = graphs.SignatureImages
	}
	if sig != graphs.SignatureImages && sig != graphs.SignatureBytes {
		return nil, false, false, httpErrorf(http.StatusBadRequest, "unknown signature_name %q: this model serves %s and %s", req.SignatureName, graphs.SignatureImages, graphs.SignatureBytes)
	}
	if hasInstances {
		images, herr = s.parseInstances(req.Instances, sig)
	} else {
		images, herr = s.parseInputs(req.Inputs, sig)
	}
	return images, hasInstances, req.Explain, herr
}

// readBody reads a request body within MaxBody.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *httpError) {
	if r.ContentLength > s.cfg.MaxBody {
		return nil, s.tooLarge(r.ContentLength)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, s.tooLarge(-1)
	}
	if err != nil {
		return nil, httpErrorf(http.StatusBadRequest, "reading the request body: %v", err)
	}
	return body, nil
}

// tooLarge is the 413 of a body over MaxBody: n bytes declared, or -1
// when it was found while reading.
func (s *Server) tooLarge(n int64) *httpError {
	if n >= 0 {
		return httpErrorf(http.StatusRequestEntityTooLarge, "request body of %d bytes is larger than the limit of %d bytes (%s)", n, s.cfg.MaxBody, flagRef(FlagMaxBody))
	}
	return httpErrorf(http.StatusRequestEntityTooLarge, "request body is larger than the limit of %d bytes (%s)", s.cfg.MaxBody, flagRef(FlagMaxBody))
}

// parseInstances reads the row format: one image per instance, as a pixel
// array, {"b64": ...}, or an object keyed by the input's name.
func (s *Server) parseInstances(raw json.RawMessage, sig string) ([]imageInput, *httpError) {
	var instances []json.RawMessage
	if err := json.Unmarshal(raw, &instances); err != nil || instances == nil {
		return nil, httpErrorf(http.StatusBadRequest, `"instances" must be a list of images, got %s`, jsonKind(raw))
	}
	if len(instances) == 0 {
		return nil, httpErrorf(http.StatusBadRequest, `"instances" is empty: send at least one image`)
	}
	if len(instances) > s.cfg.MaxInstances {
		return nil, s.tooManyInstances(strconv.Itoa(len(instances)))
	}
	images := make([]imageInput, len(instances))
	for i, inst := range instances {
		img, herr := s.parseImage(inst, sig, "")
		if herr != nil {
			herr.msg = fmt.Sprintf("instance %d: %s", i, herr.msg)
			return nil, herr
		}
		images[i] = img
	}
	return images, nil
}

// parseImage reads one image: a [S][S][3] pixel array, {"b64": ...}, or
// (when key is "", i.e. not already inside a named input)
// {"images": [...]} / {"image_bytes": {"b64": ...}}.
func (s *Server) parseImage(raw json.RawMessage, sig, key string) (imageInput, *httpError) {
	switch firstByte(raw) {
	case '[':
		if sig == graphs.SignatureBytes || key == graphs.InputImageBytes {
			return imageInput{}, httpErrorf(http.StatusBadRequest, `signature %s takes encoded images as {"b64": "..."}, not pixel arrays`, sig)
		}
		per := s.size * s.size * 3
		vals, shape, err := parseNumbersMax(raw, per, per)
		if errors.Is(err, errTooManyNumbers) {
			return imageInput{}, httpErrorf(http.StatusBadRequest, "image of more than %d numbers; %s takes [%d][%d][3] (height, width, RGB 0–255)", per, graphs.SignatureImages, s.size, s.size)
		}
		if err != nil {
			return imageInput{}, httpErrorf(http.StatusBadRequest, "%v", err)
		}
		if len(shape) != 3 || shape[0] != s.size || shape[1] != s.size || shape[2] != 3 {
			return imageInput{}, httpErrorf(http.StatusBadRequest, "image of shape %v; %s takes [%d][%d][3] (height, width, RGB 0–255), or an encoded image as {\"b64\": \"...\"}", shape, graphs.SignatureImages, s.size, s.size)
		}
		return imageInput{pixels: vals}, nil
	case '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return imageInput{}, httpErrorf(http.StatusBadRequest, "%v", err)
		}
		if b64, ok := obj["b64"]; ok {
			if len(obj) != 1 {
				return imageInput{}, httpErrorf(http.StatusBadRequest, `a {"b64": ...} object must have no other keys`)
			}
			data, herr := decodeB64(b64)
			if herr != nil {
				return imageInput{}, herr
			}
			return imageInput{encoded: data}, nil
		}
		if key != "" || len(obj) != 1 {
			return imageInput{}, httpErrorf(http.StatusBadRequest, "expected one input, %q, got an object with keys %s", s.inputKey(sig), objectKeys(obj))
		}
		for k, v := range obj {
			if k != graphs.InputImages && k != graphs.InputImageBytes {
				return imageInput{}, httpErrorf(http.StatusBadRequest, "unknown input %q: signature %s takes %q", k, sig, s.inputKey(sig))
			}
			if sig == graphs.SignatureBytes && k == graphs.InputImages {
				return imageInput{}, httpErrorf(http.StatusBadRequest, `signature %s takes %q ({"b64": ...}), not %q`, sig, graphs.InputImageBytes, graphs.InputImages)
			}
			return s.parseImage(v, sig, k)
		}
	case '"':
		return imageInput{}, httpErrorf(http.StatusBadRequest, `binary values must be sent as {"b64": "..."}, not as a plain string`)
	}
	return imageInput{}, httpErrorf(http.StatusBadRequest, "expected an image ([%d][%d][3] numbers or {\"b64\": \"...\"}), got %s", s.size, s.size, jsonKind(raw))
}

// inputKey is the input signature sig takes.
func (s *Server) inputKey(sig string) string {
	if sig == graphs.SignatureBytes {
		return graphs.InputImageBytes
	}
	return graphs.InputImages
}

// parseInputs reads the columnar format: the batch of the signature's one
// input, as [N][S][S][3] numbers or a list of {"b64": ...}, either directly
// or keyed by the input's name.
func (s *Server) parseInputs(raw json.RawMessage, sig string) ([]imageInput, *httpError) {
	key := ""
	if firstByte(raw) == '{' {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, httpErrorf(http.StatusBadRequest, "%v", err)
		}
		if _, ok := obj["b64"]; ok {
			img, herr := s.parseImage(raw, sig, graphs.InputImageBytes)
			if herr != nil {
				return nil, herr
			}
			return []imageInput{img}, nil
		}
		if len(obj) != 1 {
			return nil, httpErrorf(http.StatusBadRequest, "\"inputs\": expected one input, %q, got keys %s", s.inputKey(sig), objectKeys(obj))
		}
		for k, v := range obj {
			if k != graphs.InputImages && k != graphs.InputImageBytes {
				return nil, httpErrorf(http.StatusBadRequest, "unknown input %q: signature %s takes %q", k, sig, s.inputKey(sig))
			}
			if sig == graphs.SignatureBytes && k == graphs.InputImages {
				return nil, httpErrorf(http.StatusBadRequest, `signature %s takes %q ({"b64": ...}), not %q`, sig, graphs.InputImageBytes, graphs.InputImages)
			}
			key, raw = k, v
		}
	}
	if firstByte(raw) != '[' {
		return nil, httpErrorf(http.StatusBadRequest, "\"inputs\" must be a batch of images ([N][%d][%d][3] numbers or a list of {\"b64\": ...}), got %s", s.size, s.size, jsonKind(raw))
	}
	// A list of encoded images, or one tensor of pixels?
	var first json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.Token() // '['
	if dec.More() {
		if err := dec.Decode(&first); err != nil {
			return nil, httpErrorf(http.StatusBadRequest, "\"inputs\": %v", err)
		}
	}
	if firstByte(first) == '{' || firstByte(first) == '"' {
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, httpErrorf(http.StatusBadRequest, "\"inputs\": %v", err)
		}
		if len(items) > s.cfg.MaxInstances {
			return nil, s.tooManyInstances(strconv.Itoa(len(items)))
		}
		images := make([]imageInput, len(items))
		for i, it := range items {
			if firstByte(it) != '{' && firstByte(it) != '"' {
				return nil, httpErrorf(http.StatusBadRequest, "\"inputs\" item %d: expected {\"b64\": ...} like the first one, got %s", i, jsonKind(it))
			}
			img, herr := s.parseImage(it, sig, graphs.InputImageBytes)
			if herr != nil {
				herr.msg = fmt.Sprintf("\"inputs\" item %d: %s", i, herr.msg)
				return nil, herr
			}
			images[i] = img
		}
		return images, nil
	}
	if sig == graphs.SignatureBytes || key == graphs.InputImageBytes {
		return nil, httpErrorf(http.StatusBadRequest, `signature %s takes encoded images as a list of {"b64": "..."}, not pixel arrays`, sig)
	}
	per := s.size * s.size * 3
	vals, shape, err := parseNumbersMax(raw, 0, s.cfg.MaxInstances*per)
	if errors.Is(err, errTooManyNumbers) {
		return nil, s.tooManyInstances(fmt.Sprintf("more than %d numbers, i.e. more than %d", s.cfg.MaxInstances*per, s.cfg.MaxInstances))
	}
	if err != nil {
		return nil, httpErrorf(http.StatusBadRequest, "\"inputs\": %v", err)
	}
	if len(shape) != 4 || shape[1] != s.size || shape[2] != s.size || shape[3] != 3 {
		return nil, httpErrorf(http.StatusBadRequest, "\"inputs\" has shape %v; %s takes [N][%d][%d][3] (images, height, width, RGB 0–255)", shape, graphs.SignatureImages, s.size, s.size)
	}
	images := make([]imageInput, shape[0])
	for i := range images {
		images[i] = imageInput{pixels: vals[i*per : (i+1)*per : (i+1)*per]}
	}
	return images, nil
}

// decodeB64 reads a {"b64": ...} value: standard base64, padded or not
// (URL-safe accepted too, as some clients send it).
func decodeB64(raw json.RawMessage) ([]byte, *httpError) {
	var str string
	if err := json.Unmarshal(raw, &str); err != nil {
		return nil, httpErrorf(http.StatusBadRequest, `"b64" must be a string of base64, got %s`, jsonKind(raw))
	}
	str = strings.TrimRight(str, "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(str, "-_") {
		enc = base64.RawURLEncoding
	}
	data, err := enc.DecodeString(str)
	if err != nil {
		return nil, httpErrorf(http.StatusBadRequest, "invalid base64 in \"b64\": %v", err)
	}
	if len(data) == 0 {
		return nil, httpErrorf(http.StatusBadRequest, `empty "b64" value: no image`)
	}
	return data, nil
}

// objectKeys lists an object's keys, quoted and sorted, for error messages.
func objectKeys(obj map[string]json.RawMessage) string {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, strconv.Quote(k))
	}
	if len(keys) == 0 {
		return "none"
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}
