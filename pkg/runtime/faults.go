package runtime

import (
	"fmt"
	"sync"
)

// ErrNoLoop is returned for a loop that does not exist.
var errNoLoop = fmt.Errorf("runtime: no such loop")

// hang is what a hung loop waits on: forever.
var hang sync.Mutex

// Hang makes loop index of pool hang: a callback posted to it blocks
// forever, so its heart stops and the watchdog acts. Like libmtev's
// console command "hang".
func (rt *Runtime) Hang(pool string, index int) error {
	p := rt.Eventer.Pool(pool)
	if p == nil || index < 0 || index >= p.Len() {
		return fmt.Errorf("%w: %s/%d", errNoLoop, pool, index)
	}
	return p.Loop(index).Post(hangForever)
}

//go:noinline
func hangForever() {
	hang.Lock()
	hang.Lock() // never returns
}

// Crash crashes the process from loop 0 of the default pool with a nil
// pointer dereference, like libmtev's console command "crash".
func (rt *Runtime) Crash() error {
	return rt.Eventer.Default().Loop(0).Post(crashNow)
}

//go:noinline
func crashNow() {
	var p *struct{ n int }
	p.n++ // nil pointer dereference: a fatal panic on a loop
}
