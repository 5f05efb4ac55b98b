// Package module is libmtev's module system: modules compiled into the
// binary, and modules that are separate executables, enabled and
// configured from the <modules> section and brought up in libmtev's
// lifecycle.
//
//	<modules directory="/opt/app/modules">
//	  <generic image="hello" name="hello1"><config><greeting>hi</greeting></config></generic>
//	  <generic image="echo-module" name="echo" heartbeat="1s" heartbeat_timeout="5s"/>
//	</modules>
//
// # Compiled-in modules
//
// A package registers a module from an init function, as caddy's modules
// do: Register(image, onload). <generic image="IMAGE"> enables an
// instance of it; onload runs once per instance and returns a Generic.
//
// # Executable modules
//
// An image that is not compiled in names an executable: a path (relative
// to the configuration file), or a file name looked for on the directory
// search path. Its main calls plugin.Serve (pkg/module/plugin); the host
// starts it over github.com/hashicorp/go-plugin, so that it dies with the
// host (PR_SET_PDEATHSIG), attaches it to the hook points it names (see
// hook.AttachJSON), and watches it:
//
//   - a heartbeat every `heartbeat` that must be answered within
//     `heartbeat_timeout`: the module answers it between calls, so a call
//     that never returns stops its heart;
//   - a crash (the process exits) is reported through Host.Report with the
//     exit status and the fatal output of its stderr (a Go panic and its
//     goroutines) in Stall.Detail, and PID 0 (nothing is left to capture;
//     the label module.pid names the process);
//   - a hang (the heart stopped) is reported with Stall.PID set while the
//     process still runs, so the supervisor can capture it, and with the
//     module's own account in Stall.Detail: the call that hangs (also the
//     label mtev.module.call) and every goroutine's stack, which the
//     module serves without its call lock; then the process gets SIGQUIT
//     (a Go module prints its goroutines into the log) and, two seconds
//     later, SIGKILL;
//   - either way it is started again after a backoff (restart_backoff,
//     doubling with jitter up to restart_backoff_max, reset after a run
//     longer than that), through onload, config, init and post_init
//     again. The host keeps running: while the module is down its hook
//     functions answer CONTINUE at once; a hook call that gets no answer
//     within hook_timeout answers CONTINUE, and so does every later one
//     at once until the module answers a heartbeat again.
//
// Without Host.Report an incident is logged to "error/module/NAME". The
// module's stderr lines go to "notice/module/NAME". Stall.Hard is false:
// the host kills and restarts the module process itself, the service
// keeps running.
//
// # Lifecycle
//
// Load runs, for each <generic> in document order, onload, config (the
// ancestor-merged <config> hash) and init; then post_init for each; then
// the dso_post_init hook point (ABORT fails the start). The first failure
// stops the start with a *StageError naming the module, the stage and the
// file:line of its <generic> (or of the key a KeyError names); module
// processes already started are stopped and compiled-in modules already
// initialized are closed (io.Closer). Duplicate names, unknown images and
// unknown attributes are configuration errors with file:line.
//
// # Threads
//
// Load and Close run on the caller's goroutine; a Generic's methods run
// there too and may block for as long as the start may take. Each module
// process has one watcher goroutine (heartbeat, restart) owned by the Set
// and stopped by Close, which waits for it. Set.List, Set.Instance and
// the hook functions of module processes are safe from any goroutine; a
// hook function waits at most hook_timeout.
package module
