package log

import (
	"bytes"
	"sync/atomic"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// timeCache holds the formatted date and time, to the second, of the
// last second appendTime formatted: the digits that change only once a
// second are formatted once a second.
type timeCache struct {
	sec    int64
	prefix [21]byte // `"2006-01-02T15:04:05.`
}

var lastSecond atomic.Pointer[timeCache]

// appendTime appends t in UTC as a quoted RFC 3339 timestamp with
// microseconds: "2006-01-02T15:04:05.000000Z".
func appendTime(dst []byte, t time.Time) []byte {
	sec := t.Unix()
	c := lastSecond.Load()
	if c == nil || c.sec != sec {
		c = &timeCache{sec: sec}
		u := t.UTC()
		year, month, day := u.Date()
		hour, min, s := u.Clock()
		b := append(c.prefix[:0], '"')
		b = appendInt(b, year, 4)
		b = append(b, '-')
		b = appendInt(b, int(month), 2)
		b = append(b, '-')
		b = appendInt(b, day, 2)
		b = append(b, 'T')
		b = appendInt(b, hour, 2)
		b = append(b, ':')
		b = appendInt(b, min, 2)
		b = append(b, ':')
		b = appendInt(b, s, 2)
		_ = append(b, '.')
		lastSecond.Store(c)
	}
	dst = append(dst, c.prefix[:]...)
	us := uint32(t.Nanosecond() / 1000)
	var d [8]byte
	for i := 5; i >= 0; i-- {
		d[i] = byte('0' + us%10)
		us /= 10
	}
	d[6], d[7] = 'Z', '"'
	return append(dst, d[:]...)
}

// appendInt appends v (non-negative) zero-padded to width digits.
func appendInt(dst []byte, v, width int) []byte {
	var b [20]byte
	i := len(b)
	for v > 0 || width > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		width--
	}
	return append(dst, b[i:]...)
}

// Field names the plain renderer places in the line's header.
const (
	fieldTime     = "time"
	fieldFacility = "facility"
	fieldCaller   = "caller"
	fieldMessage  = "message"
)

// renderPlain appends the plain rendering of one JSON line, as zerolog
// writes it, to dst:
//
//	2006-01-02T15:04:05.000000Z [facility] [file.go:12] message key=value key="two words"
//
// String values that need quoting keep their JSON quoting; other values
// are copied as they are. The message has its JSON escapes undone except
// for control characters, so a line stays one line. Input that is not a
// JSON object is copied with its surrounding space trimmed.
func renderPlain(dst, js []byte) []byte {
	start := len(dst)
	var tm, fac, caller, msg []byte
	// Other fields, kept in order; when there are more than fit, a second
	// pass renders them from the input.
	var others [16]struct{ k, v []byte }
	nOthers, more := 0, false
	it := jsonIter{b: js}
	if !it.open() {
		return appendRaw(dst, js)
	}
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		switch string(k) {
		case fieldTime:
			tm = v
		case fieldFacility:
			fac = v
		case fieldCaller:
			caller = v
		case fieldMessage:
			msg = v
		default:
			if nOthers < len(others) {
				others[nOthers].k, others[nOthers].v = k, v
				nOthers++
			} else {
				more = true
			}
		}
	}
	if it.bad {
		return appendRaw(dst[:start], js)
	}
	sep := func() {
		if len(dst) > start {
			dst = append(dst, ' ')
		}
	}
	if tm != nil {
		dst = appendUnquoted(dst, tm)
	}
	if fac != nil {
		sep()
		dst = append(dst, '[')
		dst = appendUnquoted(dst, fac)
		dst = append(dst, ']')
	}
	if caller != nil {
		sep()
		dst = append(dst, '[')
		dst = appendUnquoted(dst, caller)
		dst = append(dst, ']')
	}
	if msg != nil {
		sep()
		dst = appendUnquoted(dst, msg)
	}
	field := func(k, v []byte) {
		sep()
		dst = append(dst, k...)
		dst = append(dst, '=')
		if len(v) > 0 && v[0] == '"' && !needsQuote(v[1:len(v)-1]) {
			dst = append(dst, v[1:len(v)-1]...)
		} else {
			dst = append(dst, v...)
		}
	}
	for _, kv := range others[:nOthers] {
		field(kv.k, kv.v)
	}
	if more {
		it = jsonIter{b: js}
		it.open()
		skip := nOthers
		for {
			k, v, ok := it.next()
			if !ok {
				break
			}
			switch string(k) {
			case fieldTime, fieldFacility, fieldCaller, fieldMessage:
				continue
			}
			if skip > 0 {
				skip--
				continue
			}
			field(k, v)
		}
	}
	// Raw line breaks can only come from whitespace inside nested values
	// or from malformed strings; either way the line must stay one line.
	for i := start; i < len(dst); i++ {
		if dst[i] == '\n' || dst[i] == '\r' {
			dst[i] = ' '
		}
	}
	return append(dst, '\n')
}

func appendRaw(dst, b []byte) []byte {
	b = bytes.TrimSpace(b)
	for _, c := range b {
		if c == '\n' || c == '\r' {
			c = ' '
		}
		dst = append(dst, c)
	}
	return append(dst, '\n')
}

