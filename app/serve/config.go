package serve

import (
	"fmt"
	"strings"
	"time"

	"github.com/kfash-tf/kfash-tf/augment"
)

// The names of the serve command's flags that Config mirrors: the command
// declares its flags with them, and Config's validation and the errors
// answered to clients name them ("--" + name), so that a client or an
// operator reading a message knows which setting to change.
const (
	FlagName             = "name"
	FlagMaxBatch         = "max-batch"
	FlagBatchWait        = "batch-wait"
	FlagMaxBody          = "max-body"
	FlagMaxPixels        = "max-pixels"
	FlagMaxInstances     = "max-instances"
	FlagMaxRequestPixels = "max-request-pixels"
	FlagMaxGIFFrames     = "max-gif-frames"
	FlagMaxInFlight      = "max-inflight"
	FlagReadTimeout      = "read-timeout"
	FlagWriteTimeout     = "write-timeout"
	FlagRequestTimeout   = "request-timeout"
	FlagShutdownTimeout  = "shutdown-timeout"
)

// flagRef is how messages name a flag: "--max-body".
func flagRef(name string) string { return "--" + name }

// Defaults of the limits Config leaves at zero.
const (
	// DefaultMaxInstances is the most images in one request: 8 batches of
	// 32, a few seconds of CPU for a 150×150 network, well within
	// DefaultRequestTimeout. TensorFlow Serving sets no such limit; a
	// 2,000-image request used to take 2.5 GB and 50 s.
	DefaultMaxInstances = 256
	// DefaultMaxRequestPixels bounds the sum of the pixels the headers of a
	// request's encoded images declare: 100 megapixels, about eight 12-MP
	// photos. TensorFlow's in-graph decoder holds up to 3 bytes a pixel of
	// a batch's images at once, so a request costs at most ~300 MB there.
	DefaultMaxRequestPixels = 100_000_000
	// DefaultMaxInFlight is the most requests processed at once (see
	// Config.MaxInFlight): with the default 32 MB bodies and batches of 32
	// 150×150 images, about 3 GB at worst.
	DefaultMaxInFlight = 64
	// DefaultRequestTimeout bounds a request from its arrival to its
	// answer; it is shorter than the default --write-timeout (60 s) so that
	// the client reads a 504 instead of a cut connection.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultShutdownTimeout is the grace period of a shutdown.
	DefaultShutdownTimeout = 30 * time.Second
)

// Config configures a Server. It mirrors the flags of `kfash-tf serve` one
// to one (the Flag* names), which is why its validation errors name flags.
// Zero limits take the Default values.
//
// Memory: the server holds the model, plus for each request being
// processed (at most MaxInFlight) its body (≤ MaxBody, held a few times
// over while a JSON body is parsed) and at most two chunks of decoded
// pixels (2 × MaxBatch × S×S×3 float32s: S = 150 and batches of 32 make
// 17 MB), plus one model run at a time and one Go-decoded image per core
// (≤ MaxPixels × 4 bytes each). In short:
//
//	RSS ≈ model + MaxInFlight × (MaxBody + 2 decoded batches)
//
// with MaxBody counted two to three times for JSON bodies of numbers.
type Config struct {
	Name             string        // the model name in URLs (/v1/models/NAME)
	MaxBatch         int           // images per model run
	BatchWait        time.Duration // how long the first request of a batch waits for company
	MaxBody          int64         // bytes per request body
	MaxPixels        int64         // pixels per encoded image (GIF: all frames), checked on its headers
	MaxInstances     int           // images per request
	MaxRequestPixels int64         // sum of the header-declared pixels of a request's encoded images
	MaxGIFFrames     int           // frames per GIF (0: augment.DefaultMaxGIFFrames)
	MaxInFlight      int           // requests processed at once (:predict, /v1/classify); 503 beyond
	ReadTimeout      time.Duration // reading a whole request
	WriteTimeout     time.Duration // from the end of the headers to the end of the response
	RequestTimeout   time.Duration // from the arrival of a request to its answer
	ShutdownTimeout  time.Duration // how long a shutdown waits for requests in flight
}

// Validate reports the first setting out of range, naming its flag, once
// the zero limits have their defaults; New calls it too.
func (c Config) Validate() error { return c.withDefaults().validate() }

// validate checks a Config after withDefaults, naming the flags.
func (c Config) validate() error {
	switch {
	case c.Name == "" || strings.ContainsAny(c.Name, "/:?#"):
		return fmt.Errorf("invalid model name %q: use letters, digits, '-' and '_'", c.Name)
	case c.MaxBatch < 1:
		return fmt.Errorf("%s must be at least 1, got %d", flagRef(FlagMaxBatch), c.MaxBatch)
	case c.BatchWait < 0:
		return fmt.Errorf("%s must not be negative, got %s", flagRef(FlagBatchWait), c.BatchWait)
	case c.MaxBody < 1:
		return fmt.Errorf("%s must be positive, got %d", flagRef(FlagMaxBody), c.MaxBody)
	case c.MaxPixels < 1:
		return fmt.Errorf("%s must be positive, got %d", flagRef(FlagMaxPixels), c.MaxPixels)
	case c.MaxInstances < 0:
		return fmt.Errorf("%s must be positive, got %d", flagRef(FlagMaxInstances), c.MaxInstances)
	case c.MaxRequestPixels < 0:
		return fmt.Errorf("%s must be positive, got %d", flagRef(FlagMaxRequestPixels), c.MaxRequestPixels)
	case c.MaxGIFFrames < 0:
		return fmt.Errorf("%s must be positive, got %d", flagRef(FlagMaxGIFFrames), c.MaxGIFFrames)
	case c.MaxInFlight < 0:
		return fmt.Errorf("%s must be positive, got %d", flagRef(FlagMaxInFlight), c.MaxInFlight)
	case c.ReadTimeout < 0 || c.WriteTimeout < 0 || c.RequestTimeout < 0 || c.ShutdownTimeout < 0:
		return fmt.Errorf("timeouts must not be negative")
	case c.WriteTimeout > 0 && c.RequestTimeout >= c.WriteTimeout:
		return fmt.Errorf("%s (%s) must be shorter than %s (%s): a request still running at the write timeout loses its answer",
			flagRef(FlagRequestTimeout), c.RequestTimeout, flagRef(FlagWriteTimeout), c.WriteTimeout)
	}
	return nil
}

// withDefaults fills the zero limits.
func (c Config) withDefaults() Config {
	if c.MaxInstances == 0 {
		c.MaxInstances = DefaultMaxInstances
	}
	if c.MaxRequestPixels == 0 {
		c.MaxRequestPixels = DefaultMaxRequestPixels
	}
	if c.MaxGIFFrames == 0 {
		c.MaxGIFFrames = augment.DefaultMaxGIFFrames
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
		if c.WriteTimeout > 0 && c.WriteTimeout <= c.RequestTimeout {
			c.RequestTimeout = c.WriteTimeout * 9 / 10
		}
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	return c
}
