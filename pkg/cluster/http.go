package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/mtev-supervise/mtev-supervise/pkg/config"
)

// Mounter is what Mount needs from an HTTP router: libmtev's routing by
// method, base path and a regular expression matched against the rest.
type Mounter interface {
	Handle(method, base, expr string, h http.Handler) error
}

// Route expressions, libmtev's (mtev_cluster.c), under base "/".
const (
	showExpr   = `^cluster(/(..*?))?(\.json)?$`
	updateExpr = `^cluster$`
)

// Mount registers GET /cluster[/NAME][.json] and POST /cluster.
func (m *Manager) Mount(mt Mounter) error {
	if err := mt.Handle(http.MethodGet, "/", showExpr, http.HandlerFunc(m.ServeShow)); err != nil {
		return fmt.Errorf("cluster: mount: %w", err)
	}
	if err := mt.Handle(http.MethodPost, "/", updateExpr, http.HandlerFunc(m.ServeUpdate)); err != nil {
		return fmt.Errorf("cluster: mount: %w", err)
	}
	return nil
}

// NodeJSON is one node in GET /cluster.json: libmtev's fields (times in
// unix seconds) and ours.
type NodeJSON struct {
	ID            string        `json:"id"`
	CN            string        `json:"cn"`
	ReferenceTime int64         `json:"reference_time"`
	LastContact   int64         `json:"last_contact"`
	BootTime      int64         `json:"boot_time"`
	Address       string        `json:"address"`
	Port          int           `json:"port"`
	Dead          bool          `json:"dead"`
	State         string        `json:"state"`
	Self          bool          `json:"self"`
	Mature        bool          `json:"mature"`
	Seq           int64         `json:"seq"`
	Payloads      []PayloadJSON `json:"payloads"`
	Error         string        `json:"error,omitempty"`
}

// PayloadJSON describes one payload by size.
type PayloadJSON struct {
	App  uint8 `json:"app"`
	Key  uint8 `json:"key"`
	Size int   `json:"size"`
}

// ClusterJSON is one cluster in GET /cluster.json.
type ClusterJSON struct {
	Name       string     `json:"name"`
	Seq        int64      `json:"seq"`
	Port       int        `json:"port"`
	Period     int64      `json:"period"`
	Timeout    int64      `json:"timeout"`
	Maturity   int64      `json:"maturity"`
	OldestNode string     `json:"oldest_node,omitempty"`
	Nodes      []NodeJSON `json:"nodes"`
}

