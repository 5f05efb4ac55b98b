// Command sockets is the child (and the client) of the scenarios about
// sockets held by the supervisor: --listen and the notify protocol's
// descriptor store. Modes:
//
//	sockets serve           HTTP on the inherited socket named "http"; writes
//	                        its address to ./addr; GET / answers "start N pid P",
//	                        GET /crash exits 3 without an answer
//	sockets get FILE PATH   GET PATH from the address in FILE (HTTP/1.0); writes
//	                        ./connected once connected; prints the body
//	sockets fdstore         first start: stores a memfd "mem" (and stores and
//	                        removes "tmp"), then kills itself; next start: prints
//	                        what "mem" holds and exits 0
//	sockets flood N         stores N memfds under N names, then prints how many
//	                        descriptors the supervisor gained
//	sockets hold            writes the supervisor's pid to ./suppid and waits
//	sockets stranger N      from outside the child's tree: sends N FDSTORE
//	                        messages with a memfd each to $NOTIFY_PATH, then
//	                        prints how many descriptors the supervisor in
//	                        ./suppid gained
//
// Standard library only, like the other scenarios.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: sockets serve|get|fdstore|flood|hold|stranger")
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve()
	case "get":
		err = get(os.Args[2], os.Args[3])
	case "fdstore":
		err = fdstore()
	case "flood":
		n, _ := strconv.Atoi(os.Args[2])
		err = flood(os.Getenv("NOTIFY_SOCKET"), n, supervisorPID())
	case "hold":
		if err = writeFile("suppid", strconv.Itoa(supervisorPID())); err == nil {
			fmt.Println("ready")
			select {}
		}
	case "stranger":
		n, _ := strconv.Atoi(os.Args[2])
		b, rerr := os.ReadFile("suppid")
		if rerr != nil {
			fail(rerr.Error())
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		err = flood(os.Getenv("NOTIFY_PATH"), n, pid)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "sockets:", msg)
	os.Exit(1)
}

func supervisorPID() int {
	pid, err := strconv.Atoi(os.Getenv("MTEV_SUPERVISOR_PID"))
	if err != nil {
		fail("MTEV_SUPERVISOR_PID is not set")
	}
	return pid
}

// writeFile writes atomically: a reader polling for it sees all or nothing.
func writeFile(name, content string) error {
	if err := os.WriteFile(name+".tmp", []byte(content+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(name+".tmp", name)
}

// inherited returns the descriptors passed with systemd's convention, by
// name, after checking LISTEN_PID.
func inherited() (map[string]int, error) {
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		return nil, fmt.Errorf("LISTEN_PID=%q, my pid is %d", os.Getenv("LISTEN_PID"), os.Getpid())
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil {
		return nil, fmt.Errorf("LISTEN_FDS=%q", os.Getenv("LISTEN_FDS"))
	}
	names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
	if len(names) != n {
		return nil, fmt.Errorf("LISTEN_FDNAMES=%q does not name %d descriptors", os.Getenv("LISTEN_FDNAMES"), n)
	}
	m := map[string]int{}
	for i, name := range names {
		m[name] = 3 + i
	}
	return m, nil
}

func serve() error {
	fds, err := inherited()
	if err != nil {
		return err
	}
	fd, ok := fds["http"]
	if !ok {
		return fmt.Errorf("no socket named http in LISTEN_FDNAMES=%q", os.Getenv("LISTEN_FDNAMES"))
	}
	// The supervisor's own descriptors come after the passed ones.
	fmt.Printf("LISTEN_FDS=%s MTEV_CRASH_FD=%s\n", os.Getenv("LISTEN_FDS"), os.Getenv("MTEV_CRASH_FD"))
	ln, err := net.FileListener(os.NewFile(uintptr(fd), "http"))
	if err != nil {
		return err
	}
	start := os.Getenv("MTEV_START_COUNT")
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "start %s pid %d\n", start, os.Getpid())
	})
	http.HandleFunc("/crash", func(w http.ResponseWriter, r *http.Request) { os.Exit(3) })
	if err := writeFile("addr", ln.Addr().String()); err != nil {
		return err
	}
	return http.Serve(ln, nil)
}

func get(file, path string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	c, err := net.Dial("tcp", strings.TrimSpace(string(b)))
	if err != nil {
		return err
	}
	defer c.Close()
	if err := writeFile("connected", "yes"); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: test\r\n\r\n", path); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return fmt.Errorf("no answer: %w", err)
	}
	defer resp.Body.Close()
	_, err = io.Copy(os.Stdout, resp.Body)
	return err
}

// sysMemfdCreate is memfd_create's number (package syscall predates it).
var sysMemfdCreate = map[string]uintptr{"amd64": 319, "arm64": 279, "386": 356, "riscv64": 279, "ppc64le": 360, "s390x": 350}

