// Package report turns run folders written by `kfash-tf train` into the
// study's model-selection report: a table of runs with the selected epoch of
// each and the best run marked, learning curves, confusion matrices and
// per-class scores, rendered as Markdown, a self-contained HTML page and JSON,
// with every chart drawn in Go (gonum/plot) as PNG and SVG.
//
// Collecting never fails on a bad run: a run folder with an unreadable
// config.json, garbage lines in metrics.jsonl, no epochs yet or a failed
// status appears in the table with its status and the problems found.
package report
