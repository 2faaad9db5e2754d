package tfops

// TensorFlow's in-process gRPC server (TF_NewServer, TF_ServerStart,
// TF_ServerTarget), which the Go bindings do not wrap, and the status code
// behind an error of the bindings, which they keep unexported. Distributed
// training needs both: each process runs one server that its peers' collective
// ops talk to, and a failed collective must be told apart from other errors.

// #include <stdlib.h>
// #include "tensorflow/c/c_api.h"
import "C"

import (
	"errors"
	"fmt"
	"net"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	pb "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// Server is a started TensorFlow server: the process's place in a cluster.
//
// It has no Stop: TensorFlow 2.18's TF_ServerStop fails with "Clean shutdown
// is not currently implemented", TF_ServerJoin then blocks forever and
// TF_DeleteServer aborts the process. A server therefore lives until its
// process ends (os.Exit, or main returning), and a process runs at most one:
// its port stays bound until then.
type Server struct {
	c      *C.TF_Server
	target string
}

// ErrPortInUse is wrapped by StartServer's error when the server's port is
// taken by another process (or by an earlier server of this one).
var ErrPortInUse = errors.New("port in use")

// StartServer creates and starts a server configured by def (a ServerDef:
// the cluster, this task's job and index, the protocol and the default
// session configuration). The server listens on every interface at the
// port its task's address names.
func StartServer(def *pb.ServerDef) (*Server, error) {
	addr := taskAddress(def)
	// TensorFlow's only word for a taken port is "Could not start gRPC
	// server": trying the port first gives the reason. The port is free
	// again when Listen's socket closes, before TensorFlow binds it.
	if _, port, err := net.SplitHostPort(addr); err == nil {
		l, err := net.Listen("tcp", ":"+port)
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("starting the TensorFlow server of %s: %w", addr, ErrPortInUse)
		}
		if err != nil {
			return nil, fmt.Errorf("starting the TensorFlow server of %s: %w", addr, err)
		}
		l.Close()
	}
	data, err := proto.Marshal(def)
	if err != nil {
		return nil, fmt.Errorf("server definition: %w", err)
	}
	status := C.TF_NewStatus()
	defer C.TF_DeleteStatus(status)
	cdata := C.CBytes(data)
	defer C.free(cdata)
	server := C.TF_NewServer(cdata, C.size_t(len(data)), status)
	if err := statusErr(status); err != nil {
		if strings.Contains(err.Error(), "Could not start gRPC server") {
			// Taken between the check above and now.
			return nil, fmt.Errorf("starting the TensorFlow server of %s: %w (%v)", addr, ErrPortInUse, err)
		}
		return nil, fmt.Errorf("starting the TensorFlow server of %s: %w", addr, err)
	}
	C.TF_ServerStart(server, status)
	if err := statusErr(status); err != nil {
		// No TF_DeleteServer: it aborts the process. The unstarted server
		// is left to the process's end.
		return nil, fmt.Errorf("starting the TensorFlow server of %s: %w", addr, err)
	}
	return &Server{c: server, target: C.GoString(C.TF_ServerTarget(server))}, nil
}

// Target is the address a session opens to run graphs on this server
// ("grpc://localhost:PORT").
func (s *Server) Target() string { return s.target }

// taskAddress returns the address def gives its own task, "" if none.
func taskAddress(def *pb.ServerDef) string {
	for _, job := range def.GetCluster().GetJob() {
		if job.GetName() == def.GetJobName() {
			return job.GetTasks()[def.GetTaskIndex()]
		}
	}
	return ""
}

func statusErr(s *C.TF_Status) error {
	if C.TF_GetCode(s) == C.TF_OK {
		return nil
	}
	return errors.New(C.GoString(C.TF_Message(s)))
}

// Code is a TensorFlow status code (tensorflow/c/tf_status.h).
type Code int

// The status codes a failed collective ends with.
const (
	CodeOK               Code = C.TF_OK
	CodeCancelled        Code = C.TF_CANCELLED
	CodeDeadlineExceeded Code = C.TF_DEADLINE_EXCEEDED
	CodeAborted          Code = C.TF_ABORTED
	CodeInternal         Code = C.TF_INTERNAL
	CodeUnavailable      Code = C.TF_UNAVAILABLE
	CodeFailedPrecond    Code = C.TF_FAILED_PRECONDITION
)

// String names the code as TensorFlow does (UNAVAILABLE, ...).
func (c Code) String() string {
	switch c {
	case CodeOK:
		return "OK"
	case CodeCancelled:
		return "CANCELLED"
	case CodeDeadlineExceeded:
		return "DEADLINE_EXCEEDED"
	case CodeAborted:
		return "ABORTED"
	case CodeInternal:
		return "INTERNAL"
	case CodeUnavailable:
		return "UNAVAILABLE"
	case CodeFailedPrecond:
		return "FAILED_PRECONDITION"
	}
	return "code " + strconv.Itoa(int(c))
}

// ErrorCode returns the TensorFlow status code of an error returned by the
// Go bindings (Session.Run and others), looking through wrapping; ok is
// false for any other error. The bindings keep their status type
// unexported: its layout (a pointer to the C status as the first field) is
// checked by the type's name and size before it is read.
func ErrorCode(err error) (c Code, ok bool) {
	for e := err; e != nil; e = errors.Unwrap(e) {
		v := reflect.ValueOf(e)
		if v.Kind() != reflect.Pointer || v.IsNil() {
			continue
		}
		et := v.Type().Elem()
		if et.PkgPath() != "github.com/galeone/tensorflow/tensorflow/go" || et.Name() != "statusError" ||
			et.Kind() != reflect.Struct || et.NumField() != 1 || et.Size() != unsafe.Sizeof(uintptr(0)) {
			continue
		}
		cs := *(**C.TF_Status)(v.UnsafePointer())
		if cs == nil {
			return 0, false
		}
		return Code(C.TF_GetCode(cs)), true
	}
	return 0, false
}
