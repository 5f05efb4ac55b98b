package hello

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
	"github.com/mtev-supervise/mtev-supervise/pkg/module"
)

func load(t *testing.T, body string) (*module.Set, *http.ServeMux, error) {
	p := filepath.Join(t.TempDir(), "app.xml")
	os.WriteFile(p, []byte(body), 0o644)
	cfg, err := config.Load(p, config.Options{NoWriteBack: true, Sections: []config.Section{module.Section}})
	if err != nil {
		return nil, nil, err
	}
	t.Cleanup(func() { cfg.Close() })
	mux := http.NewServeMux()
	logs := log.New(log.WithStderr(io.Discard))
	t.Cleanup(func() { logs.Close() })
	set, err := module.Load(context.Background(), cfg, module.Host{Logs: logs, Handle: func(method, base, expr string, h http.Handler) error {
		mux.Handle(method+" "+base, h)
		return nil
	}})
	if err == nil {
		t.Cleanup(func() { set.Close() })
		logs.Facility("error").Log().Msg("one error")
	}
	return set, mux, err
}

func TestHello(t *testing.T) {
	_, mux, err := load(t, `<app><modules><generic image="hello"><config><greeting>hi there</greeting></config></generic></modules></app>`)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/hello/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hi there (errors logged so far: 1)\n" {
		t.Fatalf("GET /hello/ = %q", b)
	}
}

func TestHelloNeedsGreeting(t *testing.T) {
	_, _, err := load(t, "<app>\n<modules>\n<generic image=\"hello\">\n<config>\n<greeting></greeting>\n</config>\n</generic>\n</modules>\n</app>\n")
	if err == nil || !strings.Contains(err.Error(), "app.xml:5: module hello (hello): config: key greeting: missing") {
		t.Fatalf("error %v", err)
	}
}
