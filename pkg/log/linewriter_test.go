package log

import (
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestLineWriter(t *testing.T) {
	long := strings.Repeat("z", MaxLineBytes+10)
	tests := []struct {
		name   string
		writes []string
		want   []string
	}{
		{"whole lines", []string{"a\nb\n"}, []string{"a", "b"}},
		{"split across writes", []string{"he", "llo\nwor", "ld\n"}, []string{"hello", "world"}},
		{"crlf and empty", []string{"x\r\n\n"}, []string{"x", ""}},
		{"partial at close", []string{"tail"}, []string{"tail"}},
		{"long line", []string{long + "\n"}, []string{long[:MaxLineBytes], long[MaxLineBytes:]}},
		{"long partial", []string{long[:MaxLineBytes/2], long[MaxLineBytes/2:]}, []string{long[:MaxLineBytes], long[MaxLineBytes:]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, ring := newRingGraph(t, Spec{Name: "child", Outlets: []string{"ring"}})
			w := g.Facility("child").LineWriter(func(e *zerolog.Event) { e.Str("stream", "stdout") })
			for _, s := range tt.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			w.Close()
			w.Close()
			got := ringMessages(ring)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d lines, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if got[i] != "child:"+tt.want[i] {
					t.Errorf("line %d = %.40q, want %.40q", i, got[i], tt.want[i])
				}
			}
			for _, l := range ring.Since(0) {
				if !strings.Contains(string(l.Data), `"stream":"stdout"`) {
					t.Errorf("line lacks field: %.80s", l.Data)
				}
			}
		})
	}
}