// memfd returns a memfd holding content; where the system call's number
// is not known here, an unlinked temporary file does as well.
func memfd(content string) (int, error) {
	var fd int
	if nr, ok := sysMemfdCreate[runtime.GOARCH]; ok {
		name := []byte("sockets\x00")
		r, _, e := syscall.Syscall(nr, uintptr(unsafe.Pointer(&name[0])), 1 /* MFD_CLOEXEC */, 0)
		if e != 0 {
			return -1, fmt.Errorf("memfd_create: %w", e)
		}
		fd = int(r)
	} else {
		f, err := os.CreateTemp("", "sockets")
		if err != nil {
			return -1, err
		}
		os.Remove(f.Name())
		if fd, err = syscall.Dup(int(f.Fd())); err != nil {
			return -1, err
		}
		f.Close()
	}
	if _, err := syscall.Write(fd, []byte(content)); err != nil {
		return -1, err
	}
	return fd, nil
}

// notify sends one datagram, with descriptors, to the notify socket addr.
func notify(addr, payload string, fds ...int) error {
	if addr == "" {
		return errors.New("no notify socket")
	}
	if strings.HasPrefix(addr, "@") {
		addr = "\x00" + addr[1:]
	}
	s, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(s)
	var oob []byte
	if len(fds) > 0 {
		oob = syscall.UnixRights(fds...)
	}
	return syscall.Sendmsg(s, []byte(payload), oob, &syscall.SockaddrUnix{Name: addr}, 0)
}

// barrier is sd_notify_barrier: it returns once the supervisor read every
// message sent before it (it closes the descriptor it was given).
func barrier(addr string) error {
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		return err
	}
	err := notify(addr, "BARRIER=1", p[1])
	syscall.Close(p[1])
	if err != nil {
		syscall.Close(p[0])
		return err
	}
	defer syscall.Close(p[0])
	var b [1]byte
	for {
		n, err := syscall.Read(p[0], b[:])
		if n == 0 && err == nil {
			return nil
		}
		if err != nil && err != syscall.EINTR {
			return err
		}
	}
}

func fdstore() error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if names := os.Getenv("LISTEN_FDNAMES"); names != "" {
		fds, err := inherited()
		if err != nil {
			return err
		}
		fmt.Printf("LISTEN_FDNAMES=%s\n", names)
		fd, ok := fds["mem"]
		if !ok {
			return errors.New("no mem")
		}
		b := make([]byte, 100)
		n, err := syscall.Pread(fd, b, 0)
		if err != nil {
			return err
		}
		fmt.Printf("start %s: mem holds %q\n", os.Getenv("MTEV_START_COUNT"), b[:n])
		return nil
	}
	fd, err := memfd("kept by start " + os.Getenv("MTEV_START_COUNT"))
	if err != nil {
		return err
	}
	if err := notify(addr, "FDSTORE=1\nFDNAME=mem", fd); err != nil {
		return err
	}
	tmp, err := memfd("temporary")
	if err != nil {
		return err
	}
	if err := notify(addr, "FDSTORE=1\nFDNAME=tmp", tmp); err != nil {
		return err
	}
	if err := notify(addr, "FDSTOREREMOVE=1\nFDNAME=tmp"); err != nil {
		return err
	}
	// Stored again under the same name: replaces the first.
	fd2, err := memfd("kept by start " + os.Getenv("MTEV_START_COUNT") + ", second copy")
	if err != nil {
		return err
	}
	if err := notify(addr, "FDSTORE=1\nFDNAME=mem", fd2); err != nil {
		return err
	}
	if err := barrier(addr); err != nil {
		return err
	}
	fmt.Println("stored; crashing")
	return syscall.Kill(os.Getpid(), syscall.SIGKILL)
}

func countFDs(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		fail(err.Error())
	}
	return len(ents)
}

// flood stores n memfds under n names and reports how many descriptors the
// supervisor gained once it handled them all: the store's bound, no more.
func flood(addr string, n, sup int) error {
	max, _ := strconv.Atoi(os.Getenv("WANT_STORED"))
	before := countFDs(sup)
	for i := range n {
		fd, err := memfd("flood")
		if err != nil {
			return err
		}
		err = notify(addr, fmt.Sprintf("FDSTORE=1\nFDNAME=f%d", i), fd)
		syscall.Close(fd)
		if err != nil {
			return err
		}
	}
	if err := barrier(addr); err != nil {
		return err
	}
	// The messages read before the barrier may still wait for the
	// supervisor's loop: poll until the count settles on the bound.
	deadline := time.Now().Add(20 * time.Second)
	after := countFDs(sup)
	for after != before+max && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		after = countFDs(sup)
	}
	fmt.Printf("sent %d, supervisor descriptors %d before, %d after: stored %d, leaked %d\n", n, before, after, max, after-before-max)
	return nil
}
