package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// Row is a run's line of the model-selection table, as written to JSON.
// Accuracies and F1 are fractions; a null number means "not known" (no
// epoch yet, an unreadable config, a NaN).
type Row struct {
	Name            string           `json:"name"`
	Dir             string           `json:"dir"`
	Status          string           `json:"status"`
	Error           string           `json:"error,omitempty"`
	Network         string           `json:"network"`
	Hyperparameters *Hyperparameters `json:"hyperparameters"`
	EpochsDone      int              `json:"epochs_done"`
	Epochs          int              `json:"epochs"`
	SelectedEpoch   int              `json:"selected_epoch"` // 0: none
	TrainAcc        *float64         `json:"train_acc"`
	ValAcc          *float64         `json:"val_acc"`
	ValMacroF1      *float64         `json:"val_macro_f1"`
	ValLoss         *float64         `json:"val_loss"` // mean per example
	Params          *int64           `json:"params"`   // trainable parameters
	Best            bool             `json:"best"`
	Problems        []string         `json:"problems,omitempty"`
	Gallery         *Gallery         `json:"gallery,omitempty"` // its images, without the overlays
}

// Hyperparameters are the settings of a run the table shows.
type Hyperparameters struct {
	BatchSize   int      `json:"batch_size"`
	Optimizer   string   `json:"optimizer"`
	LR          float64  `json:"lr"`
	Schedule    string   `json:"schedule"`
	WeightDecay float64  `json:"weight_decay"`
	Dropout     *float64 `json:"dropout"` // null: the network has no dropout
	Augment     string   `json:"augment"`
	Select      string   `json:"select"`
	Seed        int64    `json:"seed"`
}

// Rows returns the table's rows in the report's run order.
func (rep *Report) Rows() []Row {
	rows := make([]Row, 0, len(rep.Runs))
	for _, r := range rep.Runs {
		rows = append(rows, r.Row())
	}
	return rows
}

// Row returns the run's table row.
func (r *Run) Row() Row {
	row := Row{Name: r.Name, Dir: r.Dir, Status: r.State, Error: r.Status.Error, EpochsDone: r.EpochsDone,
		Epochs: r.Status.Epochs, Best: r.Best, Problems: r.Problems, Gallery: r.Gallery}
	if c := r.Config; c != nil {
		row.Network = c.Network
		row.Epochs = c.Epochs
		h := &Hyperparameters{BatchSize: c.BatchSize, Optimizer: c.Optimizer.Name, LR: c.Schedule.Base,
			Schedule: c.Schedule.Kind, WeightDecay: c.Optimizer.WeightDecay, Augment: c.Augment, Select: r.Rule, Seed: c.Seed}
		if r.Net == nil || r.Net.HasDropout {
			d := roundFloat32(c.Dropout)
			h.Dropout = &d
		}
		row.Hyperparameters = h
	}
	if r.Net != nil {
		p := r.Net.Params
		row.Params = &p
	}
	if sel := r.SelectedRow(); sel != nil {
		row.SelectedEpoch = sel.Epoch
		row.TrainAcc = validPtr(sel.TrainAcc)
		row.ValAcc = validPtr(sel.ValAcc)
		row.ValMacroF1 = validPtr(sel.ValMacroF1)
		row.ValLoss = validPtr(sel.ValLoss)
	}
	return row
}

// roundFloat32 widens a float32 without its binary noise (0.8 stays 0.8).
func roundFloat32(v float32) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(v), 'g', -1, 32), 64)
	return f
}

// validPtr returns &v, or nil for NaN, an infinity or the -1 older runs
// wrote in their place.
func validPtr(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return nil
	}
	return &v
}

// dash is what a cell shows for a value that is not known.
const dash = "–"

// The cells of a row as the table shows them.

func (row Row) optimizerCell() string {
	if row.Hyperparameters == nil {
		return dash
	}
	switch row.Hyperparameters.Optimizer {
	case runs.OptimizerAdam:
		return "Adam"
	case runs.OptimizerAdamW:
		return "AdamW"
	case runs.OptimizerSGD:
		return "SGD"
	case "":
		return dash
	}
	return row.Hyperparameters.Optimizer
}

func (row Row) batchCell() string {
	if row.Hyperparameters == nil || row.Hyperparameters.BatchSize == 0 {
		return dash
	}
	return strconv.Itoa(row.Hyperparameters.BatchSize)
}

func (row Row) lrCell() string {
	h := row.Hyperparameters
	if h == nil || h.LR == 0 {
		return dash
	}
	s := sci(h.LR)
	if h.Schedule != "" && h.Schedule != "constant" {
		s += " " + h.Schedule
	}
	return s
}

func (row Row) weightDecayCell() string {
	if row.Hyperparameters == nil {
		return dash
	}
	return sci(row.Hyperparameters.WeightDecay)
}

