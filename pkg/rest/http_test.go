package rest_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/mtev-supervise/mtev-supervise/internal/syncbuf"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
)

func djb2(b []byte) uint32 {
	h := uint32(5381)
	for _, c := range b {
		h = h*33 + uint32(c)
	}
	return h
}

// hashRouter answers POST / with the djb2 hash and length of the body.
func hashRouter(t *testing.T, opts rest.Options) *rest.Router {
	rt := rest.New(opts)
	if err := rt.HandleFunc("POST", "/", "", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			rest.Error(w, http.StatusBadRequest, "read: %v", err)
			return
		}
		fmt.Fprintf(w, "HASH %d LEN %d", djb2(b), len(b))
	}); err != nil {
		t.Fatal(err)
	}
	return rt
}

func TestChunkedUploads(t *testing.T) {
	srv := newServer(t, hashRouter(t, rest.Options{}))
	addr := strings.TrimPrefix(srv.URL, "http://")
	body := make([]byte, 3*4096+7)
	for i := range body {
		body[i] = byte(i * 7)
	}
	want := fmt.Sprintf("HASH %d LEN %d", djb2(body), len(body))
	for _, chunk := range []int{1, 4095, 4096, 4097, 1 << 20} {
		t.Run(strconv.Itoa(chunk), func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			bw := bufio.NewWriter(c)
			fmt.Fprintf(bw, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
			bw.Flush()
			for off := 0; off < len(body); off += chunk {
				end := min(off+chunk, len(body))
				fmt.Fprintf(bw, "%x\r\n", end-off)
				bw.Write(body[off:end])
				bw.WriteString("\r\n")
				if chunk < 4096 {
					bw.Flush() // each piece its own write
				}
			}
			bw.WriteString("0\r\n\r\n")
			bw.Flush()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			if string(got) != want {
				t.Errorf("got %q want %q", got, want)
			}
		})
	}
}

func TestProtocols(t *testing.T) {
	rt := rest.New(rest.Options{})
	rt.HandleFunc("GET", "/", "proto", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.Proto) })
	s := rest.NewServer(rt, rest.ServerOptions{H2C: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Shutdown(context.Background())
	url := "http://" + ln.Addr().String() + "/proto"
	// HTTP/1.0 by hand
	c, _ := net.Dial("tcp", ln.Addr().String())
	fmt.Fprintf(c, "GET /proto HTTP/1.0\r\n\r\n")
	b, _ := io.ReadAll(c)
	c.Close()
	if !bytes.HasPrefix(b, []byte("HTTP/1.0 200")) || !bytes.HasSuffix(b, []byte("HTTP/1.0")) {
		t.Errorf("1.0: %q", b)
	}
	// 1.1
	if resp, body := do(t, http.DefaultClient, "GET", url, nil); resp.StatusCode != 200 || body != "HTTP/1.1" {
		t.Errorf("1.1: %q", body)
	}
	// h2c, prior knowledge
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: p}}
	if resp, body := do(t, h2c, "GET", url, nil); resp.StatusCode != 200 || body != "HTTP/2.0" {
		t.Errorf("h2c: %q", body)
	}
}

