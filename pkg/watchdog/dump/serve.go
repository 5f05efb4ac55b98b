package dump

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// DefaultBudget is the child's budget for a dump request that names none.
const DefaultBudget = 5 * time.Second

// replyTimeout bounds the child's wait to hand a reply to the socket.
const replyTimeout = 5 * time.Second

// Recorder is the child's flight recorder: it keeps the last stretch of the
// runtime execution trace in memory so a dump can include what led up to a
// stall. Only one may run in a process.
type Recorder struct {
	fr       *trace.FlightRecorder
	stopOnce sync.Once
}

// StartFlightRecorder starts recording. window is the minimum age of the
// events kept (0: about 10 s); maxBytes bounds the memory used and wins over
// window (0: about 10 MiB). Start it early, so the first dump has data.
func StartFlightRecorder(window time.Duration, maxBytes uint64) (*Recorder, error) {
	fr := trace.NewFlightRecorder(trace.FlightRecorderConfig{MinAge: window, MaxBytes: maxBytes})
	if err := fr.Start(); err != nil {
		return nil, fmt.Errorf("dump: start flight recorder: %w", err)
	}
	return &Recorder{fr: fr}, nil
}

// WriteTo writes the recorded window as a runtime/trace file.
func (r *Recorder) WriteTo(w io.Writer) (int64, error) {
	return r.fr.WriteTo(w)
}

// Stop stops recording. It is idempotent.
func (r *Recorder) Stop() {
	if r == nil {
		return
	}
	r.stopOnce.Do(r.fr.Stop)
}

// Options configure Serve.
type Options struct {
	// Recorder supplies the trace file; without one, trace requests are
	// answered with a per-file error.
	Recorder *Recorder
}

// ServeFromEnv serves the socket whose descriptor number is in EnvFD, and
// closes that descriptor. It returns ErrNotSupervised when EnvFD is unset.
// The descriptor is consumed: call it once.
func ServeFromEnv(ctx context.Context, opts Options) error {
	v := os.Getenv(EnvFD)
	if v == "" {
		return fmt.Errorf("dump: serve: %w: %s is unset", ErrNotSupervised, EnvFD)
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return fmt.Errorf("dump: serve: %s=%q is not a descriptor number above 2", EnvFD, v)
	}
	f := os.NewFile(uintptr(fd), "mtev-control")
	conn, err := fileConn(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("dump: serve: %w", err)
	}
	return serve(ctx, conn, opts)
}

// Serve answers the parent's requests on f, the child's end of a Pair, one
// at a time, until the parent closes its end (it returns nil) or ctx ends (it
// returns the context's error). It duplicates f; the caller still closes f.
// Run it in a goroutine of its own, never on an event loop: a dump must not
// depend on the code it is meant to explain.
func Serve(ctx context.Context, f *os.File, opts Options) error {
	conn, err := fileConn(f)
	if err != nil {
		return fmt.Errorf("dump: serve: %w", err)
	}
	return serve(ctx, conn, opts)
}

func serve(ctx context.Context, conn *net.UnixConn, opts Options) error {
	defer conn.Close()
	stop := cancelOnDone(ctx, conn)
	defer stop()
	lr := lineReader{r: conn}
	for {
		line, err := lr.next()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var rep reply
		switch {
		case errors.Is(err, errTooLong):
			rep = reply{Error: err.Error()}
		case errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed):
			return nil
		case err != nil:
			return fmt.Errorf("dump: serve: read: %w", err)
		default:
			rep = handle(line, opts, time.Now)
		}
		rep.V = Version
		if err := writeMessage(conn, rep, time.Now().Add(replyTimeout)); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, net.ErrClosed) || isPeerGone(err) {
				return nil
			}
			return fmt.Errorf("dump: serve: reply %d: %w", rep.ID, err)
		}
	}
}

func isPeerGone(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// handle answers one request line; it never panics on bad input. now is
// the clock that measures the budget.
func handle(line []byte, opts Options, now func() time.Time) reply {
	start := now()
	req, err := parseRequest(line)
	if err != nil {
		return reply{ID: req.ID, Error: err.Error()}
	}
	rep := reply{ID: req.ID, OK: true}
	switch req.Op {
	case OpPing:
	case OpDump:
		budget := DefaultBudget
		if req.BudgetMS > 0 {
			budget = time.Duration(req.BudgetMS) * time.Millisecond
		}
		deadline := start.Add(budget)
		for _, fs := range req.Files {
			res := fileResult{Kind: fs.Kind, Path: fs.Path}
			if now().After(deadline) {
				res.Error = "skipped: budget spent"
			} else if res.Size, err = writeFile(fs, opts); err != nil {
				res.Error = err.Error()
			}
			rep.Files = append(rep.Files, res)
		}
	default:
		return reply{ID: req.ID, Error: fmt.Sprintf("unknown op %q", req.Op)}
	}
	rep.ElapsedMS = float64(now().Sub(start)) / float64(time.Millisecond)
	return rep
}

// writeFile writes one file of a dump.
func writeFile(fs fileSpec, opts Options) (int64, error) {
	var write func(io.Writer) error
	switch fs.Kind {
	case KindGoroutines:
		write = func(w io.Writer) error { return pprof.Lookup("goroutine").WriteTo(w, 2) }
	case KindGrouped:
		write = func(w io.Writer) error { return pprof.Lookup("goroutine").WriteTo(w, 1) }
	case KindTrace:
		if opts.Recorder == nil {
			return 0, errors.New("flight recorder not running")
		}
		write = func(w io.Writer) error { _, err := opts.Recorder.WriteTo(w); return err }
	default:
		return 0, fmt.Errorf("unknown kind %q", fs.Kind)
	}
	if !filepath.IsAbs(fs.Path) {
		return 0, fmt.Errorf("path %q is not absolute", fs.Path)
	}
	f, err := os.OpenFile(fs.Path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	werr := write(f)
	st, serr := f.Stat()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return 0, err
	}
	return st.Size(), nil
}
