package lua

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	glua "github.com/yuin/gopher-lua"
	"golang.org/x/sys/unix"
)

// openMtev installs the mtev module, print and os.exit.
func (s *State) openMtev() {
	L := s.L
	m := L.NewTable()
	L.SetFuncs(m, map[string]glua.LGFunction{
		"log":                      s.luaLog,
		"sleep":                    s.luaSleep,
		"gettimeofday":             luaGettimeofday,
		"coroutine_spawn":          s.luaSpawn,
		"waitfor":                  s.luaWaitfor,
		"notify":                   s.luaNotify,
		"shared_get":               s.luaSharedGet,
		"shared_set":               s.luaSharedSet,
		"socket":                   s.luaSocket,
		"http_request":             s.luaHTTP,
		"conf_get_string":          s.confGet("string"),
		"conf_get_integer":         s.confGet("integer"),
		"conf_get_boolean":         s.confGet("boolean"),
		"conf_get_float":           s.confGet("float"),
		"conf_get_string_list":     s.confGetList,
		"tojson":                   s.luaToJSON,
		"parsejson":                s.luaParseJSON,
		"json_encode":              luaJSONEncode,
		"json_decode":              luaJSONDecode,
		"watchdog_child_heartbeat": s.luaHeartbeat,
		"getpid":                   func(L *glua.LState) int { L.Push(glua.LNumber(os.Getpid())); return 1 },
		"thread_self":              s.luaThreadSelf,
		"eventer_loop_concurrency": func(L *glua.LState) int { L.Push(glua.LNumber(s.loop.Pool().Len())); return 1 },
		"sh":                       s.luaSh,
	})
	L.SetGlobal("mtev", m)
	if pkg, ok := L.GetGlobal("package").(*glua.LTable); ok {
		if loaded, ok := pkg.RawGetString("loaded").(*glua.LTable); ok {
			loaded.RawSetString("mtev", m)
		}
	}
	L.SetGlobal("print", L.NewFunction(s.luaPrint))
	if osT, ok := L.GetGlobal("os").(*glua.LTable); ok {
		osT.RawSetString("exit", L.NewFunction(s.luaExit))
	}
	args := L.NewTable()
	for i, a := range s.opts.Args {
		args.RawSetInt(i, glua.LString(a))
	}
	L.SetGlobal("arg", args)
	s.registerTypes()
}

// registerTypes makes the metatables of mtev's object types.
func (s *State) registerTypes() {
	L := s.L
	tv := L.NewTypeMetatable("mtev.timeval")
	L.SetField(tv, "__index", L.SetFuncs(L.NewTable(), map[string]glua.LGFunction{
		"seconds": func(L *glua.LState) int {
			L.Push(glua.LNumber(checkTimeval(L).Seconds()))
			return 1
		},
	}))
	L.SetField(tv, "__tostring", L.NewFunction(func(L *glua.LState) int {
		d := checkTimeval(L)
		L.Push(glua.LString(fmt.Sprintf("%d.%06d", int64(d/time.Second), int64(d%time.Second/time.Microsecond))))
		return 1
	}))
	js := L.NewTypeMetatable("mtev.json")
	L.SetField(js, "__index", L.SetFuncs(L.NewTable(), map[string]glua.LGFunction{
		"tostring": func(L *glua.LState) int {
			L.Push(glua.LString(checkJSON(L).text))
			return 1
		},
		"document": func(L *glua.LState) int {
			L.Push(goToLua(L, checkJSON(L).value))
			return 1
		},
	}))
	L.SetField(js, "__tostring", L.NewFunction(func(L *glua.LState) int {
		L.Push(glua.LString(checkJSON(L).text))
		return 1
	}))
	s.registerSocket()
}

func checkTimeval(L *glua.LState) time.Duration {
	ud := L.CheckUserData(1)
	d, ok := ud.Value.(time.Duration)
	if !ok {
		L.ArgError(1, "mtev.timeval expected")
	}
	return d
}

