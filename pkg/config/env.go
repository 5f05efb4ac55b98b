package config

import (
	"fmt"
	"regexp"
	"strings"
)

// Environment is how the configuration sees environment variables. The
// default is os.LookupEnv; tests and the supervisor may inject their own.
type Environment func(key string) (string, bool)

// requireEnv evaluates a require_env expression:
//
//	VAR        VAR is set (possibly empty)
//	!VAR       VAR is not set
//	VAR=value  VAR is set to exactly value
//	VAR~regex  VAR is set and matches the regular expression (unanchored)
//
// A leading "!" negates any of the forms. A malformed expression (empty
// name, bad regular expression) is an error.
func requireEnv(expr string, env Environment) (bool, error) {
	neg := false
	if strings.HasPrefix(expr, "!") {
		neg = true
		expr = expr[1:]
	}
	i := strings.IndexAny(expr, "=~")
	name := expr
	if i >= 0 {
		name = expr[:i]
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return false, fmt.Errorf("require_env %q: no variable name", expr)
	}
	val, set := env(name)
	ok := set
	if i >= 0 && set {
		arg := expr[i+1:]
		if expr[i] == '=' {
			ok = val == arg
		} else {
			re, err := compileRegexp(arg)
			if err != nil {
				return false, fmt.Errorf("require_env %q: %w", expr, err)
			}
			ok = re.MatchString(val)
		}
	}
	return ok != neg, nil
}

// interpolate expands environment references in a value:
//
//	{{ENV:DEFAULT:TEMPLATE}}  anywhere in a value
//	ENV:DEFAULT:TEMPLATE      as the whole value (the older form)
//
// TEMPLATE is text holding one or more {NAME} references. When every
// referenced variable is set, the expansion is TEMPLATE with each {NAME}
// replaced by its value; when any is unset, the expansion is DEFAULT.
// DEFAULT runs to the first ':' and may be empty. Other {{...}} forms and
// malformed references are left untouched.
func interpolate(s string, env Environment) string {
	if strings.HasPrefix(s, "ENV:") && !strings.Contains(s, "{{") {
		if v, ok := expandEnv(s[len("ENV:"):], env); ok {
			return v
		}
		return s
	}
	if !strings.Contains(s, "{{ENV:") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "{{ENV:")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.Index(s[i:], "}}")
		// A TEMPLATE ending in a reference closes with "}}}": the
		// reference's brace, then the two of the form.
		for j >= 0 && strings.HasPrefix(s[i+j+2:], "}") {
			j++
		}
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		body := s[i+len("{{ENV:") : i+j]
		b.WriteString(s[:i])
		if v, ok := expandEnv(body, env); ok {
			b.WriteString(v)
		} else {
			b.WriteString(s[i : i+j+2])
		}
		s = s[i+j+2:]
	}
}

var envRef = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv expands "DEFAULT:TEMPLATE". ok is false when the body is
// malformed (no ':' or no reference).
func expandEnv(body string, env Environment) (string, bool) {
	def, tmpl, found := strings.Cut(body, ":")
	if !found || !envRef.MatchString(tmpl) {
		return "", false
	}
	missing := false
	out := envRef.ReplaceAllStringFunc(tmpl, func(ref string) string {
		v, set := env(ref[1 : len(ref)-1])
		if !set {
			missing = true
		}
		return v
	})
	if missing {
		return def, true
	}
	return out, true
}
