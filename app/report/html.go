package report

import (
	"bytes"
	"fmt"
	"html/template"
)

// The HTML page is a single self-contained file: CSS and the table-sorting
// script are inline, every chart is inline SVG, and nothing is fetched from
// anywhere (the PNG/SVG links point at files next to it, for downloading).

// htmlPage is the data of the page template.
type htmlPage struct {
	Generated   string
	Counts      string
	Best        *htmlRun
	BestSummary string
	BestMade    string
	Columns     []Column
	Rows        []htmlRow
	Note        string
	Comparison  *htmlFigure
	CompNote    string
	Runs        []*htmlRun
}

type htmlRow struct {
	Anchor string
	Best   bool
	Status string
	Cells  []htmlCell
}

type htmlCell struct {
	Text, Sort           string
	Numeric, Name, State bool // Name: links to the run's section; State: a status badge
}

type htmlFigure struct {
	Title, PNG, SVG string
	Inline          template.HTML
}

type htmlRun struct {
	Name, Anchor, Dir, Status, State, Error, Selected string
	Best                                              bool
	Settings                                          [][2]string
	Problems                                          []string
	Curves                                            []*htmlFigure
	Classes                                           *ClassReport
	Confusion                                         *htmlFigure
	ConfNote                                          string
	Eval                                              *Evaluation
	EvalLine                                          string
	EvalClasses                                       *ClassReport
	EvalFig                                           *htmlFigure
	Gallery                                           *htmlGallery
}

func newHTMLFigure(f *figure) *htmlFigure {
	if f == nil {
		return nil
	}
	return &htmlFigure{Title: f.Title, PNG: f.PNGFile(), SVG: f.SVGFile(), Inline: template.HTML(inlineSVG(f.SVG, f.Title))} // #nosec: our own SVG
}

// html renders index.html.
func (v *view) html() ([]byte, error) {
	pg := htmlPage{Generated: stamp(v.rep.Generated), Counts: v.statusCounts(), BestSummary: v.bestSummary(),
		Columns: Columns(), Note: selectionNote, Comparison: newHTMLFigure(v.comparison), CompNote: v.compNote}
	for _, rv := range v.runs {
		hr := rv.htmlRun()
		pg.Runs = append(pg.Runs, hr)
		if rv.run.Best {
			pg.Best = hr
			pg.BestMade = madeText(rv.run)
		}
		row := htmlRow{Anchor: rv.anchor(), Best: rv.row.Best, Status: rv.row.Status}
		for i, c := range pg.Columns {
			cell := htmlCell{Text: c.Cell(rv.row), Numeric: c.Numeric, Name: i == 0, State: i == len(pg.Columns)-1}
			cell.Sort = cell.Text
			if c.Sort != nil {
				cell.Sort = c.Sort(rv.row)
			}
			row.Cells = append(row.Cells, cell)
		}
		pg.Rows = append(pg.Rows, row)
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, pg); err != nil {
		return nil, fmt.Errorf("rendering index.html: %w", err)
	}
	return buf.Bytes(), nil
}

func (rv *runView) htmlRun() *htmlRun {
	r := rv.run
	hr := &htmlRun{Name: r.Name, Anchor: rv.anchor(), Dir: r.Dir, Status: rv.statusLine(), State: r.State,
		Error: r.Status.Error, Selected: rv.selectedLine(), Best: r.Best, Settings: rv.settings(),
		Problems: append(append([]string{}, r.Problems...), rv.figNotes...), Classes: rv.classes,
		Confusion: newHTMLFigure(rv.confusion), ConfNote: rv.confNote, Eval: rv.eval,
		EvalClasses: rv.evalClasses, EvalFig: newHTMLFigure(rv.evalFig),
		Gallery: newHTMLGallery(r.Gallery)}
	for _, f := range rv.curves {
		hr.Curves = append(hr.Curves, newHTMLFigure(f))
	}
	if rv.eval != nil {
		hr.EvalLine = evalLine(rv.eval)
	}
	return hr
}

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"f2": func(v float64) string { return fmt.Sprintf("%.2f", v) },
}).Parse(pageHTML))