func TestResponseCompression(t *testing.T) {
	big := strings.Repeat("compress me please ", 500)
	rt := rest.New(rest.Options{})
	rt.HandleFunc("GET", "/", "big", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, big) })
	rt.HandleFunc("GET", "/", "small", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "tiny") })
	rt.HandleFunc("GET", "/", "png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		io.WriteString(w, big)
	})
	rt.HandleFunc("GET", "/", "json", func(w http.ResponseWriter, r *http.Request) {
		rest.WriteJSON(w, 200, map[string]string{"v": big})
	})
	srv := newServer(t, rt)
	tr := &http.Transport{DisableCompression: true}
	c := &http.Client{Transport: tr}
	decode := map[string]func(io.Reader) (io.Reader, error){
		"gzip":    func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) },
		"deflate": func(r io.Reader) (io.Reader, error) { return zlib.NewReader(r) },
		"zstd":    func(r io.Reader) (io.Reader, error) { return zstd.NewReader(r) },
		"lz4f":    func(r io.Reader) (io.Reader, error) { return lz4.NewReader(r), nil },
	}
	for _, tc := range []struct{ accept, path, enc string }{
		{"gzip", "/big", "gzip"},
		{"deflate", "/big", "deflate"},
		{"zstd", "/big", "zstd"},
		{"lz4f", "/big", "lz4f"},
		{"br, zstd;q=0.5, gzip;q=0.4", "/big", "zstd"},
		{"gzip;q=0, deflate", "/big", "deflate"},
		{"*", "/big", "gzip"},
		{"identity", "/big", ""},
		{"", "/big", ""},
		{"gzip", "/small", ""},
		{"gzip", "/png", ""},
		{"zstd", "/json", "zstd"},
	} {
		req, _ := http.NewRequest("GET", srv.URL+tc.path, nil)
		if tc.accept != "" {
			req.Header.Set("Accept-Encoding", tc.accept)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := resp.Header.Get("Content-Encoding")
		if got != tc.enc {
			t.Errorf("%q %s: encoding %q, want %q", tc.accept, tc.path, got, tc.enc)
			continue
		}
		var plain []byte = raw
		if got != "" {
			if resp.Header.Get("Vary") != "Accept-Encoding" {
				t.Errorf("%s: no Vary", got)
			}
			d, err := decode[got](bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			plain, err = io.ReadAll(d)
			if err != nil {
				t.Fatalf("%s: %v", got, err)
			}
			if len(raw) >= len(plain) {
				t.Errorf("%s: %d compressed bytes for %d", got, len(raw), len(plain))
			}
		}
		if tc.path == "/big" && string(plain) != big {
			t.Errorf("%q: body differs (%d bytes)", tc.accept, len(plain))
		}
	}
}

func TestRequestDecoding(t *testing.T) {
	srv := newServer(t, hashRouter(t, rest.Options{}))
	body := bytes.Repeat([]byte("abcdefgh"), 10000)
	want := fmt.Sprintf("HASH %d LEN %d", djb2(body), len(body))
	enc := map[string]func(io.Writer) io.WriteCloser{
		"gzip":    func(w io.Writer) io.WriteCloser { return kgzip.NewWriter(w) },
		"deflate": func(w io.Writer) io.WriteCloser { return zlib.NewWriter(w) },
		"zstd":    func(w io.Writer) io.WriteCloser { z, _ := zstd.NewWriter(w); return z },
		"lz4f":    func(w io.Writer) io.WriteCloser { return lz4.NewWriter(w) },
	}
	for name, mk := range enc {
		var buf bytes.Buffer
		w := mk(&buf)
		w.Write(body)
		w.Close()
		req, _ := http.NewRequest("POST", srv.URL+"/", &buf)
		req.Header.Set("Content-Encoding", name)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != want {
			t.Errorf("%s: %q", name, got)
		}
	}
	// garbage claiming gzip: the handler's read fails; an unknown
	// encoding is refused
	for ce, code := range map[string]int{"gzip": 400, "br": 415} {
		req, _ := http.NewRequest("POST", srv.URL+"/", strings.NewReader("not compressed"))
		req.Header.Set("Content-Encoding", ce)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != code {
			t.Errorf("%s garbage: %d want %d", ce, resp.StatusCode, code)
		}
	}
}

func TestLimits(t *testing.T) {
	rt := hashRouter(t, rest.Options{MaxBody: 1000})
	block := make(chan struct{})
	entered := make(chan struct{}, 1)
	rt.HandleFunc("GET", "/", "block", func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-block
	})
	s := rest.NewServer(rt, rest.ServerOptions{ReadHeaderTimeout: 200 * time.Millisecond, MaxHeaderBytes: 4096, MaxConcurrent: 1})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Shutdown(context.Background())
	base := "http://" + ln.Addr().String()
	c := &http.Client{Transport: &http.Transport{}}

	t.Run("body too large by length", func(t *testing.T) {
		resp, _ := do(t, c, "POST", base+"/", strings.NewReader(strings.Repeat("x", 1001)))
		if resp.StatusCode != 413 {
			t.Errorf("%d", resp.StatusCode)
		}
	})
	t.Run("body too large chunked", func(t *testing.T) {
		resp, body := do(t, c, "POST", base+"/", io.MultiReader(strings.NewReader(strings.Repeat("x", 5000))))
		if resp.StatusCode != 413 {
			t.Errorf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("body too large after decoding", func(t *testing.T) {
		var buf bytes.Buffer
		w := kgzip.NewWriter(&buf)
		w.Write(bytes.Repeat([]byte{0}, 100000))
		w.Close()
		req, _ := http.NewRequest("POST", base+"/", &buf)
		req.Header.Set("Content-Encoding", "gzip")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Errorf("zip bomb: %d", resp.StatusCode)
		}
	})
	t.Run("header too large", func(t *testing.T) {
		req, _ := http.NewRequest("GET", base+"/x", nil)
		req.Header.Set("X-Big", strings.Repeat("h", 10000))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 431 {
			t.Errorf("%d", resp.StatusCode)
		}
	})
	t.Run("slowloris", func(t *testing.T) {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "))
		// never finish the header: the server must hang up on its own
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err = io.ReadAll(conn)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("server kept a never-finished header open")
		}
	})
	t.Run("concurrency", func(t *testing.T) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			resp, err := c.Get(base + "/block")
			if err == nil {
				resp.Body.Close()
			}
		}()
		<-entered
		resp, body := do(t, c, "GET", base+"/block", nil)
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" {
			t.Errorf("%d %v %s", resp.StatusCode, resp.Header, body)
		}
		close(block)
		<-done
	})
}

