package report

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// pngDPI renders PNGs at twice the screen resolution, sharp on any display.
const pngDPI = 144

// markerLimit is the number of epochs up to which curves get a marker per
// epoch: with few points a bare line hides where the measurements are (and
// one point draws no line at all).
const markerLimit = 30

// Colors of the charts (the Tableau 10 palette, readable for most forms of
// colour blindness when paired with dashes).
var (
	colTrain    = rgb(0x1f77b4)
	colVal      = rgb(0xff7f0e)
	colSelected = rgb(0x444444)
	colGrid     = rgb(0xe5e5e5)
	palette     = []color.Color{rgb(0x1f77b4), rgb(0xff7f0e), rgb(0x2ca02c), rgb(0xd62728), rgb(0x9467bd),
		rgb(0x8c564b), rgb(0xe377c2), rgb(0x7f7f7f), rgb(0xbcbd22), rgb(0x17becf)}
	heatLow  = rgb(0xf7fbff)
	heatHigh = rgb(0x08306b)
)

func rgb(v uint32) color.RGBA {
	return color.RGBA{R: uint8(v >> 16), G: uint8(v >> 8), B: uint8(v), A: 255}
}

// Figure is one chart rendered as PNG and SVG.
type Figure struct {
	Name  string // file name without extension: "accuracy", "loss", "confusion", …
	Title string
	PNG   []byte
	SVG   []byte
}

// drawer draws a chart on a canvas of the figure's size.
type drawer func(c draw.Canvas)

// render draws d into a PNG and an SVG of size w×h. gonum/plot panics on
// some inputs it cannot draw; a report must never crash on one run's odd
// data, so a panic becomes this figure's error.
func render(name, title string, w, h vg.Length, d drawer) (fig *Figure, err error) {
	defer func() {
		if p := recover(); p != nil {
			fig, err = nil, fmt.Errorf("drawing %s: %v", name, p)
		}
	}()
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(pngDPI))
	d(draw.New(img))
	var png bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&png); err != nil {
		return nil, fmt.Errorf("drawing %s: %w", name, err)
	}
	svg := vgsvg.New(w, h)
	d(draw.New(svg))
	var out bytes.Buffer
	if _, err := svg.WriteTo(&out); err != nil {
		return nil, fmt.Errorf("drawing %s: %w", name, err)
	}
	return &Figure{Name: name, Title: title, PNG: png.Bytes(), SVG: out.Bytes()}, nil
}

// plotDrawer draws a whole plot.
func plotDrawer(p *plot.Plot) drawer { return func(c draw.Canvas) { p.Draw(c) } }

// sansSerif is the font variant of every chart's text (gonum's default
// is a serif face, which reads poorly at small sizes on screens).
const sansSerif = "Sans"

// useSans sets every text style of p to the sans-serif face.
func useSans(p *plot.Plot) {
	for _, s := range []*text.Style{&p.Title.TextStyle, &p.X.Label.TextStyle, &p.Y.Label.TextStyle,
		&p.X.Tick.Label, &p.Y.Tick.Label, &p.Legend.TextStyle} {
		s.Font.Variant = sansSerif
	}
}

// newLegend returns a legend for the right of a chart (see legendRight).
func newLegend() *plot.Legend {
	l := plot.NewLegend()
	l.Top, l.Left = true, true
	l.TextStyle.Font.Variant = sansSerif
	l.TextStyle.Font.Size = vg.Points(10)
	return &l
}

// legendRight draws p with legend in a column to its right, so that the
// legend never hides a curve.
func legendRight(p *plot.Plot, legend *plot.Legend) drawer {
	return func(c draw.Canvas) {
		lw := legend.Rectangle(c).Size().X + vg.Points(18)
		p.Draw(draw.Crop(c, 0, -lw, 0, 0))
		legend.Draw(draw.Crop(c, c.Size().X-lw+vg.Points(10), 0, 0, -vg.Points(28)))
	}
}

