package report

import (
	"fmt"
	"strings"
)

// markdown renders report.md: the same content as the HTML page, with the
// charts as links to their PNG files.
func (v *view) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# kfash-tf report\n\n")
	p("Generated %s · %s.\n\n", stamp(v.rep.Generated), v.statusCounts())
	if best := v.rep.Best; best != nil {
		p("**Best run: %s** — %s, made %s.\n\n", mdEscape(best.Name), v.bestSummary(), madeText(best))
	} else {
		p("**%s**\n\n", v.bestSummary())
	}

	p("## Model selection\n\n")
	cols := Columns()
	var head, rule []string
	for _, c := range cols {
		head = append(head, c.Title)
		if c.Numeric {
			rule = append(rule, "---:")
		} else {
			rule = append(rule, "---")
		}
	}
	p("| %s |\n|%s|\n", strings.Join(head, " | "), strings.Join(rule, "|"))
	for _, row := range v.rows {
		var cells []string
		for i, c := range cols {
			cell := mdEscape(c.Cell(row))
			if i == 0 && row.Best {
				cell = "**★ " + cell + "**"
			}
			cells = append(cells, cell)
		}
		p("| %s |\n", strings.Join(cells, " | "))
	}
	p("\n%s\n\n", selectionNote)

	p("## Validation accuracy of all runs\n\n")
	if v.comparison != nil {
		p("![Validation accuracy per epoch](%s)\n\n", v.comparison.PNGFile())
	} else {
		p("No chart: %s.\n\n", v.compNote)
	}

	p("## Runs\n")
	for _, rv := range v.runs {
		rv.markdown(&b)
	}
	return b.String()
}

// markdown writes the run's section.
func (rv *runView) markdown(b *strings.Builder) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	r := rv.run
	title := mdEscape(r.Name)
	if r.Best {
		title += " ★ best run"
	}
	p("\n### %s\n\n", title)
	p("- Folder: `%s`\n- Status: %s\n", r.Dir, rv.statusLine())
	if r.Status.Error != "" {
		p("- Error: %s\n", mdEscape(oneLine(r.Status.Error)))
	}
	for _, kv := range rv.settings() {
		p("- %s: %s\n", kv[0], mdEscape(kv[1]))
	}
	if line := rv.selectedLine(); line != "" {
		p("\n%s\n", line)
	}
	if len(r.Problems)+len(rv.figNotes) > 0 {
		p("\n**Problems:**\n\n")
		for _, s := range append(append([]string{}, r.Problems...), rv.figNotes...) {
			p("- %s\n", mdEscape(s))
		}
	}
	if len(rv.curves) > 0 {
		p("\n")
		for _, f := range rv.curves {
			p("![%s](%s) ", f.Title, f.PNGFile())
		}
		p("\n")
	}
	if rv.classes != nil {
		p("\nPer-class scores on the validation set at the selected epoch:\n\n")
		mdClassTable(b, rv.classes)
	}
	if rv.confusion != nil {
		p("\n![%s](%s)\n", rv.confusion.Title, rv.confusion.PNGFile())
	}
	if rv.confNote != "" {
		p("\n%s\n", rv.confNote)
	}
	if ev := rv.eval; ev != nil {
		p("\n#### Evaluation on the %s split\n\n%s\n", ev.Split, evalLine(ev))
		if rv.evalClasses != nil {
			p("\n")
			mdClassTable(b, rv.evalClasses)
		}
		if rv.evalFig != nil {
			p("\n![%s](%s)\n", rv.evalFig.Title, rv.evalFig.PNGFile())
		}
	}
	rv.markdownGallery(b)
}

// mdClassTable writes a classification report as a Markdown table.
func mdClassTable(b *strings.Builder, cr *ClassReport) {
	fmt.Fprintf(b, "| class | precision | recall | f1-score | support |\n|---|---:|---:|---:|---:|\n")
	row := func(s ClassScore) {
		fmt.Fprintf(b, "| %s | %.2f | %.2f | %.2f | %d |\n", mdEscape(s.Class), s.Precision, s.Recall, s.F1, s.Support)
	}
	for _, s := range cr.Classes {
		row(s)
	}
	if cr.Total > 0 {
		fmt.Fprintf(b, "| accuracy | | | %.2f | %d |\n", cr.Accuracy, cr.Total)
	}
	if cr.MacroAvg.Class != "" {
		row(cr.MacroAvg)
		row(cr.WeightedAvg)
	}
}

// mdEscape keeps text from breaking a Markdown table or starting markup.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "*", `\*`, "_", `\_`, "`", "\\`", "<", "&lt;", "\n", " ").Replace(s)
}

// oneLine folds a multi-line message (an error) onto one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
