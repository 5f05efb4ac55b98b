package cli

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mtev-supervise/mtev-supervise/internal/syncbuf"
)

// TestRunMetrics: `run --metrics-listen` serves the supervisor's view of a
// child that failed once and then runs: up, starts, restarts, incidents by
// reason, journal size.
func TestRunMetrics(t *testing.T) {
	dir := t.TempDir()
	flagFile := filepath.Join(dir, "started-once")
	child := "if [ -e " + flagFile + " ]; then exec sleep 60; else touch " + flagFile + "; exit 3; fi"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	var stderr syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		env := &Env{Stdin: strings.NewReader(""), Stdout: &syncbuf.Buffer{}, Stderr: &stderr, Args0: "mtev-supervise",
			Getenv: func(string) string { return "" }}
		done <- Run(runCtx, env, []string{"run", "--state-dir", dir, "--name", "flaky", "--backoff-min", "10ms",
			"--metrics-listen", "127.0.0.1:0", "--", "/bin/sh", "-c", child})
	}()
	defer func() { stop(); <-done }()

	re := regexp.MustCompile(`metrics at (http://\S+/metrics)`)
	var url string
	for url == "" {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			url = m[1]
		} else if ctx.Err() != nil {
			t.Fatalf("no metrics address announced:\n%s", stderr.String())
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	scrape := func() map[string]*dto.MetricFamily {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return fams
	}
	value := func(fams map[string]*dto.MetricFamily, name string) float64 {
		f := fams[name]
		if f == nil || len(f.Metric) == 0 {
			return -1
		}
		m := f.Metric[0]
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
		return -1
	}
	var fams map[string]*dto.MetricFamily
	for {
		fams = scrape()
		if value(fams, "mtev_supervisor_up") == 1 && value(fams, "mtev_supervisor_starts_total") == 2 && fams["mtev_supervisor_incidents_total"] != nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("metrics never showed the restarted child: %v\n%s", fams, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v := value(fams, "mtev_supervisor_restarts_total"); v != 1 {
		t.Errorf("restarts = %v", v)
	}
	inc := fams["mtev_supervisor_incidents_total"].Metric[0]
	labels := map[string]string{}
	for _, l := range inc.Label {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["reason"] != "exit" || labels["service"] != "flaky" || inc.Counter.GetValue() != 1 {
		t.Errorf("incidents: %v = %v", labels, inc.Counter.GetValue())
	}
	if v := value(fams, "mtev_supervisor_journal_bytes"); v <= 0 {
		t.Errorf("journal bytes = %v", v)
	}
	if v := value(fams, "mtev_supervisor_uptime_seconds"); v < 0 {
		t.Errorf("uptime = %v", v)
	}
}

// TestRunMetricsBadAddress: the address is checked before anything starts.
func TestRunMetricsBadAddress(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := tracesRun(context.Background(), dir, "run", "--state-dir", dir, "--metrics-listen", "256.0.0.1:nope", "--", "/bin/true")
	if code != ExitUsage || !strings.Contains(stderr, "--metrics-listen") {
		t.Fatalf("status %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "journal")); !os.IsNotExist(err) {
		t.Errorf("the supervisor started despite the bad address: %v", err)
	}
}
