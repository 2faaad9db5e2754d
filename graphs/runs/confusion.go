package runs

// Confusion is a confusion matrix: Counts[true][predicted].
type Confusion struct {
	Counts [][]int64
}

// NewConfusion returns an empty k×k matrix.
func NewConfusion(k int) *Confusion {
	c := &Confusion{Counts: make([][]int64, k)}
	for i := range c.Counts {
		c.Counts[i] = make([]int64, k)
	}
	return c
}

// Add counts one example.
func (c *Confusion) Add(truth, predicted int) { c.Counts[truth][predicted]++ }

// Total is the number of examples counted.
func (c *Confusion) Total() int64 {
	var n int64
	for _, row := range c.Counts {
		for _, v := range row {
			n += v
		}
	}
	return n
}

// Accuracy is the fraction of examples on the diagonal.
func (c *Confusion) Accuracy() float64 {
	var hit int64
	for i := range c.Counts {
		hit += c.Counts[i][i]
	}
	if n := c.Total(); n > 0 {
		return float64(hit) / float64(n)
	}
	return 0
}

// ClassScores are one class's precision, recall, F1 and support.
type ClassScores struct {
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int64   `json:"support"`
}

// PerClass returns the scores of every class, with sklearn's convention of
// 0 where a ratio is undefined.
func (c *Confusion) PerClass() []ClassScores {
	k := len(c.Counts)
	out := make([]ClassScores, k)
	for i := 0; i < k; i++ {
		var tp, fp, fn int64
		tp = c.Counts[i][i]
		for j := 0; j < k; j++ {
			if j != i {
				fp += c.Counts[j][i]
				fn += c.Counts[i][j]
			}
		}
		s := ClassScores{Support: tp + fn}
		s.Precision = ratio(tp, tp+fp)
		s.Recall = ratio(tp, tp+fn)
		if s.Precision+s.Recall > 0 {
			s.F1 = 2 * s.Precision * s.Recall / (s.Precision + s.Recall)
		}
		out[i] = s
	}
	return out
}

// MacroF1 is the unweighted mean F1 over classes.
func (c *Confusion) MacroF1() float64 {
	per := c.PerClass()
	if len(per) == 0 {
		return 0
	}
	sum := 0.0
	for _, s := range per {
		sum += s.F1
	}
	return sum / float64(len(per))
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
