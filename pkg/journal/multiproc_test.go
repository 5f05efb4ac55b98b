package journal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The test binary re-run with childEnv set to a journal directory appends
// childCountEnv records named "<tag>-<i>" and prints "<seq> <name>" for each.
const (
	childEnv      = "JOURNAL_TEST_CHILD_DIR"
	childTagEnv   = "JOURNAL_TEST_CHILD_TAG"
	childCountEnv = "JOURNAL_TEST_CHILD_COUNT"
)

func childMain(dir string) int {
	n, err := strconv.Atoi(os.Getenv(childCountEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: bad count:", err)
		return 2
	}
	tag := os.Getenv(childTagEnv)
	w, err := Open(dir, Options{SegmentBytes: 2048, NoSync: true, MaxBytes: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	defer w.Close()
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for i := range n {
		name := fmt.Sprintf("%s-%d", tag, i)
		seq, err := w.Append([]byte(name))
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 1
		}
		fmt.Fprintf(out, "%d %s\n", seq, name)
	}
	return 0
}

// startChild starts an appending process; wait returns its seq → name map.
func startChild(t *testing.T, dir, tag string, n int) (wait func() map[uint64]string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir, childTagEnv+"="+tag, childCountEnv+"="+strconv.Itoa(n))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return func() map[uint64]string {
		t.Helper()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %s: %v\n%s", tag, err, stderr.String())
		}
		got := map[uint64]string{}
		var prev uint64
		for line := range strings.Lines(stdout.String()) {
			seqStr, name, _ := strings.Cut(strings.TrimSpace(line), " ")
			seq, err := strconv.ParseUint(seqStr, 10, 64)
			if err != nil {
				t.Fatalf("child %s printed %q", tag, line)
			}
			if seq <= prev {
				t.Errorf("child %s: seq %d after %d", tag, seq, prev)
			}
			prev = seq
			got[seq] = name
		}
		return got
	}
}

func TestProcessesAppendConcurrently(t *testing.T) {
	const perWriter = 1000
	dir := t.TempDir()
	waitA := startChild(t, dir, "procA", perWriter)
	waitB := startChild(t, dir, "procB", perWriter)

	// This process appends too, from two Writers of its own.
	var mu sync.Mutex
	mine := map[uint64]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, tag := range []string{"selfA", "selfB"} {
		wg.Go(func() {
			w, err := Open(dir, Options{SegmentBytes: 2048, NoSync: true, MaxBytes: -1})
			if err != nil {
				errs <- err
				return
			}
			defer w.Close()
			for i := range perWriter {
				name := fmt.Sprintf("%s-%d", tag, i)
				seq, err := w.Append([]byte(name))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				mine[seq] = name
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	claimed := map[uint64]string{}
	for _, m := range []map[uint64]string{waitA(), waitB(), mine} {
		for seq, name := range m {
			if other, dup := claimed[seq]; dup {
				t.Fatalf("seq %d handed to both %s and %s", seq, other, name)
			}
			claimed[seq] = name
		}
	}

	got, dmg := readAll(t, dir, 0)
	if len(dmg) != 0 {
		t.Errorf("damage: %v", dmg)
	}
	const total = 4 * perWriter
	if len(got) != total {
		t.Fatalf("read %d records, want %d", len(got), total)
	}
	seen := map[string]bool{}
	switches := 0
	for i, e := range got {
		if i > 0 && writerOf(got[i-1]) != writerOf(e) {
			switches++
		}
		if e.Seq != uint64(i+1) {
			t.Fatalf("entry %d has seq %d: not dense", i, e.Seq)
		}
		name := string(e.Data)
		if seen[name] {
			t.Fatalf("record %s stored twice", name)
		}
		seen[name] = true
		if claimed[e.Seq] != name {
			t.Fatalf("seq %d holds %s but Append returned it for %s", e.Seq, name, claimed[e.Seq])
		}
	}
	t.Logf("%d switches between writers in seq order", switches)
	if len(segments(t, dir)) < 10 {
		t.Errorf("expected many segments, got %d", len(segments(t, dir)))
	}
}

func TestFollowSeesOtherProcess(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, Options{NoSync: true})
	mustAppend(t, w, []byte("before-0"))
	mustAppend(t, w, []byte("before-1"))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 50
	var got []string
	var wait func() map[uint64]string
	errDone := errors.New("seen everything")
	err := Follow(ctx, dir, 2, func(e Entry) error {
		got = append(got, string(e.Data))
		if e.Seq != uint64(len(got)+1) {
			return fmt.Errorf("entry %q has seq %d, want %d", e.Data, e.Seq, len(got)+1)
		}
		if len(got) == 1 {
			// Follow has caught up: now another process appends.
			wait = startChild(t, dir, "child", n)
		}
		if len(got) == n+1 {
			return errDone
		}
		return nil
	})
	if wait != nil {
		wait()
	}
	if !errors.Is(err, errDone) {
		t.Fatalf("Follow = %v after %d entries, want the callback's error", err, len(got))
	}
	if got[0] != "before-1" || got[n] != fmt.Sprintf("child-%d", n-1) {
		t.Fatalf("Follow saw %q ... %q", got[0], got[n])
	}
}

func TestFollowStopsOnCancel(t *testing.T) {
	for _, inotify := range []bool{true, false} {
		t.Run(fmt.Sprintf("inotify-%v", inotify), func(t *testing.T) {
			defer func(old bool) { useInotify = old }(useInotify)
			useInotify = inotify
			testFollowStopsOnCancel(t)
		})
	}
}

func testFollowStopsOnCancel(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, Options{NoSync: true})
	mustAppend(t, w, []byte("only"))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	seen := make(chan Entry, 10)
	go func() {
		done <- Follow(ctx, dir, 0, func(e Entry) error { seen <- e; return nil })
	}()
	if e := <-seen; string(e.Data) != "only" {
		t.Fatalf("first entry %q", e.Data)
	}
	mustAppend(t, w, []byte("later"))
	if e := <-seen; string(e.Data) != "later" {
		t.Fatalf("second entry %q", e.Data)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow after cancel = %v, want context.Canceled", err)
	}
}

func writerOf(e Entry) string {
	w, _, _ := strings.Cut(string(e.Data), "-")
	return w
}

// TestReadWhileAppending reads a journal while another process appends and
// rolls segments: every record arrives once, in order, and appends in
// progress are never mistaken for damage.
func TestReadWhileAppending(t *testing.T) {
	const n = 2000
	dir := t.TempDir()
	w := mustOpen(t, dir, Options{NoSync: true})
	w.Close()
	r, err := NewReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	wait := startChild(t, dir, "w", n)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var next uint64 = 1
	errDone := errors.New("done")
	err = r.Follow(ctx, func(e Entry) error {
		if e.Seq != next || string(e.Data) != fmt.Sprintf("w-%d", next-1) {
			return fmt.Errorf("got seq %d %q, want seq %d", e.Seq, e.Data, next)
		}
		if next++; next > n {
			return errDone
		}
		return nil
	})
	wait()
	if !errors.Is(err, errDone) {
		t.Fatalf("Follow = %v at seq %d", err, next)
	}
	if d := r.Damage(); len(d) != 0 {
		t.Fatalf("damage while appending: %v", d)
	}
}