// newPlot returns a plot with the report's look: sans-serif text, light
// grid, titles.
func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	useSans(p)
	p.Title.Text = title
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = x
	p.Y.Label.Text = y
	grid := plotter.NewGrid()
	grid.Vertical.Color = colGrid
	grid.Horizontal.Color = colGrid
	p.Add(grid)
	p.Y.Tick.Marker = niceTicks{}
	return p
}

// series is one curve: points with a name and a style.
type series struct {
	name   string
	pts    plotter.XYs
	color  color.Color
	width  vg.Length
	dashes []vg.Length
	glyph  draw.GlyphDrawer
}

// add puts s on p and in legend.
func (s series) add(p *plot.Plot, legend *plot.Legend, markers bool) error {
	if len(s.pts) == 0 {
		return nil
	}
	line, points, err := plotter.NewLinePoints(s.pts)
	if err != nil {
		return err
	}
	line.Color = s.color
	line.Width = s.width
	line.Dashes = s.dashes
	points.Color = s.color
	points.Radius = vg.Points(2.5)
	points.Shape = s.glyph
	if points.Shape == nil {
		points.Shape = draw.CircleGlyph{}
	}
	thumbs := []plot.Thumbnailer{line}
	p.Add(line)
	if markers || len(s.pts) == 1 {
		p.Add(points)
		thumbs = append(thumbs, points)
	}
	legend.Add(s.name, thumbs...)
	return nil
}

// curve returns the valid points of one metric over the epochs, scaled.
func curve(rows []runs.EpochResult, metric func(runs.EpochResult) float64, scale float64) plotter.XYs {
	var pts plotter.XYs
	for _, e := range rows {
		v := metric(e)
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 { // older runs wrote -1 for NaN
			continue
		}
		pts = append(pts, plotter.XY{X: float64(e.Epoch), Y: v * scale})
	}
	return pts
}

// curveKind is one of the two learning-curve charts.
type curveKind struct {
	name, title, unit string
	scale             float64
	train, val        func(runs.EpochResult) float64
}

var curveKinds = []curveKind{
	{name: "accuracy", title: "Accuracy", unit: "accuracy (%)", scale: 100,
		train: func(e runs.EpochResult) float64 { return e.TrainAcc },
		val:   func(e runs.EpochResult) float64 { return e.ValAcc }},
	{name: "loss", title: "Loss (mean per example)", unit: "loss", scale: 1,
		train: func(e runs.EpochResult) float64 { return e.TrainLoss },
		val:   func(e runs.EpochResult) float64 { return e.ValLoss }},
}

// curvesFigure draws train and validation curves of one kind with the
// selected epoch marked by a dashed vertical line and a ring.
func curvesFigure(r *Run, k curveKind) (*Figure, error) {
	p := newPlot(k.title, "epoch", k.unit)
	markers := len(r.Metrics) <= markerLimit
	train := series{name: "train", pts: curve(r.Metrics, k.train, k.scale), color: colTrain, width: vg.Points(1.5)}
	val := series{name: "validation", pts: curve(r.Metrics, k.val, k.scale), color: colVal, width: vg.Points(1.5), glyph: draw.SquareGlyph{}}
	if len(train.pts)+len(val.pts) == 0 {
		return nil, fmt.Errorf("no %s values recorded", k.name)
	}
	legend := newLegend()
	for _, s := range []series{train, val} {
		if err := s.add(p, legend, markers); err != nil {
			return nil, err
		}
	}
	if sel := r.SelectedRow(); sel != nil {
		if err := markSelected(p, legend, sel.Epoch, k.val(*sel)*k.scale); err != nil {
			return nil, err
		}
	}
	epochAxis(p, r.Metrics)
	padY(p)
	return render(k.name, k.title, vg.Inch*6.4, vg.Inch*3.6, legendRight(p, legend))
}

