package log

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/internal/syncbuf"
)

// readAll returns the lines of the rotated files, oldest first, then of
// the current file.
func readAll(t *testing.T, path string) (lines []string, files int) {
	t.Helper()
	rot, err := RotatedFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	paths := make([]string, 0, len(rot)+1)
	for _, r := range rot {
		paths = append(paths, r.Path)
	}
	paths = append(paths, path)
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > 0 && data[len(data)-1] != '\n' {
			t.Fatalf("%s does not end in a newline", p)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
	}
	return lines, len(paths)
}

func TestRotationConcurrentWriters(t *testing.T) {
	const writers, perWriter = 4, 5000
	for _, mode := range []struct {
		name string
		typ  string
		q    int
	}{
		{"async", "file", 0},
		{"async-small-queue", "file", 4096},
		{"sync", "file_synch", 0},
	} {
		t.Run(mode.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.log")
			g := New(WithStderr(&syncbuf.Buffer{}))
			err := g.Configure(
				Spec{Name: "file", Type: mode.typ, Path: path, Format: FormatJSON, QueueBytes: mode.q,
					File: FileOptions{RotateBytes: 64 << 10}},
				Spec{Name: "app", Outlets: []string{"file"}},
			)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					f := g.Facility("app")
					for i := range perWriter {
						f.Log().Int("w", w).Int("i", i).Str("pad", "abcdefghijklmnopqrstuvwxyz").Msg("line")
					}
				}()
			}
			wg.Wait()
			if err := g.Close(); err != nil {
				t.Fatal(err)
			}
			lines, files := readAll(t, path)
			if files < 5 {
				t.Fatalf("only %d files: rotation did not happen several times", files)
			}
			next := make([]int, writers)
			for _, l := range lines {
				var m struct{ W, I int }
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("torn line %q: %v", l, err)
				}
				if m.I != next[m.W] {
					t.Fatalf("writer %d: line %d where %d was due", m.W, m.I, next[m.W])
				}
				next[m.W]++
			}
			for w, n := range next {
				if n != perWriter {
					t.Errorf("writer %d: %d lines, want %d", w, n, perWriter)
				}
			}
			for _, r := range mustRotated(t, path) {
				if r.Size > 64<<10 {
					t.Errorf("%s is %d bytes, over the rotation size", r.Path, r.Size)
				}
			}
		})
	}
}

func mustRotated(t *testing.T, path string) []Rotated {
	t.Helper()
	rot, err := RotatedFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	return rot
}

