package app

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kfash-tf/kfash-tf/app/serve"
	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// The serve command: its flags, their validation into a serve.Config, and
// the process around a serve.Server (opening the model, listening,
// signals). The server itself is package app/serve.

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:      "serve",
		Usage:     "serve a run or an exported SavedModel over HTTP, compatible with TensorFlow Serving's REST API",
		ArgsUsage: "MODEL",
		Description: "MODEL is a run folder (runs/NAME, its best checkpoint) or a SavedModel (EXPORT/<N>, or EXPORT\n" +
			"for its highest version). Endpoints:\n" +
			"  POST /v1/models/NAME[/versions/N]:predict   {\"instances\": [...]} or {\"inputs\": ...}; images as\n" +
			"       [S][S][3] RGB 0–255 numbers or {\"b64\": \"<JPEG/PNG bytes>\"}\n" +
			"       \"explain\": true adds a Grad-CAM overlay PNG per image (a run folder only; each\n" +
			"       explained image counts twice against --max-instances)\n" +
			"  GET  /v1/models/NAME[/versions/N][/metadata] status and signatures\n" +
			"  POST /v1/classify   multipart upload (field \"image\"), for people; GET / is a form for it\n" +
			"  GET  /healthz\n" +
			"Concurrent requests are batched: up to --max-batch images, waiting at most --batch-wait. Each\n" +
			"model run takes an image from each waiting request in turn, so a small request rides in the next\n" +
			"run even while large ones are in flight.\n" +
			"Every request is bounded before anything is decoded: --max-body bytes, --max-instances images,\n" +
			"--max-pixels per image (GIF: all its frames, at most --max-gif-frames), --max-request-pixels in\n" +
			"all (413 beyond), and --request-timeout from arrival to answer (504 beyond). A client that goes\n" +
			"away cancels its request. At most --max-inflight requests are processed at once (503 with\n" +
			"Retry-After beyond), which bounds the server's memory:\n" +
			"  RSS ≈ model + max-inflight × (max-body + 2 decoded batches of max-batch × S×S×3 float32s)\n" +
			"(a JSON body of numbers counts two to three times its size while parsed); with the defaults and\n" +
			"150×150 images, about 64 × (32 MB + 17 MB) ≈ 3 GB at worst.\n" +
			"SIGINT/SIGTERM stop accepting and finish the requests in flight within --shutdown-timeout (those\n" +
			"still running near its end get a 503), then exit 0.\n\n" +
			"Example:\n  kfash-tf serve runs/cs3 --port 8501\n" +
			"  curl -d '{\"instances\": [{\"b64\": \"'$(base64 -w0 photo.jpg)'\"}]}' localhost:8501/v1/models/kfash:predict",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "port", Value: 8501, Usage: "TCP port (0: any free port)"},
			&cli.StringFlag{Name: "host", Value: "127.0.0.1", Usage: "address to listen on (0.0.0.0: every interface)"},
			&cli.StringFlag{Name: serve.FlagName, Value: "kfash", Usage: "model name in the URLs"},
			&cli.StringFlag{Name: "checkpoint", Value: "best", Usage: "checkpoint of a run folder: best (falls back to last) or last"},
			&cli.IntFlag{Name: serve.FlagMaxBatch, Value: 32, Usage: "images per model run; also the chunk a large request is split into"},
			&cli.DurationFlag{Name: serve.FlagBatchWait, Value: 5 * time.Millisecond, Usage: "how long a request waits for others to share its batch (0: only those already queued)"},
			&cli.StringFlag{Name: serve.FlagMaxBody, Value: "32MB", Usage: "largest request body (B, KB, MB, GB: powers of 1024)"},
			&cli.Float64Flag{Name: serve.FlagMaxPixels, Value: float64(augment.DefaultMaxPixels), Usage: "largest encoded image, width × height (a GIF: the sum over its frames), checked on its headers before decoding: stops decompression bombs"},
			&cli.IntFlag{Name: serve.FlagMaxInstances, Value: serve.DefaultMaxInstances, Usage: "most images in one request (413 beyond). 256 is 8 batches of 32, seconds of CPU, within --request-timeout; clients send more as several requests"},
			&cli.Float64Flag{Name: serve.FlagMaxRequestPixels, Value: serve.DefaultMaxRequestPixels, Usage: "most pixels the headers of a request's encoded images may declare in all (413 beyond, nothing decoded): 1e8 is about eight 12-megapixel photos, ~300 MB of decoded bytes at most"},
			&cli.IntFlag{Name: serve.FlagMaxGIFFrames, Value: augment.DefaultMaxGIFFrames, Usage: "most frames in a GIF (413 beyond): only the first is used, but TensorFlow's decoder decompresses every frame"},
			&cli.IntFlag{Name: serve.FlagMaxInFlight, Value: serve.DefaultMaxInFlight, Usage: "most :predict and /v1/classify requests processed at once (503 with Retry-After beyond): the bound of the server's memory, see above"},
			&cli.DurationFlag{Name: serve.FlagReadTimeout, Value: 30 * time.Second, Usage: "time to read a whole request"},
			&cli.DurationFlag{Name: serve.FlagWriteTimeout, Value: 60 * time.Second, Usage: "time to answer a request once read (0: none); must exceed --request-timeout"},
			&cli.DurationFlag{Name: serve.FlagRequestTimeout, Value: serve.DefaultRequestTimeout, Usage: "time from a request's arrival to its answer: past it, its remaining batches are dropped and it gets a 504 (shorter than --write-timeout, so the answer still reaches the client)"},
			&cli.DurationFlag{Name: serve.FlagShutdownTimeout, Value: serve.DefaultShutdownTimeout, Usage: "grace period of SIGTERM/SIGINT: requests in flight finish within it; those still running near its end get a 503"},
			&cli.IntFlag{Name: "intra-op-threads", Value: 0, Usage: "threads inside one TensorFlow op (0: the core count)"},
			&cli.IntFlag{Name: "inter-op-threads", Value: 0, Usage: "TensorFlow ops run in parallel (0: TensorFlow's default)"},
			&cli.StringFlag{Name: "device", Usage: "cpu or gpu: pin the placement (default: TensorFlow's choice)"},
			&cli.StringFlag{Name: "gpus", Usage: "the GPUs this process may use, e.g. 0,1 (default: all)"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() != 1 {
				return fmt.Errorf("serve needs one MODEL: a run folder or a SavedModel, e.g. kfash-tf serve runs/cs3")
			}
			cfg, err := serveConfigFromFlags(c)
			if err != nil {
				return err
			}
			sc := runs.SessionConfig{IntraOpThreads: c.Int("intra-op-threads"), InterOpThreads: c.Int("inter-op-threads"), Device: c.String("device"), GPUs: c.String("gpus")}
			return runServe(c.Context, c.Args().First(), c.String("checkpoint"), sc, cfg, net.JoinHostPort(c.String("host"), strconv.Itoa(c.Int("port"))), c.App.ErrWriter)
		},
	}
}

