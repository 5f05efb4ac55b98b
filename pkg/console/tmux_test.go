package console

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestTmuxTelnet runs a stock telnet client in a tmux pane against the
// console: the line editor echoes, Tab completes "show eve" to "show
// eventer ", and the command's output appears on the screen.
func TestTmuxTelnet(t *testing.T) {
	for _, tool := range []string{"tmux", "telnet"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	f := newFixture(t, nil)
	host, port, _ := strings.Cut(f.tcp, ":")
	sock := fmt.Sprintf("console-test-%d", os.Getpid())
	tmux := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("tmux", append([]string{"-L", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	tmux("-f", "/dev/null", "new-session", "-d", "-s", "console", "-x", "120", "-y", "40",
		"sh", "-c", fmt.Sprintf("telnet %s %s; echo telnet ended; sleep 600", host, port))
	t.Cleanup(func() { exec.Command("tmux", "-L", sock, "kill-server").Run() })
	screenN := func(want string, n int) string {
		t.Helper()
		var got string
		if !poll(func() bool {
			got = tmux("capture-pane", "-p", "-t", "console")
			return strings.Count(got, want) >= n
		}) {
			t.Fatalf("screen never showed %q:\n%s", want, got)
		}
		return got
	}
	screen := func(want string) string { t.Helper(); return screenN(want, 1) }
	screen("app#")
	tmux("send-keys", "-t", "console", "show eve", "Tab")
	screen("app# show eventer")
	tmux("send-keys", "-t", "console", "po", "Tab", "Enter")
	got := screen("pool default: 2 loops")
	if !strings.Contains(got, "app# show eventer pools\n") {
		t.Errorf("the completed line is not on the screen:\n%s", got)
	}
	tmux("send-keys", "-t", "console", "Up", "Enter")
	screenN("pool default: 2 loops", 2)
	tmux("send-keys", "-t", "console", "exit", "Enter")
	screen("telnet ended")
}
