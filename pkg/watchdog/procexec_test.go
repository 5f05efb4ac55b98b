package watchdog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mtev-supervise/mtev-supervise/internal/trampoline"
)

func TestParseLimit(t *testing.T) {
	for _, c := range []struct {
		in    string
		sizes bool
		want  Limit
		err   string
	}{
		{"1024", false, Limit{1024, 1024}, ""},
		{"256:512", false, Limit{256, 512}, ""},
		{"infinity", false, Limit{Infinity, Infinity}, ""},
		{"unlimited", false, Limit{Infinity, Infinity}, ""},
		{"10:infinity", false, Limit{10, Infinity}, ""},
		{"0", true, Limit{0, 0}, ""},
		{"4G", true, Limit{4 << 30, 4 << 30}, ""},
		{"512M:1g", true, Limit{512 << 20, 1 << 30}, ""},
		{"2k", true, Limit{2048, 2048}, ""},
		{"4G", false, Limit{}, `"4G": want a number or infinity`},
		{"", false, Limit{}, "empty limit"},
		{":5", false, Limit{}, "empty limit"},
		{"5:", false, Limit{}, "empty limit"},
		{"-1", false, Limit{}, "want a number"},
		{"20:10", false, Limit{}, "soft limit 20 is above hard limit 10"},
		{"infinity:10", false, Limit{}, "soft limit infinity is above hard limit 10"},
		{"1:2:3", false, Limit{}, "want a number"},
		{"99999999999T", true, Limit{}, "too large"},
		{"18446744073709551615", false, Limit{}, "too large"},
		{"M", true, Limit{}, "want a number (with K, M, G or T)"},
	} {
		got, err := ParseLimit(c.in, c.sizes)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseLimit(%q): %v, want error containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseLimit(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestParseUmask(t *testing.T) {
	for in, want := range map[string]int{"022": 0o22, "0": 0, "777": 0o777, "0027": 0o27} {
		if got, err := ParseUmask(in); err != nil || got != want {
			t.Errorf("ParseUmask(%q) = %o, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "8", "1000", "-1", "u=rwx", "0x12"} {
		if _, err := ParseUmask(in); err == nil {
			t.Errorf("ParseUmask(%q): no error", in)
		}
	}
}

func TestReadEnvFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	getenv := func(k string) string {
		if k == "FROM_ENV" {
			return "inherited"
		}
		return ""
	}
	good := write("good.env", "# a comment\n\n  # indented comment\nA=1\nB= spaced = \"quoted\" \nC=\nFROM_ENV\nUNSET_HERE\r\nD=crlf\r\n  E=indented\n_x9=ok")
	got, err := ReadEnvFile(good, getenv)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A=1", `B= spaced = "quoted" `, "C=", "FROM_ENV=inherited", "D=crlf", "E=indented", "_x9=ok"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	for name, c := range map[string]struct{ text, err string }{
		"space.env": {"OK=1\nBAD KEY=2\n", "space.env:2: \"BAD KEY\" is not a variable name"},
		"digit.env": {"1X=2\n", "digit.env:1: \"1X\" is not a variable name"},
		"empty.env": {"=value\n", "empty.env:1: \"\" is not a variable name"},
		"dash.env":  {"# x\n\nA-B=1\n", "dash.env:3: \"A-B\" is not a variable name"},
		"nul.env":   {"A=x\x00y\n", "nul.env:1: A: a NUL byte"},
	} {
		p := write(name, c.text)
		if _, err := ReadEnvFile(p, getenv); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: %v, want %q", name, err, c.err)
		}
	}
	if _, err := ReadEnvFile(filepath.Join(dir, "missing.env"), getenv); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func FuzzReadEnvFile(f *testing.F) {
	for _, s := range []string{"A=1\n", "# c\n\nB= x \n", "C\n", "BAD KEY=1", "A=\x00", "\r\n=\n", strings.Repeat("K=v\n", 100)} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "fuzz.env")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		env, err := ReadEnvFile(p, func(string) string { return "v" })
		if err != nil {
			if !strings.HasPrefix(err.Error(), p) {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		for _, kv := range env {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || !validEnvName(k) || strings.ContainsAny(v, "\x00\n") {
				t.Fatalf("bad variable %q", kv)
			}
		}
	})
}

func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"1024", "1:2", "infinity", "4G", "10:infinity", "", ":", "9999999999999999999T"} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, sizes bool) {
		l, err := ParseLimit(s, sizes)
		if err != nil {
			return
		}
		if l.Soft > l.Hard {
			t.Fatalf("%q: soft %d above hard %d", s, l.Soft, l.Hard)
		}
		back, err := ParseLimit(l.String(), false)
		if err != nil || back != l {
			t.Fatalf("%q: %v does not round-trip: %v, %v", s, l, back, err)
		}
	})
}

