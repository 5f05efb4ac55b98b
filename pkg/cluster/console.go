package cluster

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// ShowCluster is the console command `show cluster [NAME]`: every cluster
// (or the named one) with its nodes, their state, age, last contact, seq
// and payload sizes. args are the words after "show cluster".
func (m *Manager) ShowCluster(w io.Writer, args []string) error {
	list := m.Clusters()
	if len(args) > 1 {
		return fmt.Errorf("cluster: show cluster: too many arguments (usage: show cluster [NAME])")
	}
	if len(args) == 1 {
		c, ok := m.Cluster(args[0])
		if !ok {
			return fmt.Errorf("cluster: show cluster: no cluster %q", args[0])
		}
		list = []*Cluster{c}
	}
	fmt.Fprintf(w, "my_id: %s\n", m.MyID())
	if len(list) == 0 {
		fmt.Fprintln(w, "no clusters")
		return nil
	}
	now := time.Now()
	for _, c := range list {
		cfg := c.Config()
		fmt.Fprintf(w, "cluster %s: seq %d, port %d, period %dms, timeout %dms, maturity %dms", cfg.Name, cfg.Seq, cfg.Port, ms(cfg.Period), ms(cfg.Timeout), ms(cfg.Maturity))
		if o, ok := c.Oldest(); ok {
			fmt.Fprintf(w, ", oldest %s", o.CN)
		}
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  id\tcn\taddress\tstate\tup\tlast contact\tseq\tpayloads\t")
		for _, n := range c.Nodes() {
			state := n.State.String()
			if n.Self {
				state += " (me)"
			} else if n.State == Alive && !n.Mature {
				state += " (young)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t\n", n.ID, n.CN, n.Address+":"+fmt.Sprint(n.Port), state,
				ago(now, n.BootTime), ago(now, n.LastContact), n.Seq, payloadSummary(n.Payloads))
			if n.Error != "" {
				fmt.Fprintf(tw, "  \terror: %s\t\t\t\t\t\t\t\n", n.Error)
			}
		}
		tw.Flush()
	}
	return nil
}

// CompleteCluster completes the NAME argument of `show cluster`.
func (m *Manager) CompleteCluster(prefix string) []string {
	var out []string
	for _, c := range m.Clusters() {
		if strings.HasPrefix(c.Name(), prefix) {
			out = append(out, c.Name())
		}
	}
	return out
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return now.Sub(t).Truncate(time.Millisecond).String()
}

func payloadSummary(p map[PayloadKey][]byte) string {
	if len(p) == 0 {
		return "-"
	}
	var parts []string
	for k, v := range p {
		parts = append(parts, fmt.Sprintf("%d/%d:%dB", k.App, k.Key, len(v)))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// Topology is what GET /cluster.json serves, for every cluster or the one
// named in args (the console's `show cluster --json`).
func (m *Manager) Topology(args []string) (TopologyJSON, error) {
	doc := TopologyJSON{MyID: m.MyID(), Clusters: map[string]ClusterJSON{}}
	if len(args) > 1 {
		return doc, fmt.Errorf("cluster: show cluster: too many arguments (usage: show cluster [NAME])")
	}
	for _, c := range m.Clusters() {
		if len(args) == 1 && c.Name() != args[0] {
			continue
		}
		doc.Clusters[c.Name()] = c.JSON()
	}
	if len(args) == 1 && len(doc.Clusters) == 0 {
		return doc, fmt.Errorf("cluster: show cluster: no cluster %q", args[0])
	}
	return doc, nil
}