const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kfash-tf report{{with .Best}} — best: {{.Name}}{{end}}</title>
<style>
:root{--ink:#1d2430;--muted:#5f6b7a;--line:#e3e7ed;--bg:#f6f7f9;--card:#fff;--accent:#1f77b4;--best:#fff7d6;--bestline:#e8c547}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:1240px;margin:0 auto;padding:28px 24px 64px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:20px;margin:36px 0 12px}
h3{font-size:17px;margin:22px 0 8px}
.sub{color:var(--muted);margin:0 0 20px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(230px,1fr));gap:14px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px}
.card .k{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:22px;font-weight:650;margin-top:2px}
.card .d{color:var(--muted);font-size:13px}
.card.best{border-color:var(--bestline);background:var(--best)}
.tablewrap{overflow-x:auto;background:var(--card);border:1px solid var(--line);border-radius:10px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:6px 8px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}
#selection{font-size:14px}
#selection thead th{white-space:normal;vertical-align:bottom;line-height:1.25}
#selection td:first-child{white-space:normal;overflow-wrap:anywhere;min-width:12em;max-width:19em}
td.n,th.n{text-align:right}
thead th{position:sticky;top:0;background:#eef1f5;font-size:13px;font-weight:600}
table.sortable thead th{cursor:pointer;user-select:none}
table.sortable thead th:hover{background:#e2e7ee}
th[aria-sort=ascending]::after{content:" ▲";font-size:10px}
th[aria-sort=descending]::after{content:" ▼";font-size:10px}
tbody tr:hover{background:#f3f7fb}
tr.best{background:var(--best)}
tr.best td:first-child{font-weight:650}
td a{color:inherit}
.note{color:var(--muted);font-size:13px;margin:8px 2px}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:600;background:#eceff3;color:#3b4654}
.badge.finished{background:#e3f4e6;color:#1e6b31}
.badge.running{background:#e2eefb;color:#1a5a9a}
.badge.interrupted{background:#fdf0d9;color:#8a5a00}
.badge.failed,.badge.crashed,.badge.corrupt{background:#fde4e3;color:#a1271f}
.run{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:6px 20px 18px;margin:18px 0}
.run.best{border-color:var(--bestline);box-shadow:0 0 0 2px var(--best)}
.run h2{margin:14px 0 4px}
.meta{color:var(--muted);margin:0 0 10px}
dl.settings{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:10px 0;font-size:14px}
dl.settings dt{color:var(--muted)}
dl.settings dd{margin:0;word-break:break-word}
.error,.problems{border-radius:8px;padding:10px 14px;margin:10px 0;font-size:14px}
.error{background:#fde4e3;color:#7d1d17;white-space:pre-wrap;font-family:ui-monospace,Menlo,Consolas,monospace}
.problems{background:#fff4e0;color:#6b4a00}
.problems ul{margin:4px 0 0 18px;padding:0}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px;align-items:start}
figure{margin:0}
figure svg{width:100%;height:auto;display:block}
figure.card svg{max-width:1000px;margin:0 auto}
figcaption{font-size:12px;color:var(--muted);text-align:right}
figcaption a{color:var(--muted)}
.conf{display:grid;grid-template-columns:minmax(300px,520px) 1fr;gap:20px;align-items:start}
@media (max-width:900px){.conf{grid-template-columns:1fr}.figs{grid-template-columns:1fr}}
table.cls{width:auto;min-width:420px;border:1px solid var(--line);border-radius:8px}
table.cls td:first-child{font-weight:500}
table.cls tr.sum td{border-top:2px solid var(--line);color:var(--muted)}
.empty{color:var(--muted);font-style:italic}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:12px}
.gallery img{width:100%;height:auto;display:block;border:1px solid var(--line);border-radius:6px}
.gallery figcaption{text-align:left}
</style>
</head>
<body>
<main>
<h1>kfash-tf report</h1>
<p class="sub">Generated {{.Generated}} · {{.Counts}}</p>

<div class="cards">
{{- with .Best}}
<div class="card best"><div class="k">Best run</div><div class="v"><a href="#{{.Anchor}}">{{.Name}}</a></div><div class="d">{{$.BestSummary}}</div></div>
<div class="card"><div class="k">Made</div><div class="v">{{$.BestMade}}</div><div class="d">{{.Dir}} · {{.State}}</div></div>
{{- else}}
<div class="card"><div class="k">Best run</div><div class="v">none yet</div><div class="d">{{$.BestSummary}}</div></div>
{{- end}}
<div class="card"><div class="k">Runs</div><div class="v">{{len .Rows}}</div><div class="d">{{.Counts}}</div></div>
</div>

<h2>Model selection</h2>
<div class="tablewrap">
<table class="sortable" id="selection">
<thead><tr>{{range .Columns}}<th{{if .Numeric}} class="n" data-type="num"{{end}} title="sort by {{.Title}}">{{.Title}}</th>{{end}}</tr></thead>
<tbody>
{{- range $r := .Rows}}
<tr{{if $r.Best}} class="best"{{end}}>
{{- range $c := $r.Cells}}
{{- if $c.Name}}<td data-v="{{$c.Sort}}"><a href="#{{$r.Anchor}}">{{if $r.Best}}★ {{end}}{{$c.Text}}</a></td>
{{- else if $c.State}}<td data-v="{{$c.Sort}}"><span class="badge {{$r.Status}}">{{$c.Text}}</span></td>
{{- else}}<td{{if $c.Numeric}} class="n"{{end}} data-v="{{$c.Sort}}">{{$c.Text}}</td>{{end}}
{{- end}}
</tr>
{{- end}}
</tbody>
</table>
</div>
<p class="note">{{.Note}}</p>

<h2>Validation accuracy of all runs</h2>
{{- with .Comparison}}
<figure class="card">{{.Inline}}<figcaption><a href="{{.PNG}}">PNG</a> · <a href="{{.SVG}}">SVG</a></figcaption></figure>
{{- else}}
<p class="empty">No chart: {{.CompNote}}.</p>
{{- end}}

<h2>Runs</h2>
{{- range .Runs}}
<section class="run{{if .Best}} best{{end}}" id="{{.Anchor}}">
<h2>{{if .Best}}★ {{end}}{{.Name}} <span class="badge {{.State}}">{{.State}}</span></h2>
<p class="meta">{{.Dir}} · {{.Status}}</p>
{{- if .Error}}<div class="error">{{.Error}}</div>{{end}}
{{- if .Problems}}<div class="problems"><strong>Problems</strong><ul>{{range .Problems}}<li>{{.}}</li>{{end}}</ul></div>{{end}}
{{- if .Selected}}<p>{{.Selected}}</p>{{end}}
{{- if .Settings}}<dl class="settings">{{range .Settings}}<dt>{{index . 0}}</dt><dd>{{index . 1}}</dd>{{end}}</dl>{{end}}
{{- if .Curves}}
<h3>Learning curves</h3>
<div class="figs">{{range .Curves}}<figure>{{.Inline}}<figcaption><a href="{{.PNG}}">PNG</a> · <a href="{{.SVG}}">SVG</a></figcaption></figure>{{end}}</div>
{{- end}}
{{- if or .Classes .Confusion .ConfNote}}
<h3>Validation at the selected epoch</h3>
{{- if .ConfNote}}<p class="empty">{{.ConfNote}}</p>{{end}}
{{- if or .Classes .Confusion}}
<div class="conf">
{{- with .Confusion}}<figure>{{.Inline}}<figcaption><a href="{{.PNG}}">PNG</a> · <a href="{{.SVG}}">SVG</a></figcaption></figure>{{end}}
{{- with .Classes}}<div>{{template "classes" .}}</div>{{end}}
</div>
{{- end}}
{{- end}}
{{- if .Eval}}
<h3>Evaluation on the {{.Eval.Split}} split</h3>
<p>{{.EvalLine}}</p>
{{- end}}
{{- if or .EvalFig .EvalClasses}}
<div class="conf">
{{- with .EvalFig}}<figure>{{.Inline}}<figcaption><a href="{{.PNG}}">PNG</a> · <a href="{{.SVG}}">SVG</a></figcaption></figure>{{end}}
{{- with .EvalClasses}}<div>{{template "classes" .}}</div>{{end}}
</div>
{{- end}}
{{- with .Gallery}}
<h3>Validation gallery</h3>
{{- if .Note}}<p class="empty">{{.Note}}</p>{{end}}
{{- if .Wrong}}<p class="note">Most confident mistakes, Grad-CAM at {{.Layer}} (yellow: what raised the predicted class most).</p>
<div class="gallery">{{range .Wrong}}<figure><img {{.Src}} alt="{{.File}}" title="{{.File}}"><figcaption>{{.Caption}}</figcaption></figure>{{end}}</div>{{end}}
{{- if .Right}}<p class="note">Right answers, by class.</p>
<div class="gallery">{{range .Right}}<figure><img {{.Src}} alt="{{.File}}" title="{{.File}}"><figcaption>{{.Caption}}</figcaption></figure>{{end}}</div>{{end}}
{{- end}}
</section>
{{- end}}
</main>
<script>
// Sort the model-selection table by the clicked column; click again to reverse.
(function () {
  var table = document.getElementById("selection");
  if (!table) return;
  var heads = table.tHead.rows[0].cells;
  function key(row, i, num) {
    var v = row.cells[i].getAttribute("data-v");
    if (!num) return v.toLowerCase();
    return v === "" ? null : parseFloat(v);
  }
  Array.prototype.forEach.call(heads, function (th, i) {
    th.addEventListener("click", function () {
      var num = th.getAttribute("data-type") === "num";
      var asc = th.getAttribute("aria-sort") !== "ascending";
      if (num && !th.hasAttribute("aria-sort")) asc = false; // numbers: best (largest) first
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a, i, num), y = key(b, i, num);
        if (x === null && y === null) return 0;
        if (x === null) return 1;  // unknown values last, whatever the order
        if (y === null) return -1;
        var c = x < y ? -1 : x > y ? 1 : 0;
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
})();
</script>
</body>
</html>
{{define "classes"}}<table class="cls">
<thead><tr><th></th><th class="n">precision</th><th class="n">recall</th><th class="n">f1-score</th><th class="n">support</th></tr></thead>
<tbody>
{{- range .Classes}}<tr><td>{{.Class}}</td><td class="n">{{f2 .Precision}}</td><td class="n">{{f2 .Recall}}</td><td class="n">{{f2 .F1}}</td><td class="n">{{.Support}}</td></tr>{{end}}
{{- if .Total}}<tr class="sum"><td>accuracy</td><td></td><td></td><td class="n">{{f2 .Accuracy}}</td><td class="n">{{.Total}}</td></tr>{{end}}
{{- if .MacroAvg.Class}}
<tr><td>{{.MacroAvg.Class}}</td><td class="n">{{f2 .MacroAvg.Precision}}</td><td class="n">{{f2 .MacroAvg.Recall}}</td><td class="n">{{f2 .MacroAvg.F1}}</td><td class="n">{{.MacroAvg.Support}}</td></tr>
<tr><td>{{.WeightedAvg.Class}}</td><td class="n">{{f2 .WeightedAvg.Precision}}</td><td class="n">{{f2 .WeightedAvg.Recall}}</td><td class="n">{{f2 .WeightedAvg.F1}}</td><td class="n">{{.WeightedAvg.Support}}</td></tr>
{{- end}}
</tbody>
</table>{{end}}`
