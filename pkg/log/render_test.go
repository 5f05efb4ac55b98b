package log

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestRenderPlain(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"typical", `{"time":"2026-11-26T10:00:00.000001Z","facility":"error","k":"v","n":3,"message":"boom"}` + "\n",
			"2026-11-26T10:00:00.000001Z [error] boom k=v n=3\n"},
		{"quoting", `{"facility":"a","s":"two words","e":"","eq":"a=b","q":"say \"hi\""}`,
			`[a] s="two words" e="" eq="a=b" q="say \"hi\""` + "\n"},
		{"message escapes", `{"message":"a\"b\\c\/d\ne\u00e9\ud83d\ude00\u0001"}`,
			`a"b\c/d\neé😀\u0001` + "\n"},
		{"nested", `{"message":"m","obj":{"a":[1,2,{"b":null}]},"arr":[],"t":true}`,
			`m obj={"a":[1,2,{"b":null}]} arr=[] t=true` + "\n"},
		{"caller", `{"facility":"f","caller":"log/x.go:12","message":"m"}`, "[f] [log/x.go:12] m\n"},
		{"empty object", `{}`, "\n"},
		{"not json", "  child said\r\nthis  \n", "child said  this\n"},
		{"truncated", `{"message":"abc`, `{"message":"abc` + "\n"},
		{"trailing garbage", `{"a":1} x`, `{"a":1} x` + "\n"},
	}
	var in, want strings.Builder
	in.WriteString(`{"message":"many"`)
	want.WriteString("many")
	for i := range 20 {
		fmt.Fprintf(&in, `,"f%d":%d`, i, i)
		fmt.Fprintf(&want, " f%d=%d", i, i)
	}
	in.WriteString("}")
	want.WriteString("\n")
	tests = append(tests, struct{ name, in, want string }{"many fields", in.String(), want.String()})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(renderPlain(nil, []byte(tt.in)))
			if got != tt.want {
				t.Errorf("renderPlain(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestAppendTime(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Date(2026, 1, 2, 3, 4, 5, 6789000, time.UTC), `"2026-01-02T03:04:05.006789Z"`},
		{time.Date(999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("x", 3600)), `"0999-12-31T22:59:59.999999Z"`},
		{time.Unix(0, 0), `"1970-01-01T00:00:00.000000Z"`},
	}
	for _, tt := range tests {
		if got := string(appendTime(nil, tt.t)); got != tt.want {
			t.Errorf("appendTime(%v) = %s, want %s", tt.t, got, tt.want)
		}
	}
}

// zerologSeeds returns lines as zerolog writes them.
func zerologSeeds() [][]byte {
	var buf bytes.Buffer
	zl := zerolog.New(&buf)
	zl.Log().Str("facility", "error").Str("k", "v w").Int("n", -3).Float64("f", 1.5).Msg("hello\n\"x\"")
	zl.Log().Bytes("message", []byte{0, 1, 0xff, '\t'}).Send()
	zl.Log().Interface("obj", map[string]any{"a": []int{1, 2}}).Bool("b", false).Msg("")
	zl.Log().Err(io.EOF).Dur("d", time.Second).Strs("ss", []string{"a", "b c"}).Msg("é😀")
	return bytes.SplitAfter(buf.Bytes(), []byte("\n"))
}

func FuzzRenderPlain(f *testing.F) {
	for _, s := range zerologSeeds() {
		f.Add(s)
	}
	f.Add([]byte(`{"a":{"b":[1,{"c":"\u12"}]}}`))
	f.Add([]byte("plain child output\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		out := renderPlain(nil, in)
		if len(out) == 0 || out[len(out)-1] != '\n' {
			t.Fatalf("output %q does not end in a newline", out)
		}
		if bytes.Count(out, []byte("\n")) != 1 {
			t.Fatalf("output %q is not one line", out)
		}
	})
}
