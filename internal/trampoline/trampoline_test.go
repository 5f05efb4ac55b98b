package trampoline

import (
	"reflect"
	"testing"
)

func TestEncodeDecode(t *testing.T) {
	for _, a := range []*Attrs{
		{Umask: -1},
		{Umask: 0},
		{Umask: 0o777, Limits: []Limit{{Name: "limit-core", Resource: 4, Soft: 0, Hard: ^uint64(0)}}},
		{Umask: -1, SetUser: true, UID: 0, GID: 4294967295},
		{Umask: 0o22, SetUser: true, UID: 1000, GID: 1000, Groups: []int{1000, 27, 4}},
	} {
		got, err := Decode(a.Encode())
		if err != nil {
			t.Fatalf("%+v: %v", a, err)
		}
		if !reflect.DeepEqual(got, a) {
			t.Fatalf("%q: got %+v, want %+v", a.Encode(), got, a)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{"", "umask=18", "limit=7:1:2:limit-nofile ids=1:2:3,4", "ids=1:2:", "limit=7:18446744073709551615:18446744073709551615:x", "umask=", "ids=::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Decode(s)
		if err != nil {
			return
		}
		// What decodes encodes to something that decodes the same.
		b, err := Decode(a.Encode())
		if err != nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("%q: %+v re-encoded as %q: %+v, %v", s, a, a.Encode(), b, err)
		}
	})
}
