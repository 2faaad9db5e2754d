package app

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// progress shows training progress: a redrawn bar with ETA and images/s on
// a terminal, a plain log line every tenth of an epoch otherwise (CI logs,
// files).
type progress struct {
	w        io.Writer
	tty      bool
	epochs   int
	lastLine time.Time
	lastTick int
}

func newProgress(w io.Writer, epochs int) *progress {
	return &progress{w: w, tty: isTerminal(w), epochs: epochs}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (p *progress) step(s graphs.StepInfo) {
	ips := float64(s.Images) / s.Elapsed.Seconds()
	var eta time.Duration
	if s.Batch > 0 && s.Batches > 0 {
		eta = time.Duration(float64(s.Elapsed) / float64(s.Batch) * float64(s.Batches-s.Batch))
	}
	if p.tty {
		if time.Since(p.lastLine) < 100*time.Millisecond && s.Batch != s.Batches {
			return
		}
		p.lastLine = time.Now()
		const width = 28
		done := width
		if s.Batches > 0 {
			done = width * s.Batch / s.Batches
		}
		bar := strings.Repeat("█", done) + strings.Repeat("·", width-done)
		fmt.Fprintf(p.w, "\repoch %d/%d %s %d/%d loss %.4f %.1f img/s ETA %s   ", s.Epoch, p.epochs, bar, s.Batch, s.Batches, s.Loss, ips, eta.Round(time.Second))
		return
	}
	tick := 0
	if s.Batches > 0 {
		tick = 10 * s.Batch / s.Batches
	}
	if s.Batch == 1 || tick != p.lastTick {
		p.lastTick = tick
		fmt.Fprintf(p.w, "epoch %d/%d batch %d/%d loss %.4f %.1f img/s ETA %s\n", s.Epoch, p.epochs, s.Batch, s.Batches, s.Loss, ips, eta.Round(time.Second))
	}
}

func (p *progress) epoch(r runs.EpochResult) {
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	mark := ""
	if r.Best {
		mark = "  *best"
	}
	fmt.Fprintf(p.w, "epoch %d/%d  train loss %.4f acc %.4f | val loss %.4f acc %.4f macro-F1 %.4f | lr %.3g | %.1fs %.1f img/s%s\n",
		r.Epoch, p.epochs, r.TrainLoss, r.TrainAcc, r.ValLoss, r.ValAcc, r.ValMacroF1, r.LR, r.Seconds, r.ImagesPerSec, mark)
}
