package tfops

import (
	"bytes"
	"fmt"
	"unsafe"

	tf "github.com/galeone/tensorflow/tensorflow/go"
)

// Float32Tensor makes a float32 tensor of the given shape from v with one
// copy (into TensorFlow's memory) and no reflection, so feeding a batch
// costs a memcpy.
func Float32Tensor(v []float32, shape []int64) (*tf.Tensor, error) {
	if n := numElements(shape); n != int64(len(v)) {
		return nil, fmt.Errorf("tensor of shape %v needs %d values, got %d", shape, n, len(v))
	}
	return tf.ReadTensor(tf.Float, shape, bytes.NewReader(float32Bytes(v)))
}

// Float32s returns the values of a float32 tensor in row-major order.
func Float32s(t *tf.Tensor) ([]float32, error) {
	if t.DataType() != tf.Float {
		return nil, fmt.Errorf("tensor is %v, not float32", t.DataType())
	}
	out := make([]float32, numElements(t.Shape()))
	var buf bytes.Buffer
	buf.Grow(len(out) * 4)
	if _, err := t.WriteContentsTo(&buf); err != nil {
		return nil, err
	}
	copy(float32Bytes(out), buf.Bytes())
	return out, nil
}

// float32Bytes views v as its bytes (little-endian on every platform
// TensorFlow supports).
func float32Bytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*4)
}

func numElements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}
