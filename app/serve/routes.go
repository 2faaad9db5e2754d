package serve

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/kfash-tf/kfash-tf/graphs"
)

// Routing and the answers that are not predictions: TensorFlow Serving's
// URLs, model status and metadata, JSON errors.

// httpError is an error with the HTTP status it answers with.
type httpError struct {
	status int
	msg    string
	image  int    // for an error about one image: its index, and
	detail string // the message without "image N: "
}

func (e *httpError) Error() string { return e.msg }

// httpErrorf is an error answered with status, not about one image.
func httpErrorf(status int, format string, args ...any) *httpError {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...), image: -1}
}

// route dispatches a request on its path.
func (s *Server) route(w *requestLog, r *http.Request) {
	path := r.URL.Path
	switch {
	case path == "/":
		if allowMethod(w, r, http.MethodGet) {
			s.handleIndex(w)
		}
	case path == "/healthz":
		if allowMethod(w, r, http.MethodGet) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, "ok\n")
		}
	case path == "/v1/classify":
		if allowMethod(w, r, http.MethodPost) {
			s.handleClassify(w, r)
		}
	case strings.HasPrefix(path, "/v1/models/"):
		s.routeModel(w, r, strings.TrimPrefix(path, "/v1/models/"))
	default:
		respondError(w, httpErrorf(http.StatusNotFound, "no such path %s: try /v1/models/%s, /v1/models/%s:predict, /v1/classify or /", path, s.cfg.Name, s.cfg.Name))
	}
}

// allowMethod answers 405 unless r uses method (GET also allows HEAD).
func allowMethod(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method || (method == http.MethodGet && r.Method == http.MethodHead) {
		return true
	}
	w.Header().Set("Allow", method)
	respondError(w, httpErrorf(http.StatusMethodNotAllowed, "method %s not allowed on %s: use %s", r.Method, r.URL.Path, method))
	return false
}

// routeModel handles NAME[/versions/N][/metadata] and NAME[/versions/N]:VERB.
func (s *Server) routeModel(w *requestLog, r *http.Request, rest string) {
	verb := ""
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		rest, verb = rest[:i], rest[i+1:]
	}
	segs := strings.Split(rest, "/")
	name, segs := segs[0], segs[1:]
	if name != s.cfg.Name {
		respondError(w, httpErrorf(http.StatusNotFound, "model %q not found: this server serves %q", name, s.cfg.Name))
		return
	}
	if len(segs) >= 2 && segs[0] == "versions" {
		v, err := strconv.ParseInt(segs[1], 10, 64)
		if err != nil {
			respondError(w, httpErrorf(http.StatusBadRequest, "version %q is not a number", segs[1]))
			return
		}
		if v != s.model.Version() {
			respondError(w, httpErrorf(http.StatusNotFound, "model %q has no version %d: it serves version %d", name, v, s.model.Version()))
			return
		}
		segs = segs[2:]
	} else if len(segs) >= 2 && segs[0] == "labels" {
		respondError(w, httpErrorf(http.StatusNotFound, "version labels are not supported: use /v1/models/%s or /versions/%d", name, s.model.Version()))
		return
	}
	metadata := len(segs) == 1 && segs[0] == "metadata"
	if len(segs) > 1 || (len(segs) == 1 && !metadata) || (metadata && verb != "") {
		respondError(w, httpErrorf(http.StatusNotFound, "no such path %s", r.URL.Path))
		return
	}
	switch {
	case verb == "predict":
		if allowMethod(w, r, http.MethodPost) {
			s.handlePredict(w, r)
		}
	case verb == "classify" || verb == "regress":
		respondError(w, httpErrorf(http.StatusBadRequest, ":%s needs a %s signature; this model has predict signatures only: use :predict", verb, verb))
	case verb != "":
		respondError(w, httpErrorf(http.StatusNotFound, "unknown method :%s: use :predict", verb))
	case metadata:
		if allowMethod(w, r, http.MethodGet) {
			respondJSON(w, http.StatusOK, s.metadata())
		}
	default:
		if allowMethod(w, r, http.MethodGet) {
			respondJSON(w, http.StatusOK, s.status())
		}
	}
}

// status is TensorFlow Serving's GetModelStatus response.
func (s *Server) status() any {
	type status struct {
		ErrorCode    string `json:"error_code"`
		ErrorMessage string `json:"error_message"`
	}
	type versionStatus struct {
		Version string `json:"version"`
		State   string `json:"state"`
		Status  status `json:"status"`
	}
	return map[string]any{"model_version_status": []versionStatus{{
		Version: strconv.FormatInt(s.model.Version(), 10), State: "AVAILABLE", Status: status{ErrorCode: "OK"},
	}}}
}

// metadata is TensorFlow Serving's GetModelMetadata response: the
// SignatureDefs in protobuf's JSON mapping (int64 sizes as strings).
func (s *Server) metadata() any {
	type dim struct {
		Size string `json:"size"`
		Name string `json:"name"`
	}
	type shape struct {
		Dim         []dim `json:"dim"`
		UnknownRank bool  `json:"unknown_rank"`
	}
	type tensor struct {
		DType       string `json:"dtype"`
		TensorShape shape  `json:"tensor_shape"`
		Name        string `json:"name"`
	}
	type signature struct {
		Inputs     map[string]tensor `json:"inputs"`
		Outputs    map[string]tensor `json:"outputs"`
		MethodName string            `json:"method_name"`
		Defaults   map[string]any    `json:"defaults"`
	}
	conv := func(in map[string]graphs.SignatureTensor) map[string]tensor {
		out := map[string]tensor{}
		for k, t := range in {
			sh := shape{Dim: []dim{}, UnknownRank: t.Shape == nil}
			for _, d := range t.Shape {
				sh.Dim = append(sh.Dim, dim{Size: strconv.FormatInt(d, 10)})
			}
			out[k] = tensor{DType: t.DTypeName(), TensorShape: sh, Name: t.Name}
		}
		return out
	}
	sigs := map[string]signature{}
	for name, sig := range s.model.Signatures() {
		sigs[name] = signature{Inputs: conv(sig.Inputs), Outputs: conv(sig.Outputs), MethodName: sig.MethodName, Defaults: map[string]any{}}
	}
	return map[string]any{
		"model_spec": map[string]any{"name": s.cfg.Name, "signature_name": "", "version": strconv.FormatInt(s.model.Version(), 10)},
		"metadata":   map[string]any{"signature_def": map[string]any{"signature_def": sigs}},
	}
}

// respondJSON answers v as JSON with status.
func respondJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		data, _ = json.Marshal(map[string]string{"error": "encoding the response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}

// respondError answers e as {"error": "..."} with its status.
func respondError(w http.ResponseWriter, e *httpError) {
	respondJSON(w, e.status, map[string]string{"error": e.msg})
}
