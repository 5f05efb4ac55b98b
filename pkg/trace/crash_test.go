package trace

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var crashCases = []struct {
	name     string
	culprit  string // function CulpritFrame must name
	headline string // prefix of the headline; alternatives separated by '|'
	state    string // state of the culprit
	wait     string // wait reason of the culprit
}{
	{"panic", "main.handle", "panic: boom: request ", "running", ""},
	{"nilderef", "main.lookup", "panic: runtime error: invalid memory address or nil pointer dereference [signal SIGSEGV", "running", ""},
	// The runtime's map may catch the race as a map left full instead.
	{"mapwrites", "main.writer", "fatal error: concurrent map writes|fatal error: small map with no empty slot (concurrent map writes?)", "running", ""},
	{"deadlock", "main.waitForever", "fatal error: all goroutines are asleep - deadlock!", "waiting", "chan receive"},
	{"indexrange", "main.at", "panic: runtime error: index out of range [", "running", ""},
}

// TestParseCrashRealPrograms runs real crashing programs at every
// GOTRACEBACK level and checks what ParseCrash makes of their output.
func TestParseCrashRealPrograms(t *testing.T) {
	for _, tc := range crashCases {
		for _, tb := range []string{"single", "all", "crash"} {
			t.Run(tc.name+"/"+tb, func(t *testing.T) {
				out := runCrasher(t, tc.name, tb)
				gs, culprit, err := ParseCrash(out)
				if err != nil {
					t.Fatalf("ParseCrash: %v\n%s", err, out)
				}
				g := &gs[culprit]
				if !g.Culprit {
					t.Errorf("culprit %d not marked", culprit)
				}
				for i := range gs {
					if i != culprit && gs[i].Culprit {
						t.Errorf("goroutine %d marked culprit too", gs[i].ID)
					}
				}
				f, ok := CulpritFrame(g)
				if !ok || f.Function != tc.culprit {
					t.Errorf("culprit frame = %v, want function %s\n%s", f, tc.culprit, out)
				}
				if !strings.HasSuffix(f.File, "/testdata/crashers/"+tc.name+"/main.go") || f.Line == 0 {
					t.Errorf("culprit frame file:line = %s:%d", f.File, f.Line)
				}
				if g.State != tc.state || g.WaitReason != tc.wait {
					t.Errorf("culprit state = %q/%q, want %q/%q", g.State, g.WaitReason, tc.state, tc.wait)
				}
				if h := Headline(out); !slices.ContainsFunc(strings.Split(tc.headline, "|"), func(p string) bool { return strings.HasPrefix(h, p) }) {
					t.Errorf("headline = %q, want a prefix of %q ('|' between alternatives)", h, tc.headline)
				}
				if tb == "crash" && len(gs) < 2 {
					t.Errorf("GOTRACEBACK=%s: %d goroutines, want all of them", tb, len(gs))
				}
				if *update {
					switch tb {
					case "all":
						writeFixture(t, tc.name, out)
					case "crash":
						writeFixture(t, tc.name+"-crash", out)
					}
				}
			})
		}
	}
}

func writeFixture(t *testing.T, name string, out []byte) {
	t.Helper()
	dir := filepath.Join("testdata", "crash")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".txt"), out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestParseCrashSIGQUIT parses the runtime's SIGQUIT dump of a hung
