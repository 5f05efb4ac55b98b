package dump

import (
	"context"
	"os"
	"testing"
	"time"
)

// BenchmarkDump measures a full dump request answered by a real child (a
// goroutine profile at debug=2 and debug=1 and a flight-recorder snapshot
// written to files), beside a ping round trip over the same socket.
func BenchmarkDump(b *testing.B) {
	for _, bc := range []struct {
		name string
		run  func(*Client, string) error
	}{
		{"base-ping", func(c *Client, _ string) error { return c.Ping(context.Background(), 10*time.Second) }},
		{"request", func(c *Client, dir string) error {
			res, err := c.Request(context.Background(), dir, 10*time.Second)
			for _, f := range res.Files {
				os.Remove(f.Path)
			}
			return err
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			_, c := startChild(b, "serve")
			dir := b.TempDir()
			if err := c.Ping(context.Background(), 10*time.Second); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := bc.run(c, dir); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
