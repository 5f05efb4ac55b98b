package trace

import (
	"strings"
	"testing"
)

func intp(n int) *int { return &n }

func TestFingerprintCases(t *testing.T) {
	stack := func(id int64, wait int64, line int, frames ...string) []Goroutine {
		g := Goroutine{ID: id, State: "waiting", WaitReason: "chan receive", WaitMS: wait, Culprit: true}
		for _, f := range frames {
			g.Frames = append(g.Frames, Frame{Function: f, File: "/src/x.go", Line: line})
		}
		return []Goroutine{g, {ID: id + 1, State: "running", Frames: []Frame{{Function: "main.other"}}}}
	}
	tests := []struct {
		name string
		a, b *Record
		same bool
	}{
		{"exit same code, other pid and uptime",
			&Record{Reason: ReasonExit, PID: 1, UptimeMS: 5, Exit: &Exit{Code: intp(3)}},
			&Record{Reason: ReasonExit, PID: 2, UptimeMS: 9000, Exit: &Exit{Code: intp(3)}}, true},
		{"exit other code",
			&Record{Reason: ReasonExit, Exit: &Exit{Code: intp(3)}},
			&Record{Reason: ReasonExit, Exit: &Exit{Code: intp(4)}}, false},
		{"crash by signal",
			&Record{Reason: ReasonCrash, Exit: &Exit{Signal: "SIGKILL"}},
			&Record{Reason: ReasonCrash, Exit: &Exit{Signal: "SIGKILL"}, LogTail: []string{"x"}}, true},
		{"crash other signal",
			&Record{Reason: ReasonCrash, Exit: &Exit{Signal: "SIGKILL"}},
			&Record{Reason: ReasonCrash, Exit: &Exit{Signal: "SIGSEGV"}}, false},
		{"exit vs crash",
			&Record{Reason: ReasonExit, Exit: &Exit{Code: intp(2)}},
			&Record{Reason: ReasonCrash, Exit: &Exit{Code: intp(2)}}, false},
		{"stall without goroutines, same heart",
			&Record{Reason: ReasonStall, Stall: &Stall{Source: "heart", Heart: "e:default/1", AgeMS: 5100}},
			&Record{Reason: ReasonStall, Stall: &Stall{Source: "heart", Heart: "e:default/1", AgeMS: 7000}}, true},
		{"stall without goroutines, other heart",
			&Record{Reason: ReasonStall, Stall: &Stall{Source: "heart", Heart: "e:default/1"}},
			&Record{Reason: ReasonStall, Stall: &Stall{Source: "heart", Heart: "e:default/2"}}, false},
		{"stall, other source",
			&Record{Reason: ReasonStall, Stall: &Stall{Source: "heart"}},
			&Record{Reason: ReasonStall, Stall: &Stall{Source: "startup"}}, false},
		{"stall culprit: ids, wait times, lines and goroutine count ignored",
			&Record{Reason: ReasonStall, Stall: &Stall{Source: "heart", Heart: "a"}, Goroutines: stack(7, 1000, 10, "runtime.gopark", "main.wait", "main.loop")},
			&Record{Reason: ReasonStall, Stall: &Stall{Source: "heart", Heart: "b"}, Goroutines: append(stack(9, 60000, 12, "runtime.gopark", "main.wait", "main.loop"), Goroutine{ID: 99})}, true},
		{"stall culprit: other function",
			&Record{Reason: ReasonStall, Stall: &Stall{Source: "heart"}, Goroutines: stack(7, 0, 10, "main.wait", "main.loop")},
			&Record{Reason: ReasonStall, Stall: &Stall{Source: "heart"}, Goroutines: stack(7, 0, 10, "main.wait2", "main.loop")}, false},
		{"stall culprit: only the top five non-runtime frames count",
			&Record{Reason: ReasonStall, Stall: &Stall{Source: "heart"}, Goroutines: stack(7, 0, 10, "runtime.gopark", "internal/sync.x", "a.a", "a.b", "a.c", "a.d", "a.e", "a.f")},
			&Record{Reason: ReasonStall, Stall: &Stall{Source: "heart"}, Goroutines: stack(7, 0, 10, "a.a", "a.b", "a.c", "a.d", "a.e", "a.g")}, true},
		{"crash headline values masked",
			&Record{Reason: ReasonCrash, CrashOutput: "panic: runtime error: index out of range [5] with length 3\n\ngoroutine 1 [running]:\n", Goroutines: stack(1, 0, 1, "main.f")},
			&Record{Reason: ReasonCrash, CrashOutput: "panic: runtime error: index out of range [17] with length 9\n\ngoroutine 4 [running]:\n", Goroutines: stack(4, 0, 1, "main.f")}, true},
		{"crash headline class differs",
			&Record{Reason: ReasonCrash, CrashOutput: "panic: runtime error: index out of range [5] with length 3\n\ngoroutine 1 [running]:\n", Goroutines: stack(1, 0, 1, "main.f")},
			&Record{Reason: ReasonCrash, CrashOutput: "panic: runtime error: invalid memory address or nil pointer dereference\n\ngoroutine 1 [running]:\n", Goroutines: stack(1, 0, 1, "main.f")}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fa, fb := Fingerprint(tc.a), Fingerprint(tc.b)
			if (fa == fb) != tc.same {
				t.Errorf("fingerprints %s and %s: same=%v, want %v", fa, fb, fa == fb, tc.same)
			}
			if !strings.HasPrefix(fa, FingerprintVersion+":") || len(fa) != len("v1:")+16 {
				t.Errorf("malformed fingerprint %q", fa)
			}
		})
	}
}

