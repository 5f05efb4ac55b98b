package eventer

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Limits on configured values, to turn typos into errors rather than into
// thousands of threads.
const (
	maxConfigConcurrency = 4096
	maxConfigTimeout     = 24 * time.Hour
)

// ParseConfig turns the key/value pairs of libmtev's <eventer><config> into
// Options. Keys are matched without regard to case, as libmtev does:
//
//	concurrency                    default pool's loops (≥ 1)
//	loop_<name>                    conc[,timeout]: a pool; timeout in seconds
//	jobq_<name>                    conc[,min[,max[,safety[,backlog[,order]]]]]
//	                               safety gc|cs|none (accepted; Go is memory-safe),
//	                               order fifo|lifo
//	default_queue_threads          default_queue's concurrency (≥ 1)
//	default_jobq_ordering          fifo|lifo, for queues that do not say
//	show_loop_callbacks_threshold  milliseconds; slow loop callbacks
//	show_jobq_callbacks_threshold  milliseconds; slow jobs
//	rlim_nofiles                   ≥ 256, applied by System.Start
//	debugging                      boolean: report every callback and job to OnSlow
//
// Unknown keys, and libmtev's TLS keys (ssl_*, default_ca_chain), which this
// eventer does not implement, are errors. Every bad pair is reported (joined,
// in key order), each naming its key and wrapping ErrConfig.
func ParseConfig(kv map[string]string) (Options, error) {
	var opts Options
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	var ordered []bool // per queue in opts.Queues: was an order given?
	lifo := false
	bad := func(key, val, format string, args ...any) {
		errs = append(errs, fmt.Errorf("eventer: config %s=%q: %s: %w", key, val, fmt.Sprintf(format, args...), ErrConfig))
	}
	for _, key := range keys {
		val := strings.TrimSpace(kv[key])
		lk := strings.ToLower(key)
		switch {
		case lk == "concurrency":
			n, err := configInt(val, 1, maxConfigConcurrency)
			if err != nil {
				bad(key, val, "%v", err)
				continue
			}
			opts.Concurrency = n
		case strings.HasPrefix(lk, "loop_"):
			po, err := parseLoop(key[len("loop_"):], val)
			if err != nil {
				bad(key, val, "%v", err)
				continue
			}
			opts.Pools = append(opts.Pools, po)
		case strings.HasPrefix(lk, "jobq_"):
			qo, hasOrder, err := parseJobq(key[len("jobq_"):], val)
			if err != nil {
				bad(key, val, "%v", err)
				continue
			}
			opts.Queues = append(opts.Queues, qo)
			ordered = append(ordered, hasOrder)
		case lk == "default_queue_threads":
			n, err := configInt(val, 1, maxConfigConcurrency)
			if err != nil {
				bad(key, val, "%v", err)
				continue
			}
			opts.DefaultQueueThreads = n
		case lk == "default_jobq_ordering":
			switch strings.ToLower(val) {
			case "fifo":
				lifo = false
			case "lifo":
				lifo = true
			default:
				bad(key, val, "want fifo or lifo")
			}
		case lk == "show_loop_callbacks_threshold", lk == "show_jobq_callbacks_threshold":
			ms, err := strconv.ParseFloat(val, 64)
			if err != nil || math.IsNaN(ms) || ms < 0 || ms > float64(maxConfigTimeout/time.Millisecond) {
				bad(key, val, "want milliseconds, 0 to %d", maxConfigTimeout/time.Millisecond)
				continue
			}
			d := time.Duration(ms * float64(time.Millisecond))
			if lk == "show_loop_callbacks_threshold" {
				opts.LoopSlowThreshold = d
			} else {
				opts.QueueSlowThreshold = d
			}
		case lk == "rlim_nofiles":
			n, err := configInt(val, 256, math.MaxInt32)
			if err != nil {
				bad(key, val, "%v", err)
				continue
			}
			opts.NoFileLimit = n
		case lk == "debugging":
			b, err := strconv.ParseBool(val)
			if err != nil {
				bad(key, val, "want a boolean")
				continue
			}
			opts.Debugging = b
		case strings.HasPrefix(lk, "ssl_"), lk == "default_ca_chain":
			bad(key, val, "TLS settings are not supported by this eventer")
		default:
			bad(key, val, "unknown key")
		}
	}
	opts.LIFO = lifo
	for i := range opts.Queues {
		if !ordered[i] {
			opts.Queues[i].LIFO = lifo
		}
	}
	if len(errs) > 0 {
		return Options{}, errors.Join(errs...)
	}
	return opts, nil
}