// markSelected draws the selected epoch: a dashed line over the whole
// height and a ring on the validation value (when valid).
func markSelected(p *plot.Plot, legend *plot.Legend, epoch int, val float64) error {
	vl := &vline{x: float64(epoch), style: draw.LineStyle{Color: colSelected, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(4), vg.Points(3)}}}
	p.Add(vl)
	thumbs := []plot.Thumbnailer{vl}
	if val >= 0 && !math.IsNaN(val) && !math.IsInf(val, 0) {
		ring, err := plotter.NewScatter(plotter.XYs{{X: float64(epoch), Y: val}})
		if err != nil {
			return err
		}
		ring.GlyphStyle = draw.GlyphStyle{Color: colSelected, Radius: vg.Points(5.5), Shape: draw.RingGlyph{}}
		p.Add(ring)
		thumbs = append(thumbs, ring)
	}
	legend.Add(fmt.Sprintf("selected: epoch %d", epoch), thumbs...)
	return nil
}

// vline is a vertical line across the whole data area at x.
type vline struct {
	x     float64
	style draw.LineStyle
}

// Plot implements plot.Plotter.
func (v *vline) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	x := trX(v.x)
	c.StrokeLine2(v.style, x, c.Min.Y, x, c.Max.Y)
}

// Thumbnail implements plot.Thumbnailer: a short vertical dash.
func (v *vline) Thumbnail(c *draw.Canvas) {
	x := (c.Min.X + c.Max.X) / 2
	c.StrokeLine2(v.style, x, c.Min.Y, x, c.Max.Y)
}

// epochAxis gives the x axis whole-epoch ticks and, for a single epoch, a
// range that puts it in the middle.
func epochAxis(p *plot.Plot, rows []runs.EpochResult) {
	p.X.Tick.Marker = epochTicks{}
	if len(rows) == 1 {
		e := float64(rows[0].Epoch)
		p.X.Min, p.X.Max = e-0.5, e+0.5
	}
}

// padY widens the y range a little beyond the data, so that markers on the
// highest and lowest values are not cut by the frame, and gives a single
// value a range around it.
func padY(p *plot.Plot) {
	pad := (p.Y.Max - p.Y.Min) * 0.06
	if pad == 0 {
		pad = math.Max(math.Abs(p.Y.Max)*0.05, 0.01)
	}
	p.Y.Min -= pad
	p.Y.Max += pad
}

// epochTicks labels whole epochs only: gonum's default ticks put labels at
// 0.5 steps on short runs.
type epochTicks struct{}

// Ticks implements plot.Ticker.
func (epochTicks) Ticks(min, max float64) []plot.Tick {
	if max-min <= 12 {
		var ticks []plot.Tick
		for e := math.Ceil(min); e <= max; e++ {
			ticks = append(ticks, plot.Tick{Value: e, Label: fmt.Sprint(e)})
		}
		return ticks
	}
	return niceTicks{integer: true}.Ticks(min, max)
}

// niceTicks puts four to seven labelled ticks at round steps (1, 2, 2.5 or 5
// times a power of ten; whole numbers only when integer) with a minor tick
// between each, labelled with no more decimals than the step needs: gonum's
// default gives as few as two labels with needless decimals ("75.00").
type niceTicks struct{ integer bool }

