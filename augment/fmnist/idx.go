// This file holds the reader of IDX files, the format of MNIST and
// Fashion-MNIST.

package fmnist

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/kfash-tf/kfash-tf/augment"
)

// IDX magic numbers: unsigned bytes with three dimensions (images) and one
// dimension (labels), as in MNIST and Fashion-MNIST.
const (
	ImagesMagic = 0x00000803
	LabelsMagic = 0x00000801
)

// Images is the content of an IDX3 image file: Count images of Rows×Cols
// gray pixels (0 black … 255 white), stored row by row, image after image.
type Images struct {
	Count, Rows, Cols int
	Pixels            []byte
}

// Image returns the pixels of image i (Rows×Cols bytes, shared with Pixels).
func (m *Images) Image(i int) []byte {
	n := m.Rows * m.Cols
	return m.Pixels[i*n : (i+1)*n]
}

// FindIDX returns the path of the IDX file base in dir, either base itself or
// base+".gz", preferring the uncompressed one.
func FindIDX(dir, base string) (string, error) {
	for _, name := range []string{base, base + ".gz"} {
		p := filepath.Join(dir, name)
		if info, err := os.Stat(p); err == nil && !info.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("fmnist: %s: no %s or %s.gz", dir, base, base)
}

// readIDX reads the whole file, gunzipping it when it starts with the gzip
// signature (whatever its name), and checks its magic number. It returns the
// dimensions and the data after them.
func readIDX(path string, magic uint32, ndims int) ([]int, []byte, error) {
	f, err := augment.OpenRegularFile(path) // a FIFO named like an IDX file must not hang the import
	if err != nil {
		return nil, nil, fmt.Errorf("fmnist: %s: %w", path, err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	var r io.Reader = br
	if sig, _ := br.Peek(2); len(sig) == 2 && sig[0] == 0x1f && sig[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("fmnist: %s: bad gzip data: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	data, err := io.ReadAll(r)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, nil, fmt.Errorf("fmnist: %s: truncated gzip data", path)
		}
		return nil, nil, fmt.Errorf("fmnist: %s: %w", path, err)
	}
	header := 4 * (1 + ndims)
	if len(data) < 4 {
		return nil, nil, fmt.Errorf("fmnist: %s: truncated IDX file: %d bytes, no magic number", path, len(data))
	}
	if got := binary.BigEndian.Uint32(data); got != magic {
		return nil, nil, fmt.Errorf("fmnist: %s: not an IDX %s file: magic number 0x%08x, want 0x%08x",
			path, idxKind(magic), got, magic)
	}
	if len(data) < header {
		return nil, nil, fmt.Errorf("fmnist: %s: truncated IDX header: %d bytes, want %d", path, len(data), header)
	}
	dims := make([]int, ndims)
	want := 1
	for i := range dims {
		dims[i] = int(binary.BigEndian.Uint32(data[4+4*i:]))
		want *= dims[i]
	}
	body := data[header:]
	if len(body) < want {
		return nil, nil, fmt.Errorf("fmnist: %s: truncated IDX data: %d bytes after the header, want %d (dimensions %v)",
			path, len(body), want, dims)
	}
	if len(body) > want {
		return nil, nil, fmt.Errorf("fmnist: %s: %d bytes of trailing data after the %d of dimensions %v",
			path, len(body)-want, want, dims)
	}
	return dims, body, nil
}

func idxKind(magic uint32) string {
	if magic == ImagesMagic {
		return "images (idx3-ubyte)"
	}
	return "labels (idx1-ubyte)"
}

// ReadImages reads an IDX3 unsigned-byte image file, optionally gzipped.
func ReadImages(path string) (*Images, error) {
	dims, body, err := readIDX(path, ImagesMagic, 3)
	if err != nil {
		return nil, err
	}
	return &Images{Count: dims[0], Rows: dims[1], Cols: dims[2], Pixels: body}, nil
}

// ReadLabels reads an IDX1 unsigned-byte label file, optionally gzipped.
func ReadLabels(path string) ([]byte, error) {
	_, body, err := readIDX(path, LabelsMagic, 1)
	return body, err
}

// ReadPair reads an image file and its label file and checks that they
// hold as many items, and that every label is below numClasses (when > 0).
func ReadPair(imagesPath, labelsPath string, numClasses int) (*Images, []byte, error) {
	imgs, err := ReadImages(imagesPath)
	if err != nil {
		return nil, nil, err
	}
	labels, err := ReadLabels(labelsPath)
	if err != nil {
		return nil, nil, err
	}
	if len(labels) != imgs.Count {
		return nil, nil, fmt.Errorf("fmnist: %s has %d images but %s has %d labels",
			imagesPath, imgs.Count, labelsPath, len(labels))
	}
	if numClasses > 0 {
		for i, l := range labels {
			if int(l) >= numClasses {
				return nil, nil, fmt.Errorf("fmnist: %s: label %d of item %d is not below %d", labelsPath, l, i, numClasses)
			}
		}
	}
	return imgs, labels, nil
}
