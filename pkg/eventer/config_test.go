package eventer

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	opts, err := ParseConfig(map[string]string{
		"concurrency":                   "4",
		"loop_io":                       "2,1.5",
		"LOOP_other":                    "0",
		"jobq_dns":                      "4,2,8,gc,100,lifo",
		"jobq_plain":                    "3",
		"jobq_min":                      "2,2",
		"default_queue_threads":         "7",
		"default_jobq_ordering":         "LIFO",
		"show_loop_callbacks_threshold": "25",
		"show_jobq_callbacks_threshold": "0.5",
		"rlim_nofiles":                  "4096",
		"debugging":                     "1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if opts.Concurrency != 4 || opts.DefaultQueueThreads != 7 || !opts.LIFO || opts.NoFileLimit != 4096 || !opts.Debugging {
		t.Fatalf("options %+v", opts)
	}
	if opts.LoopSlowThreshold != 25*time.Millisecond || opts.QueueSlowThreshold != 500*time.Microsecond {
		t.Fatalf("thresholds %v %v", opts.LoopSlowThreshold, opts.QueueSlowThreshold)
	}
	pools := map[string]PoolOptions{}
	for _, p := range opts.Pools {
		pools[p.Name] = p
	}
	if p := pools["io"]; p.Concurrency != 2 || p.Timeout != 1500*time.Millisecond {
		t.Errorf("pool io %+v", p)
	}
	if p, ok := pools["other"]; !ok || p.Concurrency != 0 || p.Timeout != 0 {
		t.Errorf("pool other %+v", p)
	}
	queues := map[string]QueueOptions{}
	for _, q := range opts.Queues {
		queues[q.Name] = q
	}
	if q := queues["dns"]; q.Concurrency != 4 || q.Min != 2 || q.Max != 8 || q.Backlog != 100 || !q.LIFO {
		t.Errorf("queue dns %+v", q)
	}
	if q := queues["plain"]; q.Concurrency != 3 || !q.LIFO { // from default_jobq_ordering
		t.Errorf("queue plain %+v", q)
	}
	if q := queues["min"]; q.Min != 2 || q.Max != 2 {
		t.Errorf("queue min %+v", q)
	}
	// The options build a system.
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Stop()
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		key, val, want string
	}{
		{"concurrency", "0", "outside"},
		{"concurrency", "many", "not an integer"},
		{"loop_", "2", "empty name"},
		{"loop_a b", "2", "character"},
		{"loop_io", "two", "concurrency"},
		{"loop_io", "2,x", "timeout"},
		{"loop_io", "2,-1", "timeout"},
		{"loop_io", "2,NaN", "timeout"},
		{"loop_io", "2,1,3", "fields"},
		{"jobq_q", "0", "concurrency"},
		{"jobq_q", "2,3", "min 3 <= concurrency 2"},
		{"jobq_q", "5,1,4", "max 4"},
		{"jobq_q", "2,1,4,magic", "memory safety"},
		{"jobq_q", "2,1,4,gc,-3", "backlog"},
		{"jobq_q", "2,1,4,gc,3,sideways", "order"},
		{"jobq_q", "1,1,1,gc,1,lifo,extra", "fields"},
		{"default_queue_threads", "0", "outside"},
		{"default_jobq_ordering", "random", "fifo or lifo"},
		{"show_loop_callbacks_threshold", "-1", "milliseconds"},
		{"rlim_nofiles", "100", "outside"},
		{"debugging", "maybe", "boolean"},
		{"ssl_dhparam1024_file", "/x", "TLS"},
		{"default_ca_chain", "/x", "TLS"},
		{"colour", "blue", "unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.val, func(t *testing.T) {
			_, err := ParseConfig(map[string]string{tt.key: tt.val})
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tt.key) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %q does not name key %q and problem %q", err, tt.key, tt.want)
			}
		})
	}
	// Every bad key is reported, not only the first.
	_, err := ParseConfig(map[string]string{"a": "1", "b": "2"})
	if err == nil || !strings.Contains(err.Error(), "config a=") || !strings.Contains(err.Error(), "config b=") {
		t.Fatalf("err = %v, want both keys named", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	seeds := [][2]string{
		{"concurrency", "4"},
		{"loop_io", "2,1.5"},
		{"loop_default", "3,5"},
		{"jobq_dns", "4,2,8,gc,100,lifo"},
		{"jobq_x", "1,,,none"},
		{"default_queue_threads", "10"},
		{"default_jobq_ordering", "fifo"},
		{"show_jobq_callbacks_threshold", "100"},
		{"rlim_nofiles", "1048576"},
		{"loop_x", "1,1e-12"},
		{"jobq_y", " 2 , 1 "},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, key, val string) {
		opts, err := ParseConfig(map[string]string{key: val})
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
			return
		}
		// Accepted configuration must build (without starting anything
		// large: concurrency is capped by ParseConfig, and New starts no
		// goroutine).
		s, err := New(opts)
		if err != nil {
			t.Fatalf("accepted config %q=%q does not build: %v", key, val, err)
		}
		s.Stop()
	})
}

func TestConfigDefaultPoolAndQueue(t *testing.T) {
	opts, err := ParseConfig(map[string]string{
		"loop_default":         "3,2",
		"jobq_" + DefaultQueue: "2,1,4",
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if d := s.Default(); d.Len() != 3 || d.Timeout() != 2*time.Second {
		t.Fatalf("default pool: %d loops, timeout %v", d.Len(), d.Timeout())
	}
	if q := s.Queue(DefaultQueue).Snapshot(); q.Concurrency != 2 || q.Max != 4 {
		t.Fatalf("default queue %+v", q)
	}
	if len(s.Pools()) != 1 {
		t.Fatalf("%d pools, want only the default", len(s.Pools()))
	}
}
