package watchdog

import (
	"os"
	"syscall"
	"time"
)

// clock is the supervisor's time for its own timers: the start-up, stop
// and notify-watchdog deadlines, the restart backoff and the crash-loop
// span. Heart deadlines are not on it: hearts are beaten on the system's
// monotonic clock, which the monitor reads. Tests replace it with a fake
// clock (clock_test.go), so that policy runs in fake hours.
type clock interface {
	Now() time.Time
	NewTimer(d time.Duration) timer
}

// timer is a one-shot timer of a clock.
type timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration) bool
}

type realClock struct{}

func (realClock) Now() time.Time                 { return time.Now() }
func (realClock) NewTimer(d time.Duration) timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.Timer.C }

// sysFuncs are the operating-system calls of the supervisor's policy
// paths (as tableflip's env): what the child's environment is made of,
// and how its process group is signalled.
type sysFuncs struct {
	environ     func() []string
	getpid      func() int
	signalGroup func(pgid int, sig syscall.Signal) error
}

func realSys() sysFuncs {
	return sysFuncs{environ: os.Environ, getpid: os.Getpid, signalGroup: signalGroup}
}

// since is the time since t on the supervisor's clock.
func (s *Supervisor) since(t time.Time) time.Duration { return s.clock.Now().Sub(t) }
