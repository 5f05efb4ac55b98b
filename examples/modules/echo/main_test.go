package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/internal/syncbuf"
	"github.com/mtev-supervise/mtev-supervise/pkg/config"
	"github.com/mtev-supervise/mtev-supervise/pkg/log"
	"github.com/mtev-supervise/mtev-supervise/pkg/module"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The example, built as the executable it ships as, loaded by a host:
// it drops log lines, sees a reload, and a crash it is asked for is
// reported and followed by a restart.
func TestEchoModule(t *testing.T) {
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "modules", "echo"), ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfgPath := filepath.Join(dir, "app.xml")
	write := func(extra string) {
		os.WriteFile(cfgPath, []byte(`<app>
  <modules directory="modules">
    <generic image="echo" restart_backoff="10ms">
      <config><drop>password</drop><crash_on>self-destruct</crash_on></config>
    </generic>
  </modules>`+extra+`
</app>
`), 0o644)
	}
	write("")
	cfg, err := config.Load(cfgPath, config.Options{NoWriteBack: true, Sections: []config.Section{module.Section}})
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	var stderr syncbuf.Buffer
	logs := log.New(log.WithStderr(&stderr))
	defer logs.Close()
	var mu sync.Mutex
	var stalls []module.Stall
	set, err := module.Load(context.Background(), cfg, module.Host{Logs: logs, Config: cfg, Report: func(s module.Stall) {
		mu.Lock()
		stalls = append(stalls, s)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	waitFor(t, "the module's greeting in the host log", func() bool {
		return strings.Contains(stderr.String(), "[notice/module/echo] echo module echo up in process")
	})
	notice := logs.Facility("notice")
	notice.Log().Msg("the password is swordfish")
	notice.Log().Msg("nothing to hide")
	if s := stderr.String(); strings.Contains(s, "swordfish") || !strings.Contains(s, "nothing to hide") {
		t.Fatalf("host log:\n%s", s)
	}
	write("\n<extra/>")
	if _, err := cfg.Reload(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reload seen by the module", func() bool {
		return strings.Contains(stderr.String(), "configuration reloaded: /app/extra")
	})
	pid := set.List()[0].PID
	notice.Log().Msg("self-destruct")
	waitFor(t, "the crash report", func() bool { mu.Lock(); defer mu.Unlock(); return len(stalls) == 1 })
	if !strings.Contains(stalls[0].Detail, "panic: echo: asked to crash by a log line: self-destruct") {
		t.Fatalf("crash detail:\n%s", stalls[0].Detail)
	}
	waitFor(t, "the restarted module", func() bool {
		i := set.List()[0]
		return i.Up && i.PID != pid && i.Runs == 2
	})
	notice.Log().Msg("password again")
	if strings.Contains(stderr.String(), "password again") {
		t.Fatal("the restarted module does not drop lines")
	}
}
