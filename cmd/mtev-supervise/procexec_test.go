package main

import (
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"

	"github.com/rogpeppe/go-internal/testscript"
)

// mkuser NAME [FILE...]: create the system user NAME unless it exists
// (useradd -M -r; the script checks [root] and [exec:useradd] first), and
// a directory the user can reach, $USERDIR, with:
//
//   - bin/: this test binary as mtev-supervise and mtev-notify, and the
//     FILEs given (the test binary's own directory is private to root);
//   - wd/: owned by root, readable by all;
//   - own/: owned by the user.
//
// $USERUID and $USERGID are the user's ids. The directory is removed at
// the end of the script; the user stays (it is reused by the next run).
func cmdMkUser(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 || neg {
		ts.Fatalf("usage: mkuser NAME [FILE...]")
	}
	name := args[0]
	u, err := user.Lookup(name)
	if err != nil {
		out, err := exec.Command("useradd", "-M", "-r", "-s", "/usr/sbin/nologin", name).CombinedOutput()
		// Another test may have created it meanwhile: look it up again.
		if u, _ = user.Lookup(name); u == nil {
			ts.Fatalf("useradd %s: %v\n%s", name, err, out)
		}
	}
	dir, err := os.MkdirTemp("", "mtev-procexec-")
	ts.Check(err)
	ts.Defer(func() { os.RemoveAll(dir) })
	ts.Check(os.Chmod(dir, 0o755))
	for _, d := range []string{"bin", "wd", "own"} {
		ts.Check(os.Mkdir(filepath.Join(dir, d), 0o755))
	}
	uid, err := strconv.Atoi(u.Uid)
	ts.Check(err)
	gid, err := strconv.Atoi(u.Gid)
	ts.Check(err)
	ts.Check(os.Chown(filepath.Join(dir, "own"), uid, gid))
	ts.Check(os.Chmod(filepath.Join(dir, "own"), 0o700))
	self, err := os.Executable()
	ts.Check(err)
	for _, cmd := range []string{"mtev-supervise", "mtev-notify"} {
		ts.Check(linkOrCopy(self, filepath.Join(dir, "bin", cmd)))
	}
	for _, f := range args[1:] {
		ts.Check(linkOrCopy(ts.MkAbs(f), filepath.Join(dir, "bin", filepath.Base(f))))
	}
	ts.Setenv("USERDIR", dir)
	ts.Setenv("USERUID", u.Uid)
	ts.Setenv("USERGID", u.Gid)
}

// linkOrCopy hard-links from to to, or copies it (mode 0755).
func linkOrCopy(from, to string) error {
	if err := os.Link(from, to); err == nil {
		return os.Chmod(to, 0o755)
	}
	r, err := os.Open(from)
	if err != nil {
		return err
	}
	defer r.Close()
	w, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}
