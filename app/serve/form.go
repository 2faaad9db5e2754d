package serve

import (
	"bytes"
	"net/http"
	"text/template"
)

// The page at /: a form for people to try the model from a browser.

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
<input type="file" name="{{.Field}}" accept="image/*" multiple required>
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

// handleIndex renders the form.
func (s *Server) handleIndex(w http.ResponseWriter) {
	var buf bytes.Buffer
	err := indexPage.Execute(&buf, map[string]any{"Name": s.cfg.Name, "Description": s.model.Description(), "Classes": s.classes, "Field": classifyField})
	if err != nil {
		respondError(w, httpErrorf(http.StatusInternalServerError, "rendering the page: %v", err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}
