package hook

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestOrderAndResults(t *testing.T) {
	tests := []struct {
		name    string
		results []Result // in registration order
		want    Result
		ran     []int // indexes that ran, in run order
	}{
		{"none", nil, Continue, nil},
		{"continue", []Result{Continue, Continue}, Continue, []int{1, 0}},
		{"newest first", []Result{Continue, Continue, Continue}, Continue, []int{2, 1, 0}},
		{"done is sticky and does not stop", []Result{Continue, Done, Continue}, Done, []int{2, 1, 0}},
		{"abort stops at once", []Result{Continue, Abort, Continue}, Abort, []int{2, 1}},
		{"abort after done", []Result{Abort, Done}, Abort, []int{1, 0}},
		{"newest aborts", []Result{Done, Continue, Abort}, Abort, []int{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New[*[]int]("test_"+tt.name, "")
			for i, r := range tt.results {
				p.Register(fmt.Sprint(i), func(ran *[]int) Result {
					*ran = append(*ran, i)
					return r
				})
			}
			var ran []int
			if got := p.Invoke(&ran); got != tt.want {
				t.Errorf("Invoke = %v, want %v", got, tt.want)
			}
			if !slices.Equal(ran, tt.ran) {
				t.Errorf("ran %v, want %v", ran, tt.ran)
			}
			if p.Exists() != (len(tt.results) > 0) {
				t.Errorf("Exists = %v with %d attached", p.Exists(), len(tt.results))
			}
		})
	}
}

func TestNilFuncIgnored(t *testing.T) {
	p := New[int]("test_nil", "")
	p.Register("nil", nil)
	if p.Exists() {
		t.Fatal("a nil function was attached")
	}
	if p.Invoke(1) != Continue {
		t.Fatal("empty point did not continue")
	}
}

func TestPointsListsAttached(t *testing.T) {
	p := New[string]("test_points_listed", "a documented point")
	p.Register("first", func(string) Result { return Continue })
	p.Register("second", func(string) Result { return Continue })
	for _, in := range Points() {
		if in.Name != "test_points_listed" {
			continue
		}
		if in.Doc != "a documented point" || !slices.Equal(in.Attached, []string{"second", "first"}) {
			t.Fatalf("listed %+v", in)
		}
		return
	}
	t.Fatal("point not listed")
}

func TestResultString(t *testing.T) {
	for r, want := range map[Result]string{Continue: "CONTINUE", Done: "DONE", Abort: "ABORT", Result(9): "UNKNOWN"} {
		if r.String() != want {
			t.Errorf("%d.String() = %q, want %q", r, r.String(), want)
		}
	}
}

// Registering from many goroutines while others invoke: every function
// registered is attached exactly once, and the race detector sees no race.
func TestConcurrentRegisterInvoke(t *testing.T) {
	p := New[*int64]("test_concurrent", "")
	const writers, each = 8, 100
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var n int64
				p.Invoke(&n)
			}
		}()
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				p.Register(fmt.Sprintf("%d/%d", w, i), func(n *int64) Result { *n++; return Continue })
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	var n int64
	p.Invoke(&n)
	if n != writers*each {
		t.Fatalf("%d functions ran, want %d", n, writers*each)
	}
}

func TestAttachJSON(t *testing.T) {
	type conn struct{ fd int }
	p := New[conn]("test_attach_json", "").Describe(func(c conn) any { return map[string]int{"fd": c.fd} })
	var got []string
	if err := AttachJSON("test_attach_json", "remote", func(b []byte) Result {
		got = append(got, string(b))
		return Done
	}); err != nil {
		t.Fatal(err)
	}
	if r := p.Invoke(conn{fd: 7}); r != Done {
		t.Fatalf("Invoke = %v, want DONE from the JSON function", r)
	}
	if !slices.Equal(got, []string{`{"fd":7}`}) {
		t.Fatalf("JSON function saw %q", got)
	}
	plain := New[chan int]("test_attach_unmarshalable", "")
	var seen string
	if err := AttachJSON("test_attach_unmarshalable", "remote", func(b []byte) Result { seen = string(b); return Continue }); err != nil {
		t.Fatal(err)
	}
	plain.Invoke(make(chan int))
	if !strings.Contains(seen, `"error"`) {
		t.Fatalf("an unmarshalable value reached the function as %q", seen)
	}
	err := AttachJSON("test_no_such_point", "remote", func([]byte) Result { return Continue })
	if !errors.Is(err, ErrNoPoint) || !strings.Contains(err.Error(), "test_no_such_point") {
		t.Fatalf("attach to a missing point: %v", err)
	}
}