// serveConfigFromFlags checks every numeric flag of serve, naming it, before
// anything is loaded, and returns the server's configuration.
func serveConfigFromFlags(c *cli.Context) (serve.Config, error) {
	maxBody, err := parseByteSize(c.String(serve.FlagMaxBody))
	if err != nil {
		return serve.Config{}, fmt.Errorf("--%s: %w", serve.FlagMaxBody, err)
	}
	maxPixels, err := countFlag(c, serve.FlagMaxPixels, 1e15)
	if err != nil {
		return serve.Config{}, err
	}
	maxRequestPixels, err := countFlag(c, serve.FlagMaxRequestPixels, 1e15)
	if err != nil {
		return serve.Config{}, err
	}
	for _, f := range []struct {
		name   string
		lo, hi int
	}{{"port", 0, 65535}, {serve.FlagMaxBatch, 1, 1 << 16}, {serve.FlagMaxInstances, 1, 1 << 20}, {serve.FlagMaxGIFFrames, 1, 1 << 16},
		{serve.FlagMaxInFlight, 1, 1 << 16}, {"intra-op-threads", 0, 1 << 12}, {"inter-op-threads", 0, 1 << 12}} {
		if v := c.Int(f.name); v < f.lo || v > f.hi {
			return serve.Config{}, fmt.Errorf("--%s must be between %d and %d, got %d", f.name, f.lo, f.hi, v)
		}
	}
	for _, f := range []struct {
		name     string
		positive bool
	}{{serve.FlagBatchWait, false}, {serve.FlagReadTimeout, false}, {serve.FlagWriteTimeout, false}, {serve.FlagRequestTimeout, true}, {serve.FlagShutdownTimeout, true}} {
		if v := c.Duration(f.name); v < 0 || (f.positive && v == 0) {
			return serve.Config{}, fmt.Errorf("--%s must be positive, got %s", f.name, v)
		}
	}
	cfg := serve.Config{
		Name: c.String(serve.FlagName), MaxBatch: c.Int(serve.FlagMaxBatch), BatchWait: c.Duration(serve.FlagBatchWait),
		MaxBody: maxBody, MaxPixels: maxPixels, MaxInstances: c.Int(serve.FlagMaxInstances),
		MaxRequestPixels: maxRequestPixels, MaxGIFFrames: c.Int(serve.FlagMaxGIFFrames), MaxInFlight: c.Int(serve.FlagMaxInFlight),
		ReadTimeout: c.Duration(serve.FlagReadTimeout), WriteTimeout: c.Duration(serve.FlagWriteTimeout),
		RequestTimeout: c.Duration(serve.FlagRequestTimeout), ShutdownTimeout: c.Duration(serve.FlagShutdownTimeout),
	}
	return cfg, cfg.Validate()
}

