package report

import (
	"fmt"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// ClassScore is one class's row of a classification report.
type ClassScore struct {
	Class     string  `json:"class"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int64   `json:"support"`
}

// ClassReport is sklearn's classification_report: per-class precision,
// recall, F1 and support, the accuracy and the macro and weighted averages.
type ClassReport struct {
	Classes     []ClassScore `json:"per_class"`
	Accuracy    float64      `json:"accuracy"`
	Total       int64        `json:"support"`
	MacroAvg    ClassScore   `json:"macro_avg"`
	WeightedAvg ClassScore   `json:"weighted_avg"`
}

// checkConfusion reports whether m is a square matrix with one row per
// class and no negative count.
func checkConfusion(m [][]int64, classes int) error {
	if len(m) == 0 {
		return fmt.Errorf("empty confusion matrix")
	}
	if classes > 0 && len(m) != classes {
		return fmt.Errorf("confusion matrix has %d rows for %d classes", len(m), classes)
	}
	for i, row := range m {
		if len(row) != len(m) {
			return fmt.Errorf("confusion matrix row %d has %d columns, want %d", i, len(row), len(m))
		}
		for _, v := range row {
			if v < 0 {
				return fmt.Errorf("confusion matrix row %d has a negative count", i)
			}
		}
	}
	return nil
}

// classNames returns names for k classes: the run's when it has k of them,
// otherwise "class 0", "class 1", ….
func classNames(names []string, k int) []string {
	if len(names) == k {
		return names
	}
	out := make([]string, k)
	for i := range out {
		out[i] = fmt.Sprintf("class %d", i)
	}
	return out
}

// NewClassReport computes the classification report of a confusion matrix
// (rows: true class, columns: predicted) with runs.Confusion's scores.
func NewClassReport(m [][]int64, names []string) ClassReport {
	c := runs.Confusion{Counts: m}
	per := c.PerClass()
	names = classNames(names, len(per))
	r := ClassReport{Accuracy: c.Accuracy(), Total: c.Total()}
	var macro, weighted ClassScore
	for i, s := range per {
		r.Classes = append(r.Classes, ClassScore{Class: names[i], Precision: s.Precision, Recall: s.Recall, F1: s.F1, Support: s.Support})
		macro.Precision += s.Precision
		macro.Recall += s.Recall
		macro.F1 += s.F1
		w := float64(s.Support)
		weighted.Precision += w * s.Precision
		weighted.Recall += w * s.Recall
		weighted.F1 += w * s.F1
	}
	if k := float64(len(per)); k > 0 {
		macro = ClassScore{Class: "macro avg", Precision: macro.Precision / k, Recall: macro.Recall / k, F1: macro.F1 / k, Support: r.Total}
	}
	if n := float64(r.Total); n > 0 {
		weighted = ClassScore{Class: "weighted avg", Precision: weighted.Precision / n, Recall: weighted.Recall / n, F1: weighted.F1 / n, Support: r.Total}
	}
	macro.Class, weighted.Class = "macro avg", "weighted avg"
	r.MacroAvg, r.WeightedAvg = macro, weighted
	return r
}
