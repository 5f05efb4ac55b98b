package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the loader: it must return a document
// or an error, never panic or hang. A document that loads must survive
// validation, reads, and a write/re-read round trip unchanged.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join(testdata, "*", "*.conf"))
	more, _ := filepath.Glob(filepath.Join(testdata, "load", "*", "*.conf"))
	for _, p := range append(seeds, more...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`<a x="{{ENV:1:{X}}}" require_env="X~["><config inherit="a" id="a"><k>v</k></config></a>`))
	f.Add([]byte("<?xml version='1.0'?><!DOCTYPE a><a>&amp;<![CDATA[x]]><!--c--><?pi x?></a>"))
	f.Add([]byte("<a>\r\n<b\tc='\r'/></a>"))
	env := envMap("X", "1")
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := loadBytes("fuzz.xml", data, env, true)
		if err != nil {
			return
		}
		c := newConfig("fuzz.xml", Options{NoWriteBack: true, Env: env})
		c.t = tr
		_ = c.Validate(exampleSection)
		root := c.Root()
		_, _ = root.Hash()
		_, _ = c.FindAll("//*")
		_, _ = c.String("/*/@x", "")
		out, err := tr.render(tr.units[tr.doc.Root()])
		if err != nil {
			t.Fatalf("render: %v", err)
		}
		tr2, err := loadBytes("fuzz.xml", out, env, true)
		if err != nil {
			t.Fatalf("written document does not load: %v\n%q\n%q", err, data, out)
		}
		a, _ := tr.doc.WriteToString()
		b, _ := tr2.doc.WriteToString()
		if a != b {
			t.Fatalf("round trip changed the document:\n%q\n%q", a, b)
		}
	})
}
