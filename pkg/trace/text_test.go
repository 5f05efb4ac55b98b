package trace

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var goldenTime = time.Date(2026, 11, 26, 3, 4, 5, 600_000_000, time.UTC)

func crashRecord(t *testing.T, fixture string) *Record {
	t.Helper()
	out := readFixture(t, fixture)
	gs, _, err := ParseCrash(out)
	if err != nil {
		t.Fatal(err)
	}
	rec := &Record{
		Schema: SchemaVersion, ID: "17", Service: "api", Time: goldenTime, Reason: ReasonCrash,
		Action: ActionRestart, PID: 4242, StartCount: 3, Command: []string{"/usr/bin/api", "-port", "80"},
		Exit: &Exit{Code: intp(2)}, UptimeMS: 93_500, LogTail: []string{"starting", "serving on :80"},
		Capture:     &Capture{Method: "stderr", DurationMS: 2},
		Goroutines:  gs,
		CrashOutput: string(out),
	}
	rec.Fingerprint = Fingerprint(rec)
	return rec
}

func stallRecord() *Record {
	worker := func(id int64, wait int64) Goroutine {
		return Goroutine{ID: id, State: "waiting", WaitReason: "chan receive", WaitMS: wait,
			Frames: []Frame{
				{Function: "runtime.gopark", File: "/usr/local/go/src/runtime/proc.go", Line: 462},
				{Function: "runtime.chanrecv1", File: "/usr/local/go/src/runtime/chan.go", Line: 506},
				{Function: "github.com/acme/api/queue.(*Q).worker", File: "/src/api/queue/q.go", Line: 88},
			},
			CreatedBy: &Frame{Function: "github.com/acme/api/queue.New", File: "/src/api/queue/q.go", Line: 40},
		}
	}
	var logs []string
	for i := 1; i <= 25; i++ {
		logs = append(logs, fmt.Sprintf("2026-11-26T03:04:%02dZ INFO request %d done", i, i))
	}
	rec := &Record{
		Schema: SchemaVersion, ID: "18", Service: "api", Time: goldenTime, Reason: ReasonStall,
		Action: ActionRestart, PID: 4343, StartCount: 4, UptimeMS: 3_600_000,
		Exit:  &Exit{Signal: "SIGKILL"},
		Stall: &Stall{Source: "heart", Stage: "hard", Heart: "e:default/1", Slot: 2, ThreadID: 4350, AgeMS: 7040, TimeoutMS: 5000},
		Capture: &Capture{Method: "delve", DurationMS: 310, PauseMS: 120, Attempts: []Attempt{
			{Method: "cooperative", DurationMS: 2000, Error: "no answer within 2s"},
			{Method: "delve", DurationMS: 310},
		}},
		Goroutines: []Goroutine{
			worker(21, 60_000), worker(22, 120_000),
			{ID: 7, State: "waiting", WaitReason: "sync.Mutex.Lock", WaitMS: 420_000, Culprit: true,
				Labels: map[string]string{"loop": "e:default/1", "handler": "/v1/orders"},
				Frames: []Frame{
					{Function: "runtime.gopark", File: "/usr/local/go/src/runtime/proc.go", Line: 462},
					{Function: "sync.(*Mutex).Lock", File: "/usr/local/go/src/sync/mutex.go", Line: 46},
					{Function: "github.com/acme/api/orders.(*Store).Put", File: "/src/api/orders/store.go", Line: 131},
					{Function: "github.com/acme/api/orders.handle", File: "/src/api/orders/http.go", Line: 52},
				}},
			worker(23, 60_000),
			{ID: 1, State: "waiting", WaitReason: "select", Frames: []Frame{{Function: "main.main", File: "/src/api/main.go", Line: 30}}},
		},
		Threads: []Thread{
			{ID: 4343, State: "sleeping", Goroutine: 1, Frames: []Frame{{Function: "runtime.futex"}}},
			{ID: 4350, State: "sleeping", CPUMS: 20, Goroutine: 7},
		},
		Resources: &Resources{RSSBytes: 48 << 20, UserMS: 12_300, SystemMS: 800, Threads: 9, OpenFDs: 31, CPUPct: 0.5, Goroutine: 5},
		Artifacts: []Artifact{{Kind: "glider-output", Path: "/var/lib/mtev/api.4343.trc", Bytes: 2048}},
		LogTail:   logs,
	}
	rec.Fingerprint = Fingerprint(rec)
	return rec
}

func TestWriteTextGolden(t *testing.T) {
	tests := []struct {
		name string
		rec  func(t *testing.T) *Record
		opts TextOptions
	}{
		{"crash-mapwrites", func(t *testing.T) *Record { return crashRecord(t, "mapwrites") }, TextOptions{}},
		{"crash-nilderef", func(t *testing.T) *Record { return crashRecord(t, "nilderef") }, TextOptions{}},
		{"stall-delve", func(*testing.T) *Record { return stallRecord() }, TextOptions{}},
		{"stall-delve-all", func(*testing.T) *Record { return stallRecord() }, TextOptions{AllLog: true}},
		{"exit", func(*testing.T) *Record {
			return &Record{ID: "3", Service: "batch", Time: goldenTime, Reason: ReasonExit, PID: 99, StartCount: 1,
				UptimeMS: 1500, Exit: &Exit{Code: intp(3)}, Action: ActionStop, Fingerprint: "v1:00112233aabbccdd"}
		}, TextOptions{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteText(&buf, tc.rec(t), tc.opts); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden", tc.name+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("WriteText differs from %s (run with -update to accept):\n%s", golden, buf.String())
			}
		})
	}
}

type failWriter struct{}

var errWrite = errors.New("disk full")

func (failWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestWriteTextError(t *testing.T) {
	if err := WriteText(failWriter{}, stallRecord(), TextOptions{}); !errors.Is(err, errWrite) {
		t.Errorf("err = %v, want %v", err, errWrite)
	}
}
