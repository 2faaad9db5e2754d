package serve

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kfash-tf/kfash-tf/augment/augmenttest"
)

// gifWithFrames writes a GIF with the given logical screen and frames
// ({left, top, width, height}), each with a few bytes of LZW data: enough
// for header checks, which must refuse the bombs among them before any
// decoder runs.
func gifWithFrames(screenW, screenH int, frames ...[4]int) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, []byte("GIF89a"))
	binary.Write(&b, binary.LittleEndian, []uint16{uint16(screenW), uint16(screenH)})
	b.Write([]byte{0x80, 0, 0, 0, 0, 0, 255, 255, 255})
	for _, f := range frames {
		b.WriteByte(0x2C)
		binary.Write(&b, binary.LittleEndian, []uint16{uint16(f[0]), uint16(f[1]), uint16(f[2]), uint16(f[3])})
		b.Write([]byte{0, 2, 2, 0x4C, 0x01, 0})
	}
	b.WriteByte(0x3B)
	return b.Bytes()
}

func repeatFrame(f [4]int, n int) [][4]int {
	out := make([][4]int, n)
	for i := range out {
		out[i] = f
	}
	return out
}

// b64Instances is a row-format body of n copies of an encoded image.
func b64Instances(n int, data []byte) string {
	item := `{"b64": "` + b64(data) + `"}`
	return `{"instances": [` + strings.TrimSuffix(strings.Repeat(item+",", n), ",") + `]}`
}

// checkError checks a JSON error answer: its status and its words.
func checkError(t *testing.T, what string, code int, data []byte, status int, want ...string) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if code != status || json.Unmarshal(data, &e) != nil || e.Error == "" {
		t.Errorf("%s: %d %s, want %d with a JSON error", what, code, data, status)
		return
	}
	for _, w := range want {
		if !strings.Contains(e.Error, w) {
			t.Errorf("%s: error %q lacks %q", what, e.Error, w)
		}
	}
}

// Requests over --max-instances get a 413 naming the flag, in every
// format, and nothing is run or decoded. (A 2,000-image request used to
// take 2.5 GB and 50 s; 10,000 killed the server.)
func TestServeInstanceLimit(t *testing.T) {
	m := serveTestModel(t)
	cfg := serveTestConfig()
	cfg.MaxInstances = 2
	s, ts, _ := newTestServer(t, m, cfg)
	url := ts.URL + "/v1/models/kfash:predict"
	png := augmenttest.PNG(0, 20, 1)
	size := m.InputSize()
	px := pixelsJSON(randomPixels(1, size, 3), size)
	item := `{"b64": "` + b64(png) + `"}`
	for _, c := range []struct{ name, body string }{
		{"row b64", b64Instances(3, png)},
		{"row pixels", `{"instances": [` + px + "," + px + "," + px + `]}`},
		{"columnar b64", `{"inputs": [` + item + "," + item + "," + item + `]}`},
		{"columnar tensor", `{"inputs": [` + px + "," + px + "," + px + `]}`},
		{"keyed columnar tensor", `{"inputs": {"images": [` + px + "," + px + "," + px + `]}}`},
	} {
		code, data := post(t, url, "application/json", c.body)
		checkError(t, c.name, code, data, http.StatusRequestEntityTooLarge, "--max-instances", "limit of 2")
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for i := 0; i < 3; i++ {
		fw, _ := mw.CreateFormFile("image", fmt.Sprintf("%d.png", i))
		fw.Write(png)
	}
	mw.Close()
	code, data := post(t, ts.URL+"/v1/classify", mw.FormDataContentType(), body.String())
	checkError(t, "classify", code, data, http.StatusRequestEntityTooLarge, "--max-instances")
	if runs, _ := s.Runs(); runs != 0 {
		t.Errorf("%d model runs for refused requests", runs)
	}
	// At the limit, all is well.
	if rows := predictRows(t, url, b64Instances(2, png)); len(rows) != 2 {
		t.Errorf("%d rows for 2 instances", len(rows))
	}
}

// The pixels the headers of a request's images declare are summed before
// anything is decoded: over --max-request-pixels is a 413, even when an
// earlier image is corrupt (it is never decoded).
func TestServeRequestPixelBudget(t *testing.T) {
	m := serveTestModel(t)
	cfg := serveTestConfig()
	cfg.MaxRequestPixels = 10_000
	_, ts, _ := newTestServer(t, m, cfg)
	url := ts.URL + "/v1/models/kfash:predict"
	good := augmenttest.PNG(0, 80, 1) // 6,400 pixels
	corrupt := append([]byte(nil), good...)
	for i := 60; i < len(corrupt)-20; i++ {
		corrupt[i] ^= 0x5A // the header stays readable, the data does not
	}
	body := `{"instances": [{"b64": "` + b64(corrupt) + `"}, {"b64": "` + b64(good) + `"}]}`
	code, data := post(t, url, "application/json", body)
	checkError(t, "two 80x80 images", code, data, http.StatusRequestEntityTooLarge, "--max-request-pixels", "10000 pixels")
	if rows := predictRows(t, url, b64Instances(1, good)); len(rows) != 1 {
		t.Errorf("%d rows", len(rows))
	}
}

// GIF bombs are refused on their block headers by the Go-decoding server
// too: a frame outside its logical screen, too many frames, frames whose
// areas add up beyond --max-pixels.
func TestServeGIFLimits(t *testing.T) {
	m := serveTestModel(t)
	cfg := serveTestConfig()
	cfg.MaxGIFFrames = 10
	_, ts, _ := newTestServer(t, m, cfg)
	url := ts.URL + "/v1/models/kfash:predict"
	for _, c := range []struct {
		name   string
		gif    []byte
		status int
		want   string
	}{
		{"frame outside the screen", gifWithFrames(1, 1, [4]int{0, 0, 20000, 20000}), 400, "outside the 1x1 logical screen"},
		{"too many frames", gifWithFrames(2, 2, repeatFrame([4]int{0, 0, 2, 2}, 11)...), 413, "(--max-gif-frames)"},
		{"frames over --max-pixels", gifWithFrames(6000, 6000, repeatFrame([4]int{0, 0, 6000, 6000}, 2)...), 413, "72000000 pixels"},
	} {
		code, data := post(t, url, "application/json", b64Instances(1, c.gif))
		checkError(t, c.name, code, data, c.status, "image 0", c.want)
	}
}

// bigTinyRequest is a row-format request of n tiny PNGs.
func bigTinyRequest(n int) string { return b64Instances(n, augmenttest.PNG(1, 8, 2)) }

// A one-image request sent while a large one runs is answered first: the
// large one runs chunk by chunk, taking turns. (It used to wait for the
// whole large request.)
func TestServeLargeRequestDoesNotBlockSmall(t *testing.T) {
	m := serveTestModel(t)
	cfg := serveTestConfig()
	cfg.MaxBatch, cfg.BatchWait = 2, 0
	s, ts, _ := newTestServer(t, m, cfg)
	url := ts.URL + "/v1/models/kfash:predict"
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		code, data := post(t, url, "application/json", bigTinyRequest(128))
		if code != 200 {
			t.Errorf("large request: %d %s", code, data)
		}
		mu.Lock()
		order = append(order, "large")
		mu.Unlock()
	}()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		if runs, _ := s.Runs(); runs >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the large request never ran")
		}
	}
	predictRows(t, url, b64Instances(1, augmenttest.PNG(0, 30, 1)))
	mu.Lock()
	order = append(order, "small")
	mu.Unlock()
	wg.Wait()
	if order[0] != "small" {
		t.Errorf("answers in the order %v: the small request waited for the large one", order)
	}
}

