package runs

import "encoding/json"

// Selection rules for the "best" checkpoint (Config.Select).
const (
	SelectValAcc  = "val_acc"  // the study's rule: the first epoch with the highest validation accuracy
	SelectValLoss = "val_loss" // the lowest validation loss
)

// LoopState is where a run stands: what a checkpoint records besides the
// variables, so that a resumed run continues exactly.
type LoopState struct {
	Epoch     int     `json:"epoch"`      // epochs completed
	Step      int64   `json:"step"`       // optimisation steps completed
	BestEpoch int     `json:"best_epoch"` // 1-based epoch of the best checkpoint; 0: none yet
	Best      float64 `json:"best"`       // its selection metric
	SinceBest int     `json:"since_best"` // epochs since the best one (early stopping)
	// A run interrupted inside an epoch records how far it got, so that the
	// resumed run skips those batches and the epoch's figures still add up.
	BatchesDone int     `json:"batches_done"`
	LossSum     float64 `json:"loss_sum"` // Σ batch-mean loss × batch size, this epoch so far
	Correct     int64   `json:"correct"`
	Seen        int64   `json:"seen"`
}

// EpochResult is one row of metrics.csv and metrics.jsonl. Its float
// fields may be NaN or infinite (a diverged run): see the package
// documentation for how they are written.
type EpochResult struct {
	Epoch        int     `json:"epoch"`
	Step         int64   `json:"step"`
	LR           float64 `json:"lr"`
	TrainLoss    float64 `json:"train_loss"`
	TrainAcc     float64 `json:"train_acc"`
	ValLoss      float64 `json:"val_loss"`
	ValAcc       float64 `json:"val_acc"`
	ValMacroF1   float64 `json:"val_macro_f1"`
	Seconds      float64 `json:"epoch_seconds"`
	ImagesPerSec float64 `json:"images_per_sec"`
	Skipped      int     `json:"skipped_files"`
	Best         bool    `json:"best"`
	// ValConfusion is the validation confusion matrix (rows: true class,
	// columns: predicted), kept so that a report can draw any epoch's
	// matrix and per-class table without evaluating again.
	ValConfusion [][]int64 `json:"val_confusion,omitempty"`
}

// epochRow is EpochResult as metrics.jsonl spells it: the same keys in the
// same order (so a finite row is byte for byte what encoding/json writes
// for EpochResult), with every float a jsonFloat. The fields are listed
// again rather than derived by reflection to keep that order;
// TestEpochResultJSON fails if a field of EpochResult is missing here.
type epochRow struct {
	Epoch        int       `json:"epoch"`
	Step         int64     `json:"step"`
	LR           jsonFloat `json:"lr"`
	TrainLoss    jsonFloat `json:"train_loss"`
	TrainAcc     jsonFloat `json:"train_acc"`
	ValLoss      jsonFloat `json:"val_loss"`
	ValAcc       jsonFloat `json:"val_acc"`
	ValMacroF1   jsonFloat `json:"val_macro_f1"`
	Seconds      jsonFloat `json:"epoch_seconds"`
	ImagesPerSec jsonFloat `json:"images_per_sec"`
	Skipped      int       `json:"skipped_files"`
	Best         bool      `json:"best"`
	ValConfusion [][]int64 `json:"val_confusion,omitempty"`
}

// MarshalJSON writes non-finite figures as the strings "NaN", "+Inf" and
// "-Inf" (JSON has no such numbers); finite rows are unchanged.
func (e EpochResult) MarshalJSON() ([]byte, error) {
	return json.Marshal(epochRow{
		Epoch: e.Epoch, Step: e.Step, LR: jsonFloat(e.LR),
		TrainLoss: jsonFloat(e.TrainLoss), TrainAcc: jsonFloat(e.TrainAcc),
		ValLoss: jsonFloat(e.ValLoss), ValAcc: jsonFloat(e.ValAcc), ValMacroF1: jsonFloat(e.ValMacroF1),
		Seconds: jsonFloat(e.Seconds), ImagesPerSec: jsonFloat(e.ImagesPerSec),
		Skipped: e.Skipped, Best: e.Best, ValConfusion: e.ValConfusion,
	})
}

// UnmarshalJSON reads what MarshalJSON writes, and the rows of an older
// kfash-tf, which wrote -1 for a non-finite figure (read back as -1).
func (e *EpochResult) UnmarshalJSON(data []byte) error {
	var r epochRow
	if err := json.Unmarshal(data, &r); err != nil {
		return err
	}
	*e = EpochResult{
		Epoch: r.Epoch, Step: r.Step, LR: float64(r.LR),
		TrainLoss: float64(r.TrainLoss), TrainAcc: float64(r.TrainAcc),
		ValLoss: float64(r.ValLoss), ValAcc: float64(r.ValAcc), ValMacroF1: float64(r.ValMacroF1),
		Seconds: float64(r.Seconds), ImagesPerSec: float64(r.ImagesPerSec),
		Skipped: r.Skipped, Best: r.Best, ValConfusion: r.ValConfusion,
	}
	return nil
}