// program: the dump starts with a system stack (goroutine 0), which is not
// the culprit.
func TestParseCrashSIGQUIT(t *testing.T) {
	for _, tb := range []string{"single", "crash"} {
		t.Run(tb, func(t *testing.T) {
			deadline := time.Now().Add(10 * time.Second)
			for {
				out := quitHang(t, tb)
				gs, c, err := ParseCrash(out)
				if err != nil {
					t.Fatalf("ParseCrash: %v\n%s", err, out)
				}
				if h := Headline(out); h != "SIGQUIT: quit" {
					t.Errorf("headline %q", h)
				}
				g := &gs[c]
				f, _ := CulpritFrame(g)
				if g.ID != 1 || f.Function != "main.main" && f.Function != "main.stuck" {
					t.Fatalf("culprit goroutine %d in %s\n%s", g.ID, f.Function, out)
				}
				// Until the lock parks it, main.stuck may be seen running
				// or runnable: try again.
				if f.Function == "main.stuck" && g.State == "waiting" {
					if g.WaitReason != "sync.Mutex.Lock" {
						t.Errorf("culprit state %q/%q", g.State, g.WaitReason)
					}
					if *update && tb == "single" {
						writeFixture(t, "sigquit", out)
					}
					return
				}
				if time.Now().After(deadline) {
					t.Fatal("main goroutine never seen blocked")
				}
			}
		})
	}
}

// TestParseCrashCreatedBy checks the creator of a goroutine started by
// the program.
func TestParseCrashCreatedBy(t *testing.T) {
	out := runCrasher(t, "mapwrites", "single")
	gs, culprit, err := ParseCrash(out)
	if err != nil {
		t.Fatal(err)
	}
	cb := gs[culprit].CreatedBy
	if cb == nil || cb.Function != "main.main" || !strings.HasSuffix(cb.File, "mapwrites/main.go") || cb.Line == 0 {
		t.Errorf("created by = %+v, want main.main in mapwrites/main.go", cb)
	}
}

// TestFingerprintRealPrograms: two runs of a program share a fingerprint
// whatever the pid, addresses and panic values; different programs do not.
func TestFingerprintRealPrograms(t *testing.T) {
	seen := map[string]string{}
	for _, tc := range crashCases {
		var fps []string
		for run, tb := range []string{"single", "all", "single"} {
			out := runCrasher(t, tc.name, tb)
			gs, _, err := ParseCrash(out)
			if err != nil {
				t.Fatal(err)
			}
			code := 2
			rec := &Record{Reason: ReasonCrash, PID: 1000 + run, Exit: &Exit{Code: &code}, Goroutines: gs, CrashOutput: string(out)}
			fps = append(fps, Fingerprint(rec))
		}
		for _, fp := range fps[1:] {
			if fp != fps[0] {
				t.Errorf("%s: fingerprints differ between runs: %v", tc.name, fps)
			}
		}
		if !strings.HasPrefix(fps[0], "v2:") {
			t.Errorf("%s: fingerprint %q lacks the version", tc.name, fps[0])
		}
		if other, dup := seen[fps[0]]; dup {
			t.Errorf("%s and %s share fingerprint %s", tc.name, other, fps[0])
		}
		seen[fps[0]] = tc.name
	}
}

func TestParseCrashNoDump(t *testing.T) {
	for _, in := range []string{"", "hello\nworld\n", "panic: boom\n\n", "goroutine x [running]:\n"} {
		gs, c, err := ParseCrash([]byte(in))
		if !errors.Is(err, ErrNoGoroutines) || gs != nil || c != -1 {
			t.Errorf("ParseCrash(%q) = %v, %d, %v; want ErrNoGoroutines", in, gs, c, err)
		}
	}
}

// TestParseCrashNoise: log lines before the crash and a "runtime stack:"
// section are skipped; the last headline before the dump wins.
func TestParseCrashNoise(t *testing.T) {
	fixture := readFixture(t, "mapwrites")
	in := append([]byte("2026-11-26 INFO starting\npanic: this is a log line, not a panic\nmore log\n"), fixture...)
	gs, c, err := ParseCrash(in)
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := CulpritFrame(&gs[c]); f.Function != "main.writer" {
		t.Errorf("culprit = %s", f.Function)
	}
	if h := Headline(in); h != "fatal error: concurrent map writes" {
		t.Errorf("headline = %q", h)
	}
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "crash", name+".txt"))
	if err != nil {
		t.Fatalf("%v (run go test -run TestParseCrashRealPrograms -update to create it)", err)
	}
	return b
}

