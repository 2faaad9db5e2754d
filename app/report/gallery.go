package report

import (
	"encoding/base64"
	"fmt"
	"html/template"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/kfash-tf/kfash-tf/internal/atomicfile"
)

// GalleryImage is one validation image in a run's gallery: what the run
// said about it and its Grad-CAM overlay, drawn by the caller (this
// package stays free of TensorFlow).
type GalleryImage struct {
	File        string  `json:"file"`        // the validation image
	True        string  `json:"true"`        // its class
	Predicted   string  `json:"predicted"`   // the run's answer
	Probability float64 `json:"probability"` // of the predicted class
	PNG         []byte  `json:"-"`           // the overlay, a PNG
}

// Gallery is a run's validation images worth looking at: its most
// confident mistakes and a few confident right answers per class.
type Gallery struct {
	Layer string         `json:"layer,omitempty"` // the layer Grad-CAM explains
	Wrong []GalleryImage `json:"wrong"`           // most confident first
	Right []GalleryImage `json:"right"`           // by class, most confident first within each
	Note  string         `json:"note,omitempty"`  // why the gallery is missing or short; shown as is
}

// GalleryFunc computes a run's gallery; the CLI's needs TensorFlow. It is
// called for runs with a config; nil, nil means no gallery section.
type GalleryFunc func(r *Run) (*Gallery, error)

// addGallery fills r.Gallery; a failure becomes the gallery's note rather
// than a run problem: the run itself is fine.
func addGallery(r *Run, f GalleryFunc) {
	if f == nil || r.Config == nil {
		return
	}
	g, err := f(r)
	if err != nil {
		g = &Gallery{Note: "No gallery: " + err.Error()}
	}
	r.Gallery = g
}

// galleryFile is the overlay's file relative to the report folder.
func galleryFile(slug, kind string, i int) string {
	return path.Join("runs", slug, "gallery", fmt.Sprintf("%s-%d.png", kind, i+1))
}

// writeGalleries writes every overlay under runs/SLUG/gallery/ for the
// Markdown page, which links them; it returns the number of files.
func (v *view) writeGalleries(dir string) (int, error) {
	n := 0
	for _, rv := range v.runs {
		g := rv.run.Gallery
		if g == nil {
			continue
		}
		for _, part := range []struct {
			kind string
			imgs []GalleryImage
		}{{"wrong", g.Wrong}, {"right", g.Right}} {
			for i, im := range part.imgs {
				if len(im.PNG) == 0 {
					continue
				}
				p := filepath.Join(dir, filepath.FromSlash(galleryFile(rv.run.Slug, part.kind, i)))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					return n, err
				}
				if err := atomicfile.WriteFile(p, im.PNG); err != nil {
					return n, err
				}
				n++
			}
		}
	}
	return n, nil
}

// htmlGallery is a gallery for the page, its overlays inlined as data URIs
// so that index.html stays one self-contained file.
type htmlGallery struct {
	Layer, Note  string
	Wrong, Right []htmlGalleryImage
}

type htmlGalleryImage struct {
	GalleryImage
	Src     template.HTMLAttr // src="data:…": as an attribute, the base64 is not entity-escaped
	Caption string
}

func newHTMLGallery(g *Gallery) *htmlGallery {
	if g == nil {
		return nil
	}
	conv := func(imgs []GalleryImage) []htmlGalleryImage {
		out := make([]htmlGalleryImage, len(imgs))
		for i, im := range imgs {
			out[i] = htmlGalleryImage{GalleryImage: im, Caption: galleryCaption(im),
				// #nosec: base64 of our own PNG bytes, nothing to escape.
				Src: template.HTMLAttr(`src="data:image/png;base64,` + base64.StdEncoding.EncodeToString(im.PNG) + `"`)}
		}
		return out
	}
	return &htmlGallery{Layer: g.Layer, Note: g.Note, Wrong: conv(g.Wrong), Right: conv(g.Right)}
}

func galleryCaption(im GalleryImage) string {
	return fmt.Sprintf("true %s · predicted %s %.1f%%", im.True, im.Predicted, 100*im.Probability)
}

// markdownGallery writes the run's gallery section.
func (rv *runView) markdownGallery(b *strings.Builder) {
	g := rv.run.Gallery
	if g == nil {
		return
	}
	fmt.Fprintf(b, "\n#### Validation gallery\n\n")
	if g.Note != "" {
		fmt.Fprintf(b, "%s\n", mdEscape(g.Note))
	}
	for _, part := range []struct {
		kind, title string
		imgs        []GalleryImage
	}{{"wrong", "Most confident mistakes", g.Wrong}, {"right", "Right answers", g.Right}} {
		if len(part.imgs) == 0 {
			continue
		}
		fmt.Fprintf(b, "\n%s (Grad-CAM at %s):\n\n", part.title, mdEscape(g.Layer))
		for i, im := range part.imgs {
			fmt.Fprintf(b, "- `%s`: %s ![](%s)\n", im.File, mdEscape(galleryCaption(im)), galleryFile(rv.run.Slug, part.kind, i))
		}
	}
}
