package hearts

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// envChild makes the test binary run as a scripted child (childMain).
const envChild = "HEARTS_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(envChild) != "" {
		os.Exit(childMain())
	}
	os.Exit(m.Run())
}

// childMain is a child that opens the table from the environment and obeys
// one command per line on stdin, answering one line on stdout:
//
//	new NAME MS     create a heart beaten every millisecond by its own thread
//	lazy NAME MS    create a heart that never beats
//	stop NAME       stop beating; answers with the last beat's wall time (ns)
//	start NAME      resume beating; answers after the next beat
//	disable NAME    Disable
//	starts          StartCount
//	ready           Ready
//
// It exits when stdin closes.
func childMain() int {
	tbl, err := OpenFromEnv()
	if err != nil {
		fmt.Printf("error %v\n", err)
		return 3
	}
	fmt.Println("opened")
	type beater struct {
		h       *Heart
		mu      sync.Mutex
		running bool
		last    time.Time
		beats   chan struct{}
	}
	beaters := map[string]*beater{}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		var name string
		if len(f) > 1 {
			name = f[1]
		}
		switch f[0] {
		case "new", "lazy":
			ms, _ := strconv.Atoi(f[2])
			b := &beater{running: f[0] == "new", beats: make(chan struct{}, 1)}
			beaters[name] = b
			tid := make(chan int)
			go func() {
				runtime.LockOSThread()
				h, err := tbl.NewHeart(name, time.Duration(ms)*time.Millisecond)
				if err != nil {
					fmt.Printf("error %v\n", err)
					os.Exit(4)
				}
				b.h = h
				tid <- syscall.Gettid()
				for {
					b.mu.Lock()
					if b.running {
						h.Beat()
						b.last = time.Now()
						select {
						case b.beats <- struct{}{}:
						default:
						}
					}
					b.mu.Unlock()
					time.Sleep(time.Millisecond)
				}
			}()
			id := <-tid
			fmt.Printf("heart %s %d %d\n", name, b.h.Slot(), id)
		case "stop":
			b := beaters[name]
			b.mu.Lock()
			b.running = false
			last := b.last
			b.mu.Unlock()
			fmt.Printf("stopped %d\n", last.UnixNano())
		case "start":
			b := beaters[name]
			b.mu.Lock()
			b.running = true
			select {
			case <-b.beats:
			default:
			}
			b.mu.Unlock()
			<-b.beats
			fmt.Println("started")
		case "disable":
			beaters[name].h.Disable()
			fmt.Println("ok")
		case "starts":
			fmt.Printf("starts %d\n", tbl.StartCount())
		case "ready":
			tbl.Ready()
			fmt.Println("ok")
		default:
			fmt.Printf("error unknown command %q\n", f[0])
		}
	}
	return 0
}

// child is a running childMain.
type child struct {
	t   testing.TB
	cmd *exec.Cmd
	in  *os.File
	out *os.File
	rd  *bufio.Reader
}

func startChild(t testing.TB, table *os.File) *child {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1", EnvFD+"=3")
	cmd.ExtraFiles = []*os.File{table}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inR.Close()
	outW.Close()
	c := &child{t: t, cmd: cmd, in: inW, out: outR, rd: bufio.NewReader(outR)}
	t.Cleanup(c.stop)
	return c
}

// line reads the child's next answer.
func (c *child) line() []string {
	c.t.Helper()
	c.out.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := c.rd.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading from child: %v (got %q)", err, l)
	}
	return strings.Fields(l)
}

// do sends a command and returns the answer's fields.
func (c *child) do(cmd string) []string {
	c.t.Helper()
	if _, err := fmt.Fprintln(c.in, cmd); err != nil {
		c.t.Fatalf("writing to child: %v", err)
	}
	f := c.line()
	if len(f) > 0 && f[0] == "error" {
		c.t.Fatalf("child: %s", strings.Join(f, " "))
	}
	return f
}

// newHeart creates a heart in the child and returns its slot and thread id.
func (c *child) newHeart(verb, name string, timeout time.Duration) (slot, tid int) {
	c.t.Helper()
	f := c.do(fmt.Sprintf("%s %s %d", verb, name, timeout.Milliseconds()))
	if len(f) != 4 || f[0] != "heart" || f[1] != name {
		c.t.Fatalf("child answered %q", f)
	}
	slot, _ = strconv.Atoi(f[2])
	tid, _ = strconv.Atoi(f[3])
	return slot, tid
}

func (c *child) stop() {
	c.in.Close()
	c.cmd.Process.Signal(syscall.SIGCONT)
	c.cmd.Process.Kill()
	c.cmd.Wait()
	c.out.Close()
}

// watch drives m with the real clock, polling at its PollInterval, until
// done returns true for an event; it returns every event seen. The limit is
// a guard against a hang, not an expectation.
func watch(t testing.TB, m *Monitor, done func(Event) bool) []Event {
	t.Helper()
	limit := time.Now().Add(15 * time.Second)
	var seen []Event
	for time.Now().Before(limit) {
		for _, e := range m.Check(time.Now()) {
			seen = append(seen, e)
			if done(e) {
				return seen
			}
		}
		time.Sleep(m.PollInterval())
	}
	t.Fatalf("no expected event; saw %v", seen)
	return nil
}

