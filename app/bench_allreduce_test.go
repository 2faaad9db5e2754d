package app

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kfash-tf/kfash-tf/models"
)

func TestBenchAllReducePlanGivesTasksTheSameFlags(t *testing.T) {
	vgg8, _ := models.Get("vgg8")
	dense, _ := models.Get("densenet")
	p := allReducePlan{specs: []models.Spec{vgg8, dense}, runs: 7, perTensor: true, timeout: time.Minute}
	want := []string{"bench", "allreduce", "--networks", "vgg8,densenet", "--runs", "7", "--timeout", "1m0s", "--format", "json", "--per-tensor"}
	if got := p.args(); !reflect.DeepEqual(got, want) {
		t.Errorf("args %q, want %q", got, want)
	}
}

func TestBenchAllReduceTableHasAColumnPerTaskCount(t *testing.T) {
	lines := `{"network":"vgg8","tasks":2,"floats":299667,"tensors":18,"collectives":1,"fused":true,"median_ms":4.4,"runs_ms":[4.4]}
not json: the chief's other output
{"network":"vgg8","tasks":3,"floats":299667,"tensors":18,"collectives":1,"fused":true,"median_ms":6.5,"runs_ms":[6.5]}
`
	res, err := readAllReduceResults(strings.NewReader(lines))
	if err != nil || len(res) != 2 {
		t.Fatalf("read %d results, %v", len(res), err)
	}
	var b strings.Builder
	if err := printAllReduce(&b, res, []int{2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2 tasks", "3 tasks", "4 tasks", "299,667", "4.4 ms", "6.5 ms", "fused"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	if _, err := readAllReduceResults(strings.NewReader("no results\n")); err == nil {
		t.Error("no results read without error")
	}
}