func configInt(s string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", s)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d outside [%d, %d]", n, lo, hi)
	}
	return n, nil
}

func fields(val string) []string {
	parts := strings.Split(val, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// parseLoop reads conc[,timeout]. A concurrency of 0 means the default
// pool's.
func parseLoop(name, val string) (PoolOptions, error) {
	if err := checkName(name); err != nil {
		return PoolOptions{}, fmt.Errorf("pool %v", err)
	}
	f := fields(val)
	if len(f) > 2 {
		return PoolOptions{}, fmt.Errorf("want concurrency[,timeout], got %d fields", len(f))
	}
	n, err := configInt(f[0], 0, maxConfigConcurrency)
	if err != nil {
		return PoolOptions{}, fmt.Errorf("concurrency: %v", err)
	}
	po := PoolOptions{Name: name, Concurrency: n}
	if len(f) == 2 {
		secs, err := strconv.ParseFloat(f[1], 64)
		if err != nil || math.IsNaN(secs) || secs <= 0 || secs > maxConfigTimeout.Seconds() {
			return PoolOptions{}, fmt.Errorf("timeout %q: want seconds in (0, %g]", f[1], maxConfigTimeout.Seconds())
		}
		po.Timeout = time.Duration(secs * float64(time.Second))
		if po.Timeout <= 0 {
			return PoolOptions{}, fmt.Errorf("timeout %q: too small", f[1])
		}
	}
	return po, nil
}

// parseJobq reads conc[,min[,max[,safety[,backlog[,order]]]]] with libmtev's
// rules: a min alone sets max too, and min ≤ conc ≤ max.
func parseJobq(name, val string) (QueueOptions, bool, error) {
	if err := checkName(name); err != nil {
		return QueueOptions{}, false, fmt.Errorf("queue %v", err)
	}
	f := fields(val)
	if len(f) > 6 {
		return QueueOptions{}, false, fmt.Errorf("want conc[,min[,max[,safety[,backlog[,order]]]]], got %d fields", len(f))
	}
	conc, err := configInt(f[0], 1, maxConfigConcurrency)
	if err != nil {
		return QueueOptions{}, false, fmt.Errorf("concurrency: %v", err)
	}
	qo := QueueOptions{Name: name, Concurrency: conc}
	if len(f) > 1 && f[1] != "" {
		if qo.Min, err = configInt(f[1], 1, maxConfigConcurrency); err != nil {
			return QueueOptions{}, false, fmt.Errorf("min: %v", err)
		}
		qo.Max = qo.Min
	}
	if len(f) > 2 && f[2] != "" {
		if qo.Max, err = configInt(f[2], 1, maxConfigConcurrency); err != nil {
			return QueueOptions{}, false, fmt.Errorf("max: %v", err)
		}
	}
	if (qo.Min != 0 && qo.Max != 0 && qo.Min > qo.Max) || (qo.Min != 0 && conc < qo.Min) || (qo.Max != 0 && conc > qo.Max) {
		return QueueOptions{}, false, fmt.Errorf("need min %d <= concurrency %d <= max %d", qo.Min, conc, qo.Max)
	}
	if len(f) > 3 && f[3] != "" {
		switch f[3] {
		case "gc", "cs", "none":
		default:
			return QueueOptions{}, false, fmt.Errorf("memory safety %q: want gc, cs or none", f[3])
		}
	}
	if len(f) > 4 && f[4] != "" {
		if qo.Backlog, err = configInt(f[4], 0, math.MaxInt32); err != nil {
			return QueueOptions{}, false, fmt.Errorf("backlog: %v", err)
		}
	}
	hasOrder := false
	if len(f) > 5 && f[5] != "" {
		switch strings.ToLower(f[5]) {
		case "fifo":
		case "lifo":
			qo.LIFO = true
		default:
			return QueueOptions{}, false, fmt.Errorf("order %q: want fifo or lifo", f[5])
		}
		hasOrder = true
	}
	return qo, hasOrder, nil
}
