package config

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Type is the type of a declared value.
type Type int

// Value types. TypeNone marks an element that holds only attributes and
// children, no text value.
const (
	TypeNone Type = iota
	TypeString
	TypeBool
	TypeInt
	TypeFloat
	TypeDuration
	TypeSize
	TypeEnum
)

var typeNames = [...]string{"none", "string", "bool", "int", "float", "duration", "size", "enum"}

func (t Type) String() string {
	if t >= 0 && int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", int(t))
}

// ParseBool parses a configuration boolean: true/false, yes/no, on/off,
// 1/0 (case-insensitive).
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (true/false, yes/no, on/off, 1/0)", s)
}

// ParseInt parses a decimal (or 0x hexadecimal) 64-bit integer.
func ParseInt(s string) (int64, error) {
	v, err := strconv.ParseInt(strings.TrimSpace(s), 0, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", s)
	}
	return v, nil
}

// ParseFloat parses a finite floating-point number.
func ParseFloat(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return v, nil
}

// ParseDuration parses a duration in Go syntax ("250ms", "5s", "1h30m"),
// plus the suffixes "d" (24h) and "w" (7d) in a whole-number value such
// as "2d". A bare "0" is zero; other unitless numbers are rejected.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "0" {
		return 0, nil
	}
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(t, suffix); ok {
			if v, err := strconv.ParseInt(n, 10, 64); err == nil && v >= 0 && v <= int64(math.MaxInt64/unit) {
				return time.Duration(v) * unit, nil
			}
		}
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (like 250ms, 5s, 1h30m, 2d)", s)
	}
	return d, nil
}

var sizeUnits = []struct {
	suffix string
	mult   float64
}{
	// Longest suffixes first so that "KiB" is not read as "B".
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40},
	{"k", 1 << 10}, {"B", 1},
}

// ParseSize parses a byte size: a number with an optional unit. KiB, MiB,
// GiB, TiB (and the short K, M, G, T) are powers of 1024; KB, MB, GB, TB are
// powers of 1000; B or no unit means bytes. Fractions are allowed with a
// unit ("1.5GiB"); the result must be a whole, non-negative int64.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := 1.0
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || math.IsNaN(v) || v*mult >= math.MaxInt64 || (mult == 1 && v != math.Trunc(v)) {
		return 0, fmt.Errorf("%q is not a size (like 512, 64KiB, 10MB, 1.5GiB)", s)
	}
	return int64(v * mult), nil
}

// regexps caches compiled patterns; they come from declarations and
// require_env expressions, a small set. The cache stops growing at
// maxCachedRegexps so that hostile input cannot grow it without bound.
var (
	regexps          sync.Map // string -> *regexp.Regexp
	regexpsCount     atomic.Int64
	maxCachedRegexps = int64(1024)
)

func compileRegexp(p string) (*regexp.Regexp, error) {
	if v, ok := regexps.Load(p); ok {
		return v.(*regexp.Regexp), nil
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("bad regular expression %q: %w", p, err)
	}
	if regexpsCount.Add(1) <= maxCachedRegexps {
		regexps.Store(p, re)
	}
	return re, nil
}
