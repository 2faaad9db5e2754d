package tfops

import (
	"errors"
	"fmt"
	"net"
	"testing"

	pb "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"
)

// A taken port is reported as such, before TensorFlow's own "Could not
// start gRPC server" (and no server is started in the test process: one
// per process, for good).
func TestStartServerPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	def := &pb.ServerDef{
		Cluster:  &pb.ClusterDef{Job: []*pb.JobDef{{Name: "worker", Tasks: map[int32]string{0: addr}}}},
		JobName:  "worker",
		Protocol: "grpc",
	}
	_, err = StartServer(def)
	if !errors.Is(err, ErrPortInUse) || err.Error() != fmt.Sprintf("starting the TensorFlow server of %s: port in use", addr) {
		t.Errorf("StartServer on a taken port: %v", err)
	}
}

func TestErrorCodeOfOtherErrors(t *testing.T) {
	if c, ok := ErrorCode(errors.New("plain")); ok {
		t.Errorf("a plain error has code %v", c)
	}
	if _, ok := ErrorCode(nil); ok {
		t.Error("nil has a code")
	}
	if CodeUnavailable.String() != "UNAVAILABLE" || CodeDeadlineExceeded.String() != "DEADLINE_EXCEEDED" {
		t.Errorf("names %v %v", CodeUnavailable, CodeDeadlineExceeded)
	}
}