func TestHeadlineClass(t *testing.T) {
	tests := []struct{ in, want string }{
		{"panic: boom: request 5951 failed at 0x173f000", "panic: boom: request N failed at 0x?"},
		{"panic: runtime error: index out of range [5] with length 3", "panic: runtime error: index out of range [N] with length N"},
		{"panic: user 3f2a9c1e-77d4-4a51-9bde-0c1f7e2b9a10 not found", "panic: user N-N-N-N-N not found"},
		{"fatal error: concurrent map writes", "fatal error: concurrent map writes"},
		{"panic: deadbeefcafe", "panic: deadbeefcafe"},
		{"panic: " + strings.Repeat("x", 500), ("panic: " + strings.Repeat("x", 500))[:maxHeadlineClass]},
	}
	for _, tc := range tests {
		if got := HeadlineClass(tc.in); got != tc.want {
			t.Errorf("HeadlineClass(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCulpritFrame(t *testing.T) {
	g := func(fns ...string) *Goroutine {
		var gr Goroutine
		for _, f := range fns {
			gr.Frames = append(gr.Frames, Frame{Function: f})
		}
		return &gr
	}
	tests := []struct {
		g    *Goroutine
		want string
	}{
		{g("runtime.gopark", "sync.(*Mutex).Lock", "main.worker", "main.main"), "main.worker"},
		{g("runtime.gopark", "internal/poll.(*FD).Read", "os.(*File).Read", "github.com/acme/svc/pkg.(*S).Serve"), "github.com/acme/svc/pkg.(*S).Serve"},
		{g("runtime.gopark", "sync.(*Mutex).Lock", "net/http.(*conn).serve"), "sync.(*Mutex).Lock"},
		{g("runtime.gopark", "runtime.forcegchelper"), "runtime.gopark"},
	}
	for _, tc := range tests {
		if f, ok := CulpritFrame(tc.g); !ok || f.Function != tc.want {
			t.Errorf("CulpritFrame(%v) = %v, want %s", tc.g.Frames, f, tc.want)
		}
	}
	if _, ok := CulpritFrame(nil); ok {
		t.Error("CulpritFrame(nil) ok")
	}
}

func TestShortFingerprint(t *testing.T) {
	if got := ShortFingerprint("v1:0123456789abcdef"); got != "01234567" {
		t.Errorf("got %q", got)
	}
	if got := ShortFingerprint("abc"); got != "abc" {
		t.Errorf("got %q", got)
	}
}

// TestCrashOutputOnly: a record that kept only the raw crash text gets the
// same culprit and fingerprint as one with the parsed goroutines.
func TestCrashOutputOnly(t *testing.T) {
	out := readFixture(t, "nilderef")
	gs, _, err := ParseCrash(out)
	if err != nil {
		t.Fatal(err)
	}
	full := &Record{Reason: ReasonCrash, Goroutines: gs, CrashOutput: string(out)}
	raw := &Record{Reason: ReasonCrash, CrashOutput: string(out)}
	if Fingerprint(full) != Fingerprint(raw) {
		t.Errorf("fingerprints differ: %s %s", Fingerprint(full), Fingerprint(raw))
	}
	if got := Summary(raw); got != "main.lookup" {
		t.Errorf("Summary = %q", got)
	}
	var buf strings.Builder
	if err := WriteText(&buf, raw, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "culprit goroutine 1 [running]") || !strings.Contains(buf.String(), "> main.lookup") {
		t.Errorf("text view:\n%s", buf.String())
	}
	if raw.Goroutines != nil {
		t.Error("the record was modified")
	}
}
