package dump

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

var seedRequests = []string{
	`{"v":1,"id":7,"op":"dump","budget_ms":2000,"files":[{"kind":"goroutines","path":"/tmp/d/dump-7-goroutines.txt"},{"kind":"goroutines-grouped","path":"/tmp/d/dump-7-goroutines-grouped.txt"},{"kind":"trace","path":"/tmp/d/dump-7-flight.trace"}]}`,
	`{"v":1,"id":8,"op":"ping"}`,
	`{"v":2,"id":9,"op":"ping"}`,
	`{"v":1,"id":"x"}`,
	`{"v":1,"id":8,"op":"ping"} {}`,
	`not json`,
	``,
}

var seedReplies = []string{
	`{"v":1,"id":7,"ok":true,"elapsed_ms":12.5,"files":[{"kind":"goroutines","path":"/tmp/d/dump-7-goroutines.txt","size":5120},{"kind":"trace","path":"/tmp/d/dump-7-flight.trace","size":0,"error":"flight recorder not running"}]}`,
	`{"v":1,"id":8,"ok":true}`,
	`{"v":1,"id":5,"ok":false,"error":"unknown op \"reboot\""}`,
	`{"v":2,"id":8,"ok":true}`,
}

// FuzzParseRequest checks the child's decoding of what the parent sends:
// no panic, and an accepted request survives a round trip.
func FuzzParseRequest(f *testing.F) {
	for _, s := range seedRequests {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		req, err := parseRequest(line)
		if err != nil {
			return
		}
		if req.V != Version {
			t.Fatalf("accepted version %d", req.V)
		}
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseRequest(b)
		if err != nil || again.ID != req.ID || again.Op != req.Op || len(again.Files) != len(req.Files) {
			t.Fatalf("round trip of %s: %+v, %v", b, again, err)
		}
	})
}

// FuzzParseReply checks the parent's decoding of what the child sends.
func FuzzParseReply(f *testing.F) {
	for _, s := range seedReplies {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		rep, err := parseReply(line)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		if rep.V != Version {
			t.Fatalf("accepted version %d", rep.V)
		}
	})
}

// FuzzLineReader checks the framing: every line comes back, oversized ones
// are reported, and nothing panics.
func FuzzLineReader(f *testing.F) {
	for _, s := range append(seedRequests, seedReplies...) {
		f.Add([]byte(s + "\n" + s + "\n"))
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		lr := lineReader{r: bytes.NewReader(stream)}
		var got [][]byte
		for {
			line, err := lr.next()
			if errors.Is(err, errTooLong) {
				continue
			}
			if err != nil {
				break
			}
			got = append(got, append([]byte(nil), line...))
		}
		// Without oversized lines, the lines are exactly the complete lines
		// of the stream.
		parts := bytes.Split(stream, []byte("\n"))
		complete := parts[:len(parts)-1]
		for _, p := range complete {
			if len(p) >= MaxMessage {
				return
			}
		}
		if len(got) != len(complete) {
			t.Fatalf("%d lines read, stream has %d", len(got), len(complete))
		}
		for i := range got {
			if !bytes.Equal(got[i], complete[i]) {
				t.Fatalf("line %d: %q, want %q", i, got[i], complete[i])
			}
		}
	})
}
