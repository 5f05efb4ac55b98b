package eventer

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// raiseNoFile raises RLIMIT_NOFILE to at least want, as libmtev does with
// rlim_nofiles: the soft limit, and the hard one when it is lower and the
// process may raise it (CAP_SYS_RESOURCE). It never lowers a limit. It
// returns the soft limit in effect afterwards and an error when that is
// below want.
func raiseNoFile(want int) (int, error) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("eventer: rlim_nofiles: getrlimit: %w", err)
	}
	w := uint64(want)
	if lim.Cur >= w {
		return int(lim.Cur), nil
	}
	next := lim
	next.Cur = w
	if next.Max < w {
		next.Max = w
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &next); err == nil {
		return want, nil
	}
	// Not allowed above the hard limit: go as far as it.
	next = lim
	next.Cur = lim.Max
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &next); err != nil {
		return int(lim.Cur), fmt.Errorf("eventer: rlim_nofiles %d: setrlimit: %w", want, err)
	}
	return int(next.Cur), fmt.Errorf("eventer: rlim_nofiles %d: hard limit is %d: %w", want, lim.Max, ErrInvalid)
}
