package watchdog

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const peerClientEnv = "MTEV_WATCHDOG_TEST_PEER"

// peerClient is the test binary run as another user: it connects to the
// control socket named in the environment, asks for the status and prints
// what it got.
func peerClient() int {
	conn, err := net.Dial("unix", os.Getenv(peerClientEnv))
	if err != nil {
		fmt.Println("dial:", err)
		return 0
	}
	defer conn.Close()
	fmt.Fprintln(conn, `{"op":"status"}`)
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		fmt.Println("read:", err)
		return 0
	}
	fmt.Println("answer:", strings.TrimSpace(line))
	return 0
}

// The control socket answers its own user and refuses a peer of another
// uid even when the socket file's mode would let it connect.
func TestControlRefusesOtherUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	// Everything the other user touches must be reachable by it.
	dir, err := os.MkdirTemp("", "mtev-peer-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	exe, _ := os.Executable()
	client := filepath.Join(dir, "client")
	copyFile(t, exe, client)

	stateDir := filepath.Join(dir, "state")
	s, ev := newTestSupervisor(t, Config{Name: "peer", StateDir: stateDir, Command: []string{"sleep", "1000"}})
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	defer func() { s.Stop(); <-done }()
	sock := SocketPath(stateDir, "peer")
	waitFor(t, "the control socket", func() bool {
		_, err := Control(context.Background(), stateDir, "peer", "status")
		return err == nil
	})
	os.Chmod(stateDir, 0o755)
	os.Chmod(filepath.Dir(sock), 0o755)
	os.Chmod(sock, 0o666) // only the peer check stands in the way now

	cmd := exec.Command(client, "-test.run=^$")
	cmd.Env = append(os.Environ(), peerClientEnv+"="+sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "answer:") || !strings.Contains(string(out), "read:") {
		t.Fatalf("a client of uid 65534 got: %s", out)
	}
	// The refusal is logged, once per peer per interval.
	refused := func() int {
		return ev.count(func(e Event) bool {
			w, ok := e.(Warning)
			return ok && strings.Contains(w.Err.Error(), "peer uid 65534 is neither")
		})
	}
	waitFor(t, "the refusal warning", func() bool { return refused() > 0 })
	// The supervisor's own user is answered.
	if st, err := Control(context.Background(), stateDir, "peer", "status"); err != nil || st.State != "running" {
		t.Fatalf("own user: %v %+v", err, st)
	}
}

// Bad requests on the control socket are logged, at most once per peer
// per interval, however many arrive.
func TestControlBadRequestsLoggedOnce(t *testing.T) {
	s, ev := newTestSupervisor(t, Config{Name: "badreq", Command: []string{"sleep", "1000"}})
	begin := time.Now()
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	defer func() { s.Stop(); <-done }()
	waitFor(t, "the control socket", func() bool {
		_, err := Control(context.Background(), s.cfg.StateDir, "badreq", "status")
		return err == nil
	})
	conn, err := net.Dial("unix", SocketPath(s.cfg.StateDir, "badreq"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	for i := range 500 {
		req := "{not json\n"
		if i%2 == 1 {
			req = `{"op":"explode"}` + "\n"
		}
		fmt.Fprint(conn, req)
		if _, err := r.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	n := ev.count(func(e Event) bool {
		w, ok := e.(Warning)
		return ok && strings.Contains(w.Err.Error(), "control socket: request from pid")
	})
	if limit := 1 + int(time.Since(begin)/refusalInterval); n < 1 || n > limit {
		t.Fatalf("%d warnings for 500 bad requests, want 1 to %d", n, limit)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
