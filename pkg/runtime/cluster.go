package runtime

import (
	"fmt"

	"github.com/mtev-supervise/mtev-supervise/pkg/cluster"
)

// StartClusters starts the clusters of the <clusters> section of
// rt.Config (none without a configuration file or section), logging to
// rt.Logs. Changes reach the cluster.NodeChanged hook point, and onChange
// when it is not nil. The caller closes the manager (leaving every
// cluster) when the service stops, and mounts its endpoints with
// Manager.Mount and its console command with Manager.ShowCluster.
// A service whose configuration has <clusters> gets all of that from the
// runtime (Runtime.Clusters); StartClusters is for a manager of its own.
func StartClusters(rt *Runtime, onChange func(cluster.Change)) (*cluster.Manager, error) {
	m, err := cluster.NewManager(rt.Config, cluster.Options{Logs: rt.Logs, OnChange: onChange})
	if err != nil {
		return nil, fmt.Errorf("runtime: clusters: %w", err)
	}
	return m, nil
}

// startClusters joins the clusters of <clusters> when the configuration
// has the section: rt.Clusters, GET/POST /cluster on the router, `show
// cluster` on the console, applied again by Reload. The returned func
// leaves them.
func (rt *Runtime) startClusters() (func(), error) {
	if rt.Config == nil {
		return func() {}, nil
	}
	if _, ok, _ := rt.Config.Find("//clusters"); !ok {
		return func() {}, nil
	}
	m, err := StartClusters(rt, nil)
	if err != nil {
		return nil, err
	}
	if rt.Router != nil {
		if err := m.Mount(rt.Router); err != nil {
			m.Close()
			return nil, fmt.Errorf("runtime: clusters: %w", err)
		}
	}
	rt.Clusters = m
	return func() { m.Close() }, nil
}
