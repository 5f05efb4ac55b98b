package builtin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mtev-supervise/mtev-supervise/pkg/runtime/builtin"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
)

const chromium = "/usr/bin/chromium"

// startDashboardService runs the dashboard app under a real supervisor and
// returns its base URL once it serves and the supervisor has journaled
// the stall of its hung loop.
func startDashboardService(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	addrFile := filepath.Join(dir, "addr")
	sup, err := watchdog.New(watchdog.Config{
		Name:        "dashboard",
		Command:     []string{os.Args[0], "-test.run=^$"},
		Env:         []string{appEnv + "=dashboard", addrFileEnv + "=" + addrFile},
		StateDir:    dir,
		HeartGrace:  time.Hour, // soft stage only: the service keeps running
		Restart:     watchdog.RestartNever,
		StopTimeout: time.Second,
	}, watchdog.Options{Events: func(watchdog.Event) {}, Output: func(watchdog.Line) {}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	base := "http://" + waitFile(t, addrFile, 30*time.Second)
	// Wait for the incident to be readable by the child.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var inc struct{ Incidents []builtin.Incident }
		if resp, err := http.Get(base + "/mtev/incidents.json"); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&inc)
			resp.Body.Close()
			if len(inc.Incidents) > 0 && inc.Incidents[0].Culprit != nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the stall of the hung loop never reached /mtev/incidents.json")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return base
}

func TestDashboardInBrowser(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("chromium is not installed at %s (Debian package chromium): %v", chromium, err)
	}
	base := startDashboardService(t)

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()
	// The first run starts the browser and must not carry a timeout.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	shots := t.TempDir()
	if d := os.Getenv("MTEV_DASHBOARD_SHOTS"); d != "" {
		shots = d // keep them for a look
	}
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			buf, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, name+".png"), buf, 0o644)
		})
	}
	do := func(phase string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			_ = chromedp.Do(bctx, shot(phase+"-failed"))
			if html, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector("main").innerText`)); err == nil {
				t.Logf("page text:\n%.3000s", html)
			}
			if v, err := chromedp.Run(bctx, chromedp.Evaluate[string](`(async () => { const l = await (await fetch("/mtev/incidents.json")).json(); const r = await fetch("/mtev/incidents.json?id=" + l.incidents[0].id); return r.status + " " + (await r.text()).slice(0, 300); })()`, chromedp.EvalAwaitPromise)); err == nil {
				t.Logf("incident: %s", v)
			} else {
				t.Logf("eval: %v", err)
			}
			t.Fatalf("%s: %v (screenshots in %s)", phase, err, shots)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}

	// Overview: the service, every heart with its loop (the stuck one
	// past its timeout), and histogram charts.
	do("overview",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(`[data-card="service"]`),
		chromedp.WaitVisible(`tr[data-heart="e:stuck/0"] span.bad`),
		chromedp.WaitVisible(`#histograms .chart svg rect.b`),
	)
	if s := text(`[data-card="service"] .v`); s != "dashboard" {
		t.Errorf("service card %q", s)
	}
	hearts := text(`#overview-hearts tbody`)
	for _, want := range []string{"e:default/0", "e:default/1", "e:stuck/0"} {
		if !strings.Contains(hearts, want) {
			t.Errorf("hearts table lacks %s: %q", want, hearts)
		}
	}
	if title := text(`#histograms .chart .title`); !strings.Contains(title, "n=") {
		t.Errorf("histogram title %q", title)
	}
	do("overview", shot("overview"))

	// Internals: pools with their loops and heart ages, job queues, timers.
	do("internals",
		chromedp.Navigate(base+"/#internals"),
		chromedp.WaitVisible(`tr[data-loop="e:stuck/0"]`),
		chromedp.WaitVisible(`#timers tbody tr`),
		chromedp.WaitVisible(`#jobqs tbody tr`),
	)
	if loops := text(`#pools`); !strings.Contains(loops, "e:default/1") || !strings.Contains(loops, "stuck") {
		t.Errorf("pools: %q", loops)
	}
	if timers, jobqs := text(`#timers tbody`), text(`#jobqs tbody`); !strings.Contains(timers, "ticker") || !strings.Contains(jobqs, "default_queue") {
		t.Errorf("timers %q, queues %q", timers, jobqs)
	}
	do("internals", shot("internals"))

	// Logs: the memory outlet followed live over the websocket.
	do("logs",
		chromedp.Navigate(base+"/#logs"),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Poll[chromedp.Void](`document.querySelector("#log-lines").textContent.includes("tick ")`, chromedp.WithPollingTimeout(30*time.Second))(ctx, tg)
			return err
		}),
	)
	if logs := text(`#log-lines`); !strings.Contains(logs, "dashboard at http://") {
		t.Errorf("log lines: %.300q", logs)
	}
	do("logs", shot("logs"))

	// Incidents: the stall with its culprit and fingerprint; one incident's
	// goroutines, culprit first.
	do("incidents",
		chromedp.Navigate(base+"/#incidents"),
		chromedp.WaitVisible(`#incidents tbody tr[data-incident]`),
		chromedp.WaitVisible(`#groups tbody tr`),
		chromedp.Click(`#incidents tbody tr[data-incident]`),
		chromedp.WaitVisible(`#incident-detail .goroutine.culprit`),
	)
	if incidents := text(`#incidents tbody`); !strings.Contains(incidents, "stall") || !strings.Contains(incidents, "e:stuck/0") || !strings.Contains(incidents, "hangForever") {
		t.Errorf("incidents table: %q", incidents)
	}
	if first := text(`#incident-detail .goroutine`); !strings.Contains(first, "culprit") || !strings.Contains(first, "hangForever") {
		t.Errorf("first goroutine shown is not the culprit: %.300q", first)
	}
	do("incidents", shot("incidents"))

	// Console: the service's console over the websocket, a command typed
	// into the page and its output shown.
	do("console",
		chromedp.Navigate(base+"/#console"),
		chromedp.WaitVisible(`#console-form.connected`),
		chromedp.SendKeys(`#console-line`, "show version\n"),
		chromedp.WaitVisible(`#console-out span.out`),
	)
	if out := text(`#console-out`); !strings.Contains(out, "dashboard 1.0") {
		t.Errorf("console page output: %q", out)
	}
	do("console", shot("console"))
	t.Logf("screenshots in %s", shots)
}
