package builtin_test

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"

	"github.com/mtev-supervise/mtev-supervise/pkg/runtime/builtin"
)

// mux is a small Mounter with libmtev's routing (method, longest base
// first, expression anchored on the rest of the path), standing in for
// pkg/rest's router in these tests.
type mux struct {
	routes []muxRoute
}

type muxRoute struct {
	method, base string
	re           *regexp.Regexp
	h            http.Handler
}

func (m *mux) Handle(method, base, expr string, h http.Handler) error {
	re, err := regexp.Compile("^(?:" + expr + ")$")
	if err != nil {
		return err
	}
	for _, r := range m.routes {
		if r.method == method && r.base == base && r.re.String() == re.String() {
			return fmt.Errorf("route %s %s%s defined twice", method, base, expr)
		}
	}
	m.routes = append(m.routes, muxRoute{method, base, re, h})
	sort.SliceStable(m.routes, func(i, j int) bool { return len(m.routes[i].base) > len(m.routes[j].base) })
	return nil
}

func (m *mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws := r.Method == "GET" && strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
	for _, rt := range m.routes {
		method := rt.method
		if method == builtin.MethodWebSocket {
			if !ws {
				continue
			}
			method = "GET"
		}
		if method != r.Method || !strings.HasPrefix(r.URL.Path, rt.base) {
			continue
		}
		if rt.re.MatchString(r.URL.Path[len(rt.base):]) {
			rt.h.ServeHTTP(w, r)
			return
		}
	}
	http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
}
