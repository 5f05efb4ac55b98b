// Package cht is a consistent-hash ring with virtual nodes, after
// libmtev's mtev_cht: every node sits on a 32-bit ring at Weight points
// (default 32), a key belongs to the node of the first point at or after
// the key's position, and replicas are the next distinct nodes clockwise.
//
// Positions are libmtev's: a node's i-th point is the low 32 bits of
// XXH64(name, seed i) and a key's position the low 32 bits of
// XXH64(key, seed 20021010). Unlike libmtev, which gives a key to the
// point before it (the predecessor), the owner here is the successor,
// the usual convention; both balance the same and move the same keys when
// a node comes or goes. Points that collide are ordered by node name, so
// the ring is a pure function of its node list.
//
// # Properties (tested as libmtev's cht_spec.lua does)
//
//   - For 1 to 20 nodes every node owns within 1/n of its fair share of
//     the ring, and the shares sum to 1.
//   - Adding a node moves keys only to the new node; removing one moves
//     only the removed node's keys.
//   - LookupN returns distinct nodes.
//
// # Threads
//
// A Ring is immutable once built: any number of goroutines may look up
// keys at once. Rebuild a ring (New) when the members change.
package cht
