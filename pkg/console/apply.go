package console

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// maxApply bounds the values of one apply, as libmtev's 256.
const maxApply = 256

// applyValues expands libmtev's apply ranges: "a..b" (integers, step 1),
// "a,n..b" (a, n, ... up to b, step n-a), "IP/mask" (every address of the
// network), or a comma-separated list of words.
func applyValues(spec string) ([]string, error) {
	if strings.Contains(spec, "/") {
		p, err := netip.ParsePrefix(spec)
		if err != nil {
			return nil, fmt.Errorf("console: apply: %w", err)
		}
		p = p.Masked()
		if p.Addr().BitLen()-p.Bits() > 8 {
			return nil, fmt.Errorf("console: apply: %s has more than %d addresses", spec, maxApply)
		}
		var out []string
		for a := p.Addr(); a.IsValid() && p.Contains(a); a = a.Next() {
			out = append(out, a.String())
		}
		return out, nil
	}
	if from, to, ok := strings.Cut(spec, ".."); ok {
		first, second, stepped := strings.Cut(from, ",")
		a, err1 := strconv.Atoi(first)
		b, err2 := strconv.Atoi(to)
		step := 1
		var err3 error
		if stepped {
			var n int
			n, err3 = strconv.Atoi(second)
			step = n - a
		}
		if err1 != nil || err2 != nil || err3 != nil || step <= 0 || b < a {
			return nil, fmt.Errorf("console: apply: bad range %q (a..b or a,n..b with a < n and a <= b)", spec)
		}
		if (b-a)/step+1 > maxApply {
			return nil, fmt.Errorf("console: apply: %q has more than %d values", spec, maxApply)
		}
		var out []string
		for v := a; v <= b; v += step {
			out = append(out, strconv.Itoa(v))
		}
		return out, nil
	}
	out := strings.Split(spec, ",")
	if len(out) > maxApply {
		return nil, fmt.Errorf("console: apply: more than %d values", maxApply)
	}
	return out, nil
}

// apply runs words[2:] once per value of words[1], with {NAME} replaced.
func (s *Session) apply(words []string) error {
	if len(words) < 3 {
		return fmt.Errorf("console: usage: apply NAME a..b|a,n..b|IP/mask|x,y,z COMMAND...")
	}
	vals, err := applyValues(words[1])
	if err != nil {
		return err
	}
	name := "{" + words[0] + "}"
	for _, v := range vals {
		cmd := make([]string, len(words)-2)
		for i, w := range words[2:] {
			w = strings.ReplaceAll(w, name, v)
			if strings.ContainsAny(w, " \t\"\\") || w == "" {
				w = strconv.Quote(w)
			}
			cmd[i] = w
		}
		if err := s.Execute(strings.Join(cmd, " ")); err != nil {
			return fmt.Errorf("%s=%s: %w", words[0], v, err)
		}
		if s.closed {
			return nil
		}
	}
	return nil
}
