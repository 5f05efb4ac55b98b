package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
)

func init() {
	Register(&Command{
		Name:    "demo",
		Summary: "watch the supervisor catch a bundled example that stalls and crashes",
		Run:     demoCmd,
	})
	Register(&Command{Name: "demo-child", Hidden: true, Run: demoChild})
}

func demoCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "demo", "demo [--duration D] [--state-dir DIR]")
	duration := fs.Duration("duration", 15*time.Second, "stop by itself after this long (0: run until interrupted)")
	dirFlag := fs.String("state-dir", "", "state directory (default: $MTEV_STATE_DIR, else $XDG_STATE_HOME/mtev-supervise)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	dir, err := stateDir(env, *dirFlag)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("demo: find own executable: %w", err)
	}
	cfg := watchdog.Config{
		Name:           "demo",
		Command:        []string{self, "demo-child"},
		StateDir:       dir,
		Restart:        watchdog.RestartAlways,
		BackoffMin:     200 * time.Millisecond,
		BackoffMax:     2 * time.Second,
		BackoffReset:   3 * time.Second,
		Retries:        20,
		Span:           time.Minute,
		StopTimeout:    2 * time.Second,
		Notify:         true,
		StartupTimeout: 3 * time.Second,
		Watchdog:       500 * time.Millisecond,
	}
	fmt.Fprintf(env.Stderr, "demo: supervising a bundled example service for %v (Ctrl-C stops it sooner).\n", *duration)
	fmt.Fprintln(env.Stderr, "demo: it speaks the notify protocol, then in turn crashes, hangs (stops its watchdog pings) and exits 1;")
	fmt.Fprintln(env.Stderr, "demo: watch the supervisor record each incident and restart it with backoff.")
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	err = supervise(ctx, env, cfg, "prefix", false)
	fmt.Fprintf(env.Stderr, "\ndemo: done. Next, read what was recorded:\n")
	stateFlag := ""
	if *dirFlag != "" {
		stateFlag = " --state-dir " + *dirFlag
	}
	fmt.Fprintf(env.Stderr, "  mtev-supervise traces list%s --service demo\n", stateFlag)
	fmt.Fprintf(env.Stderr, "  mtev-supervise traces show%s latest\n", stateFlag)
	return err
}

// demoChild is the bundled example service. It speaks the notify protocol
// and, depending on how many times it has been started, crashes, hangs or
// exits with status 1 after a short while.
func demoChild(ctx context.Context, env *Env, args []string) error {
	start, _ := strconv.Atoi(os.Getenv("MTEV_START_COUNT"))
	n := newNotifier(os.Getenv("NOTIFY_SOCKET"))
	defer n.close()
	fmt.Fprintf(env.Stdout, "demo service: start %d, pid %d: serving\n", start, os.Getpid())
	n.send("READY=1\nSTATUS=serving requests")
	interval := 100 * time.Millisecond
	if us, err := strconv.Atoi(os.Getenv("WATCHDOG_USEC")); err == nil && us > 0 {
		interval = time.Duration(us) * time.Microsecond / 4
	}
	var mu sync.Mutex
	tick := time.NewTicker(interval)
	defer tick.Stop()
	trouble := time.After(1500 * time.Millisecond)
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			fmt.Fprintln(env.Stdout, "demo service: asked to stop; bye")
			return nil
		case <-tick.C:
			mu.Lock()
			n.send("WATCHDOG=1")
			mu.Unlock()
			if i%5 == 0 {
				fmt.Fprintf(env.Stdout, "demo service: handled %d requests\n", i*7)
			}
		case <-trouble:
			switch start % 3 {
			case 1:
				fmt.Fprintln(env.Stderr, "demo service: about to dereference a nil map entry")
				var cache map[string]*struct{ hits int }
				cache["home"].hits++ // nil pointer dereference: a crash
			case 2:
				fmt.Fprintln(env.Stderr, "demo service: taking a lock twice (this hangs)")
				mu.Lock()
				mu.Lock() // deadlock: the watchdog pings stop
			default:
				fmt.Fprintln(env.Stderr, "demo service: giving up with status 1")
				return &StatusError{Code: 1}
			}
		}
	}
}

// notifier sends notify-protocol datagrams; with no socket it does nothing.
type notifier struct{ conn *net.UnixConn }

func newNotifier(addr string) *notifier {
	if addr == "" {
		return &notifier{}
	}
	if strings.HasPrefix(addr, "@") {
		addr = "\x00" + addr[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return &notifier{}
	}
	return &notifier{conn: c}
}

func (n *notifier) send(msg string) {
	if n.conn != nil {
		n.conn.Write([]byte(msg))
	}
}

func (n *notifier) close() {
	if n.conn != nil {
		n.conn.Close()
	}
}
