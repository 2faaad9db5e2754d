package tfops

import (
	"fmt"
	"hash/fnv"
	"math"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"
)

// Role says what a variable is for. Optimizers use it (no weight decay on
// biases and batch-norm parameters when asked), checkpoints record it.
type Role string

// Variable roles.
const (
	RoleKernel     Role = "kernel"      // convolution or dense weights
	RoleBias       Role = "bias"        // additive bias
	RoleScale      Role = "gamma"       // batch-norm scale
	RoleOffset     Role = "beta"        // batch-norm offset
	RoleMovingMean Role = "moving_mean" // batch-norm moving mean (not trained)
	RoleMovingVar  Role = "moving_var"  // batch-norm moving variance (not trained)
	RoleState      Role = "state"       // optimizer slots, counters
)

// Init describes how a variable is initialised.
type Init struct {
	Kind  InitKind
	Scale float64 // bound of Uniform, std of Normal, value of Constant
}

// InitKind names an initialiser distribution.
type InitKind int

// Initialiser distributions.
const (
	InitConstant InitKind = iota
	InitUniform           // U(-Scale, Scale)
	InitNormal            // N(0, Scale²)
)

// Constant returns an initialiser filling the variable with v.
func Constant(v float64) Init { return Init{Kind: InitConstant, Scale: v} }

// Uniform returns a U(-bound, bound) initialiser.
func Uniform(bound float64) Init { return Init{Kind: InitUniform, Scale: bound} }

// Normal returns a N(0, std²) initialiser.
func Normal(std float64) Init { return Init{Kind: InitNormal, Scale: std} }

// TorchDefault is PyTorch's default for Conv2d and Linear weights and biases
// (kaiming_uniform with a=√5, which reduces to U(-1/√fan_in, 1/√fan_in)); the
// study trained with these defaults.
func TorchDefault(fanIn int64) Init { return Uniform(1 / math.Sqrt(float64(fanIn))) }

// HeNormalFanOut is kaiming_normal(mode="fan_out", nonlinearity="relu"), the
// initialiser torchvision's ResNet uses for its convolutions.
func HeNormalFanOut(fanOut int64) Init { return Normal(math.Sqrt(2 / float64(fanOut))) }

// GlorotUniform is Glorot (Xavier) uniform, U(±√(6/(fan_in+fan_out))):
// Keras's default for Conv2D and Dense kernels.
func GlorotUniform(fanIn, fanOut int64) Init {
	return Uniform(math.Sqrt(6 / float64(fanIn+fanOut)))
}

// HeNormal is kaiming_normal(mode="fan_in", nonlinearity="relu"),
// N(0, 2/fan_in): the variance that keeps a ReLU network's activations at
// one scale from layer to layer.
func HeNormal(fanIn int64) Init { return Normal(math.Sqrt(2 / float64(fanIn))) }

// InitScheme picks the initial kernels and biases of every convolution and
// dense layer of a network. Batch norm starts at γ = 1, β = 0 in every
// scheme.
type InitScheme string

// The initialisation schemes. The zero value is InitTorch.
const (
	// InitTorch is PyTorch's defaults (kernel and bias U(±1/√fan_in)) and
	// the network's own choices where its reference code makes them
	// (torchvision's ResNet: He-normal fan-out convolutions): the study's.
	InitTorch InitScheme = "torch"
	// InitGlorot is Keras's defaults: Glorot-uniform kernels, zero biases.
	InitGlorot InitScheme = "glorot"
	// InitHe is He-normal (fan-in) kernels and zero biases.
	InitHe InitScheme = "he"
)

// InitSchemes returns the names ParseInitScheme accepts.
func InitSchemes() []string { return []string{string(InitTorch), string(InitGlorot), string(InitHe)} }

// ParseInitScheme parses a scheme name; the empty string is InitTorch (run
// folders written before the choice existed).
func ParseInitScheme(name string) (InitScheme, error) {
	switch InitScheme(name) {
	case "", InitTorch:
		return InitTorch, nil
	case InitGlorot, InitHe:
		return InitScheme(name), nil
	}
	return "", fmt.Errorf("unknown initialisation %q: use torch, glorot or he", name)
}

// layerInit returns the kernel and bias initialisers of a layer with these
// fans under scheme; own is the network's own kernel choice (nil: PyTorch's
// default), which only InitTorch keeps.
func layerInit(scheme InitScheme, fanIn, fanOut int64, own func(fanIn, fanOut int64) Init) (kernel, bias Init) {
	switch scheme {
	case InitGlorot:
		return GlorotUniform(fanIn, fanOut), Constant(0)
	case InitHe:
		return HeNormal(fanIn), Constant(0)
	}
	kernel = TorchDefault(fanIn)
	if own != nil {
		kernel = own(fanIn, fanOut)
	}
	return kernel, TorchDefault(fanIn)
}

// Variable is one resource variable of a network or optimizer.
type Variable struct {
	Name      string // unique, "/"-separated path; also its checkpoint key
	Shape     []int64
	Role      Role
	Trainable bool
	Handle    tf.Output     // the resource handle
	Init      *tf.Operation // assigns the initial value
	Initial   tf.Output     // the initial value tensor
}