func (row Row) dropoutCell() string {
	if row.Hyperparameters == nil || row.Hyperparameters.Dropout == nil {
		return dash
	}
	return strconv.FormatFloat(*row.Hyperparameters.Dropout, 'g', -1, 64)
}

func (row Row) epochCell() string {
	sel := dash
	if row.SelectedEpoch > 0 {
		sel = strconv.Itoa(row.SelectedEpoch)
	}
	if row.Epochs == 0 {
		return sel
	}
	return fmt.Sprintf("%s / %d", sel, row.Epochs)
}

func (row Row) statusCell() string {
	switch row.Status {
	case runs.StateFinished, StateCorrupt:
		return row.Status
	}
	if row.Epochs > 0 {
		return fmt.Sprintf("%s (%d/%d)", row.Status, row.EpochsDone, row.Epochs)
	}
	return row.Status
}

func (row Row) paramsCell() string {
	if row.Params == nil {
		return dash
	}
	return thousands(*row.Params)
}

func (row Row) networkCell() string {
	if row.Network == "" {
		return dash
	}
	return row.Network
}

// percentCell shows a fraction as a percentage with two decimals, as the
// study's table does.
func percentCell(v *float64) string {
	if v == nil {
		return dash
	}
	return fmt.Sprintf("%.2f", 100**v)
}

func decimalCell(v *float64) string {
	if v == nil {
		return dash
	}
	return fmt.Sprintf("%.4f", *v)
}

// sci writes a learning rate or decay the way papers do: 1e-4, 5e-5, 3e-4,
// 2.5e-4, 0.
func sci(v float64) string {
	if v == 0 {
		return "0"
	}
	exp := int(math.Floor(math.Log10(math.Abs(v))))
	if exp >= -2 && exp <= 2 {
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	mant := v / math.Pow(10, float64(exp))
	m := strconv.FormatFloat(mant, 'g', 3, 64)
	if m == "10" { // rounding carried into the next power
		m, exp = "1", exp+1
	}
	return fmt.Sprintf("%se%d", m, exp)
}

// thousands writes n with comma separators: 5,972,467.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Column is one column of the model-selection table.
type Column struct {
	Title   string
	Numeric bool // sorted by number in the HTML table
	Cell    func(Row) string
	// Sort returns the value the HTML table sorts by; nil sorts by Cell.
	Sort func(Row) string
}

// Columns are the model-selection table's columns, in the study's order.
func Columns() []Column {
	num := func(v *float64) string {
		if v == nil {
			return ""
		}
		return strconv.FormatFloat(*v, 'g', -1, 64)
	}
	return []Column{
		{Title: "Run", Cell: func(r Row) string { return r.Name }},
		{Title: "Network", Cell: Row.networkCell},
		{Title: "Batch", Numeric: true, Cell: Row.batchCell},
		{Title: "Optimizer", Cell: Row.optimizerCell},
		{Title: "LR", Numeric: true, Cell: Row.lrCell, Sort: func(r Row) string {
			if r.Hyperparameters == nil {
				return ""
			}
			return num(&r.Hyperparameters.LR)
		}},
		{Title: "Weight decay", Numeric: true, Cell: Row.weightDecayCell, Sort: func(r Row) string {
			if r.Hyperparameters == nil {
				return ""
			}
			return num(&r.Hyperparameters.WeightDecay)
		}},
		{Title: "Dropout", Numeric: true, Cell: Row.dropoutCell, Sort: func(r Row) string {
			if r.Hyperparameters == nil {
				return ""
			}
			return num(r.Hyperparameters.Dropout)
		}},
		{Title: "Epoch", Numeric: true, Cell: Row.epochCell, Sort: func(r Row) string {
			if r.SelectedEpoch == 0 {
				return ""
			}
			return strconv.Itoa(r.SelectedEpoch)
		}},
		{Title: "Train acc %", Numeric: true, Cell: func(r Row) string { return percentCell(r.TrainAcc) }, Sort: func(r Row) string { return num(r.TrainAcc) }},
		{Title: "Val acc %", Numeric: true, Cell: func(r Row) string { return percentCell(r.ValAcc) }, Sort: func(r Row) string { return num(r.ValAcc) }},
		{Title: "Macro F1", Numeric: true, Cell: func(r Row) string { return decimalCell(r.ValMacroF1) }, Sort: func(r Row) string { return num(r.ValMacroF1) }},
		{Title: "Val loss", Numeric: true, Cell: func(r Row) string { return decimalCell(r.ValLoss) }, Sort: func(r Row) string { return num(r.ValLoss) }},
		{Title: "#Params", Numeric: true, Cell: Row.paramsCell, Sort: func(r Row) string {
			if r.Params == nil {
				return ""
			}
			return strconv.FormatInt(*r.Params, 10)
		}},
		{Title: "Status", Cell: Row.statusCell},
	}
}