func TestWebSocketEcho(t *testing.T) {
	rt := rest.New(rest.Options{Deadline: 50 * time.Millisecond})
	err := rt.Handle(rest.MethodWebSocket, "/ws/", "echo", rest.WebSocket(nil, func(ctx context.Context, c *websocket.Conn, r *http.Request) {
		for {
			typ, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, b); err != nil {
				return
			}
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, rt)
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for i := range 3 {
		msg := fmt.Sprintf("hello %d", i)
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		// outlive the router's default deadline: a websocket has none
		time.Sleep(30 * time.Millisecond)
		_, b, err := c.Read(ctx)
		if err != nil || string(b) != msg {
			t.Fatalf("echo %q %v", b, err)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
	// a plain GET of a websocket route is not found as GET
	resp, _ := do(t, srv.Client(), "GET", srv.URL+"/ws/echo", nil)
	if resp.StatusCode != 405 {
		t.Errorf("plain GET of ws route: %d", resp.StatusCode)
	}
}

func TestAccessLog(t *testing.T) {
	var out syncbuf.Buffer
	g := log.New(log.WithStderr(&out))
	rt := rest.New(rest.Options{Logs: g})
	if err := g.Connect("http/access", "stderr"); err != nil {
		t.Fatal(err)
	}
	rt.HandleFunc("POST", "/", "p", func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		w.WriteHeader(201)
		io.WriteString(w, "made")
	})
	srv := newServer(t, rt)
	do(t, srv.Client(), "POST", srv.URL+"/p?a=1", strings.NewReader("12345"))
	waitFor(t, "access line", func() bool { return strings.Contains(out.String(), "201") })
	line := out.String()
	if !containsAll(line, "127.0.0.1 - - [", "-0000] 1: \"POST /p?a=1 HTTP/1.1\" 201 4|5 ", "status=201", "bytes_read=5", `querystring="a=1"`) {
		t.Errorf("access line %q", line)
	}
}

func TestStaticFiles(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "sub"), 0o755)
	os.WriteFile(filepath.Join(root, "index.html"), []byte("<p>home</p>"), 0o644)
	os.WriteFile(filepath.Join(root, "sub", "a.txt"), []byte("0123456789"), 0o644)
	outside := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(outside, []byte("secret"), 0o644)
	os.Symlink(outside, filepath.Join(root, "link"))
	h, err := rest.Files(root, "", map[string]string{"txt": "text/x-mine"})
	if err != nil {
		t.Fatal(err)
	}
	rt := rest.New(rest.Options{})
	rt.Handle("GET", "/", "(.*)", h)
	srv := newServer(t, rt)
	for _, tc := range []struct {
		path, want string
		code       int
	}{
		{"/", "<p>home</p>", 200},
		{"/sub/a.txt", "0123456789", 200},
		{"/sub/../../secret", "", 404},
		{"/link", "", 404},
		{"/%2e%2e/secret", "", 404},
		{"/nope", "", 404},
	} {
		resp, body := do(t, srv.Client(), "GET", srv.URL+tc.path, nil)
		if resp.StatusCode != tc.code || (tc.want != "" && body != tc.want) {
			t.Errorf("%s: %d %q", tc.path, resp.StatusCode, body)
		}
		if tc.path == "/sub/a.txt" && resp.Header.Get("Content-Type") != "text/x-mine" {
			t.Errorf("type %q", resp.Header.Get("Content-Type"))
		}
	}
	req, _ := http.NewRequest("GET", srv.URL+"/sub/a.txt", nil)
	req.Header.Set("Range", "bytes=2-4")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 206 || string(b) != "234" {
		t.Errorf("range: %d %q", resp.StatusCode, b)
	}
	req, _ = http.NewRequest("GET", srv.URL+"/sub/a.txt", nil)
	req.Header.Set("If-Modified-Since", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
	resp, err = srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 304 {
		t.Errorf("if-modified-since: %d", resp.StatusCode)
	}
}

func TestIdleTimeout(t *testing.T) {
	rt := rest.New(rest.Options{})
	rt.HandleFunc("GET", "/", "x", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "x") })
	s := rest.NewServer(rt, rest.ServerOptions{IdleTimeout: 100 * time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Shutdown(context.Background())
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	if resp.Close {
		t.Fatal("keep-alive refused")
	}
	// stay idle: the server must close the connection on its own
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("idle connection: %v, want EOF from the server", err)
	}
}