// Size is the number of elements of v.
func (v *Variable) Size() int64 {
	n := int64(1)
	for _, d := range v.Shape {
		n *= d
	}
	return n
}

// Store creates resource variables once per graph and hands the same variable
// to every build that asks for the same name, so that training and inference
// paths share weights.
type Store struct {
	scope *op.Scope
	seed  int64
	init  InitScheme
	vars  map[string]*Variable
	order []*Variable
}

// NewStore returns a store creating its variables under root. seed makes
// every initial value reproducible and independent of creation order: each
// variable draws from a stateless generator keyed by (seed, hash(name)).
func NewStore(root *op.Scope, seed int64) *Store {
	return &Store{scope: root, seed: seed, vars: map[string]*Variable{}}
}

// WithInit sets the scheme the layers built on s initialise their kernels
// and biases with (InitTorch when never set) and returns s. Set it before
// building: variables already created keep their initialisers.
func (s *Store) WithInit(scheme InitScheme) *Store {
	s.init = scheme
	return s
}

// Init returns the store's initialisation scheme.
func (s *Store) Init() InitScheme {
	if s.init == "" {
		return InitTorch
	}
	return s.init
}

// Seed returns the store's seed.
func (s *Store) Seed() int64 { return s.seed }

// Scope returns the root scope the store builds in.
func (s *Store) Scope() *op.Scope { return s.scope }

// Variables returns all variables in creation order.
func (s *Store) Variables() []*Variable { return append([]*Variable(nil), s.order...) }

// Trainable returns the trainable variables in creation order.
func (s *Store) Trainable() []*Variable {
	var out []*Variable
	for _, v := range s.order {
		if v.Trainable {
			out = append(out, v)
		}
	}
	return out
}

// Lookup returns the variable called name, or nil.
func (s *Store) Lookup(name string) *Variable { return s.vars[name] }

// InitOps returns the operations that initialise every variable.
func (s *Store) InitOps() []*tf.Operation {
	ops := make([]*tf.Operation, 0, len(s.order))
	for _, v := range s.order {
		ops = append(ops, v.Init)
	}
	return ops
}

// Counts returns the number of trainable and non-trainable elements among
// the network's variables (RoleState variables are not counted).
func (s *Store) Counts() (trainable, nonTrainable int64) {
	for _, v := range s.order {
		switch {
		case v.Role == RoleState:
		case v.Trainable:
			trainable += v.Size()
		default:
			nonTrainable += v.Size()
		}
	}
	return trainable, nonTrainable
}

// Get returns the variable called name, creating it with the given shape,
// role and initialiser on first use. Asking again with another shape is an
// error recorded on the scope.
func (s *Store) Get(name string, shape []int64, role Role, init Init) *Variable {
	if v, ok := s.vars[name]; ok {
		if !sameShape(v.Shape, shape) {
			s.scope.UpdateErr("Store.Get", fmt.Errorf("variable %s exists with shape %v, asked for %v", name, v.Shape, shape))
		}
		return v
	}
	vs := s.scope.SubScope(name)
	v := &Variable{
		Name:      name,
		Shape:     append([]int64(nil), shape...),
		Role:      role,
		Trainable: role != RoleMovingMean && role != RoleMovingVar && role != RoleState,
	}
	v.Handle = op.VarHandleOp(vs, tf.Float, tf.MakeShape(shape...), op.VarHandleOpSharedName(name))
	v.Initial = s.initialValue(vs, name, shape, init)
	v.Init = op.AssignVariableOp(vs, v.Handle, v.Initial)
	s.vars[name] = v
	s.order = append(s.order, v)
	return v
}

// NewState creates a non-trained float32 variable (an optimizer slot, a
// counter) initialised to a constant.
func (s *Store) NewState(name string, shape []int64, value float64) *Variable {
	return s.Get(name, shape, RoleState, Constant(value))
}

func (s *Store) initialValue(vs *op.Scope, name string, shape []int64, init Init) tf.Output {
	dims := op.Const(vs.SubScope("shape"), shape)
	switch init.Kind {
	case InitUniform:
		u := op.StatelessRandomUniform(vs, dims, s.keyFor(vs, name))
		// u ∈ [0,1) → [-b, b)
		return op.Sub(vs, op.Mul(vs, u, scalar(vs, float32(2*init.Scale))), scalar(vs, float32(init.Scale)))
	case InitNormal:
		n := op.StatelessRandomNormal(vs, dims, s.keyFor(vs, name))
		return op.Mul(vs, n, scalar(vs, float32(init.Scale)))
	default:
		return op.Fill(vs, dims, scalar(vs, float32(init.Scale)))
	}
}

// keyFor returns the stateless-RNG key of a variable: (seed, hash(name)).
func (s *Store) keyFor(vs *op.Scope, name string) tf.Output {
	return op.Const(vs.SubScope("seed"), []int64{s.seed, int64(Hash(name))})
}

// Hash is a stable 63-bit hash of a name, used to derive per-variable and
// per-layer random streams from one seed.
func Hash(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64() >> 1
}

func scalar(s *op.Scope, v float32) tf.Output { return op.Const(s.SubScope("c"), v) }

func sameShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
