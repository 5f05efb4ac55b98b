package rest

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Service is one listener in the capabilities document.
type Service struct {
	// Type is the listener type ("http_rest_api", "control_dispatch", ...).
	Type    string
	Address string
	Port    int
	// Commands are the protocols the listener speaks, by their 4-byte
	// command (libmtev's "0x47455420" for "GET ").
	Commands []Command
}

// Command is a protocol a service speaks.
type Command struct {
	Code    uint32
	Name    string
	Version string
}

// Module is a loaded module in the capabilities document.
type Module struct{ Type, Name string }

type capaState struct {
	services []Service
	modules  []Module
}

// SetServices replaces the services listed by /capa (the listeners).
func (rt *Router) SetServices(s []Service) {
	old := rt.capa.Load()
	rt.capa.Store(&capaState{services: append([]Service(nil), s...), modules: old.modules})
}

// SetModules replaces the modules listed by /capa.
func (rt *Router) SetModules(m []Module) {
	old := rt.capa.Load()
	rt.capa.Store(&capaState{services: old.services, modules: append([]Module(nil), m...)})
}

// Uname is the uname part of the capabilities document.
type Uname struct {
	Bitwidth int    `json:"bitwidth"`
	Sysname  string `json:"sysname"`
	Nodename string `json:"nodename"`
	Release  string `json:"release"`
	Version  string `json:"version"`
	Machine  string `json:"machine"`
}

// Capabilities is libmtev's /capa.json document.
type Capabilities struct {
	Version     string                       `json:"version"`
	MtevVersion string                       `json:"mtev_version"`
	UnameBuild  Uname                        `json:"unameBuild"`
	UnameRun    Uname                        `json:"unameRun"`
	Features    map[string]map[string]string `json:"features"`
	CurrentTime int64                        `json:"current_time"`
	Services    map[string]capaService       `json:"services"`
	Modules     map[string]map[string]string `json:"modules"`
}

type capaService struct {
	Type     string                       `json:"control_dispatch"`
	Address  string                       `json:"address"`
	Port     int                          `json:"port,omitempty"`
	Commands map[string]map[string]string `json:"commands"`
}

func uname() Uname {
	var u unix.Utsname
	_ = unix.Uname(&u)
	return Uname{
		Bitwidth: strconv.IntSize, Sysname: unix.ByteSliceToString(u.Sysname[:]),
		Nodename: unix.ByteSliceToString(u.Nodename[:]), Release: unix.ByteSliceToString(u.Release[:]),
		Version: unix.ByteSliceToString(u.Version[:]), Machine: unix.ByteSliceToString(u.Machine[:]),
	}
}

// Capabilities returns the document /capa, /capa.json and the CAPA verb
// answer.
func (rt *Router) Capabilities() Capabilities {
	st := rt.capa.Load()
	run := uname()
	build := run
	build.Sysname, build.Machine = runtime.GOOS, runtime.GOARCH
	build.Nodename, build.Release, build.Version = "", "", runtime.Version()
	c := Capabilities{
		Version: "1.0", MtevVersion: rt.opts.Version, UnameBuild: build, UnameRun: run,
		Features: map[string]map[string]string{}, CurrentTime: time.Now().UnixMilli(),
		Services: map[string]capaService{}, Modules: map[string]map[string]string{},
	}
	if c.MtevVersion == "" {
		c.MtevVersion = "mtev-supervise"
	}
	for k, v := range rt.opts.Features {
		c.Features[k] = map[string]string{"version": v}
	}
	for i, s := range st.services {
		cs := capaService{Type: s.Type, Address: s.Address, Port: s.Port, Commands: map[string]map[string]string{}}
		for _, cmd := range s.Commands {
			cs.Commands[fmt.Sprintf("0x%08x", cmd.Code)] = map[string]string{"name": cmd.Name, "version": cmd.Version}
		}
		c.Services[fmt.Sprintf("0x%04x", i+1)] = cs
	}
	for _, m := range st.modules {
		c.Modules[m.Name] = map[string]string{"type": m.Type}
	}
	return c
}

// CapabilitiesXML renders the document as libmtev's <mtev_capabilities>.
func (rt *Router) CapabilitiesXML() []byte {
	c := rt.Capabilities()
	type cmdX struct {
		Name    string `xml:"name,attr"`
		Version string `xml:"version,attr"`
		Code    string `xml:"code,attr"`
	}
	type svcX struct {
		Name     string `xml:"name,attr"`
		Type     string `xml:"control_dispatch,attr"`
		Address  string `xml:"address,attr"`
		Port     int    `xml:"port,attr,omitempty"`
		Commands []cmdX `xml:"command"`
	}
	type featX struct {
		Name    string `xml:"name,attr"`
		Version string `xml:"version,attr"`
	}
	type modX struct {
		Type string `xml:"type,attr"`
		Name string `xml:"name,attr"`
	}
	type unameX struct {
		Bitwidth int    `xml:"bitwidth,attr"`
		Sysname  string `xml:"sysname"`
		Nodename string `xml:"nodename"`
		Release  string `xml:"release"`
		Version  string `xml:"version"`
		Machine  string `xml:"machine"`
	}
	type doc struct {
		XMLName     xml.Name `xml:"mtev_capabilities"`
		Version     string   `xml:"version"`
		MtevVersion string   `xml:"mtev_version"`
		UnameBuild  unameX   `xml:"unameBuild"`
		UnameRun    unameX   `xml:"unameRun"`
		Features    []featX  `xml:"features>feature"`
		CurrentTime string   `xml:"current_time"`
		Services    []svcX   `xml:"services>service"`
		Modules     []modX   `xml:"modules>module"`
	}
	d := doc{Version: c.Version, MtevVersion: c.MtevVersion, UnameBuild: unameX(c.UnameBuild), UnameRun: unameX(c.UnameRun),
		CurrentTime: fmt.Sprintf("%d.%03d", c.CurrentTime/1000, c.CurrentTime%1000)}
	for k, v := range c.Features {
		d.Features = append(d.Features, featX{k, v["version"]})
	}
	sort.Slice(d.Features, func(i, j int) bool { return d.Features[i].Name < d.Features[j].Name })
	keys := make([]string, 0, len(c.Services))
	for k := range c.Services {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s := c.Services[k]
		sx := svcX{Name: k, Type: s.Type, Address: s.Address, Port: s.Port}
		for code, cmd := range s.Commands {
			sx.Commands = append(sx.Commands, cmdX{Name: cmd["name"], Version: cmd["version"], Code: code})
		}
		sort.Slice(sx.Commands, func(i, j int) bool { return sx.Commands[i].Code < sx.Commands[j].Code })
		d.Services = append(d.Services, sx)
	}
	for k, v := range c.Modules {
		d.Modules = append(d.Modules, modX{Type: v["type"], Name: k})
	}
	sort.Slice(d.Modules, func(i, j int) bool { return d.Modules[i].Name < d.Modules[j].Name })
	out, err := xml.MarshalIndent(d, "", "  ")
	if err != nil {
		return []byte("<mtev_capabilities/>\n")
	}
	return append(append([]byte(xml.Header), out...), '\n')
}

// MountCapabilities registers GET /capa (XML) and /capa.json under "/".
// Unlike libmtev the expression is anchored, so /xcapa does not match.
func (rt *Router) MountCapabilities() error {
	return rt.Route(Route{Method: http.MethodGet, Base: "/", Expr: `capa(\.json)?`, Name: "capa", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Captures(r)[0] == ".json" {
			WriteJSON(w, http.StatusOK, rt.Capabilities())
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		_, _ = w.Write(rt.CapabilitiesXML())
	})})
}
