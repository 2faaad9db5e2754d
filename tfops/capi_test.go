package tfops

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	tf "github.com/galeone/tensorflow/tensorflow/go"
)

// vmRSS returns the process's resident set size in bytes, or 0 without /proc.
func vmRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 3 && fields[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func TestFreeReleasesNow(t *testing.T) {
	Free(nil) // skipped
	small, err := tf.NewTensor([]int32{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	Free(small)
	if c := *(*unsafe.Pointer)(unsafe.Pointer(small)); c != nil {
		t.Fatal("the tensor's C handle is still set after Free")
	}
	Free(small) // a second Free is a no-op

	// 32 tensors of 32 MiB, each freed after use: memory stays flat. Left to
	// the finalizers, they would add up to 1 GiB, as nothing here makes the
	// Go heap grow enough to trigger a collection.
	const n = 8 << 20
	v := make([]float32, n)
	before := vmRSS()
	if before == 0 {
		t.Skip("no /proc/self/status")
	}
	for i := 0; i < 32; i++ {
		v[i] = float32(i)
		x, err := Float32Tensor(v, []int64{n})
		if err != nil {
			t.Fatal(err)
		}
		Free(x)
	}
	if grew := vmRSS() - before; grew > 256<<20 {
		t.Errorf("RSS grew by %d MiB over 32 freed 32 MiB tensors", grew>>20)
	}
}
