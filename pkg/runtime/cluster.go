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
func StartClusters(rt *Runtime, onChange func(cluster.Change)) (*cluster.Manager, error) {
	m, err := cluster.NewManager(rt.Config, cluster.Options{Logs: rt.Logs, OnChange: onChange})
	if err != nil {
		return nil, fmt.Errorf("runtime: clusters: %w", err)
	}
	return m, nil
}