// Ticks implements plot.Ticker.
func (n niceTicks) Ticks(lo, hi float64) []plot.Tick {
	span := hi - lo
	if !(span > 0) || math.IsInf(span, 0) {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	raw := span / 6
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	mults := []float64{1, 2, 2.5, 5, 10}
	if n.integer {
		mults = []float64{1, 2, 5, 10}
	}
	step := 10 * mag
	for _, m := range mults {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	if n.integer {
		step = math.Max(1, math.Round(step))
	}
	decimals := max(0, int(-math.Floor(math.Log10(step)+1e-9)))
	if r := step / math.Pow(10, math.Floor(math.Log10(step)+1e-9)); math.Abs(r-2.5) < 1e-9 {
		decimals++
	}
	minor := step / 2
	var ticks []plot.Tick
	for i := math.Ceil(lo/minor - 1e-9); i*minor <= hi+minor*1e-9; i++ {
		v := math.Max(lo, math.Min(hi, i*minor)) // no rounding error past the ends
		t := plot.Tick{Value: v}
		if math.Mod(i, 2) == 0 {
			t.Label = strconv.FormatFloat(v+0, 'f', decimals, 64)
		}
		ticks = append(ticks, t)
	}
	return ticks
}

// confusionFigure draws a confusion matrix as a heat map: rows true
// classes (first at the top), columns predicted, each cell coloured by its
// share of the row (the class's recall, so small classes are as visible as
// large ones) and labelled with its count and that share.
func confusionFigure(name, title string, m [][]int64, classes []string) (*Figure, error) {
	if err := checkConfusion(m, len(classes)); err != nil {
		return nil, err
	}
	k := len(m)
	p := plot.New()
	useSans(p)
	p.Title.Text = title
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = "predicted"
	p.Y.Label.Text = "true"
	p.X.Padding, p.Y.Padding = 0, 0
	var xt, yt []plot.Tick
	for i, c := range classes {
		xt = append(xt, plot.Tick{Value: float64(i), Label: c})
		yt = append(yt, plot.Tick{Value: float64(k - 1 - i), Label: c})
	}
	p.X.Tick.Marker = plot.ConstantTicks(xt)
	p.Y.Tick.Marker = plot.ConstantTicks(yt)
	longest := 0
	for _, c := range classes {
		longest = max(longest, len(c))
	}
	if longest*k > 60 { // the names would overlap under the columns
		p.X.Tick.Label.Rotation = math.Pi / 4
		p.X.Tick.Label.XAlign = draw.XRight
		p.X.Tick.Label.YAlign = draw.YCenter
	}
	p.Add(&heatmap{m: m})
	side := vg.Inch * vg.Length(1.6+0.55*float64(k))
	side = max(side, vg.Inch*3.6)
	return render(name, title, side+vg.Inch*0.4, side, plotDrawer(p))
}

// heatmap is a plot.Plotter drawing a confusion matrix's cells.
type heatmap struct{ m [][]int64 }

// DataRange implements plot.DataRanger: one unit per cell.
func (h *heatmap) DataRange() (xmin, xmax, ymin, ymax float64) {
	k := float64(len(h.m))
	return -0.5, k - 0.5, -0.5, k - 0.5
}

// Plot implements plot.Plotter.
func (h *heatmap) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	k := len(h.m)
	big := p.X.Tick.Label
	big.Font.Size = vg.Points(cellFontSize(k))
	big.XAlign, big.YAlign, big.Rotation = draw.XCenter, draw.YCenter, 0
	small := big
	small.Font.Size = big.Font.Size * 0.75
	for i, row := range h.m {
		var total int64
		for _, v := range row {
			total += v
		}
		y := float64(k - 1 - i)
		for j, v := range row {
			share := 0.0
			if total > 0 {
				share = float64(v) / float64(total)
			}
			x := float64(j)
			x0, x1 := trX(x-0.5), trX(x+0.5)
			y0, y1 := trY(y-0.5), trY(y+0.5)
			c.FillPolygon(mix(heatLow, heatHigh, share), []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}})
			ink := color.Color(color.Black)
			if share > 0.5 {
				ink = color.White
			}
			big.Color, small.Color = ink, ink
			cx, cy := (x0+x1)/2, (y0+y1)/2
			if v == 0 { // a quiet zero keeps the eye on the errors that happen
				big.Color = rgb(0xa0a8b3)
				c.FillText(big, vg.Point{X: cx, Y: cy}, "0")
				continue
			}
			if k <= 12 {
				c.FillText(big, vg.Point{X: cx, Y: cy + big.Font.Size*0.35}, fmt.Sprint(v))
				c.FillText(small, vg.Point{X: cx, Y: cy - big.Font.Size*0.6}, fmt.Sprintf("%.0f%%", 100*share))
			} else {
				c.FillText(big, vg.Point{X: cx, Y: cy}, fmt.Sprint(v))
			}
		}
	}
	// A frame, so that white cells have an edge.
	frame := draw.LineStyle{Color: rgb(0x999999), Width: vg.Points(0.5)}
	x0, x1 := trX(-0.5), trX(float64(k)-0.5)
	y0, y1 := trY(-0.5), trY(float64(k)-0.5)
	c.StrokeLines(frame, []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}, {X: x0, Y: y0}})
}

