package runtime

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/eventer"
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
)

// managedAppEnv makes the test binary an app whose configuration file
// (the variable's value) has <managed> sidecars. It runs from init, before
// TestMain, in the self-supervising parent and in its child alike.
const managedAppEnv = "MTEV_RUNTIME_TEST_MANAGED"

func init() {
	file := os.Getenv(managedAppEnv)
	if file == "" {
		return
	}
	Main(App{
		Name:       "withsidecar",
		ConfigFile: file,
		Eventer:    eventer.Options{Concurrency: 1, Timeout: time.Second},
		Run: func(ctx context.Context, rt *Runtime) error {
			p := filepath.Join(filepath.Dir(file), "app.pid")
			if err := os.WriteFile(p+".tmp", []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
				return err
			}
			if err := os.Rename(p+".tmp", p); err != nil {
				return err
			}
			<-ctx.Done()
			return nil
		},
	})
}

const sidecarConf = `<withsidecar>
  <managed>
    <application exec="sh" stdout="DIR/side.out">
      <arg>-c</arg>
      <arg>echo "$$" >> "$PIDS"; echo "hello from $GREETING"; while :; do sleep 0.05; done</arg>
      <env>PIDS=DIR/side.pids</env>
      <env>GREETING</env>
    </application>
  </managed>
</withsidecar>
`

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for d := time.Millisecond; !cond(); d = min(2*d, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(d)
	}
}

func pidsIn(t *testing.T, path string) []int {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []int
	for _, l := range strings.Split(string(b), "\n") {
		if pid, err := strconv.Atoi(strings.TrimSpace(l)); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// startWithSidecar runs the app with a sidecar, and returns it once the
// app's child and the sidecar run.
func startWithSidecar(t *testing.T) (cmd *exec.Cmd, dir string, out *strings.Builder) {
	dir = t.TempDir()
	conf := filepath.Join(dir, "app.conf")
	if err := os.WriteFile(conf, []byte(strings.ReplaceAll(sidecarConf, "DIR", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), managedAppEnv+"="+conf, "MTEV_STATE_DIR="+filepath.Join(dir, "state"), "GREETING=the parent")
	out = &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	waitUntil(t, "the app's child", func() bool { return len(pidsIn(t, filepath.Join(dir, "app.pid"))) == 1 })
	waitUntil(t, "the sidecar", func() bool { return len(pidsIn(t, filepath.Join(dir, "side.pids"))) == 1 })
	return cmd, dir, out
}

// A linked app's <managed> application runs beside it, is restarted when
// killed, writes its output to the file named, is listed with the app by
// the app's control socket, and stops with the app.
func TestManagedSidecar(t *testing.T) {
	cmd, dir, out := startWithSidecar(t)
	pids := filepath.Join(dir, "side.pids")
	first := pidsIn(t, pids)[0]
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the sidecar restarted", func() bool { return len(pidsIn(t, pids)) == 2 })
	waitUntil(t, "its output in side.out", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "side.out"))
		return strings.Count(string(b), "hello from the parent\n") == 2
	})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	all, err := watchdog.FleetControl(ctx, filepath.Join(dir, "state"), "withsidecar", "status", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Service != "withsidecar" || all[1].Service != "withsidecar-sh" || all[1].Starts != 2 {
		t.Fatalf("status: %+v", all)
	}

	second := pidsIn(t, pids)[1]
	appChild := pidsIn(t, filepath.Join(dir, "app.pid"))[0]
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("app: %v\n%s", err, out)
	}
	if alive(second) || alive(appChild) {
		t.Fatalf("after TERM: sidecar alive %v, app child alive %v", alive(second), alive(appChild))
	}
}

// Killed with SIGKILL, the app's supervisor takes its sidecar along.
func TestManagedSidecarDiesWithSupervisor(t *testing.T) {
	cmd, dir, _ := startWithSidecar(t)
	side := pidsIn(t, filepath.Join(dir, "side.pids"))[0]
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	waitUntil(t, "the sidecar gone", func() bool { return !alive(side) })
}

// A bad <managed> section is refused with file:line before anything runs.
func TestManagedBadConfig(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{`<a><managed><application/></managed></a>`, `app.conf:1: <application> lacks required attribute "exec"`},
		{"<a>\n<managed>\n<application exec=\"sh\" arg0=\"x\"/></managed></a>", `app.conf:3: arg0 "x"`},
		{"<a>\n<managed>\n<application exec=\"sh\" environment=\"false\"/></managed></a>", `app.conf:3: environment="false" is not supported`},
		{"<a>\n<managed>\n<application exec=\"sh\" user=\"no-such-user-mtev\"/></managed></a>", `app.conf:3: service "withsidecar-sh": user "no-such-user-mtev": no such user`},
		{"<a>\n<managed>\n<application exec=\"sh\" bogus=\"1\"/></managed></a>", `app.conf:3: unknown attribute "bogus"`},
	} {
		dir := t.TempDir()
		conf := filepath.Join(dir, "app.conf")
		if err := os.WriteFile(conf, []byte(tc.conf), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), managedAppEnv+"="+conf, "MTEV_STATE_DIR="+filepath.Join(dir, "state"))
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != watchdog.ExitConfig || !strings.Contains(string(out), tc.want) {
			t.Errorf("%s: %v, want exit %d with %q\n%s", tc.conf, err, watchdog.ExitConfig, tc.want, out)
		}
		if _, err := os.Stat(filepath.Join(dir, "app.pid")); err == nil {
			t.Errorf("%s: the app ran", tc.conf)
		}
	}
}
