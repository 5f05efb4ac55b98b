package lua

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync"

	glua "github.com/yuin/gopher-lua"
)

// maxDepth bounds the nesting of values converted between Lua and Go (a
// table that contains itself would otherwise recurse forever).
const maxDepth = 64

var errDepth = errors.New("nested too deeply (a table that contains itself?)")

// luaToGo converts a Lua value to plain Go data (nil, bool, float64,
// int64, string, []any, map[string]any). A table whose keys are exactly
// 1..n (n > 0) becomes a slice. Functions, userdata and threads are errors.
func luaToGo(v glua.LValue, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errDepth
	}
	switch x := v.(type) {
	case *glua.LNilType:
		return nil, nil
	case glua.LBool:
		return bool(x), nil
	case glua.LNumber:
		f := float64(x)
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f), nil
		}
		return f, nil
	case glua.LString:
		return string(x), nil
	case *glua.LTable:
		n := x.Len()
		count := 0
		x.ForEach(func(glua.LValue, glua.LValue) { count++ })
		if n > 0 && n == count {
			out := make([]any, 0, n)
			for i := 1; i <= n; i++ {
				g, err := luaToGo(x.RawGetInt(i), depth+1)
				if err != nil {
					return nil, err
				}
				out = append(out, g)
			}
			return out, nil
		}
		out := make(map[string]any, count)
		var err error
		x.ForEach(func(k, val glua.LValue) {
			if err != nil {
				return
			}
			var key string
			switch kk := k.(type) {
			case glua.LString:
				key = string(kk)
			case glua.LNumber:
				key = kk.String()
			default:
				err = fmt.Errorf("table key of type %s", k.Type())
				return
			}
			var g any
			if g, err = luaToGo(val, depth+1); err == nil {
				out[key] = g
			}
		})
		if err != nil {
			return nil, err
		}
		return out, nil
	default:
		return nil, fmt.Errorf("cannot convert a %s", v.Type())
	}
}

// goToLua converts plain Go data (as luaToGo and encoding/json make) to Lua.
func goToLua(L *glua.LState, v any) glua.LValue {
	switch x := v.(type) {
	case nil:
		return glua.LNil
	case bool:
		return glua.LBool(x)
	case int64:
		return glua.LNumber(x)
	case int:
		return glua.LNumber(x)
	case float64:
		return glua.LNumber(x)
	case json.Number:
		f, _ := strconv.ParseFloat(string(x), 64)
		return glua.LNumber(f)
	case string:
		return glua.LString(x)
	case []any:
		t := L.CreateTable(len(x), 0)
		for _, e := range x {
			t.Append(goToLua(L, e))
		}
		return t
	case map[string]any:
		t := L.CreateTable(0, len(x))
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			t.RawSetString(k, goToLua(L, x[k]))
		}
		return t
	default:
		return glua.LString(fmt.Sprint(x))
	}
}

// jsonValue is an mtev.json object: the text and the value it stands for.
type jsonValue struct {
	text  string
	value any
}

func checkJSON(L *glua.LState) *jsonValue {
	ud := L.CheckUserData(1)
	j, ok := ud.Value.(*jsonValue)
	if !ok {
		L.ArgError(1, "mtev.json expected")
	}
	return j
}

func (s *State) newJSON(L *glua.LState, j *jsonValue) glua.LValue {
	ud := L.NewUserData()
	ud.Value = j
	ud.Metatable = L.GetTypeMetatable("mtev.json")
	return ud
}

// encodeJSON converts v to JSON text; functions and userdata are left out,
// as libmtev's tojson ignores types without a JSON counterpart.
func encodeJSON(v glua.LValue) (string, any, error) {
	g, err := luaToGo(dropUnencodable(v, 0), 0)
	if err != nil {
		return "", nil, err
	}
	b, err := json.Marshal(g)
	if err != nil {
		return "", nil, err
	}
	return string(b), g, nil
}

func dropUnencodable(v glua.LValue, depth int) glua.LValue {
	t, ok := v.(*glua.LTable)
	if !ok || depth > maxDepth {
		switch v.(type) {
		case *glua.LFunction, *glua.LUserData, *glua.LState, *glua.LChannel:
			return glua.LNil
		}
		return v
	}
	out := &glua.LTable{}
	t.ForEach(func(k, val glua.LValue) {
		if val = dropUnencodable(val, depth+1); val != glua.LNil {
			out.RawSet(k, val)
		}
	})
	return out
}

// mtev.tojson(v) returns an mtev.json object (:tostring(), :document()).
func (s *State) luaToJSON(L *glua.LState) int {
	text, g, err := encodeJSON(L.CheckAny(1))
	if err != nil {
		L.RaiseError("mtev.tojson: %v", err)
	}
	L.Push(s.newJSON(L, &jsonValue{text: text, value: g}))
	return 1
}

// mtev.parsejson(s) returns an mtev.json object, or nil, the error and the
// byte offset of the error.
func (s *State) luaParseJSON(L *glua.LState) int {
	text := L.CheckString(1)
	var v any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		L.Push(glua.LNil)
		L.Push(glua.LString(err.Error()))
		var se *json.SyntaxError
		if errors.As(err, &se) {
			L.Push(glua.LNumber(se.Offset))
		} else {
			L.Push(glua.LNumber(0))
		}
		return 3
	}
	L.Push(s.newJSON(L, &jsonValue{text: text, value: v}))
	return 1
}

// mtev.json_encode(v) returns the JSON text of v.
func luaJSONEncode(L *glua.LState) int {
	text, _, err := encodeJSON(L.CheckAny(1))
	if err != nil {
		L.RaiseError("mtev.json_encode: %v", err)
	}
	L.Push(glua.LString(text))
	return 1
}

// mtev.json_decode(s) returns the value of the JSON text s, or nil and the
// error.
func luaJSONDecode(L *glua.LState) int {
	var v any
	if err := json.Unmarshal([]byte(L.CheckString(1)), &v); err != nil {
		L.Push(glua.LNil)
		L.Push(glua.LString(err.Error()))
		return 2
	}
	L.Push(goToLua(L, v))
	return 1
}

// Shared is the store behind mtev.shared_get and mtev.shared_set: values
// copied out of one state and into another, safe from any goroutine.
type Shared struct {
	mu sync.Mutex
	m  map[string]any
}

var defaultShared = NewShared()

// NewShared makes an empty store.
func NewShared() *Shared { return &Shared{m: map[string]any{}} }

// Get returns the value at key.
func (s *Shared) Get(key string) (any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	return v, ok
}

// Set stores a value made by luaToGo (never changed afterwards).
func (s *Shared) Set(key string, v any) {
	s.mu.Lock()
	s.m[key] = v
	s.mu.Unlock()
}

// Delete removes key.
func (s *Shared) Delete(key string) {
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
}
