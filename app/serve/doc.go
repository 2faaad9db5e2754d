// Package serve serves one graphs.Servable over TensorFlow Serving's REST
// API (model status, metadata, :predict in the row and columnar formats),
// plus /v1/classify for multipart uploads, an HTML form at / and /healthz.
//
// Concurrent requests are merged into model runs by one batching goroutine
// that fills each run image by image, round-robin across the requests with
// queued work, so a small request rides in the next run whatever large
// requests are in flight. Every request is bounded before anything is
// decoded (body size, images, header-declared pixels, GIF frames, time),
// and so is the number processed at once: see Config for the memory bound
// that follows.
//
// Config mirrors the flags of `kfash-tf serve` one to one, and the errors
// answered to clients name the server flag behind a limit (Flag*
// constants): a client reading "413 ... (--max-instances)" knows which
// setting it hit.
package serve