func (s *State) newTimeval(d time.Duration) glua.LValue {
	ud := s.L.NewUserData()
	ud.Value = d
	ud.Metatable = s.L.GetTypeMetatable("mtev.timeval")
	return ud
}

// format runs string.format over the arguments from index i.
func format(L *glua.LState, i int) string {
	n := L.GetTop()
	if n < i {
		return ""
	}
	if n == i {
		return L.CheckString(i)
	}
	strT := L.GetGlobal("string").(*glua.LTable)
	args := make([]glua.LValue, 0, n-i+1)
	for j := i; j <= n; j++ {
		args = append(args, L.Get(j))
	}
	if err := L.CallByParam(glua.P{Fn: strT.RawGetString("format"), NRet: 1, Protect: false}, args...); err != nil {
		L.RaiseError("%v", err)
	}
	out := L.Get(-1)
	L.Pop(1)
	return glua.LVAsString(out)
}

// mtev.log(facility, fmt, ...): string.format, then one line to the
// facility. "stdout" with no facility of that name writes the text as is.
func (s *State) luaLog(L *glua.LState) int {
	name := L.CheckString(1)
	msg := format(L, 2)
	if name == "stdout" {
		if _, ok := s.logs.Lookup("stdout"); !ok {
			n, _ := io.WriteString(s.opts.Stdout, msg)
			L.Push(glua.LNumber(n))
			return 1
		}
	}
	s.logs.Facility(name).Printf("%s", strings.TrimSuffix(msg, "\n"))
	L.Push(glua.LNumber(len(msg)))
	return 1
}

func (s *State) luaPrint(L *glua.LState) int {
	var b strings.Builder
	for i := 1; i <= L.GetTop(); i++ {
		if i > 1 {
			b.WriteByte('\t')
		}
		b.WriteString(L.ToStringMeta(L.Get(i)).String())
	}
	b.WriteByte('\n')
	_, _ = io.WriteString(s.opts.Stdout, b.String())
	return 0
}

func (s *State) luaExit(L *glua.LState) int {
	code := 0
	switch v := L.Get(1).(type) {
	case glua.LNumber:
		code = int(v)
	case glua.LBool:
		if !v {
			code = 1
		}
	}
	if s.opts.Exit != nil {
		s.opts.Exit(code)
	}
	ud := L.NewUserData()
	ud.Value = &ExitError{Code: code}
	L.Error(ud, 0)
	return 0
}

// mtev.sleep(seconds) yields to the loop and returns the time slept.
func (s *State) luaSleep(L *glua.LState) int {
	d := time.Duration(float64(L.CheckNumber(1)) * float64(time.Second))
	t := s.taskOf(L, "mtev.sleep")
	start := time.Now()
	tm, err := s.loop.AfterFunc("lua.sleep", max(d, 0), func() {
		t.timer = nil
		s.resume(t, s.newTimeval(time.Since(start)))
	})
	if err != nil {
		L.RaiseError("mtev.sleep: %v", err)
	}
	t.timer = tm
	return s.park(L, t)
}

func luaGettimeofday(L *glua.LState) int {
	now := time.Now()
	L.Push(glua.LNumber(now.Unix()))
	L.Push(glua.LNumber(now.Nanosecond() / 1000))
	return 2
}

// mtev.coroutine_spawn(fn, ...) starts fn(...) as a new coroutine of this
// state, after the current one yields.
func (s *State) luaSpawn(L *glua.LState) int {
	fn := L.CheckFunction(1)
	args := make([]glua.LValue, 0, L.GetTop())
	for i := 2; i <= L.GetTop(); i++ {
		args = append(args, L.Get(i))
	}
	s.spawnLater(fn, args)
	return 0
}

