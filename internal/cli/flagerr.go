package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// reBadValue matches the flag package's message for a value it could not
// parse.
var reBadValue = regexp.MustCompile(`invalid value "(.*)" for flag -(\S+): parse error`)

// parseExplained parses args like fs.Parse, but a duration flag with a bad
// value says what is wrong with it ("--watchdog 2": the unit is missing)
// instead of the flag package's "parse error", in its message and in the
// returned error.
func parseExplained(fs *flag.FlagSet, args []string) error {
	out := fs.Output()
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	err := fs.Parse(args)
	fs.SetOutput(out)
	text := buf.String()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		if m := reBadValue.FindStringSubmatch(err.Error()); m != nil && isDuration(fs.Lookup(m[2])) {
			fixed := strings.Replace(m[0], "parse error", durationProblem(m[1]), 1)
			text = strings.Replace(text, m[0], fixed, 1)
			err = errors.New(strings.Replace(err.Error(), m[0], fixed, 1))
		}
	}
	out.Write([]byte(text))
	return err
}

func isDuration(f *flag.Flag) bool {
	if f == nil {
		return false
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	_, ok = g.Get().(time.Duration)
	return ok
}

// durationProblem says what is wrong with a value that does not parse as
// a duration.
func durationProblem(value string) string {
	if _, err := strconv.ParseFloat(value, 64); err == nil {
		return fmt.Sprintf("a duration needs a unit, e.g. %ss (units: ns, us, ms, s, m, h)", value)
	}
	return "not a duration (write e.g. 500ms, 2s or 1m30s)"
}
