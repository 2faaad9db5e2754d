package app

import (
	"fmt"
	"io"
	"sort"

	"github.com/kfash-tf/kfash-tf/app/report"
	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/internal/heatmap"
)

// The report's gallery: per run, the validation images its best checkpoint
// gets most confidently wrong and a few it gets right per class, each with
// the Grad-CAM overlay `kfash-tf explain` draws. It is computed here, with
// TensorFlow, and handed to app/report as PNG bytes and labels.

const (
	galleryRightPerClass = 2  // right answers shown per class
	galleryBatch         = 32 // images per prediction batch
)

// galleryCandidate is a validation image's prediction, before choosing.
type galleryCandidate struct {
	path        string
	truth, pred int
	prob        float32 // of pred
}

// galleryFunc returns the report's gallery builder: up to wrong mistakes
// per run, on the validation split of data ("" for each run's own dataset,
// from its config.json). Notes go to log.
func galleryFunc(wrong int, data string, log io.Writer) report.GalleryFunc {
	return func(r *report.Run) (*report.Gallery, error) {
		if r.SelectedRow() == nil {
			return nil, nil // no finished epoch: no checkpoint to explain
		}
		dir := data
		if dir == "" {
			dir = r.Config.Data
		}
		if dir == "" {
			fmt.Fprintf(log, "report: %s: config.json records no dataset, so no gallery (give --data DIR)\n", r.Name)
			return nil, nil
		}
		return buildGallery(r.Dir, dir, *r.Config, wrong)
	}
}

// buildGallery predicts every validation image of dir with the run's best
// checkpoint, then explains the ones chosen.
func buildGallery(runDir, dir string, cfg runs.Config, wrong int) (*report.Gallery, error) {
	ds, err := augment.Open(dir, augment.OpenOptions{Classes: cfg.Classes})
	if err != nil {
		return nil, err
	}
	split := augment.SplitValidation
	if ds.Layout == augment.LayoutFlat {
		split = augment.SplitAll
	}
	samples, err := ds.Split(split)
	if err != nil {
		return nil, err
	}
	if len(samples) == 0 {
		return nil, fmt.Errorf("%s: no validation images", dir)
	}
	m, err := graphs.OpenServable(runDir, "best", runs.SessionConfig{})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	ex, err := graphs.NewExplainer(m, "")
	if err != nil {
		return nil, err
	}
	cands, skipped, err := predictAll(m, samples)
	if err != nil {
		return nil, err
	}
	g := &report.Gallery{Layer: ex.Layer()}
	if skipped > 0 {
		g.Note = fmt.Sprintf("%d of %d validation images could not be read and are left out.", skipped, len(samples))
	}
	mistakes, right := chooseGallery(cands, wrong, galleryRightPerClass)
	for _, part := range []struct {
		from []galleryCandidate
		to   *[]report.GalleryImage
	}{{mistakes, &g.Wrong}, {right, &g.Right}} {
		for _, c := range part.from {
			im, err := galleryImage(m, ex, cfg.Classes, c)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.path, err)
			}
			*part.to = append(*part.to, im)
		}
	}
	return g, nil
}

// predictAll returns each readable sample's prediction and how many could
// not be read or decoded.
func predictAll(m *graphs.Servable, samples []augment.Sample) ([]galleryCandidate, int, error) {
	k := len(m.Classes())
	var cands []galleryCandidate
	var batch []float32
	var pending []augment.Sample
	skipped := 0
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		probs, err := m.Predict(batch, len(pending))
		if err != nil {
			return err
		}
		for i, s := range pending {
			p := probs[i*k : (i+1)*k]
			best := 0
			for j := range p {
				if p[j] > p[best] {
					best = j
				}
			}
			cands = append(cands, galleryCandidate{path: s.Path, truth: s.Label, pred: best, prob: p[best]})
		}
		batch, pending = batch[:0], pending[:0]
		return nil
	}
	for _, s := range samples {
		img, err := decodeFile(m, s.Path)
		if err != nil {
			skipped++
			continue
		}
		batch = append(batch, img...)
		pending = append(pending, s)
		if len(pending) == galleryBatch {
			if err := flush(); err != nil {
				return nil, 0, err
			}
		}
	}
	return cands, skipped, flush()
}

// chooseGallery picks the wrong most confident mistakes and, per class in
// label order, the perClass most confident right answers. Ties keep the
// dataset's order, so the gallery is the same from one report to the next.
func chooseGallery(cands []galleryCandidate, wrong, perClass int) (mistakes, right []galleryCandidate) {
	sorted := append([]galleryCandidate(nil), cands...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].prob > sorted[j].prob })
	perTruth := map[int][]galleryCandidate{}
	maxLabel := -1
	for _, c := range sorted {
		if c.pred != c.truth {
			if len(mistakes) < wrong {
				mistakes = append(mistakes, c)
			}
		} else if len(perTruth[c.truth]) < perClass {
			perTruth[c.truth] = append(perTruth[c.truth], c)
		}
		maxLabel = max(maxLabel, c.truth)
	}
	for l := 0; l <= maxLabel; l++ {
		right = append(right, perTruth[l]...)
	}
	return mistakes, right
}

// galleryImage explains c's predicted class and draws the overlay.
func galleryImage(m *graphs.Servable, ex *graphs.Explainer, classes []string, c galleryCandidate) (report.GalleryImage, error) {
	img, err := decodeFile(m, c.path)
	if err != nil {
		return report.GalleryImage{}, err
	}
	res, err := ex.Explain(img, 1, nil)
	if err != nil {
		return report.GalleryImage{}, err
	}
	e := res[0]
	im := report.GalleryImage{File: c.path, True: classes[c.truth], Predicted: classes[e.Predicted],
		Probability: float64(e.Probs[e.Predicted])}
	legend := []string{
		fmt.Sprintf("true %s", im.True),
		fmt.Sprintf("predicted %s %.1f%%", im.Predicted, 100*im.Probability),
		fmt.Sprintf("%s %s", ex.Network(), ex.Layer()),
	}
	im.PNG, err = heatmap.OverlayPNG(img, e.Map, e.Size, legend)
	return im, err
}

// decodeFile reads and decodes one image as the servable's input.
func decodeFile(m *graphs.Servable, path string) ([]float32, error) {
	b, err := augment.ReadRegularFile(path)
	if err != nil {
		return nil, err
	}
	return m.DecodeImage(b)
}
