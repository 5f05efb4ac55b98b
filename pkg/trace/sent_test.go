package trace

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// killHang runs the hang program until it is blocked, sends it sig from
// this process and returns its fatal output.
func killHang(t *testing.T, sig syscall.Signal) []byte {
	t.Helper()
	cmd := exec.Command(crasher(t, "hang"))
	cmd.Env = append(os.Environ(), "GOTRACEBACK=all")
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
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("hang: %q %v", line, err)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatalf("hang exited 0 after %v", sig)
	}
	return stderr.Bytes()
}

// A Go program killed by kill -SEGV or kill -ABRT is told apart from one
// that faulted: no culprit goroutine, and a fingerprint class of its own.
func TestSentSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGSEGV, syscall.SIGABRT} {
		out := killHang(t, sig)
		name, sent := SentSignal(out)
		if !sent || name != "SIG"+map[syscall.Signal]string{syscall.SIGSEGV: "SEGV", syscall.SIGABRT: "ABRT"}[sig] {
			t.Fatalf("%v: SentSignal = %q %v\n%s", sig, name, sent, out)
		}
		gs, culprit, err := ParseCrash(out)
		if err != nil || culprit != -1 || culpritIn(gs) != nil {
			t.Fatalf("%v: ParseCrash: culprit %d, err %v", sig, culprit, err)
		}
		rec := &Record{Reason: ReasonCrash, Exit: &Exit{Code: intp(2), Signal: name, Sent: true}, CrashOutput: string(out), Command: []string{"/srv/hang", "-x"}}
		other := &Record{Reason: ReasonCrash, Exit: &Exit{Code: intp(2)}, CrashOutput: string(out), Command: []string{"/srv/hang", "-x"}}
		if Fingerprint(rec) == Fingerprint(other) {
			t.Errorf("%v: a sent signal shares its fingerprint with a crash", sig)
		}
	}
	// Faults and SIGQUIT dumps are not "sent".
	for _, name := range []string{"nilderef", "mapwrites"} {
		if _, sent := SentSignal(runCrasher(t, name, "all")); sent {
			t.Errorf("%s: a fault read as a sent signal", name)
		}
	}
	if _, sent := SentSignal(quitHang(t, "all")); sent {
		t.Error("a SIGQUIT dump read as a sent signal")
	}
}
