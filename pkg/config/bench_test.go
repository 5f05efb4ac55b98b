package config

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/beevik/etree"
)

// BenchmarkGetter measures typed reads by path against etree's bare
// FindElement + attribute lookup on the same document.
func BenchmarkGetter(b *testing.B) {
	c := loadBasic(b, envMap("SOFT", "3s"))
	doc := c.Document()
	path := etree.MustCompilePath("/app/watchdog")
	b.Run("base-etree-find", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e := doc.FindElementPath(path)
			if e.SelectAttrValue("timeout", "") == "" {
				b.Fatal("missing")
			}
		}
	})
	cases := []struct {
		name string
		get  func() error
	}{
		{"string-attr", func() error { _, err := c.String("/app/watchdog/@glider", ""); return err }},
		{"int-text", func() error { _, err := c.Int("/app/watchdog/restarts", 0); return err }},
		{"duration-attr", func() error { _, err := c.Duration("/app/watchdog/@timeout", 0); return err }},
		{"size-text", func() error { _, err := c.Size("/app/watchdog/ring", 0); return err }},
		{"env-interpolated", func() error { _, err := c.Duration("/app/watchdog/@soft", 0); return err }},
		{"inherited-attr", func() error {
			_, err := c.String("/app/a/b/c/ancestor-or-self::node()/@quux", "")
			return err
		}},
		{"hash", func() error { _, err := c.Hash("/app/a/b/c"); return err }},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := tc.get(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// bigDocument writes a configuration of about size bytes.
func bigDocument(b *testing.B, size int) string {
	path := filepath.Join(b.TempDir(), "big.conf")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, `<?xml version="1.0" encoding="utf8"?>`)
	fmt.Fprintln(w, `<app lockfile="/var/run/app.lock">`)
	n := 0
	for i := 0; n < size; i++ {
		k, _ := fmt.Fprintf(w, "  <check id=\"c%d\" period=\"5s\" timeout=\"2s\" module=\"http\">\n    <target>10.%d.%d.%d</target>\n    <config><url>http://example.com/%d</url><code>200</code></config>\n  </check>\n",
			i, i>>16&255, i>>8&255, i&255, i)
		n += k
	}
	fmt.Fprintln(w, `</app>`)
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkLoad10MB loads a 10 MB document (with line tracking for every
// element) beside etree's bare parse of the same file.
func BenchmarkLoad10MB(b *testing.B) {
	path := bigDocument(b, 10<<20)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("base-etree-parse", func(b *testing.B) {
		b.SetBytes(fi.Size())
		b.ReportAllocs()
		for b.Loop() {
			doc := etree.NewDocument()
			if err := doc.ReadFromFile(path); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("load", func(b *testing.B) {
		b.SetBytes(fi.Size())
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Load(path, Options{NoWriteBack: true}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkShatteredChange changes one element of a 10,000-element subtree
// and writes it back: kept in a backing store (one file per element) and,
// as the baseline, inline in one file.
func BenchmarkShatteredChange(b *testing.B) {
	const n = 10000
	inline := func(b *testing.B) string {
		dir := b.TempDir()
		f, err := os.Create(filepath.Join(dir, "app.conf"))
		if err != nil {
			b.Fatal(err)
		}
		w := bufio.NewWriter(f)
		fmt.Fprintln(w, "<app>\n  <checks>")
		for i := 1; i <= n; i++ {
			fmt.Fprintf(w, "    <check id=\"c%d\" period=\"5s\"><target>10.0.0.%d</target></check>\n", i, i%250)
		}
		fmt.Fprintln(w, "  </checks>\n</app>")
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		return f.Name()
	}
	run := func(b *testing.B, root string) {
		c, err := Load(root, Options{NoWriteBack: true})
		if err != nil {
			b.Fatal(err)
		}
		files, bytes := 0, 0
		i := 0
		for b.Loop() {
			i++
			if err := c.Set(fmt.Sprintf("/app/checks/check[%d]/@period", 1+i%n), fmt.Sprintf("%dms", 1000+i)); err != nil {
				b.Fatal(err)
			}
			st, err := c.flush()
			if err != nil {
				b.Fatal(err)
			}
			files += st.files
			bytes += st.bytes
		}
		b.ReportMetric(float64(files)/float64(i), "files/op")
		b.ReportMetric(float64(bytes)/float64(i), "bytes-written/op")
	}
	b.Run("base-one-file", func(b *testing.B) { run(b, inline(b)) })
	b.Run("shattered", func(b *testing.B) { run(b, shatteredTree(b, n)) })
}
