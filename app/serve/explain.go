package serve

import (
	"context"
	"fmt"
	"net/http"

	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/internal/heatmap"
)

// Explanations in :predict: `"explain": true` in the body adds a Grad-CAM
// heat map over each image to its prediction. An explanation runs the
// gradient graph (about three times a forward pass) and draws a PNG, so an
// explained image counts twice against MaxInstances, and explain runs go one
// at a time beside the batcher's.

// explanation is the "explanation" of one instance in the answer.
type explanation struct {
	ClassName   string  `json:"class_name"`  // the class explained: the predicted one
	Probability float32 `json:"probability"` // its probability
	OverlayB64  []byte  `json:"overlay_b64"` // PNG: the heat map over the image at the input size, with a legend
}

// explainWeight is what an explained image counts for against MaxInstances.
const explainWeight = 2

// checkExplain answers whether a request of n images may be explained.
func (s *Server) checkExplain(n int) *httpError {
	if s.explainer == nil {
		return httpErrorf(http.StatusBadRequest, `"explain" is not available for this model: %v`, s.explainErr)
	}
	if n*explainWeight > s.cfg.MaxInstances {
		return httpErrorf(http.StatusRequestEntityTooLarge,
			"the request asks to explain %d images; an explained image counts %d times against the limit of %d per request (%s): split it into several requests",
			n, explainWeight, s.cfg.MaxInstances, flagRef(FlagMaxInstances))
	}
	return nil
}

// explain predicts and explains checked images, MaxBatch at a time:
// decoded in Go (the explain graph takes pixels), then one graph run per
// chunk giving both the probabilities and the maps, so an explained
// request's predictions come from that run rather than the batcher's.
func (s *Server) explain(ctx context.Context, images []imageInput) ([]float32, []explanation, *httpError) {
	k, per := len(s.classes), s.size*s.size*3
	probs := make([]float32, len(images)*k)
	out := make([]explanation, len(images))
	for start := 0; start < len(images); start += s.cfg.MaxBatch {
		end := min(start+s.cfg.MaxBatch, len(images))
		pixels := make([]float32, (end-start)*per)
		for i := start; i < end; i++ {
			dst := pixels[(i-start)*per : (i-start+1)*per]
			if images[i].encoded == nil {
				copy(dst, images[i].pixels)
				continue
			}
			if err := s.decodeInto(ctx, images[i].encoded, dst); err != nil {
				if ctx.Err() != nil {
					return nil, nil, s.runError(ctx, err, false)
				}
				return nil, nil, imageError(i, err)
			}
		}
		res, err := s.explainChunk(ctx, pixels, end-start)
		if err != nil {
			return nil, nil, s.runError(ctx, err, false)
		}
		for j, e := range res {
			i := start + j
			copy(probs[i*k:(i+1)*k], e.Probs)
			name, p := s.classes[e.Target], e.Probs[e.Target]
			legend := []string{fmt.Sprintf("%s %.1f%%", name, 100*p), s.explainer.Network() + " " + s.explainer.Layer()}
			png, err := heatmap.OverlayPNG(pixels[j*per:(j+1)*per], e.Map, e.Size, legend)
			if err != nil {
				return nil, nil, httpErrorf(http.StatusInternalServerError, "drawing explanation %d: %v", i, err)
			}
			out[i] = explanation{ClassName: name, Probability: p, OverlayB64: png}
		}
	}
	return probs, out, nil
}

// explainChunk runs the explain graph on n images once the explain slot is
// free: one explain run at a time bounds the memory of the gradients.
func (s *Server) explainChunk(ctx context.Context, pixels []float32, n int) ([]graphs.Explanation, error) {
	select {
	case s.explaining <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	defer func() { <-s.explaining }()
	return s.explainer.Explain(pixels, n, nil)
}