// A request past --request-timeout gets a 504 naming the flag, and its
// remaining chunks are dropped rather than run; so are those of a request
// whose client went away.
func TestServeRequestTimeoutAndCancel(t *testing.T) {
	m := serveTestModel(t)
	cfg := serveTestConfig()
	cfg.MaxBatch, cfg.BatchWait, cfg.MaxInstances = 1, 0, 256
	cfg.RequestTimeout = 300 * time.Millisecond
	s, ts, logs := newTestServer(t, m, cfg)
	url := ts.URL + "/v1/models/kfash:predict"
	// settled waits for the model runs to stop, and returns their count.
	settled := func() int64 {
		runs, _ := s.Runs()
		for {
			time.Sleep(200 * time.Millisecond)
			now, _ := s.Runs()
			if now == runs {
				return runs
			}
			runs = now
		}
	}
	code, data := post(t, url, "application/json", bigTinyRequest(256))
	checkError(t, "256 images in 300ms", code, data, http.StatusGatewayTimeout, "--request-timeout")
	if runs := settled(); runs >= 256 {
		t.Errorf("%d model runs: the timed-out request ran to the end", runs)
	}

	cfg.RequestTimeout = 30 * time.Second
	s, ts, logs = newTestServer(t, m, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/v1/models/kfash:predict", strings.NewReader(bigTinyRequest(256)))
	go func() {
		for runs, _ := s.Runs(); runs < 2; runs, _ = s.Runs() {
			time.Sleep(time.Millisecond)
		}
		cancel() // the client goes away
	}()
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the request finished before the client went away")
	}
	logs.WaitFor(" 499 ", 10*time.Second)
	if runs := settled(); runs >= 256 {
		t.Errorf("%d model runs: the abandoned request ran to the end", runs)
	}
}

