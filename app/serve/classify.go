package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/kfash-tf/kfash-tf/graphs"
)

// /v1/classify: multipart uploads, for people (the form at / posts here)
// and scripts that have files rather than JSON.

// classifyField is the form field of the uploaded files.
const classifyField = "image"

// classifyResult is one file's answer of /v1/classify.
type classifyResult struct {
	File          string       `json:"file"`
	Class         string       `json:"class"`
	Probabilities orderedProbs `json:"probabilities"`
}

// orderedProbs is a class → probability object whose keys keep the
// model's class order (a Go map would sort them).
type orderedProbs struct {
	names []string
	probs []float32
}

// MarshalJSON writes the object with its keys in class order.
func (o orderedProbs) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, n := range o.names {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(n)
		v, err := json.Marshal(o.probs[i])
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// handleClassify answers a multipart/form-data upload of one or more files
// in the field "image" with one result per file.
func (s *Server) handleClassify(w *requestLog, r *http.Request) {
	release, ok := s.admit(w)
	if !ok {
		return
	}
	defer release()
	ctx, cancel := s.requestContext(r)
	defer cancel()
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		respondError(w, httpErrorf(http.StatusUnsupportedMediaType, "send multipart/form-data with the image files in the field %q (got Content-Type %q)", classifyField, r.Header.Get("Content-Type")))
		return
	}
	if r.ContentLength > s.cfg.MaxBody {
		respondError(w, s.tooLarge(r.ContentLength))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
	mr, err := r.MultipartReader()
	if err != nil {
		respondError(w, httpErrorf(http.StatusBadRequest, "reading the multipart body: %v", err))
		return
	}
	var names []string
	var images []imageInput
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			respondError(w, s.tooLarge(-1))
			return
		}
		if err != nil {
			respondError(w, httpErrorf(http.StatusBadRequest, "reading the multipart body: %v", err))
			return
		}
		if part.FormName() != classifyField {
			io.Copy(io.Discard, part)
			continue
		}
		if len(images) == s.cfg.MaxInstances {
			respondError(w, s.tooManyInstances("more than "+strconv.Itoa(s.cfg.MaxInstances)))
			return
		}
		data, err := io.ReadAll(part)
		if errors.As(err, &mbe) {
			respondError(w, s.tooLarge(-1))
			return
		}
		if err != nil {
			respondError(w, httpErrorf(http.StatusBadRequest, "reading %q: %v", part.FileName(), err))
			return
		}
		name := part.FileName()
		if name == "" {
			name = fmt.Sprintf("image %d", len(names))
		}
		if len(data) == 0 {
			respondError(w, httpErrorf(http.StatusBadRequest, "%s: empty file", name))
			return
		}
		names = append(names, name)
		images = append(images, imageInput{encoded: data})
	}
	if len(images) == 0 {
		respondError(w, httpErrorf(http.StatusBadRequest, "no file in the form field %q", classifyField))
		return
	}
	w.images = len(images)
	herr := s.checkImages(images)
	var probs []float32
	if herr == nil {
		probs, herr = s.predict(ctx, images)
	}
	if herr != nil {
		if herr.image >= 0 {
			herr.msg = names[herr.image] + ": " + herr.detail // the file, not its index
		}
		respondError(w, herr)
		return
	}
	k := len(s.classes)
	out := make([]classifyResult, len(images))
	for i := range out {
		p := probs[i*k : (i+1)*k]
		out[i] = classifyResult{File: names[i], Class: s.classes[graphs.Argmax(p)], Probabilities: orderedProbs{names: s.classes, probs: p}}
	}
	respondJSON(w, http.StatusOK, out)
}
