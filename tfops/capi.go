package tfops

// The two things kfash-tf needs from TensorFlow's C API that the Go bindings
// do not offer: rewiring an edge of a graph (TF_UpdateEdge) and freeing a
// tensor now rather than when the garbage collector gets to it.

// #cgo LDFLAGS: -ltensorflow
// #include <stdlib.h>
// #include "tensorflow/c/c_api.h"
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	tf "github.com/galeone/tensorflow/tensorflow/go"
)

// The Go bindings keep the C object behind tf.Graph, tf.Operation and
// tf.Tensor unexported, as the first field of each struct. These helpers
// read it and check it against what the bindings report, so a change of
// the bindings' layout fails cleanly instead of corrupting memory.

// cGraph returns the C graph behind g.
func cGraph(g *tf.Graph) (*C.TF_Graph, error) {
	cg := *(**C.TF_Graph)(unsafe.Pointer(g))
	ops := g.Operations()
	if cg == nil || len(ops) == 0 {
		return nil, errors.New("empty graph")
	}
	name := C.CString(ops[0].Name())
	defer C.free(unsafe.Pointer(name))
	if found := C.TF_GraphOperationByName(cg, name); found == nil || found != cOperation(&ops[0]) {
		return nil, errors.New("the TensorFlow Go bindings' Graph layout is not the expected one")
	}
	return cg, nil
}

// cOperation returns the C operation behind op.
func cOperation(op *tf.Operation) *C.TF_Operation {
	return *(**C.TF_Operation)(unsafe.Pointer(op))
}

// graphEditor rewires edges of one graph; the C graph is looked up (and
// the bindings' layout checked, which lists every operation) once.
type graphEditor struct {
	cg *C.TF_Graph
}

func newGraphEditor(g *tf.Graph) (*graphEditor, error) {
	cg, err := cGraph(g)
	if err != nil {
		return nil, err
	}
	return &graphEditor{cg: cg}, nil
}

// updateEdge makes dst read src instead of what it reads now.
func (e *graphEditor) updateEdge(src tf.Output, dst tf.Consumer) error {
	status := C.TF_NewStatus()
	defer C.TF_DeleteStatus(status)
	csrc := C.TF_Output{oper: cOperation(src.Op), index: C.int(src.Index)}
	cdst := C.TF_Input{oper: cOperation(dst.Op), index: C.int(dst.Index)}
	C.TF_UpdateEdge(e.cg, csrc, cdst, status)
	if C.TF_GetCode(status) != C.TF_OK {
		return fmt.Errorf("%s", C.GoString(C.TF_Message(status)))
	}
	return nil
}

// Free releases the memory of tensors now; they must not be used again.
// Nil tensors are skipped.
//
// Tensors made by the Go bindings are freed by a finalizer, which runs only
// after a garbage collection, and Go collects when its own heap grows, not
// TensorFlow's: a training loop that feeds a 35 MB batch per step allocates
// almost nothing on the Go heap, so its fed batches pile up (+60 MB of RSS per
// step measured on vgg8 at batch 128) until the next collection. Freeing the
// feeds after Session.Run keeps memory flat. TensorFlow holds its own
// reference to any buffer it still needs, so freeing the handle is safe
// once Run has returned.
func Free(ts ...*tf.Tensor) {
	for _, t := range ts {
		if t == nil {
			continue
		}
		c := (**C.TF_Tensor)(unsafe.Pointer(t))
		if *c == nil || !sameTensor(*c, t) {
			continue // not the expected layout: leave it to the finalizer
		}
		runtime.SetFinalizer(t, nil)
		C.TF_DeleteTensor(*c)
		*c = nil // a later use fails on a nil pointer, not on freed memory
	}
}

// sameTensor reports whether c describes t (type and shape).
func sameTensor(c *C.TF_Tensor, t *tf.Tensor) bool {
	shape := t.Shape()
	if tf.DataType(C.TF_TensorType(c)) != t.DataType() || int(C.TF_NumDims(c)) != len(shape) {
		return false
	}
	for i, d := range shape {
		if int64(C.TF_Dim(c, C.int(i))) != d {
			return false
		}
	}
	return true
}
