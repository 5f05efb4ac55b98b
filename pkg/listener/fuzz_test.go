package listener_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/listener"
)

func listenerSpecs(xml string) []*listener.Spec {
	c, err := config.Parse("app.conf", []byte(xml), config.Options{NoWriteBack: true})
	if err != nil {
		panic(err)
	}
	specs, err := listener.Parse(c)
	if err != nil {
		panic(err)
	}
	return specs
}

func FuzzSniff(f *testing.F) {
	for _, s := range []string{"GET / HTTP/1.1\r\n", "CAPA", "POST", "PRI * HTTP/2.0", "\x16\x03\x01", "", "DELETE /x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v := listener.Sniff(b)
		if len(b) < 4 && v != listener.VerbClose {
			t.Fatalf("%q: %v with fewer than 4 bytes", b, v)
		}
		if v == listener.VerbCapa && string(b[:4]) != "CAPA" {
			t.Fatalf("%q: capa", b)
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add(`<listener type="http_rest_api" address="*" port="80"><config><a>b</a></config></listener>`)
	f.Add(`<listener type="control_dispatch" address="::1" port="1" backlog="9"/>`)
	f.Add(`<g port="5"><listener type="http_rest_api" address="/x.sock" colour="1"/></g>`)
	f.Fuzz(func(t *testing.T, body string) {
		c, err := config.Parse("f.conf", []byte("<app><listeners>"+body+"</listeners></app>"), config.Options{NoWriteBack: true})
		if err != nil {
			return
		}
		specs, err := listener.Parse(c)
		if err != nil {
			if !errors.Is(err, listener.ErrConfig) || !strings.Contains(err.Error(), "f.conf") {
				t.Fatalf("error without kind or place: %v", err)
			}
			return
		}
		for _, s := range specs {
			if s.Type == "" || (s.Port < 0 || s.Port > 65535) || s.Backlog < 1 {
				t.Fatalf("bad spec accepted: %+v", s)
			}
		}
	})
}