// needsQuote reports whether the raw content of a JSON string must keep
// its quotes in a key=value pair.
func needsQuote(raw []byte) bool {
	if len(raw) == 0 {
		return true
	}
	for _, c := range raw {
		if c <= ' ' || c == '\\' || c == '=' || c == '"' || c == 0x7f {
			return true
		}
	}
	return false
}

// appendUnquoted appends a raw JSON value; a string has its quotes
// removed and its escapes undone, except those of control characters.
func appendUnquoted(dst, v []byte) []byte {
	if len(v) < 2 || v[0] != '"' {
		return append(dst, v...)
	}
	s := v[1 : len(v)-1]
	for len(s) > 0 {
		i := bytes.IndexByte(s, '\\')
		if i < 0 || i+1 >= len(s) {
			return append(dst, s...)
		}
		dst = append(dst, s[:i]...)
		s = s[i:]
		switch c := s[1]; c {
		case '"', '\\', '/':
			dst = append(dst, c)
			s = s[2:]
		case 'u':
			r, n := decodeU(s)
			if n == 0 || r < 0x20 {
				dst = append(dst, '\\', 'u')
				s = s[2:]
				continue
			}
			dst = utf8.AppendRune(dst, r)
			s = s[n:]
		default: // b f n r t: keep escaped
			dst = append(dst, '\\', c)
			s = s[2:]
		}
	}
	return dst
}

// decodeU decodes a \uXXXX escape (and a following low surrogate) at the
// start of s, returning the rune and the bytes used, or 0 bytes.
func decodeU(s []byte) (rune, int) {
	r, ok := hex4(s)
	if !ok {
		return 0, 0
	}
	if utf16.IsSurrogate(r) {
		if r2, ok := hex4(s[6:]); ok {
			if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
				return d, 12
			}
		}
		return utf8.RuneError, 6
	}
	return r, 6
}

func hex4(s []byte) (rune, bool) {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// jsonIter walks the members of one flat-or-nested JSON object, returning
// raw keys and values without allocating.
type jsonIter struct {
	b   []byte
	i   int
	bad bool
	end bool
}

func (it *jsonIter) ws() {
	i := it.i
	for i < len(it.b) {
		switch it.b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			it.i = i
			return
		}
	}
	it.i = i
}

func (it *jsonIter) open() bool {
	it.ws()
	if it.i >= len(it.b) || it.b[it.i] != '{' {
		it.bad = true
		return false
	}
	it.i++
	it.ws()
	if it.i < len(it.b) && it.b[it.i] == '}' {
		it.i++
		it.end = true
	}
	return true
}

// next returns the next member: its key without quotes (raw, escapes
// kept) and its raw value.
func (it *jsonIter) next() (key, val []byte, ok bool) {
	if it.end || it.bad {
		return nil, nil, false
	}
	it.ws()
	ks := it.i
	if !it.skipString() {
		it.bad = true
		return nil, nil, false
	}
	key = it.b[ks+1 : it.i-1]
	it.ws()
	if it.i >= len(it.b) || it.b[it.i] != ':' {
		it.bad = true
		return nil, nil, false
	}
	it.i++
	it.ws()
	vs := it.i
	if !it.skipValue(0) {
		it.bad = true
		return nil, nil, false
	}
	val = it.b[vs:it.i]
	it.ws()
	if it.i >= len(it.b) {
		it.bad = true
		return nil, nil, false
	}
	switch it.b[it.i] {
	case ',':
		it.i++
	case '}':
		it.i++
		it.end = true
		it.ws()
		if it.i != len(it.b) {
			it.bad = true
			return nil, nil, false
		}
	default:
		it.bad = true
		return nil, nil, false
	}
	return key, val, true
}

func (it *jsonIter) skipString() bool {
	b, i := it.b, it.i
	if i >= len(b) || b[i] != '"' {
		return false
	}
	start := i + 1
	i = start
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return false
		}
		i += j
		// The quote ends the string unless an odd run of backslashes
		// escapes it.
		n := 0
		for k := i - 1; k >= start && b[k] == '\\'; k-- {
			n++
		}
		i++
		if n%2 == 0 {
			it.i = i
			return true
		}
	}
}

const maxDepth = 64

func (it *jsonIter) skipValue(depth int) bool {
	if it.i >= len(it.b) || depth > maxDepth {
		return false
	}
	switch c := it.b[it.i]; c {
	case '"':
		return it.skipString()
	case '{', '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		it.i++
		it.ws()
		if it.i < len(it.b) && it.b[it.i] == closer {
			it.i++
			return true
		}
		for {
			if c == '{' {
				if !it.skipString() {
					return false
				}
				it.ws()
				if it.i >= len(it.b) || it.b[it.i] != ':' {
					return false
				}
				it.i++
				it.ws()
			}
			if !it.skipValue(depth + 1) {
				return false
			}
			it.ws()
			if it.i >= len(it.b) {
				return false
			}
			switch it.b[it.i] {
			case ',':
				it.i++
				it.ws()
			case closer:
				it.i++
				return true
			default:
				return false
			}
		}
	default:
		s := it.i
		for it.i < len(it.b) {
			switch it.b[it.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r', ':', '{', '[', '"':
				return it.i > s
			}
			it.i++
		}
		return it.i > s
	}
}