// TopologyJSON is the document of GET /cluster.json.
type TopologyJSON struct {
	MyID     string                 `json:"my_id"`
	Clusters map[string]ClusterJSON `json:"clusters"`
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// JSON describes a cluster as GET /cluster/NAME.json shows it.
func (c *Cluster) JSON() ClusterJSON {
	cfg := c.Config()
	out := ClusterJSON{Name: cfg.Name, Seq: cfg.Seq, Port: cfg.Port, Period: ms(cfg.Period), Timeout: ms(cfg.Timeout), Maturity: ms(cfg.Maturity), Nodes: []NodeJSON{}}
	if o, ok := c.Oldest(); ok {
		out.OldestNode = o.ID
	}
	now := time.Now().Unix()
	for _, n := range c.Nodes() {
		nj := NodeJSON{ID: n.ID, CN: n.CN, ReferenceTime: now, LastContact: unix(n.LastContact), BootTime: unix(n.BootTime),
			Address: n.Address, Port: n.Port, Dead: n.State != Alive && n.State != Suspect, State: n.State.String(),
			Self: n.Self, Mature: n.Mature, Seq: n.Seq, Payloads: []PayloadJSON{}, Error: n.Error}
		for k, v := range n.Payloads {
			nj.Payloads = append(nj.Payloads, PayloadJSON{App: k.App, Key: k.Key, Size: len(v)})
		}
		sort.Slice(nj.Payloads, func(i, j int) bool {
			a, b := nj.Payloads[i], nj.Payloads[j]
			return a.App < b.App || (a.App == b.App && a.Key < b.Key)
		})
		out.Nodes = append(out.Nodes, nj)
	}
	return out
}

// xml describes a cluster as GET /cluster/NAME shows it (libmtev's XML).
func (c *Cluster) xml() *etree.Element {
	cfg := c.Config()
	e := etree.NewElement("cluster")
	e.CreateAttr("name", cfg.Name)
	for _, a := range clusterAttrs(cfg) {
		if a[0] != "key" {
			e.CreateAttr(a[0], a[1])
		}
	}
	if o, ok := c.Oldest(); ok {
		e.CreateElement("oldest_node").CreateAttr("uuid", o.ID)
	}
	for _, n := range c.Nodes() {
		ne := e.CreateElement("node")
		ne.CreateAttr("id", n.ID)
		ne.CreateAttr("cn", n.CN)
		ne.CreateAttr("last_contact", fmt.Sprint(unix(n.LastContact)))
		ne.CreateAttr("boot_time", fmt.Sprint(unix(n.BootTime)))
		ne.CreateAttr("address", n.Address)
		ne.CreateAttr("port", fmt.Sprint(n.Port))
		ne.CreateAttr("state", n.State.String())
	}
	return e
}

// parseShowPath splits /cluster[/NAME][.json].
func parseShowPath(p string) (name string, asJSON, ok bool) {
	rest, found := strings.CutPrefix(p, "/cluster")
	if !found {
		return "", false, false
	}
	rest, asJSON = strings.CutSuffix(rest, ".json")
	if rest == "" {
		return "", asJSON, true
	}
	name, found = strings.CutPrefix(rest, "/")
	if !found || name == "" {
		return "", false, false
	}
	return name, asJSON, true
}

// ServeShow answers GET /cluster (XML), /cluster/NAME, /cluster.json and
// /cluster/NAME.json; an unknown name is 404.
func (m *Manager) ServeShow(w http.ResponseWriter, r *http.Request) {
	name, asJSON, ok := parseShowPath(r.URL.Path)
	if !ok {
		httpError(w, http.StatusNotFound, "no such path %s", r.URL.Path)
		return
	}
	var list []*Cluster
	if name != "" {
		c, found := m.Cluster(name)
		if !found {
			httpError(w, http.StatusNotFound, "no cluster %q", name)
			return
		}
		list = []*Cluster{c}
	} else {
		list = m.Clusters()
	}
	if asJSON {
		doc := TopologyJSON{MyID: m.MyID(), Clusters: map[string]ClusterJSON{}}
		for _, c := range list {
			doc.Clusters[c.Name()] = c.JSON()
		}
		writeJSON(w, http.StatusOK, doc)
		return
	}
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="utf-8"`)
	root := doc.CreateElement("clusters")
	root.CreateAttr("my_id", m.MyID())
	for _, c := range list {
		root.AddChild(c.xml())
	}
	doc.Indent(2)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusOK)
	doc.WriteTo(w)
}

// ServeUpdate answers POST /cluster: the body is a <cluster> element as in
// the configuration. 204 when applied; 409 when its seq is not newer; 400
// for a bad body (the message names the line); 422 when this node is not
// among the nodes. Header X-Mtev-Conf-Sync: 1 writes the config file
// before answering.
func (m *Manager) ServeUpdate(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		httpError(w, http.StatusBadRequest, "reading body: %v", err)
		return
	}
	cfg, err := ParseBody(body)
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	flush := strings.TrimSpace(r.Header.Get("X-Mtev-Conf-Sync")) == "1"
	out, err := m.Update(cfg, flush)
	switch {
	case errors.Is(err, ErrStaleSeq):
		httpError(w, http.StatusConflict, "%v", err)
	case errors.Is(err, ErrNotMember):
		httpError(w, http.StatusUnprocessableEntity, "%v", err)
	case errors.Is(err, config.ErrInvalid):
		httpError(w, http.StatusBadRequest, "%v", err)
	case err != nil:
		httpError(w, http.StatusInternalServerError, "%v", err)
	default:
		w.Header().Set("X-Mtev-Cluster-Update", [...]string{"created", "updated", "restarted"}[out])
		w.WriteHeader(http.StatusNoContent)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// httpError writes {"error": "..."} as pkg/rest does.
func httpError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}
