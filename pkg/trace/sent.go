package trace

import (
	"regexp"
	"strconv"
)

// reSignalPC matches the line the Go runtime prints after a signal's
// headline: "PC=0x4a1b2c m=0 sigcode=0 addr=0x0".
var reSignalPC = regexp.MustCompile(`^PC=0x[0-9a-fA-F]+ m=[0-9]+ sigcode=(-?[0-9]+)`)

// reSignalHeadline matches a signal headline, "SIGSEGV: segmentation
// violation", and captures the signal's name.
var reSignalHeadline = regexp.MustCompile(`^(SIG[A-Z0-9]+): `)

// sentSignals are the signals whose Go fatal output names a culprit when
// the kernel raised them (a fault in a goroutine), and nothing when another
// process sent them. SIGQUIT is left out: it is the documented way to ask
// a Go program for a dump of its goroutines, and the main goroutine is
// then the one to look at.
var sentSignals = map[string]bool{
	"SIGSEGV": true, "SIGBUS": true, "SIGFPE": true, "SIGILL": true,
	"SIGTRAP": true, "SIGSYS": true, "SIGABRT": true,
}

// Signal codes of siginfo(2) that say a process sent the signal.
const (
	siUser  = 0  // SI_USER: kill(2)
	siTKill = -6 // SI_TKILL: tkill(2), tgkill(2)
)

// SentSignal reports whether Go fatal output text is the end of a program
// killed by a signal that another process sent it (kill -SEGV, kill -ABRT:
// the runtime prints sigcode=0, SI_USER), rather than a fault of its own,
// and names the signal. Such a crash has no culprit goroutine: whatever
// ran at that moment (often nothing, "goroutine 0 [idle]") did not cause
// it.
func SentSignal(text []byte) (string, bool) {
	if len(text) > maxCrashBytes {
		text = text[:maxCrashBytes]
	}
	sig := ""
	for len(text) > 0 {
		end := 0
		for end < len(text) && text[end] != '\n' {
			end++
		}
		line := text[:end]
		if end < len(text) {
			end++
		}
		text = text[end:]
		if len(line) > maxLineBytes {
			sig = ""
			continue
		}
		if reGoroutine.Match(line) {
			return "", false
		}
		if m := reSignalHeadline.FindSubmatch(line); m != nil {
			sig = string(m[1])
			continue
		}
		if sig != "" {
			if m := reSignalPC.FindSubmatch(line); m != nil {
				code, err := strconv.Atoi(string(m[1]))
				return sig, err == nil && (code == siUser || code == siTKill) && sentSignals[sig]
			}
		}
		sig = ""
	}
	return "", false
}
