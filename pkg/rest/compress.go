package rest

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Encodings offered, in the order preferred at equal quality: libmtev's
// gzip, deflate and lz4f, then zstd.
var encodings = []string{"gzip", "deflate", "lz4f", "zstd"}

type compressor interface {
	io.Writer
	Flush() error
	Close() error
}

var (
	gzPool   = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression); return w }}
	zlPool   = sync.Pool{New: func() any { w, _ := zlib.NewWriterLevel(nil, zlib.DefaultCompression); return w }}
	zstdPool = sync.Pool{New: func() any {
		w, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		return w
	}}
	lz4Pool = sync.Pool{New: func() any { return lz4.NewWriter(nil) }}
)

// pooled returns its encoder to the pool on Close.
type pooled struct {
	compressor
	put func()
}

func (p *pooled) Close() error {
	err := p.compressor.Close()
	p.put()
	return err
}

func newCompressor(enc string, w io.Writer) compressor {
	switch enc {
	case "gzip":
		z := gzPool.Get().(*gzip.Writer)
		z.Reset(w)
		return &pooled{z, func() { gzPool.Put(z) }}
	case "deflate":
		z := zlPool.Get().(*zlib.Writer)
		z.Reset(w)
		return &pooled{z, func() { zlPool.Put(z) }}
	case "zstd":
		z := zstdPool.Get().(*zstd.Encoder)
		z.Reset(w)
		return &pooled{z, func() { zstdPool.Put(z) }}
	case "lz4f":
		z := lz4Pool.Get().(*lz4.Writer)
		z.Reset(w)
		return &pooled{z, func() { lz4Pool.Put(z) }}
	}
	panic("rest: unknown encoding " + enc)
}

// negotiate picks the response encoding from Accept-Encoding: the
// highest q, then our order; q=0 refuses; "identity" or nothing: none.
func (w *respWriter) negotiate(r *http.Request) {
	w.enc = chooseEncoding(r.Header.Values("Accept-Encoding"))
}

func chooseEncoding(values []string) string {
	if len(values) == 0 {
		return ""
	}
	q := map[string]float64{}
	star := -1.0
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" {
				continue
			}
			qv := 1.0
			if _, qs, ok := strings.Cut(params, "q="); ok {
				if f, err := strconv.ParseFloat(strings.TrimSpace(qs), 64); err == nil {
					qv = f
				}
			}
			if name == "*" {
				star = qv
				continue
			}
			if name == "lz4" {
				name = "lz4f"
			}
			q[name] = qv
		}
	}
	best, bestQ := "", 0.0
	for _, e := range encodings {
		v, ok := q[e]
		if !ok {
			if star < 0 {
				continue
			}
			v = star
		}
		if v > bestQ {
			best, bestQ = e, v
		}
	}
	return best
}

// incompressible reports content types that are compressed already.
func incompressible(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "image/") && mt != "image/svg+xml",
		strings.HasPrefix(mt, "video/"), strings.HasPrefix(mt, "audio/"):
		return true
	}
	switch mt {
	case "application/zip", "application/gzip", "application/x-gzip", "application/zstd",
		"application/x-lz4", "application/x-bzip2", "application/x-xz", "application/x-7z-compressed",
		"application/pdf", "application/octet-stream+gzip", "font/woff", "font/woff2":
		return true
	}
	return false
}

// decodeBody replaces a compressed request body by its decoded stream
// (gzip, deflate, zstd, lz4f); the Content-Encoding header is removed.
func decodeBody(r *http.Request) error {
	ce := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	if ce == "" || ce == "identity" || r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	var rc io.ReadCloser
	switch ce {
	case "gzip", "x-gzip":
		rc = &lazyReader{src: r.Body, open: func(src io.Reader) (io.Reader, error) { return gzip.NewReader(src) }}
	case "deflate":
		rc = &lazyReader{src: r.Body, open: func(src io.Reader) (io.Reader, error) { return zlib.NewReader(src) }}
	case "zstd":
		rc = &lazyReader{src: r.Body, open: func(src io.Reader) (io.Reader, error) {
			d, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(64<<20))
			if err != nil {
				return nil, err
			}
			return d.IOReadCloser(), nil
		}}
	case "lz4f", "lz4":
		rc = &lazyReader{src: r.Body, open: func(src io.Reader) (io.Reader, error) { return lz4.NewReader(src), nil }}
	default:
		return fmt.Errorf("request body encoding %q is not supported (gzip, deflate, zstd, lz4f)", ce)
	}
	r.Body = rc
	r.Header.Del("Content-Encoding")
	r.Header.Del("Content-Length")
	r.ContentLength = -1
	return nil
}

// lazyReader opens its decoder at the first Read, so that a handler that
// never reads never blocks on a header the client has not sent yet.
type lazyReader struct {
	src  io.ReadCloser
	open func(io.Reader) (io.Reader, error)
	dec  io.Reader
	err  error
}

func (l *lazyReader) Read(p []byte) (int, error) {
	if l.dec == nil && l.err == nil {
		l.dec, l.err = l.open(l.src)
		if l.err != nil {
			l.err = fmt.Errorf("rest: decode request body: %w", l.err)
		}
	}
	if l.err != nil {
		return 0, l.err
	}
	return l.dec.Read(p)
}

func (l *lazyReader) Close() error {
	if c, ok := l.dec.(io.Closer); ok {
		_ = c.Close()
	}
	return l.src.Close()
}
