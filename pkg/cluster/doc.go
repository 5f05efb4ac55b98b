// Package cluster is libmtev's cluster layer (mtev_cluster) on
// github.com/hashicorp/memberlist: a configured set of nodes that gossip
// their boot time, configuration seq and application payloads, detect
// each other's failures, pick the oldest visible node as a leader, and
// share a consistent-hash ring (package cht) for key ownership.
//
// # Shape
//
// A Manager runs the clusters of the <clusters> section (ReadConfig,
// Section), each a Cluster with its own memberlist instance on its own
// port. The Cluster is a thin adapter over memberlist's Delegate,
// EventDelegate and PingDelegate, in the manner of serf's delegate.go:
//
//   - node metadata (at most memberlist.MetaMaxSize, 512 bytes) carries
//     boot time, seq and payloads; SetPayload and a new seq re-publish it
//     with memberlist's UpdateNode, which gossips it;
//   - memberlist's join, update and leave events become libmtev's change
//     flags (DIED, REBOOTED, CHANGED_SEQ, CHANGED_PAYLOAD, plus JOINED for
//     a first contact) delivered to the NodeChanged hook point and to
//     Options.OnChange;
//   - nodes not in the configured list are ignored (never reported nor
//     counted), and the cluster's name is memberlist's label, so another
//     cluster on a reused port is refused; with a key, gossip is encrypted
//     and a node with another key is refused, the refused node's view
//     saying why ("no installed keys could decrypt the message").
//
// # Timers
//
// period is memberlist's probe interval (probe timeout: half of it, at
// most 500 ms; gossip interval: period, at most 200 ms). timeout sets the
// suspicion multiplier so that a crashed node is declared dead about
// timeout after its last answer: SuspicionMult = round((timeout −
// period) / (period × max(1, log10(nodes)))), with no suspicion
// stretching (SuspicionMaxTimeoutMult 1). Push-pull anti-entropy runs
// every max(2 × timeout, 10 s). maturity does not touch memberlist: a
// node up for less than maturity (by its gossiped boot time) is shown but
// not counted (Ring, Node.Mature).
//
// # Topology updates
//
// Manager.Update (POST /cluster) applies a cluster configuration with a
// higher seq: in place when port, key and timers stay, by restarting the
// gossip otherwise, and writes it back through the living config
// (pkg/config). Each process binds the port of its own <node>, so one
// body serves every member. A member that gossips a higher seq is asked
// for its configuration, which the others adopt the same way: posting to
// one member updates them all.
//
// # Threads
//
// memberlist calls the delegates on its own goroutines with its locks
// held: they only copy and enqueue. Each Cluster has one event goroutine
// that owns node state changes and runs OnChange and the hook point, one
// change at a time; these must not block for long and must not call
// Manager.Update or Close (they would wait for themselves). A rejoin
// goroutine contacts configured nodes that are not members every
// timeout (1 s to 30 s). A Manager has one goroutine applying adopted
// configurations. All methods are safe for concurrent use. Lock order:
// Manager.mu, then Cluster.mu; no Cluster lock is held while memberlist
// is called, and memberlist's callbacks never wait for a lock of ours.
package cluster
