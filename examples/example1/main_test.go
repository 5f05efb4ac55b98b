package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/mtev-supervise/mtev-supervise/internal/testport"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mtev-supervise/mtev-supervise/internal/cli"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"example1":       func() { os.Exit(Main(os.Args[1:])) },
		"mtev-supervise": func() { os.Exit(cli.Main(os.Args[1:])) },
	})
}

// TestScripts runs the example under mtev-supervise and drives it through
// its console (testdata/*.txtar).
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Setup: func(e *testscript.Env) error {
			e.Setenv("MTEV_STATE_DIR", filepath.Join(e.WorkDir, "state"))
			e.Setenv("HOME", e.WorkDir)
			for _, k := range []string{"HTTP_PORT", "CONSOLE_PORT"} {
				p, err := freePort()
				if err != nil {
					return err
				}
				e.Setenv(k, strconv.Itoa(p))
			}
			conf, err := os.ReadFile("example1.conf")
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(e.WorkDir, "example1.conf"), conf, 0o644)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"until": cmdUntil,
			"wscmd": cmdWS,
		},
	})
}

func freePort() (int, error) {
	ps, err := testport.Free(1)
	if err != nil {
		return 0, err
	}
	return ps[0], nil
}

// until PATTERN mtev-supervise ARGS...: run the command (in this process)
// until its output matches PATTERN, for at most 60 s.
func cmdUntil(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 3 || args[1] != "mtev-supervise" {
		ts.Fatalf("usage: until PATTERN mtev-supervise ARGS...")
	}
	re := regexp.MustCompile(args[0])
	var out, errb bytes.Buffer
	env := &cli.Env{Stdin: bytes.NewReader(nil), Stdout: &out, Stderr: &errb, Getenv: ts.Getenv, Args0: "mtev-supervise"}
	deadline := time.Now().Add(60 * time.Second)
	for {
		out.Reset()
		errb.Reset()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cli.Run(ctx, env, args[2:])
		cancel()
		if re.Match(out.Bytes()) {
			ts.Logf("%s", out.Bytes())
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("until %q: not matched within 60s; last output:\n%s%s", args[0], out.Bytes(), errb.Bytes())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wscmd URL WORDS...: run one console command over the websocket at URL and
// print the output (and the error, if any) to stdout.
func cmdWS(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: wscmd URL WORDS...")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, args[0], &websocket.DialOptions{Subprotocols: []string{"mtev_console"}})
	if err != nil {
		ts.Fatalf("wscmd: %v", err)
	}
	defer c.CloseNow()
	req, _ := json.Marshal(map[string]any{"id": 1, "command": args[1:]})
	if err := c.Write(ctx, websocket.MessageText, req); err != nil {
		ts.Fatalf("wscmd: %v", err)
	}
	var out bytes.Buffer
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			ts.Fatalf("wscmd: %v", err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			ts.Fatalf("wscmd: %s: %v", b, err)
		}
		if t, ok := m["text"].(string); ok {
			out.WriteString(t)
		}
		if e, ok := m["error"].(string); ok {
			fmt.Fprintf(&out, "error: %s\n", e)
		}
		if m["done"] == true {
			break
		}
	}
	ts.Stdout().Write(out.Bytes())
}