// mtev.waitfor(key[, timeout]) returns the arguments of the mtev.notify
// on key (the key first), or nothing at the timeout.
func (s *State) luaWaitfor(L *glua.LState) int {
	key := L.CheckString(1)
	timeout := L.OptNumber(2, -1)
	t := s.taskOf(L, "mtev.waitfor")
	if q := s.queued[key]; len(q) > 0 {
		vals := q[0]
		if len(q) == 1 {
			delete(s.queued, key)
		} else {
			s.queued[key] = q[1:]
		}
		for _, v := range vals {
			L.Push(v)
		}
		return len(vals)
	}
	t.waitKey = key
	s.waiters[key] = append(s.waiters[key], t)
	if timeout >= 0 {
		tm, err := s.loop.AfterFunc("lua.waitfor", time.Duration(float64(timeout)*float64(time.Second)), func() {
			t.timer = nil
			s.unwait(t)
			s.resume(t)
		})
		if err != nil {
			L.RaiseError("mtev.waitfor: %v", err)
		}
		t.timer = tm
	}
	return s.park(L, t)
}

func (s *State) unwait(t *task) {
	w := s.waiters[t.waitKey]
	for i, x := range w {
		if x == t {
			w = append(w[:i:i], w[i+1:]...)
			break
		}
	}
	if len(w) == 0 {
		delete(s.waiters, t.waitKey)
	} else {
		s.waiters[t.waitKey] = w
	}
}

// mtev.notify(key, ...) wakes the oldest waitfor on key, or queues the
// message for the next one.
func (s *State) luaNotify(L *glua.LState) int {
	key := L.CheckString(1)
	vals := make([]glua.LValue, 0, L.GetTop())
	for i := 1; i <= L.GetTop(); i++ {
		vals = append(vals, L.Get(i))
	}
	if w := s.waiters[key]; len(w) > 0 {
		t := w[0]
		s.unwait(t)
		if t.timer != nil {
			t.timer.Stop()
			t.timer = nil
		}
		s.wake(t, vals...)
		return 0
	}
	s.queued[key] = append(s.queued[key], vals)
	return 0
}

func (s *State) luaSharedGet(L *glua.LState) int {
	v, ok := s.opts.Shared.Get(L.CheckString(1))
	if !ok {
		L.Push(glua.LNil)
		return 1
	}
	L.Push(goToLua(L, v))
	return 1
}

func (s *State) luaSharedSet(L *glua.LState) int {
	key := L.CheckString(1)
	v := L.Get(2)
	if v == glua.LNil {
		s.opts.Shared.Delete(key)
		return 0
	}
	g, err := luaToGo(v, 0)
	if err != nil {
		L.ArgError(2, err.Error())
	}
	s.opts.Shared.Set(key, g)
	return 0
}

// confGet returns mtev.conf_get_<kind>(path): the value, or nil when the
// path selects nothing or there is no configuration. A value that does not
// parse as kind raises an error naming file and line.
func (s *State) confGet(kind string) glua.LGFunction {
	return func(L *glua.LState) int {
		path := L.CheckString(1)
		c := s.opts.Config
		if c == nil {
			L.Push(glua.LNil)
			return 1
		}
		const none = "\x00none"
		x, err := c.String(path, none)
		if err == nil && x == none {
			L.Push(glua.LNil)
			return 1
		}
		var v glua.LValue = glua.LString(x)
		// The typed getters name file and line when the value is bad.
		switch kind {
		case "integer":
			var n int64
			n, err = c.Int(path, 0)
			v = glua.LNumber(n)
		case "boolean":
			var b bool
			b, err = c.Bool(path, false)
			v = glua.LBool(b)
		case "float":
			var f float64
			f, err = c.Float(path, 0)
			v = glua.LNumber(f)
		}
		if err != nil {
			L.RaiseError("mtev.conf_get_%s: %v", kind, err)
		}
		L.Push(v)
		return 1
	}
}

func (s *State) confGetList(L *glua.LState) int {
	path := L.CheckString(1)
	t := L.NewTable()
	if s.opts.Config != nil {
		nodes, err := s.opts.Config.FindAll(path)
		if err != nil {
			L.RaiseError("mtev.conf_get_string_list: %v", err)
		}
		for _, n := range nodes {
			t.Append(glua.LString(n.Text()))
		}
	}
	L.Push(t)
	return 1
}