// waitBeating polls until the monitor has seen every named heart beat.
func waitBeating(t testing.TB, m *Monitor, names ...string) {
	t.Helper()
	limit := time.Now().Add(10 * time.Second)
	for time.Now().Before(limit) {
		if evs := m.Check(time.Now()); len(evs) > 0 {
			t.Fatalf("events while waiting for beats: %v", evs)
		}
		n := 0
		for _, st := range m.Hearts(time.Now()) {
			for _, name := range names {
				if st.Name == name && st.Beaten {
					n++
				}
			}
		}
		if n == len(names) {
			return
		}
		time.Sleep(m.PollInterval())
	}
	t.Fatalf("hearts %v never seen beating", names)
}

func TestProcessStalledHeart(t *testing.T) {
	tbl, f := newTestTable(t, 16)
	c := startChild(t, f)
	c.line() // opened
	// A bystander, with a timeout safe from scheduling hiccups.
	c.newHeart("new", "e:default/0", 5*time.Second)
	slot, tid := c.newHeart("new", "e:default/1", 100*time.Millisecond)
	m := NewMonitor(tbl, MonitorConfig{Grace: 100 * time.Millisecond})
	waitBeating(t, m, "e:default/0", "e:default/1")

	for round := range 2 {
		c.do("stop e:default/1")
		evs := watch(t, m, func(e Event) bool { return e.Kind == HardStall })
		if got := kinds(evs); got != "soft stall e:default/1, hard stall e:default/1" {
			t.Fatalf("round %d: events %q, want one soft then one hard stall of e:default/1", round, got)
		}
		for _, e := range evs {
			if e.Slot != slot || e.ThreadID != tid || e.Timeout != 100*time.Millisecond || e.Age <= e.Deadline {
				t.Fatalf("round %d: event %+v, want slot %d tid %d", round, e, slot, tid)
			}
		}
		// Still stalled: nothing more is reported.
		for range 10 {
			if evs := m.Check(time.Now()); len(evs) > 0 {
				t.Fatalf("round %d: repeated events %v", round, evs)
			}
			time.Sleep(m.PollInterval())
		}
		c.do("start e:default/1")
		if evs := m.Check(time.Now()); len(evs) > 0 {
			t.Fatalf("round %d: events after resuming %v", round, evs)
		}
	}
}

func TestProcessNeverBeats(t *testing.T) {
	tbl, f := newTestTable(t, 16)
	c := startChild(t, f)
	c.line()
	m := NewMonitor(tbl, MonitorConfig{DefaultTimeout: 100 * time.Millisecond, Startup: 300 * time.Millisecond})
	m.Reset(time.Now())
	c.newHeart("new", "busy", 5*time.Second)
	slot, tid := c.newHeart("lazy", "lazy", 0)
	evs := watch(t, m, func(e Event) bool { return e.Kind == StartupStall })
	if len(evs) != 1 || evs[0].Name != "lazy" || evs[0].Slot != slot || evs[0].ThreadID != tid {
		t.Fatalf("events %v, want one start-up stall of heart#%d lazy tid %d", evs, slot, tid)
	}
}

func TestProcessDisabledNotReported(t *testing.T) {
	tbl, f := newTestTable(t, 16)
	c := startChild(t, f)
	c.line()
	m := NewMonitor(tbl, MonitorConfig{DefaultTimeout: 100 * time.Millisecond, Grace: 100 * time.Millisecond, Startup: 150 * time.Millisecond})
	m.Reset(time.Now())
	c.newHeart("new", "off", 0)
	c.do("disable off")
	c.do("stop off")
	c.newHeart("lazy", "off-lazy", 0)
	c.do("disable off-lazy")
	c.newHeart("new", "dies", 0)
	waitBeating(t, m, "dies")
	c.do("stop dies")
	// By the hard stall of "dies", the disabled hearts have been silent for
	// longer than every deadline they would otherwise have.
	evs := watch(t, m, func(e Event) bool { return e.Kind == HardStall })
	if got := kinds(evs); got != "soft stall dies, hard stall dies" {
		t.Fatalf("events %q, want only the stalls of dies", got)
	}
}

func TestProcessStopped(t *testing.T) {
	tbl, f := newTestTable(t, 16)
	c := startChild(t, f)
	c.line()
	slot, _ := c.newHeart("new", "main", 100*time.Millisecond)
	m := NewMonitor(tbl, MonitorConfig{})
	waitBeating(t, m, "main")
	if err := c.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	evs := watch(t, m, func(e Event) bool { return e.Kind == SoftStall })
	if len(evs) != 1 || evs[0].Slot != slot || evs[0].Name != "main" {
		t.Fatalf("events %v, want a soft stall of main", evs)
	}
	if err := c.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitBeating(t, m, "main")
}

func TestProcessStartCountAndReady(t *testing.T) {
	tbl, f := newTestTable(t, 4)
	for range 2 {
		if err := tbl.Reset(); err != nil {
			t.Fatal(err)
		}
	}
	c := startChild(t, f)
	c.line()
	if got := strings.Join(c.do("starts"), " "); got != "starts 2" {
		t.Fatalf("child says %q, want starts 2", got)
	}
	if tbl.IsReady() {
		t.Fatal("ready before the child said so")
	}
	c.do("ready")
	if !tbl.IsReady() {
		t.Fatal("child's Ready not seen by the parent")
	}
}

func TestProcessRefusesNewerMajor(t *testing.T) {
	tbl, f := newTestTable(t, 4)
	tbl.hdr.major = LayoutMajor + 1
	c := startChild(t, f)
	got := strings.Join(c.line(), " ")
	want := fmt.Sprintf("table has layout %d.0, this build reads %d.x", LayoutMajor+1, LayoutMajor)
	if !strings.Contains(got, want) {
		t.Fatalf("child said %q, want it to contain %q", got, want)
	}
	err := c.cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("child exit: %v, want status 3", err)
	}
}