func TestAttrsEncoding(t *testing.T) {
	a := &procAttrs{
		limits: []rlimit{{"limit-nofile", unix.RLIMIT_NOFILE, Limit{10, 20}}, {"limit-as", unix.RLIMIT_AS, Limit{Infinity, Infinity}}},
		umask:  0o27, setUser: true, uid: 999, gid: 998, groups: []int{998, 4, 27},
	}
	got, err := trampoline.Decode(a.encode())
	if err != nil {
		t.Fatal(err)
	}
	want := &trampoline.Attrs{
		Limits: []trampoline.Limit{{Name: "limit-nofile", Resource: unix.RLIMIT_NOFILE, Soft: 10, Hard: 20}, {Name: "limit-as", Resource: unix.RLIMIT_AS, Soft: Infinity, Hard: Infinity}},
		Umask:  0o27, SetUser: true, UID: 999, GID: 998, Groups: []int{998, 4, 27},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip: %+v, want %+v", got, want)
	}
	if got, err := trampoline.Decode(noAttrs.encode()); err != nil || !reflect.DeepEqual(got, &trampoline.Attrs{Umask: -1}) {
		t.Fatalf("no attributes: %+v, %v", got, err)
	}
	for _, bad := range []string{"limit=1:2", "umask=x", "umask=1000", "ids=1:2", "ids=a:2:3", "ids=1:2:x", "what=1", "limit=7:x:1:n", "limit=7:99999999999999999999:1:n"} {
		if _, err := trampoline.Decode(bad); err == nil {
			t.Errorf("Decode(%q): no error", bad)
		}
	}
}

// trampolineRun runs this test binary as a trampoline with env and the
// command's arguments args, and returns its status, stderr and what it
// wrote on its status pipe; the command's stdout goes to stdout.
func trampolineRun(t *testing.T, stdout *bytes.Buffer, args []string, env ...string) (int, string, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(os.Args[0], args...)
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.Env = append(os.Environ(), append(env, trampolineEnv+"=1", trampolineStatusEnv+"=3")...)
	cmd.ExtraFiles = []*os.File{w}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	status := make([]byte, 512)
	n, _ := r.Read(status)
	cmd.Wait()
	return cmd.ProcessState.ExitCode(), stderr.String(), string(status[:n])
}

func TestTrampolineFailures(t *testing.T) {
	for _, c := range []struct {
		name string
		env  []string
		want string
	}{
		{"exec", []string{trampolinePathEnv + "=/nonexistent/program"}, "exec /nonexistent/program: no such file or directory"},
		{"no command", nil, "no command"},
		{"garbled", []string{trampolinePathEnv + "=/bin/true", trampolineAttrsEnv + "=umask"}, `bad attribute "umask"`},
		{"dir", []string{trampolinePathEnv + "=/bin/true", trampolineDirEnv + "=/nonexistent/dir"}, "dir /nonexistent/dir: no such file or directory"},
		{"limit", []string{trampolinePathEnv + "=/bin/true", trampolineAttrsEnv + "=limit=7:20:10:limit-nofile"}, "limit-nofile 20:10: invalid argument"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stderr, status := trampolineRun(t, nil, []string{"child"}, c.env...)
			if code != trampolineExit {
				t.Errorf("status %d, want %d", code, trampolineExit)
			}
			line := "mtev-supervise trampoline: " + c.want
			if stderr != line+"\n" {
				t.Errorf("stderr %q, want the one line %q", stderr, line)
			}
			if status != line {
				t.Errorf("status pipe %q, want %q", status, line)
			}
		})
	}
}

func TestTrampolineExecsWithStatusClosed(t *testing.T) {
	// The status pipe is close-on-exec: the command does not hold it,
	// and the trampoline's variables are gone from its environment.
	var out bytes.Buffer
	code, stderr, status := trampolineRun(t, &out,
		[]string{"sh", "-c", `[ -e /proc/$$/fd/3 ] && echo fd3; env | grep MTEV_TRAMPOLINE; echo "args $0 $1"`, "one"},
		trampolinePathEnv+"=/bin/sh")
	if code != 0 || stderr != "" || status != "" {
		t.Fatalf("status %d, stderr %q, status pipe %q", code, stderr, status)
	}
	if out.String() != "args one \n" {
		t.Fatalf("the command printed %q", out.String())
	}
}

