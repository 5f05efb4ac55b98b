package delve

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// processState returns the state letter of /proc/<pid>/stat ('R', 'S', 'Z',
// 't', ...). A missing process gives an error wrapping os.ErrNotExist.
func processState(pid int) (byte, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatState(data)
}

// parseStatState extracts the state field from the contents of a
// /proc/<pid>/stat file: "pid (comm) S ...", where comm may itself contain
// spaces and parentheses.
func parseStatState(data []byte) (byte, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 >= len(data) || data[i+1] != ' ' {
		return 0, fmt.Errorf("malformed /proc stat line %q", truncate(data, 64))
	}
	st := data[i+2]
	if st < 'A' || st > 'z' {
		return 0, fmt.Errorf("malformed /proc stat state %q", st)
	}
	return st, nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// ptraceHint says why the kernel may have refused to let us trace pid.
func ptraceHint(pid int) string {
	var hints []string
	if status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status"); err == nil {
		for line := range strings.Lines(string(status)) {
			if v, ok := strings.CutPrefix(line, "TracerPid:"); ok {
				if v = strings.TrimSpace(v); v != "0" {
					hints = append(hints, "pid "+v+" is already tracing it (only one tracer at a time)")
				}
			}
		}
	}
	if scope, err := os.ReadFile("/proc/sys/kernel/yama/ptrace_scope"); err == nil {
		switch strings.TrimSpace(string(scope)) {
		case "1":
			hints = append(hints, "kernel.yama.ptrace_scope is 1: only an ancestor (the supervisor) or a process with CAP_SYS_PTRACE may trace")
		case "2":
			hints = append(hints, "kernel.yama.ptrace_scope is 2: CAP_SYS_PTRACE is required")
		case "3":
			hints = append(hints, "kernel.yama.ptrace_scope is 3: ptrace is disabled until reboot")
		}
	}
	hints = append(hints, "a setuid or non-dumpable process needs CAP_SYS_PTRACE")
	return "hint: " + strings.Join(hints, "; ")
}

// monotonicNow is the CLOCK_MONOTONIC time in ns, the clock of the Go
// runtime's nanotime (and so of g.waitsince), shared by all processes.
func monotonicNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}

// monotonicAt converts a wall-clock time of this boot to CLOCK_MONOTONIC ns.
// It returns 0 for a time before this boot.
func monotonicAt(t time.Time) int64 {
	m := monotonicNow() - time.Since(t).Nanoseconds()
	if m <= 0 {
		return 0
	}
	return m
}
