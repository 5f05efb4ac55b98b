package report

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func pair(t *testing.T) (*Sender, *Receiver, int) {
	t.Helper()
	p, c, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	defer c.Close()
	snd, err := NewSender(c)
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := NewReceiver(p)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := unix.FcntlInt(c.Fd(), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { snd.Close(); rcv.Close(); unix.Close(raw) })
	return snd, rcv, raw
}

// collector gathers what a Receiver delivers.
type collector struct {
	mu   sync.Mutex
	got  []Stall
	bads []error
}

func (c *collector) deliver(s Stall) { c.mu.Lock(); c.got = append(c.got, s); c.mu.Unlock() }
func (c *collector) bad(err error)   { c.mu.Lock(); c.bads = append(c.bads, err); c.mu.Unlock() }
func (c *collector) counts() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got), len(c.bads)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRoundTrip(t *testing.T) {
	snd, rcv, _ := pair(t)
	var c collector
	done := make(chan error, 1)
	go func() { done <- rcv.Serve(c.deliver, c.bad) }()
	want := Stall{Source: "http", Name: "GET /slow", Detail: "past deadline", Elapsed: 5012 * time.Millisecond,
		Deadline: 5 * time.Second, Labels: map[string]string{"mtev.route": "GET /slow"}, PID: 42, Hard: true}
	if err := snd.Send(want); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the report", func() bool { n, _ := c.counts(); return n == 1 })
	got := c.got[0]
	if got.Source != want.Source || got.Name != want.Name || got.Detail != want.Detail || got.Elapsed != want.Elapsed ||
		got.Deadline != want.Deadline || got.Labels["mtev.route"] != "GET /slow" || got.PID != 42 || !got.Hard {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	rcv.Close()
	if err := <-done; err != nil {
		t.Fatalf("Serve after Close: %v", err)
	}
}

// Garbage, other versions, unknown fields and oversized datagrams are
// refused with a reason, never delivered, and reading goes on.
func TestBadDatagrams(t *testing.T) {
	snd, rcv, raw := pair(t)
	var c collector
	go rcv.Serve(c.deliver, c.bad)
	bad := []string{
		"not json",
		`{"v":2,"op":"stall","source":"http","elapsed_ms":1,"deadline_ms":1}`,
		`{"v":1,"op":"explode","source":"http","elapsed_ms":1,"deadline_ms":1}`,
		`{"v":1,"op":"stall","source":"http","elapsed_ms":1,"deadline_ms":1,"extra":true}`,
		`{"v":1,"op":"stall","source":"HTTP; rm -rf","elapsed_ms":1,"deadline_ms":1}`,
		`{"v":1,"op":"stall","source":"http","elapsed_ms":-1,"deadline_ms":1}`,
		`{"v":1,"op":"stall","source":"http","elapsed_ms":1,"deadline_ms":1} {}`,
		strings.Repeat("x", MaxMessage+100),
	}
	for _, b := range bad {
		if err := unix.Sendto(raw, []byte(b), 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := snd.Send(Stall{Source: "lua", Name: "ok"}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the good report", func() bool { n, _ := c.counts(); return n == 1 })
	_, nbad := c.counts()
	if nbad != len(bad) {
		t.Fatalf("%d refusals, want %d: %v", nbad, len(bad), c.bads)
	}
	for _, err := range c.bads {
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("refusal %v does not wrap ErrInvalid", err)
		}
	}
	if c.got[0].Name != "ok" {
		t.Fatalf("delivered %+v", c.got[0])
	}
}

// A sender with nobody reading never blocks: reports beyond what the
// socket takes are counted and dropped.
func TestSendNeverBlocks(t *testing.T) {
	snd, _, _ := pair(t)
	snd.limit = Limiter{Burst: 1 << 30}
	var sent, dropped int
	for range 100000 {
		switch err := snd.Send(Stall{Source: "probe", Name: strings.Repeat("n", 200)}); {
		case err == nil:
			sent++
		case errors.Is(err, ErrDropped):
			dropped++
		default:
			t.Fatal(err)
		}
	}
	if dropped == 0 || sent == 0 {
		t.Fatalf("sent %d, dropped %d: want both", sent, dropped)
	}
}

// A flood from the child reaches the supervisor as at most Burst reports
// (the clock does not move), and the next report carries the count of
// those dropped.
func TestFloodIsLimited(t *testing.T) {
	snd, rcv, raw := pair(t)
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	rcv.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	rcv.Limit = Limiter{Burst: 3, Every: time.Second}
	snd.limit = Limiter{Burst: 1 << 30}
	var c collector
	go rcv.Serve(c.deliver, c.bad)
	const n = 50
	for range n {
		if err := snd.Send(Stall{Source: "http", Name: "flood"}); err != nil {
			t.Fatal(err)
		}
	}
	// A bad datagram after the flood marks its end: datagrams arrive in
	// order, so once it is refused the whole flood has been read.
	if err := unix.Sendto(raw, []byte("end of flood"), 0, nil); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the end of the flood", func() bool { _, bad := c.counts(); return bad == 1 })
	if n, _ := c.counts(); n != 3 {
		t.Fatalf("%d reports of the flood delivered, want 3", n)
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	if err := snd.Send(Stall{Source: "http", Name: "after"}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the report after the flood", func() bool { n, _ := c.counts(); return n == 4 })
	last := c.got[3]
	if last.Name != "after" || last.Dropped != n-3 {
		t.Fatalf("after the flood: %+v, want dropped %d", last, n-3)
	}
}

func TestLimiter(t *testing.T) {
	l := Limiter{Burst: 2, Every: time.Second}
	t0 := time.Unix(0, 0)
	if !l.Allow(t0) || !l.Allow(t0) || l.Allow(t0) {
		t.Fatal("burst of 2")
	}
	if l.Allow(t0.Add(500 * time.Millisecond)) {
		t.Fatal("half a token")
	}
	if !l.Allow(t0.Add(1100 * time.Millisecond)) {
		t.Fatal("one token after a second")
	}
	if !l.Allow(t0.Add(time.Hour)) || !l.Allow(t0.Add(time.Hour)) || l.Allow(t0.Add(time.Hour)) {
		t.Fatal("an idle hour refills the burst only")
	}
}

func TestSenderRateLimitAndClosed(t *testing.T) {
	snd, rcv, _ := pair(t)
	now := time.Unix(0, 0)
	snd.now = func() time.Time { return now }
	snd.limit = Limiter{Burst: 1, Every: time.Hour}
	if err := snd.Send(Stall{Source: "http"}); err != nil {
		t.Fatal(err)
	}
	if err := snd.Send(Stall{Source: "http"}); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("second send: %v, want ErrRateLimited", err)
	}
	if err := snd.Send(Stall{Source: ""}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no source: %v, want ErrInvalid", err)
	}
	rcv.Close()
	now = now.Add(2 * time.Hour)
	if err := snd.Send(Stall{Source: "http"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("send to a closed receiver: %v, want ErrClosed", err)
	}
}

// After a flood has spent both limits, the first hard report still goes
// through: it is the one that ends the child.
func TestFirstHardReportPassesLimits(t *testing.T) {
	snd, rcv, raw := pair(t)
	now := time.Unix(1000, 0)
	rcv.Now = func() time.Time { return now }
	rcv.Limit = Limiter{Burst: 1, Every: time.Hour}
	snd.now = func() time.Time { return now }
	snd.limit = Limiter{Burst: 1, Every: time.Hour}
	var c collector
	go rcv.Serve(c.deliver, c.bad)
	snd.Send(Stall{Source: "lua", Name: "soft"})
	if err := snd.Send(Stall{Source: "lua", Name: "soft"}); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("second soft: %v", err)
	}
	if err := snd.Send(Stall{Source: "lua", Name: "hard", Hard: true}); err != nil {
		t.Fatalf("first hard: %v", err)
	}
	if err := snd.Send(Stall{Source: "lua", Name: "hard again", Hard: true}); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("second hard: %v", err)
	}
	unix.Sendto(raw, []byte(`{"v":1,"op":"stall","source":"lua","name":"forged hard","hard":true,"elapsed_ms":0,"deadline_ms":0}`), 0, nil)
	unix.Sendto(raw, []byte("end"), 0, nil)
	waitUntil(t, "the end marker", func() bool { _, bad := c.counts(); return bad == 1 })
	if len(c.got) != 2 || c.got[0].Name != "soft" || c.got[1].Name != "hard" || c.got[1].Dropped != 1 {
		t.Fatalf("delivered %+v", c.got)
	}
}