// cellFontSize is the count's size in points: smaller for bigger matrices.
func cellFontSize(k int) float64 {
	switch {
	case k <= 5:
		return 13
	case k <= 10:
		return 10
	default:
		return 8
	}
}

// mix interpolates linearly between two colours, t in [0, 1].
func mix(a, b color.RGBA, t float64) color.RGBA {
	t = math.Max(0, math.Min(1, t))
	f := func(x, y uint8) uint8 { return uint8(math.Round(float64(x) + t*(float64(y)-float64(x)))) }
	return color.RGBA{R: f(a.R, b.R), G: f(a.G, b.G), B: f(a.B, b.B), A: 255}
}

// comparisonFigure draws the validation accuracy per epoch of every run
// with metrics on one chart, the best run's line thicker, the legend to the
// right of the chart so that it never hides a curve.
func comparisonFigure(rep *Report) (*Figure, error) {
	p := newPlot("Validation accuracy per epoch", "epoch", "validation accuracy (%)")
	legend := newLegend()
	var all []runs.EpochResult
	n := 0
	for _, r := range rep.Runs {
		pts := curve(r.Metrics, func(e runs.EpochResult) float64 { return e.ValAcc }, 100)
		if len(pts) == 0 {
			continue
		}
		name := shorten(r.Name, 36)
		s := series{name: name, pts: pts, color: palette[n%len(palette)], width: vg.Points(1.3)}
		if n >= len(palette) { // after ten runs colours repeat: tell them apart by dashes
			s.dashes = []vg.Length{vg.Points(5), vg.Points(2 + float64(n/len(palette)))}
		}
		if r.Best {
			s.name += " (best)"
			s.width = vg.Points(2.4)
		}
		if err := s.add(p, legend, len(r.Metrics) <= markerLimit); err != nil {
			return nil, err
		}
		all = append(all, r.Metrics...)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("no run has a validation accuracy yet")
	}
	if single := distinctEpochs(all); len(single) == 1 {
		epochAxis(p, single)
	} else {
		p.X.Tick.Marker = epochTicks{}
	}
	padY(p)
	w := vg.Inch * 8.5
	h := max(vg.Inch*4, vg.Inch*vg.Length(0.8+0.22*float64(n)))
	return render("comparison", "Validation accuracy per epoch", w, h, legendRight(p, legend))
}

// distinctEpochs returns one row per epoch number found in rows.
func distinctEpochs(rows []runs.EpochResult) []runs.EpochResult {
	seen := map[int]bool{}
	var out []runs.EpochResult
	for _, e := range rows {
		if !seen[e.Epoch] {
			seen[e.Epoch] = true
			out = append(out, e)
		}
	}
	return out
}

// shorten cuts s to n runes with an ellipsis in the middle, keeping the
// end, where sweep run names differ.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	keep := n - 1
	return string(r[:keep/3]) + "…" + string(r[len(r)-(keep-keep/3):])
}

// inlineSVG returns an SVG file's <svg> element for embedding in HTML: the
// XML prolog dropped, the fixed size turned into a scalable one, and a
// font fallback added (the charts name Liberation Sans, which a browser may
// not have).
func inlineSVG(svg []byte, label string) string {
	s := string(svg)
	if i := strings.Index(s, "<svg"); i >= 0 {
		s = s[i:]
	}
	s = strings.Replace(s, "<svg ", fmt.Sprintf(`<svg role="img" aria-label="%s" preserveAspectRatio="xMidYMid meet" `, htmlAttrEscape(label)), 1)
	s = strings.ReplaceAll(s, "font-family:Liberation Sans;", "font-family:'Liberation Sans',Arial,Helvetica,sans-serif;")
	return strings.TrimSpace(s)
}

// htmlAttrEscape escapes s for a double-quoted attribute.
func htmlAttrEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", `"`, "&quot;", "<", "&lt;", ">", "&gt;").Replace(s)
}
