package log

import (
	"strings"
	"testing"
)

func TestRing(t *testing.T) {
	tests := []struct {
		name  string
		opts  RingOptions
		write []string
		since uint64
		want  string // "seq:data" joined by ","
	}{
		{"lines", RingOptions{Lines: 3}, []string{"a", "b", "c", "d", "e"}, 0, "3:c,4:d,5:e"},
		{"bytes", RingOptions{Bytes: 6}, []string{"aa", "bb", "cc", "dd"}, 0, "3:cc,4:dd"},
		{"both", RingOptions{Lines: 5, Bytes: 4}, []string{"a", "b", "c", "d"}, 0, "3:c,4:d"},
		{"huge line kept alone", RingOptions{Bytes: 4}, []string{"a", "bbbbbbbbbb"}, 0, "2:bbbbbbbbbb"},
		{"since middle", RingOptions{Lines: 10}, []string{"a", "b", "c"}, 2, "2:b,3:c"},
		{"since future", RingOptions{Lines: 10}, []string{"a"}, 5, ""},
		{"since evicted", RingOptions{Lines: 2}, []string{"a", "b", "c"}, 1, "2:b,3:c"},
		{"many", RingOptions{Lines: 2}, strings.Split(strings.Repeat("x,", 300)+"y", ","), 0, "300:x,301:y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRing(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.write {
				r.WriteLine([]byte(w + "\n"))
			}
			var got []string
			for _, l := range r.Since(tt.since) {
				got = append(got, itoa(l.Seq)+":"+strings.TrimSuffix(string(l.Data), "\n"))
			}
			if g := strings.Join(got, ","); g != tt.want {
				t.Errorf("got %q, want %q", g, tt.want)
			}
			if r.Last() != uint64(len(tt.write)) {
				t.Errorf("Last() = %d", r.Last())
			}
		})
	}
}

func itoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestParseRingPath(t *testing.T) {
	tests := []struct {
		in           string
		lines, bytes int
		ok           bool
	}{
		{"1000", 1000, 0, true},
		{"1000,65536", 1000, 65536, true},
		{" 0 , 10 ", 0, 10, true},
		{"5,64KiB", 5, 64 << 10, true},
		{"x", 0, 0, false},
		{"10,", 0, 0, false},
		{"-1", 0, 0, false},
	}
	for _, tt := range tests {
		l, b, err := parseRingPath(tt.in)
		if (err == nil) != tt.ok || l != tt.lines || b != tt.bytes {
			t.Errorf("parseRingPath(%q) = %d, %d, %v", tt.in, l, b, err)
		}
	}
}
