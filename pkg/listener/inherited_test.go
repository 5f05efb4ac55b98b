package listener_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mtev-supervise/mtev-supervise/pkg/listener"
	"github.com/mtev-supervise/mtev-supervise/pkg/rest"
)

// TestInheritedFiles: beside a listening socket, the service manager
// passes a memfd (as mtev-supervise does for its descriptor store); the
// listener takes the socket, and Inherited hands over the memfd by name,
// once.
func TestInheritedFiles(t *testing.T) {
	if os.Getenv("INHERITED_CHILD") == "1" {
		inheritedChild()
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lf, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	mfd, err := unix.MemfdCreate("state", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	mem := os.NewFile(uintptr(mfd), "state")
	io.WriteString(mem, "kept across a crash")
	cmd := exec.Command("sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, os.Args[0], "-test.run=^TestInheritedFiles$")
	cmd.Env = append(os.Environ(), "INHERITED_CHILD=1", "LISTEN_FDS=2", "LISTEN_FDNAMES=web:state")
	cmd.ExtraFiles = []*os.File{lf, mem}
	out, err := cmd.CombinedOutput()
	lf.Close()
	mem.Close()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, want := range []string{
		"SERVING " + ln.Addr().String(),
		`state: 1 file(s): "kept across a crash"`,
		"state again: 0 file(s)",
		"web: 0 file(s)",
		"env: ",
	} {
		if !strings.Contains(string(out), want+"\n") {
			t.Errorf("child output lacks %q:\n%s", want, out)
		}
	}
}

func inheritedChild() {
	c := listenerSpecs(`<app><listeners><listener type="http_rest_api" name="web" address="0.0.0.0" port="1"/></listeners></app>`)
	s := listener.NewSet(listener.Options{Router: rest.New(rest.Options{})})
	if err := s.Start(c); err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Printf("SERVING %s\n", s.Listening()[0].Addr)
	fs := listener.Inherited("state")
	content := ""
	if len(fs) == 1 {
		b := make([]byte, 64)
		n, _ := fs[0].ReadAt(b, 0)
		content = string(b[:n])
	}
	fmt.Printf("state: %d file(s): %q\n", len(fs), content)
	fmt.Printf("state again: %d file(s)\n", len(listener.Inherited("state")))
	fmt.Printf("web: %d file(s)\n", len(listener.Inherited("web")))
	fmt.Printf("env: %s\n", os.Getenv("LISTEN_FDS"))
	os.Exit(0)
}
