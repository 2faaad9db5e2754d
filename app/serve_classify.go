package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/kfash-tf/kfash-tf/graphs"
)

// The pages for people: /v1/classify (multipart uploads) and the form at /.

// classifyResult is one file's answer of /v1/classify.
type classifyResult struct {
	File          string       `json:"file"`
	Class         string       `json:"class"`
	Probabilities orderedProbs `json:"probabilities"`
}

// orderedProbs is a class → probability object whose keys keep the
// model's class order (a Go map would sort them).
type orderedProbs struct {
	names []string
	probs []float32
}

func (o orderedProbs) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, n := range o.names {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(n)
		v, err := json.Marshal(o.probs[i])
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// handleClassify answers a multipart/form-data upload of one or more files
// in the field "image" with one result per file.
func (s *Server) handleClassify(w *requestLog, r *http.Request) {
	ctx, cancel := s.requestContext(r)
	defer cancel()
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		respondError(w, httpErrorf(http.StatusUnsupportedMediaType, "send multipart/form-data with the image files in the field %q (got Content-Type %q)", classifyField, r.Header.Get("Content-Type")))
		return
	}
	if r.ContentLength > s.cfg.MaxBody {
		respondError(w, s.tooLarge(r.ContentLength))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
	mr, err := r.MultipartReader()
	if err != nil {
		respondError(w, httpErrorf(http.StatusBadRequest, "reading the multipart body: %v", err))
		return
	}
	var names []string
	var images []imageInput
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			respondError(w, s.tooLarge(-1))
			return
		}
		if err != nil {
			respondError(w, httpErrorf(http.StatusBadRequest, "reading the multipart body: %v", err))
			return
		}
		if part.FormName() != classifyField {
			io.Copy(io.Discard, part)
			continue
		}
		if len(images) == s.cfg.MaxInstances {
			respondError(w, s.tooManyInstances("more than "+strconv.Itoa(s.cfg.MaxInstances)))
			return
		}
		data, err := io.ReadAll(part)
		if errors.As(err, &mbe) {
			respondError(w, s.tooLarge(-1))
			return
		}
		if err != nil {
			respondError(w, httpErrorf(http.StatusBadRequest, "reading %q: %v", part.FileName(), err))
			return
		}
		name := part.FileName()
		if name == "" {
			name = fmt.Sprintf("image %d", len(names))
		}
		if len(data) == 0 {
			respondError(w, httpErrorf(http.StatusBadRequest, "%s: empty file", name))
			return
		}
		names = append(names, name)
		images = append(images, imageInput{encoded: data})
	}
	if len(images) == 0 {
		respondError(w, httpErrorf(http.StatusBadRequest, "no file in the form field %q", classifyField))
		return
	}
	w.images = len(images)
	herr := s.checkImages(images)
	var probs []float32
	if herr == nil {
		probs, herr = s.predict(ctx, images)
	}
	if herr != nil {
		if herr.image >= 0 {
			herr.msg = names[herr.image] + ": " + herr.detail // the file, not its index
		}
		respondError(w, herr)
		return
	}
	k := len(s.classes)
	out := make([]classifyResult, len(images))
	for i := range out {
		p := probs[i*k : (i+1)*k]
		out[i] = classifyResult{File: names[i], Class: s.classes[graphs.Argmax(p)], Probabilities: orderedProbs{names: s.classes, probs: p}}
	}
	respondJSON(w, http.StatusOK, out)
}

// indexPage is the form at /: self-contained (no external URL), it posts
// to /v1/classify and shows the answers as a table, or as plain JSON
// without JavaScript.
var indexPage = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Name}} · kfash-tf</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin-top:1rem}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
.err{color:#b00}code{background:#f3f3f3;padding:0 .2rem}
</style></head><body>
<h1>{{.Name}}</h1>
<p>{{.Description}}. Classes: {{range $i, $c := .Classes}}{{if $i}}, {{end}}<code>{{$c}}</code>{{end}}.</p>
<form id="f" method="post" action="/v1/classify" enctype="multipart/form-data">
<input type="file" name="image" accept="image/*" multiple required>
<button type="submit">Classify</button>
</form>
<div id="out"></div>
<p>REST: <code>POST /v1/models/{{.Name}}:predict</code> with <code>{"instances": [{"b64": "..."}]}</code>.</p>
<script>
document.getElementById('f').addEventListener('submit', async function (e) {
  e.preventDefault();
  var out = document.getElementById('out');
  out.textContent = 'classifying…';
  try {
    var resp = await fetch('/v1/classify', {method: 'POST', body: new FormData(this)});
    var data = await resp.json();
    out.textContent = '';
    if (!resp.ok) { var p = document.createElement('p'); p.className = 'err'; p.textContent = data.error; out.appendChild(p); return; }
    var t = document.createElement('table'), h = t.insertRow();
    ['file', 'class'].concat(Object.keys(data[0].probabilities)).forEach(function (c) { var th = document.createElement('th'); th.textContent = c; h.appendChild(th); });
    data.forEach(function (r) {
      var row = t.insertRow();
      row.insertCell().textContent = r.file;
      row.insertCell().textContent = r['class'];
      Object.values(r.probabilities).forEach(function (p) { row.insertCell().textContent = p.toFixed(3); });
    });
    out.appendChild(t);
  } catch (err) { out.textContent = String(err); }
});
</script>
</body></html>
`))

func (s *Server) handleIndex(w http.ResponseWriter) {
	var buf bytes.Buffer
	err := indexPage.Execute(&buf, map[string]any{"Name": s.cfg.Name, "Description": s.model.Description(), "Classes": s.classes})
	if err != nil {
		respondError(w, httpErrorf(http.StatusInternalServerError, "rendering the page: %v", err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}
