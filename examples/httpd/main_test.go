package main

import (
	"crypto/tls"
	"github.com/mtev-supervise/mtev-supervise/internal/scripttest"
	"github.com/mtev-supervise/mtev-supervise/internal/testport"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mtev-supervise/mtev-supervise/internal/cli"
	"github.com/mtev-supervise/mtev-supervise/internal/testcert"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"httpd":          func() { os.Exit(Main(os.Args[1:])) },
		"mtev-supervise": func() { os.Exit(cli.Main(os.Args[1:])) },
	})
}

// TestScripts runs the example under mtev-supervise and hits it with
// curl (testdata/*.txtar).
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Setup: func(e *testscript.Env) error {
			e.Setenv("MTEV_STATE_DIR", filepath.Join(e.WorkDir, "state"))
			e.Setenv("HOME", e.WorkDir)
			for _, k := range []string{"PORT", "TLSPORT"} {
				p, err := freePort()
				if err != nil {
					return err
				}
				e.Setenv(k, strconv.Itoa(p))
			}
			if _, err := testcert.Write(e.WorkDir); err != nil {
				return err
			}
			e.Setenv("CERT", filepath.Join(e.WorkDir, "server.pem"))
			e.Setenv("KEY", filepath.Join(e.WorkDir, "server-key.pem"))
			e.Setenv("CA", filepath.Join(e.WorkDir, "ca.pem"))
			e.Setenv("DOCROOT", filepath.Join(e.WorkDir, "www"))
			conf, err := filepath.Abs("httpd.conf")
			if err != nil {
				return err
			}
			e.Setenv("EXAMPLE", conf)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waithttp": cmdWaitHTTP,
			"waitfor":  scripttest.WaitFor,
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

// waithttp URL: wait until URL answers (any status; TLS unverified).
func cmdWaitHTTP(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: waithttp URL")
	}
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get(args[0])
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waithttp %s: %v", args[0], err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