func TestTimeRotation(t *testing.T) {
	clock := newClock() // 10:00:00.123456
	path := filepath.Join(t.TempDir(), "t.log")
	f, err := OpenFile(path, FileOptions{RotateEvery: time.Hour}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	write := func(s string) {
		t.Helper()
		if err := f.WriteLine([]byte(s + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	write("a")
	clock.Add(59 * time.Minute) // 10:59: same period
	write("b")
	clock.Add(2 * time.Minute) // 11:01: next period
	write("c")
	clock.Add(3 * time.Hour) // 14:01: several periods later, one rotation
	write("d")
	clock.Add(time.Minute)
	write("e")
	if err := f.Rotate(); err != nil { // by hand: the current file is empty
		t.Fatal(err)
	}
	clock.Add(90 * time.Minute) // 15:32: a period passed with nothing written
	write("f")
	clock.Add(time.Minute) // 15:33: same period as "f"
	write("g")
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	rot := mustRotated(t, path)
	var got []string
	for _, r := range rot {
		data, _ := os.ReadFile(r.Path)
		got = append(got, fmt.Sprintf("%s=%q", time.Unix(r.Epoch, 0).UTC().Format("15:04"), data))
	}
	cur, _ := os.ReadFile(path)
	got = append(got, fmt.Sprintf("cur=%q", cur))
	want := []string{`11:01="a\nb\n"`, `14:01="c\n"`, `14:02="d\ne\n"`, `cur="f\ng\n"`}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

func TestRetention(t *testing.T) {
	tests := []struct {
		name string
		opts FileOptions
		keep int // rotated files left after 6 rotations of 100-byte files, one a minute
	}{
		{"none", FileOptions{}, 6},
		{"count", FileOptions{RetainCount: 2}, 2},
		{"bytes", FileOptions{RetainBytes: 350}, 3},
		{"age", FileOptions{RetainAge: 150 * time.Second}, 3},
		{"tightest wins", FileOptions{RetainCount: 4, RetainBytes: 150}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			path := filepath.Join(t.TempDir(), "r.log")
			f, err := OpenFile(path, tt.opts, clock.Now)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			line := []byte(strings.Repeat("x", 99) + "\n")
			for i := range 6 {
				if err := f.WriteLine(line); err != nil {
					t.Fatal(err)
				}
				clock.Add(time.Minute)
				if err := f.Rotate(); err != nil {
					t.Fatalf("rotation %d: %v", i, err)
				}
			}
			rot := mustRotated(t, path)
			if len(rot) != tt.keep {
				t.Fatalf("kept %d rotated files, want %d: %v", len(rot), tt.keep, rot)
			}
			// The newest are the ones kept.
			if last := rot[len(rot)-1].Epoch; last != clock.Now().Unix() {
				t.Errorf("newest kept epoch %d, want %d", last, clock.Now().Unix())
			}
		})
	}
}

func TestRotatedNames(t *testing.T) {
	clock := newClock()
	dir := t.TempDir()
	path := filepath.Join(dir, "n.log")
	f, err := OpenFile(path, FileOptions{RotateBytes: 10}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 { // same second: suffixes .1, .2
		if err := f.WriteLine([]byte("0123456789" + strconv.Itoa(i) + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	// Files that merely share the prefix are ignored.
	for _, name := range []string{"n.log.old", "n.log.1x", "n.log.-5", "n.logx.1"} {
		os.WriteFile(filepath.Join(dir, name), nil, 0o644)
	}
	epoch := strconv.FormatInt(clock.Now().Unix(), 10)
	var got []string
	for _, r := range mustRotated(t, path) {
		got = append(got, filepath.Base(r.Path))
	}
	want := []string{"n.log." + epoch, "n.log." + epoch + ".1", "n.log." + epoch + ".2"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("got %v, want %v", got, want)
	}
	lines, _ := readAll(t, path)
	if strings.Join(lines, ",") != "01234567890,01234567891,01234567892,01234567893" {
		t.Errorf("lines %v", lines)
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ext.log")
	g := New(WithStderr(&syncbuf.Buffer{}))
	defer g.Close()
	if err := g.Configure(Spec{Name: "file", Type: "file", Path: path}); err != nil {
		t.Fatal(err)
	}
	f := g.Facility("file")
	f.Log().Msg("one")
	if err := g.Flush(); err != nil {
		t.Fatal(err)
	}
	// An external rotator renames the file; lines keep going to it until
	// the reopen.
	if err := os.Rename(path, path+".moved"); err != nil {
		t.Fatal(err)
	}
	f.Log().Msg("two")
	if err := g.Reopen(); err != nil {
		t.Fatal(err)
	}
	f.Log().Msg("three")

	// The same through SIGUSR1.
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- g.ServeReopen(ctx) }()
	if err := g.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".moved2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reopen on SIGUSR1", func() bool {
		syscall.Kill(os.Getpid(), syscall.SIGUSR1)
		_, err := os.Stat(path)
		return err == nil
	})
	f.Log().Msg("four")
	cancel()
	if err := <-served; err != context.Canceled {
		t.Errorf("ServeReopen = %v", err)
	}
	if err := g.Flush(); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{".moved": "one,two", ".moved2": "three", "": "four"} {
		data, err := os.ReadFile(path + file)
		if err != nil {
			t.Fatal(err)
		}
		var msgs []string
		for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			msgs = append(msgs, l[strings.LastIndexByte(l, ' ')+1:])
		}
		if got := strings.Join(msgs, ","); got != want {
			t.Errorf("%s: %q, want %q", path+file, got, want)
		}
	}
}

func TestFileDroppedPathRecovers(t *testing.T) {
	// If the directory vanishes, rotation fails loudly, the error is
	// counted, and writing resumes once it is back.
	root := t.TempDir()
	dir := filepath.Join(root, "d")
	os.Mkdir(dir, 0o755)
	path := filepath.Join(dir, "x.log")
	f, err := OpenFile(path, FileOptions{RotateBytes: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.WriteLine([]byte("aaaa\n")); err != nil {
		t.Fatal(err)
	}
	f.Flush()
	os.RemoveAll(dir)
	if err := f.WriteLine([]byte("bbbb\n")); err == nil {
		t.Fatal("no error writing with the directory gone")
	}
	os.Mkdir(dir, 0o755)
	if err := f.WriteLine([]byte("cccc\n")); err != nil {
		t.Fatal(err)
	}
	f.Flush()
	data, _ := os.ReadFile(path)
	if string(data) != "cccc\n" {
		t.Errorf("file %q", data)
	}
}

func TestUnwritableDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("permission bits do not bind root")
	}
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	g := New(WithStderr(&syncbuf.Buffer{}))
	defer g.Close()
	err := g.Configure(Spec{Name: "f", Type: "file", Path: filepath.Join(dir, "x.log")})
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("err = %v, want permission denied", err)
	}
}
