package trace

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite golden files and crash fixtures in testdata")

// childEnv makes the test binary act as a child process instead of running
// tests: its value names the behaviour.
const childEnv = "MTEV_TRACE_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		code := m.Run()
		if buildDir != "" {
			os.RemoveAll(buildDir)
		}
		os.Exit(code)
	case "spin":
		runtime.GOMAXPROCS(1)
		fmt.Println("ready")
		for x := 0; ; x++ {
			_ = x * x
		}
	case "starve":
		// Four spinning threads pinned to one CPU: runnable, but each gets
		// a quarter of it.
		runtime.GOMAXPROCS(4)
		for i := 0; i < 4; i++ {
			go func() {
				for x := 0; ; x++ {
					_ = x * x
				}
			}()
		}
		pinAllThreads()
		fmt.Println("ready")
		for {
			pinAllThreads() // threads started since
			time.Sleep(50 * time.Millisecond)
		}
	case "sleep":
		fmt.Println("ready")
		time.Sleep(time.Hour)
		os.Exit(0)
	default:
		fmt.Fprintln(os.Stderr, "unknown child", os.Getenv(childEnv))
		os.Exit(2)
	}
}

// pinAllThreads pins every thread of this process to the first CPU it
// may run on.
func pinAllThreads() {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		panic(err)
	}
	first := -1
	for i := 0; i < 1024 && first < 0; i++ {
		if set.IsSet(i) {
			first = i
		}
	}
	var one unix.CPUSet
	one.Set(first)
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		panic(err)
	}
	for _, t := range tasks {
		if tid, err := strconv.Atoi(t.Name()); err == nil {
			_ = unix.SchedSetaffinity(tid, &one)
		}
	}
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// crasherNames are the programs in testdata/crashers.
var crasherNames = []string{"panic", "nilderef", "mapwrites", "deadlock", "indexrange", "many", "hang"}

// crasher returns the path of the named program of testdata/crashers,
// built once per test binary run.
func crasher(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "trace-crashers-")
		if buildErr != nil {
			return
		}
		args := []string{"build", "-o", buildDir + string(filepath.Separator)}
		for _, n := range crasherNames {
			args = append(args, "./testdata/crashers/"+n)
		}
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build crashers: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, name)
}

// quitHang runs the hang program, waits until it is blocked, sends it
// SIGQUIT and returns the runtime's dump.
func quitHang(t testing.TB, traceback string) []byte {
	t.Helper()
	cmd := exec.Command(crasher(t, "hang"))
	cmd.Env = append(os.Environ(), "GOTRACEBACK="+traceback)
	cmd.Dir = t.TempDir()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("hang: %q %v", line, err)
	}
	// "ready" is printed just before the main goroutine blocks; the dump
	// shows it blocked or about to block, and the test retries until
	// it is blocked.
	if err := cmd.Process.Signal(syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("hang exited 0 after SIGQUIT")
	}
	return stderr.Bytes()
}

// runCrasher runs a crash program with GOTRACEBACK set to traceback and
// returns its standard error.
func runCrasher(t testing.TB, name, traceback string) []byte {
	t.Helper()
	cmd := exec.Command(crasher(t, name))
	cmd.Env = append(os.Environ(), "GOTRACEBACK="+traceback, "GOMAXPROCS=2")
	cmd.Dir = t.TempDir() // a core file from GOTRACEBACK=crash lands here
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("%s exited 0; output:\n%s", name, out)
	}
	return out
}