func TestProcAttrsAtStart(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "vars.env")
	os.WriteFile(envFile, []byte("FROM_FILE=file\nBOTH=file\n"), 0o644)
	out := filepath.Join(dir, "out")
	script := `echo "$(umask) $(ulimit -n) $(ulimit -Hn) $(pwd) $FROM_FILE $BOTH" > ` + out
	s, _ := newTestSupervisor(t, Config{
		Command: []string{"sh", "-c", script}, Restart: RestartNever,
		Umask: "037", LimitNofile: "100:200", Dir: dir, EnvFile: envFile, Env: []string{"BOTH=explicit"},
	})
	if err := s.Serve(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(b)), "0037 100 200 "+dir+" file explicit"; got != want {
		t.Fatalf("child saw %q, want %q", got, want)
	}
}

func TestProcAttrsRefused(t *testing.T) {
	var lim unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{User: "no-such-user-at-all"}, `user "no-such-user-at-all": no such user`},
		{Config{Group: "no-such-group-at-all"}, `group "no-such-group-at-all": no such group`},
		{Config{Umask: "9"}, `umask "9": "9": want an octal mask`},
		{Config{LimitCore: "lots"}, `limit-core "lots": "lots": want a number (with K, M, G or T), or infinity`},
		{Config{LimitAS: "2:1"}, `limit-as "2:1": soft limit 2 is above hard limit 1`},
		{Config{Dir: "/nonexistent/dir"}, `dir "/nonexistent/dir": no such file or directory`},
		{Config{EnvFile: "/nonexistent/vars.env"}, `env-file: open /nonexistent/vars.env: no such file or directory`},
		{Config{CoreDumps: true, LimitCore: "0"}, `core-dumps sets the core limit already`},
	}
	if os.Geteuid() != 0 {
		cases = append(cases,
			struct {
				cfg  Config
				want string
			}{Config{User: "0"}, "running as another user needs root"},
			struct {
				cfg  Config
				want string
			}{Config{LimitNofile: Limit{lim.Max, lim.Max + 1}.String()}, "which only root may raise"},
		)
	}
	if os.Geteuid() == 0 {
		cases = append(cases, struct {
			cfg  Config
			want string
		}{Config{User: "54321", Notify: true, NotifyAccess: NotifyAll}, `notify-access "all": with user "54321"`})
	}
	for _, c := range cases {
		c.cfg.Command = []string{"true"}
		c.cfg.StateDir = t.TempDir()
		_, err := New(c.cfg, Options{})
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want ErrConfig with %q", c.cfg, err, c.want)
		}
	}
}

func TestLaterStartFailureCountsAsDeath(t *testing.T) {
	// The env-file is read at every start: removed after the first, the
	// next starts fail, each a death, until the crash-loop limit.
	dir := t.TempDir()
	envFile := filepath.Join(dir, "vars.env")
	os.WriteFile(envFile, []byte("A=1\n"), 0o644)
	s, ev := newTestSupervisor(t, Config{
		Command: []string{"sh", "-c", "rm " + envFile + "; exit 1"}, EnvFile: envFile,
		ZeroBackoff: true, Retries: 3,
	})
	err := s.Serve(context.Background())
	if !errors.Is(err, ErrCrashLoop) {
		t.Fatalf("Serve: %v, want ErrCrashLoop", err)
	}
	if n := ev.count(func(e Event) bool { _, ok := e.(Started); return ok }); n != 1 {
		t.Fatalf("%d starts, want 1", n)
	}
	if n := ev.count(func(e Event) bool {
		w, ok := e.(Warning)
		return ok && errors.Is(w.Err, ErrStart) && errors.Is(w.Err, syscall.ENOENT)
	}); n != 2 {
		t.Fatalf("%d start failures, want 2", n)
	}
}

func TestTrampolineRearmsDeathSignal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to change the child's user")
	}
	// A change of credentials clears PR_SET_PDEATHSIG: the trampoline
	// arms it again after setuid. A shell starts it in the background
	// (without a death signal of its own), waits until the command runs,
	// and exits: the command must die with it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	script := `"$0" /bin/sleep 1000 >/dev/null 2>&1 &
while kill -0 $! 2>/dev/null && [ "$(cat /proc/$!/comm 2>/dev/null)" != sleep ]; do :; done
echo $!`
	cmd := exec.Command("sh", "-c", script, self)
	cmd.Env = append(os.Environ(), trampolineEnv+"=1", trampolinePathEnv+"=/bin/sleep",
		trampolineAttrsEnv+"=ids=54321:54321:54321")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("shell said %q", out)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	waitFor(t, "the command's death with its parent", func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		i := bytes.LastIndexByte(b, ')')
		return i > 0 && i+2 < len(b) && b[i+2] == 'Z' // a zombie runs no more code
	})
}