// countFlag reads a float flag that counts something (pixels, written 5e7
// as easily as 50000000): a finite whole number from 1 to hi.
func countFlag(c *cli.Context, name string, hi float64) (int64, error) {
	v := c.Float64(name)
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 1 || v > hi {
		return 0, fmt.Errorf("--%s must be a number from 1 to %g, got %g", name, hi, v)
	}
	return int64(v), nil
}

// runServe opens the model, listens on addr and serves until
// SIGINT/SIGTERM.
func runServe(ctx context.Context, path, checkpoint string, sc runs.SessionConfig, cfg serve.Config, addr string, logw io.Writer) error {
	m, err := graphs.OpenServable(path, checkpoint, sc)
	if err != nil {
		return err
	}
	defer m.Close()
	s, err := serve.New(m, cfg, logw)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.Close()
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, a second one kills at once (the
		// default action, restored by stop).
		<-ctx.Done()
		stop()
	}()
	classes, size := m.Classes(), m.InputSize()
	fmt.Fprintf(logw, "serving %s as %q version %d: %d classes (%s), %d×%d input\n",
		m.Description(), cfg.Name, m.Version(), len(classes), strings.Join(classes, ", "), size, size)
	fmt.Fprintf(logw, "listening on http://%s (POST /v1/models/%s:predict, GET / for a form)\n", ln.Addr(), cfg.Name)
	err = s.Serve(ctx, ln)
	runs, images := s.Runs()
	fmt.Fprintf(logw, "stopped: %d images in %d model runs\n", images, runs)
	return err
}

// parseByteSize reads sizes such as 32MB, 512KB, 1GB or 1048576 (units
// are powers of 1024; MiB-style spellings are accepted too).
func parseByteSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 || v*float64(mult) > 1<<40 {
		return 0, fmt.Errorf("invalid size %q: use e.g. 32MB, 512KB or a byte count", s)
	}
	return int64(v * float64(mult)), nil
}
