package delve

import (
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/go-delve/delve/pkg/goversion"
)

// Binary describes an executable that was checked for capture.
type Binary struct {
	Path      string
	GoVersion string // "go1.26.8"
	Size      int64
	// SplitDebugInfo is set when the executable has no DWARF of its own but
	// names a separate debug file (.gnu_debuglink) to look for in
	// Options.DebugInfoDirs.
	SplitDebugInfo bool
}

// Preload checks, when a child starts, that a capture of it can work: the
// executable is a Go program built by a Go version this Delve reads, with
// DWARF debug information (or split debug information and dirs to find it
// in). It then reads the whole file once so that its debug sections are in
// the page cache when a stall comes.
//
// Delve's library API cannot reuse debug information loaded earlier: each
// attach builds and loads its own (about 0.1 s for a small program, 0.2 s
// for 10 MB), so Preload validates and warms the cache rather than loading.
func Preload(exe string, dirs []string) (*Binary, error) {
	b, err := inspect(exe, dirs)
	if err != nil {
		return nil, fmt.Errorf("delve: preload: %w", err)
	}
	f, err := os.Open(exe)
	if err != nil {
		return nil, fmt.Errorf("delve: preload: %w", err)
	}
	defer f.Close()
	n, err := io.Copy(io.Discard, f)
	if err != nil {
		return nil, fmt.Errorf("delve: preload: read %s: %w", exe, err)
	}
	b.Size = n
	return b, nil
}

// inspect reads the executable's ELF headers and Go build information,
// without touching any process.
func inspect(exe string, dirs []string) (*Binary, error) {
	fh, err := os.Open(exe)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", exe, err)
	}
	defer fh.Close()
	f, err := elf.NewFile(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: not an ELF executable: %w", exe, ErrNotGo, err)
	}
	info, err := buildinfo.Read(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: no Go build information: %w", exe, ErrNotGo, err)
	}
	if err := checkGoVersion(info.GoVersion); err != nil {
		return nil, fmt.Errorf("%s: %w", exe, err)
	}
	b := &Binary{Path: exe, GoVersion: info.GoVersion}
	if hasDWARF(f) {
		return b, nil
	}
	if f.Section(".gnu_debuglink") != nil && len(dirs) > 0 {
		b.SplitDebugInfo = true
		return b, nil
	}
	return nil, fmt.Errorf("%s: %w: the binary was built with -ldflags=-s or -w, or stripped (no .debug_info section); rebuild it without them, or ship split debug information", exe, ErrNoDebugInfo)
}

func hasDWARF(f *elf.File) bool {
	for _, name := range []string{".debug_info", ".zdebug_info"} {
		if s := f.Section(name); s != nil && s.Size > 0 {
			return true
		}
	}
	return false
}

// checkGoVersion refuses a Go version outside the range this Delve reads.
// Development builds are accepted.
func checkGoVersion(v string) error {
	ver, ok := goversion.Parse(v)
	if !ok {
		return fmt.Errorf("%w: cannot parse Go version %q", ErrGoVersion, v)
	}
	if ver.IsDevelBuild() {
		return nil
	}
	// Rev betaRev0 is the first pre-release of a minor version, so that
	// betas and release candidates of a supported version are accepted.
	const betaRev0 = -2000
	lo := goversion.GoVersion{Major: goversion.MinSupportedVersionOfGoMajor, Minor: goversion.MinSupportedVersionOfGoMinor, Rev: betaRev0}
	hi := goversion.GoVersion{Major: goversion.MaxSupportedVersionOfGoMajor, Minor: goversion.MaxSupportedVersionOfGoMinor + 1, Rev: betaRev0}
	supported := fmt.Sprintf("go%d.%d to go%d.%d", lo.Major, lo.Minor, hi.Major, hi.Minor-1)
	if !ver.AfterOrEqual(lo) {
		return fmt.Errorf("%w: built with %s, this build reads %s", ErrGoVersion, v, supported)
	}
	if ver.AfterOrEqual(hi) {
		return fmt.Errorf("%w: built with %s, this build reads %s; upgrade Delve and rebuild mtev-supervise", ErrGoVersion, v, supported)
	}
	return nil
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