// On shutdown, accepted small requests are answered, a long request still
// running near the end of --shutdown-timeout gets a 503 instead of a cut
// connection, and Serve returns nil (exit status 0). (Small requests used to
// get EOF and the exit status was 1.)
func TestServeShutdownDrains(t *testing.T) {
	m := serveTestModel(t)
	cfg := serveTestConfig()
	// The large request (4,096 images one at a time: seconds of work here)
	// outlasts the grace period and is cut near its end with a 503; the
	// 0.8 s between the cut and the end leave a loaded machine time to
	// finish the model run under way and write the answer.
	cfg.MaxBatch, cfg.BatchWait, cfg.MaxInstances = 1, 0, 4096
	cfg.ShutdownTimeout = 4 * time.Second
	s, ln, cancel, served := serveOnLoopback(t, m, cfg)
	defer cancel()
	url := "http://" + ln.Addr().String() + "/v1/models/kfash:predict"
	type answer struct {
		code int
		err  error
	}
	send := func(body io.Reader, out chan<- answer) {
		resp, err := http.Post(url, "application/json", body)
		if err != nil {
			out <- answer{err: err}
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		out <- answer{code: resp.StatusCode}
	}
	large := make(chan answer, 1)
	go send(strings.NewReader(bigTinyRequest(4096)), large)
	for runs, _ := s.Runs(); runs < 1; runs, _ = s.Runs() {
		time.Sleep(time.Millisecond)
	}
	// The small requests send half their body, so that each is surely
	// accepted and still in flight when the shutdown starts (a whole small
	// request may be answered before the others arrive); the rest of the
	// bodies follows once the server has stopped listening.
	small := make(chan answer, 8)
	var tails []func()
	for i := 0; i < 8; i++ {
		body := b64Instances(1, augmenttest.PNG(0, 30, int64(i)))
		pr, pw := io.Pipe()
		go send(pr, small)
		go pw.Write([]byte(body[:len(body)/2]))
		tails = append(tails, func() {
			go func() {
				if _, err := pw.Write([]byte(body[len(body)/2:])); err == nil {
					pw.Close()
				}
			}()
		})
	}
	for deadline := time.Now().Add(10 * time.Second); s.InFlight() < 1+8; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests in flight, waited for 9", s.InFlight())
		}
	}
	cancel() // as SIGTERM does
	// The shutdown has begun once new connections are refused.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server still accepts connections 10 s after the shutdown began")
		}
	}
	for _, send := range tails {
		send()
	}
	if err := <-served; err != nil {
		t.Errorf("Serve after the shutdown: %v", err)
	}
	for i := 0; i < 8; i++ {
		if a := <-small; a.err != nil || a.code != 200 {
			t.Errorf("small request: %d %v", a.code, a.err)
		}
	}
	if a := <-large; a.err != nil || (a.code != 200 && a.code != http.StatusServiceUnavailable) {
		t.Errorf("large request: %d %v, want 503 (or 200)", a.code, a.err)
	}
}

// A connection the kernel accepted before the close is still handed out by
// a closed drainingListener (and so served, not reset); after the drain
// window Accept reports the listener closed.
func TestDrainingListenerServesQueuedConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dl := &drainingListener{Listener: ln}
	client, err := net.Dial("tcp", ln.Addr().String()) // completes in the kernel's queue
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := dl.Accept()
	if err != nil {
		t.Fatalf("the queued connection was dropped: %v", err)
	}
	c.Close()
	if _, err := dl.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after the drain window: %v, want net.ErrClosed", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("the socket still accepts after the drain window")
	}
}

// Past --max-inflight requests being processed, :predict and /v1/classify
// answer 503 with Retry-After and a JSON error naming the flag, without
// reading the body; status, metadata and /healthz still answer.
func TestServeMaxInFlight(t *testing.T) {
	m := serveTestModel(t)
	cfg := serveTestConfig()
	cfg.MaxInFlight = 2
	s, ts, _ := newTestServer(t, m, cfg)
	url := ts.URL + "/v1/models/kfash:predict"
	body := b64Instances(1, augmenttest.PNG(0, 30, 1))
	// Two requests being processed: hold their tokens.
	s.processing <- struct{}{}
	s.processing <- struct{}{}
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	checkError(t, "predict over the cap", resp.StatusCode, data, http.StatusServiceUnavailable, "--max-inflight", "2 requests")
	if ra := resp.Header.Get("Retry-After"); ra == "" {
		t.Error("503 without Retry-After")
	}
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	fw, _ := mw.CreateFormFile("image", "a.png")
	fw.Write(augmenttest.PNG(0, 30, 1))
	mw.Close()
	code, data := post(t, ts.URL+"/v1/classify", mw.FormDataContentType(), form.String())
	checkError(t, "classify over the cap", code, data, http.StatusServiceUnavailable, "--max-inflight")
	for _, path := range []string{"/healthz", "/v1/models/kfash", "/v1/models/kfash/metadata"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s over the cap: %d", path, resp.StatusCode)
		}
	}
	if runs, _ := s.Runs(); runs != 0 {
		t.Errorf("%d model runs for refused requests", runs)
	}
	<-s.processing // one finishes: the next request is served
	if rows := predictRows(t, url, body); len(rows) != 1 {
		t.Errorf("%d rows after a token was freed", len(rows))
	}
	<-s.processing
	if n := len(s.processing); n != 0 {
		t.Errorf("%d tokens held after the requests ended", n)
	}
}