func FuzzParseCrash(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "crash", "*.txt"))
	if len(files) == 0 {
		f.Fatal("no crash fixtures in testdata/crash")
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("goroutine 1 [running]:\nmain.main()\n\t/x.go:1 +0x1\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		gs, c, err := ParseCrash(in)
		if err != nil {
			if gs != nil || c != -1 {
				t.Fatalf("error with results: %v %d", gs, c)
			}
			return
		}
		if c < 0 || c >= len(gs) || !gs[c].Culprit {
			t.Fatalf("culprit %d of %d", c, len(gs))
		}
		_ = Headline(in)
		rec := &Record{Reason: ReasonCrash, Goroutines: gs, CrashOutput: string(in)}
		_ = Fingerprint(rec)
		var buf bytes.Buffer
		if err := WriteText(&buf, rec, TextOptions{}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSplitLabels(t *testing.T) {
	tests := []struct {
		in, state string
		labels    map[string]string
	}{
		{"sync.Mutex.Lock", "sync.Mutex.Lock", nil},
		{`sync.Mutex.Lock labels:{"mtev.heart": "e:default/1"}`, "sync.Mutex.Lock", map[string]string{"mtev.heart": "e:default/1"}},
		{`running labels:{"a": "1", "b": "x y"}`, "running", map[string]string{"a": "1", "b": "x y"}},
		{`chan receive labels:{broken`, `chan receive labels:{broken`, nil},
	}
	for _, tt := range tests {
		state, labels := splitLabels(tt.in)
		if state != tt.state || len(labels) != len(tt.labels) {
			t.Fatalf("splitLabels(%q) = %q, %v", tt.in, state, labels)
		}
		for k, v := range tt.labels {
			if labels[k] != v {
				t.Fatalf("splitLabels(%q): label %s = %q, want %q", tt.in, k, labels[k], v)
			}
		}
	}
}

// A goroutine profile (debug=2) of a linked child under
// GODEBUG=tracebacklabels=1: loop goroutines are "locked to thread" and
// carry their loop's name as a label.
func TestParseDumpLockedLabels(t *testing.T) {
	text, err := os.ReadFile("testdata/crash/dump-locked-labels.txt")
	if err != nil {
		t.Fatal(err)
	}
	gs, _, err := ParseCrash(text)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, g := range gs {
		if g.Labels["eventer.loop"] == "e:default/1" {
			found = true
			if g.WaitReason != "sync.Mutex.Lock" || !strings.Contains(frameFuncs(g.Frames), "runtime.hangForever") {
				t.Fatalf("labelled goroutine: %+v", g)
			}
		}
	}
	if !found {
		t.Fatalf("no goroutine labelled e:default/1 in %d goroutines", len(gs))
	}
}

func frameFuncs(fs []Frame) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.Function + "\n")
	}
	return b.String()
}

// A large dump parsed in pieces on several CPUs gives exactly the
// goroutines, in the same order, that one pass gives.
func TestParseCrashParallelMatchesSequential(t *testing.T) {
	text := runCrasher(t, "many", "all")
	if len(text) < parallelMin {
		t.Fatalf("dump of %d bytes is too small to be split", len(text))
	}
	seq, err := scanAll(text)
	if err != nil {
		t.Fatal(err)
	}
	par, err := scanParallel(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(par) != len(seq) || len(seq) < 1000 {
		t.Fatalf("parallel %d goroutines, sequential %d", len(par), len(seq))
	}
	for i := range seq {
		if par[i].ID != seq[i].ID || len(par[i].Stack.Calls) != len(seq[i].Stack.Calls) || par[i].State != seq[i].State {
			t.Fatalf("goroutine %d: parallel %d %q, sequential %d %q", i, par[i].ID, par[i].State, seq[i].ID, seq[i].State)
		}
	}
}