func (s *State) luaHeartbeat(L *glua.LState) int {
	if s.opts.Heartbeat == nil {
		L.Push(glua.LNumber(-1))
		return 1
	}
	s.opts.Heartbeat()
	s.extend()
	L.Push(glua.LNumber(0))
	return 1
}

// mtev.thread_self() returns the OS thread id running the loop and the
// loop's index in its pool.
func (s *State) luaThreadSelf(L *glua.LState) int {
	L.Push(glua.LNumber(unix.Gettid()))
	L.Push(glua.LNumber(s.loop.Index()))
	return 2
}

// async runs work on its own goroutine while the task waits, then resumes
// the task on the loop with what finish returns (built on the loop).
func (s *State) async(L *glua.LState, op string, work func() func(L *glua.LState) []glua.LValue) int {
	t := s.taskOf(L, op)
	go func() {
		finish := work()
		if err := s.Post(func() { s.resume(t, finish(s.L)...) }); err != nil {
			return
		}
	}()
	return s.park(L, t)
}

// mtev.sh(command[, timeout[, shell]]) runs command with the shell and
// returns status, stdout, stderr; the coroutine yields meanwhile.
func (s *State) luaSh(L *glua.LState) int {
	cmdline := L.CheckString(1)
	timeout := time.Duration(float64(L.OptNumber(2, 0)) * float64(time.Second))
	shell := L.OptString(3, "")
	if shell == "" {
		shell = os.Getenv("SHELL")
	}
	if shell == "" {
		shell = "/bin/sh"
	}
	return s.async(L, "mtev.sh", func() func(*glua.LState) []glua.LValue {
		ctx := context.Background()
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		var out, errb bytes.Buffer
		cmd := exec.CommandContext(ctx, shell, "-c", cmdline)
		cmd.Stdout, cmd.Stderr = &out, &errb
		// The command runs in its own process group and a timeout kills
		// the whole group: a shell that forks its command rather than
		// exec'ing it would otherwise leave the command running, holding
		// the output pipes, and the call would wait for it to finish.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = time.Second
		err := cmd.Run()
		status := 0
		if err != nil {
			status = -1
			if ee, ok := err.(*exec.ExitError); ok {
				status = ee.ExitCode()
				if ws, ok := ee.Sys().(interface{ Signaled() bool }); ok && ws.Signaled() {
					status = -1
				}
			}
			if status == -1 && errb.Len() == 0 {
				errb.WriteString(err.Error())
			}
		}
		return func(*glua.LState) []glua.LValue {
			return []glua.LValue{glua.LNumber(status), glua.LString(out.String()), glua.LString(errb.String())}
		}
	})
}

// mtev.http_request(method, url[, headers[, body[, timeout]]]) makes an HTTP
// request while the coroutine yields and returns code, body, headers, or
// nil and an error.
func (s *State) luaHTTP(L *glua.LState) int {
	method := strings.ToUpper(L.CheckString(1))
	url := L.CheckString(2)
	hdr := http.Header{}
	if ht, ok := L.Get(3).(*glua.LTable); ok {
		ht.ForEach(func(k, v glua.LValue) { hdr.Add(k.String(), v.String()) })
	}
	body := L.OptString(4, "")
	timeout := time.Duration(float64(L.OptNumber(5, 30)) * float64(time.Second))
	return s.async(L, "mtev.http_request", func() func(*glua.LState) []glua.LValue {
		fail := func(err error) func(*glua.LState) []glua.LValue {
			return func(*glua.LState) []glua.LValue {
				return []glua.LValue{glua.LNil, glua.LString(err.Error())}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, url, rd)
		if err != nil {
			return fail(err)
		}
		req.Header = hdr
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fail(err)
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		if err != nil {
			return fail(err)
		}
		return func(L *glua.LState) []glua.LValue {
			h := L.NewTable()
			for k, v := range resp.Header {
				h.RawSetString(strings.ToLower(k), glua.LString(strings.Join(v, ", ")))
			}
			return []glua.LValue{glua.LNumber(resp.StatusCode), glua.LString(data), h}
		}
	})
}
