package tfops_test

import (
	"math"
	"testing"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"

	"github.com/kfash-tf/kfash-tf/tfops"
)

// initials builds layers on a store initialised by scheme and returns each
// variable's initial values by name.
func initials(t *testing.T, scheme tfops.InitScheme, build func(n *tfops.Net, s *op.Scope)) map[string][]float32 {
	t.Helper()
	s := op.NewScope()
	store := tfops.NewStore(s.SubScope("vars"), 7).WithInit(scheme)
	build(tfops.NewNet(s.SubScope("train"), store, tfops.Training), s)
	g, err := s.Finalize()
	if err != nil {
		t.Fatal(err)
	}
	sess, err := tf.NewSession(g, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	vars := store.Variables()
	fetches := make([]tf.Output, len(vars))
	for i, v := range vars {
		fetches[i] = v.Initial
	}
	got, err := sess.Run(nil, fetches, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float32{}
	for i, v := range vars {
		out[v.Name] = flatten(got[i].Value())
	}
	return out
}

func input(s *op.Scope, name string, dims ...int64) tf.Output {
	return op.Placeholder(s.SubScope(name), tf.Float, op.PlaceholderShape(tf.MakeShape(dims...)))
}

// initialValues builds a 3×3 conv (16 → 64 channels, with bias) and a dense
// layer (256 → 128) under scheme.
func initialValues(t *testing.T, scheme tfops.InitScheme) map[string][]float32 {
	return initials(t, scheme, func(n *tfops.Net, s *op.Scope) {
		n.Conv2D("conv", input(s, "x", -1, 8, 8, 16), tfops.Conv{Filters: 64, Kernel: 3, Pad: 1, Bias: true})
		n.Dense("dense", input(s, "h", -1, 256), 128)
	})
}

func flatten(v interface{}) []float32 {
	switch x := v.(type) {
	case float32:
		return []float32{x}
	case []float32:
		return x
	case [][]float32:
		var out []float32
		for _, r := range x {
			out = append(out, r...)
		}
		return out
	case [][][][]float32:
		var out []float32
		for _, a := range x {
			for _, b := range a {
				for _, c := range b {
					out = append(out, c...)
				}
			}
		}
		return out
	}
	return nil
}

func stats(v []float32) (std, maxAbs float64) {
	var sum, sq float64
	for _, x := range v {
		sum += float64(x)
		sq += float64(x) * float64(x)
		maxAbs = math.Max(maxAbs, math.Abs(float64(x)))
	}
	n := float64(len(v))
	return math.Sqrt(sq/n - (sum/n)*(sum/n)), maxAbs
}

// Each scheme draws kernels with its distribution's spread and bound (fan_in
// 3·3·16 = 144 and fan_out 3·3·64 = 576 for the conv; 256 and 128 for the
// dense layer) and its biases: PyTorch's U(±1/√fan_in), zero otherwise.
func TestInitSchemes(t *testing.T) {
	uniformStd := func(bound float64) float64 { return bound / math.Sqrt(3) }
	cases := []struct {
		scheme                tfops.InitScheme
		convStd, denseStd     float64
		convBound, denseBound float64 // 0: unbounded (normal)
		zeroBias              bool
	}{
		{tfops.InitTorch, uniformStd(1 / 12.0), uniformStd(1 / 16.0), 1 / 12.0, 1 / 16.0, false},
		{"", uniformStd(1 / 12.0), uniformStd(1 / 16.0), 1 / 12.0, 1 / 16.0, false},
		{tfops.InitGlorot, uniformStd(math.Sqrt(6.0 / 720)), uniformStd(math.Sqrt(6.0 / 384)), math.Sqrt(6.0 / 720), math.Sqrt(6.0 / 384), true},
		{tfops.InitHe, math.Sqrt(2.0 / 144), math.Sqrt(2.0 / 256), 0, 0, true},
	}
	for _, c := range cases {
		t.Run(string(c.scheme), func(t *testing.T) {
			v := initialValues(t, c.scheme)
			for _, k := range []struct {
				name       string
				std, bound float64
				fanIn      float64
			}{{"conv", c.convStd, c.convBound, 144}, {"dense", c.denseStd, c.denseBound, 256}} {
				std, maxAbs := stats(v[k.name+"/kernel"])
				if math.Abs(std-k.std) > 0.05*k.std {
					t.Errorf("%s kernel std %.5f, want %.5f", k.name, std, k.std)
				}
				if k.bound > 0 && maxAbs > k.bound {
					t.Errorf("%s kernel max |w| %.5f beyond the bound %.5f", k.name, maxAbs, k.bound)
				}
				bias := v[k.name+"/bias"]
				_, bMax := stats(bias)
				switch {
				case c.zeroBias && bMax != 0:
					t.Errorf("%s bias max |b| %g, want zeros", k.name, bMax)
				case !c.zeroBias && (bMax == 0 || bMax > 1/math.Sqrt(k.fanIn)):
					t.Errorf("%s bias max |b| %g, want nonzero within U(±1/√%v)", k.name, bMax, k.fanIn)
				}
			}
		})
	}
}

// A network's own kernel choice (ResNet's He fan-out) holds under InitTorch
// only: the other schemes initialise every layer their way.
func TestInitSchemeOverridesOwnChoice(t *testing.T) {
	for _, c := range []struct {
		scheme tfops.InitScheme
		std    float64
	}{{tfops.InitTorch, math.Sqrt(2.0 / 576)}, {tfops.InitGlorot, math.Sqrt(6.0/720) / math.Sqrt(3)}} {
		v := initials(t, c.scheme, func(n *tfops.Net, s *op.Scope) {
			n.Conv2D("conv", input(s, "x", -1, 8, 8, 16), tfops.Conv{Filters: 64, Kernel: 3, Pad: 1, Init: tfops.HeFanOut})
		})
		if std, _ := stats(v["conv/kernel"]); math.Abs(std-c.std) > 0.05*c.std {
			t.Errorf("%s: kernel std %.5f, want %.5f", c.scheme, std, c.std)
		}
	}
}

func TestParseInitScheme(t *testing.T) {
	for in, want := range map[string]tfops.InitScheme{"": tfops.InitTorch, "torch": tfops.InitTorch, "glorot": tfops.InitGlorot, "he": tfops.InitHe} {
		if got, err := tfops.ParseInitScheme(in); err != nil || got != want {
			t.Errorf("ParseInitScheme(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := tfops.ParseInitScheme("xavier"); err == nil {
		t.Error("ParseInitScheme(xavier) accepted an unknown scheme")
	}
}
