package lua

import (
	"strings"
	"testing"

	glua "github.com/yuin/gopher-lua"
)

// FuzzJSON: any text given to mtev.json_decode either fails cleanly or
// decodes to a value json_encode turns back into JSON that decodes again.
func FuzzJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":null}]}`, `[]`, `"x"`, `1e400`, `{"a":`, `[[[[[[[[]]]]]]]]`, "\x00"} {
		f.Add(s)
	}
	L := glua.NewState()
	defer L.Close()
	L.SetGlobal("decode", L.NewFunction(luaJSONDecode))
	L.SetGlobal("encode", L.NewFunction(luaJSONEncode))
	f.Fuzz(func(t *testing.T, s string) {
		L.SetGlobal("input", glua.LString(s))
		if err := L.DoString(`
			local v, err = decode(input)
			if v == nil then return end
			local again, err2 = decode(encode(v))
			assert(err2 == nil, err2)`); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
	})
}

// FuzzMount: a mount_<n> value is accepted with a compiled expression or
// refused with an error, never a panic.
func FuzzMount(f *testing.F) {
	for _, s := range []string{"m:GET:/x/", "m:GET:/x/:([a-z]+)$", "m:GET", "::::", "m:GET:/x/:(["} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseMount("n", s)
		if err == nil && (m.re == nil || m.Module == "" || m.Base == "" || strings.ToUpper(m.Method) != m.Method) {
			t.Fatalf("%q: accepted as %+v", s, m)
		}
	})
}

// FuzzSource: any source text given to a state compiles or fails with an
// error; what compiles runs until it ends or is interrupted.
func FuzzSource(f *testing.F) {
	for _, s := range []string{"return 1", "local x = = 1", "while true do end", "error({})", "os.exit(1)", "return mtev.json_decode('[')"} {
		f.Add(s)
	}
	ev := startEventerF(f)
	s, err := NewState(Options{Name: "fuzz", Loop: ev.Default().Loop(0), Deadline: 50e6})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	f.Fuzz(func(t *testing.T, src string) {
		for _, x := range []string{"mtev.sh", "io.", "os.remove", "os.rename", "os.execute", "sleep", "waitfor", "socket", "http", "coroutine_spawn"} {
			if strings.Contains(src, x) {
				t.Skip("touches the machine or waits")
			}
		}
		runChunk(t, s, src)
	})
}
