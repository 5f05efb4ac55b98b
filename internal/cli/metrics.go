package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mtev-supervise/mtev-supervise/pkg/trace"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog/incident"
)

// serveMetrics serves Prometheus /metrics about the supervised service on
// addr (run --metrics-listen), so that a service that links nothing is
// still observable. The address is taken at once: a bad or busy one is an
// error before anything starts. stop closes the server.
//
// Everything is read at scrape time from what the supervisor already
// publishes: its status over the control socket (state, starts, uptime,
// hearts) and its journal (incidents, captures, size).
func serveMetrics(addr, stateDir, service string, announce io.Writer) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newSupervisorMetrics(stateDir, service),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	fmt.Fprintf(announce, "mtev-supervise[%s]: metrics at http://%s/metrics\n", service, ln.Addr())
	return func() { srv.Close(); <-done }, nil
}

// supervisorMetrics is a prometheus.Collector over one supervisor.
type supervisorMetrics struct {
	stateDir, service string

	up, starts, restarts, uptime, journalBytes *prometheus.Desc
	incidents, heartAge, heartTimeout          *prometheus.Desc

	mu       sync.Mutex // serializes scrapes over the journal state below
	reader   *incident.Reader
	counts   map[[2]string]float64 // reason, fingerprint
	captures map[trace.Method]prometheus.Histogram
}

func newSupervisorMetrics(stateDir, service string) *supervisorMetrics {
	c := prometheus.Labels{"service": service}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("mtev_supervisor_"+name, help, labels, c)
	}
	return &supervisorMetrics{
		stateDir: stateDir, service: service,
		up:           d("up", "1 while the child runs (running, ready or stopping), else 0."),
		starts:       d("starts_total", "Children started."),
		restarts:     d("restarts_total", "Children started again after the first."),
		uptime:       d("uptime_seconds", "Uptime of the current child (0 when none runs)."),
		journalBytes: d("journal_bytes", "Size of the incident journal on disk."),
		incidents:    d("incidents_total", "Incidents journaled, by reason and fingerprint.", "reason", "fingerprint"),
		heartAge:     d("heart_age_seconds", "Time since each heart last beat, as the supervisor sees it.", "heart"),
		heartTimeout: d("heart_timeout_seconds", "Each heart's timeout.", "heart"),
		counts:       map[[2]string]float64{},
		captures:     map[trace.Method]prometheus.Histogram{},
	}
}

func (m *supervisorMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.up, m.starts, m.restarts, m.uptime, m.journalBytes, m.incidents, m.heartAge, m.heartTimeout} {
		ch <- d
	}
}

func (m *supervisorMetrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	up := 0.0
	if st, err := watchdog.Control(ctx, m.stateDir, m.service, "status"); err == nil {
		switch st.State {
		case "running", "ready", "stopping":
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(m.starts, prometheus.CounterValue, float64(st.StartCount))
		ch <- prometheus.MustNewConstMetric(m.restarts, prometheus.CounterValue, float64(st.Restarts))
		ch <- prometheus.MustNewConstMetric(m.uptime, prometheus.GaugeValue, float64(st.UptimeMS)/1e3)
		for _, h := range st.Hearts {
			ch <- prometheus.MustNewConstMetric(m.heartAge, prometheus.GaugeValue, float64(h.AgeMS)/1e3, h.Name)
			ch <- prometheus.MustNewConstMetric(m.heartTimeout, prometheus.GaugeValue, float64(h.TimeoutMS)/1e3, h.Name)
		}
	}
	ch <- prometheus.MustNewConstMetric(m.up, prometheus.GaugeValue, up)

	m.mu.Lock()
	defer m.mu.Unlock()
	m.readJournal()
	for k, n := range m.counts {
		ch <- prometheus.MustNewConstMetric(m.incidents, prometheus.CounterValue, n, k[0], k[1])
	}
	for _, h := range m.captures {
		ch <- h
	}
	ch <- prometheus.MustNewConstMetric(m.journalBytes, prometheus.GaugeValue, float64(dirBytes(incident.JournalDir(m.stateDir))))
}

// readJournal reads the records appended since the last scrape (all of
// them at the first), counting this service's incidents and captures.
func (m *supervisorMetrics) readJournal() {
	if m.reader == nil {
		r, err := incident.NewReader(m.stateDir)
		if err != nil {
			return // no journal yet
		}
		m.reader = r
	}
	for {
		rec, err := m.reader.Next()
		if errors.Is(err, incident.ErrUndecodable) {
			continue // a record of a newer schema: the CLI reports it
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				// A journal we cannot read any more: start again at
				// the next scrape.
				m.reader.Close()
				m.reader = nil
			}
			return
		}
		if rec.Service != m.service {
			continue
		}
		m.counts[[2]string{string(rec.Reason), rec.Fingerprint}]++
		if c := rec.Capture; c != nil && c.Method != "" {
			h := m.captures[c.Method]
			if h == nil {
				h = prometheus.NewHistogram(prometheus.HistogramOpts{
					Name: "mtev_supervisor_capture_duration_seconds", Help: "How long captures took, by method.",
					ConstLabels: prometheus.Labels{"service": m.service, "method": string(c.Method)},
					Buckets:     prometheus.ExponentialBuckets(0.001, 4, 10), // 1 ms .. 4.4 min
				})
				m.captures[c.Method] = h
			}
			h.Observe(float64(c.DurationMS) / 1e3)
		}
	}
}

// dirBytes is the total size of the regular files in dir.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// metricsService is the name the supervisor will use for cfg's service.
func metricsService(cfg watchdog.Config) string {
	if cfg.Name != "" {
		return cfg.Name
	}
	if len(cfg.Command) > 0 {
		return filepath.Base(cfg.Command[0])
	}
	return ""
}
