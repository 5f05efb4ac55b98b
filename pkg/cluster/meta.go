package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/memberlist"
)

// PayloadKey names one application payload: libmtev's (app_id, key).
type PayloadKey struct {
	App, Key uint8
}

// Meta layout, carried in memberlist's node metadata (at most
// memberlist.MetaMaxSize = 512 bytes) and gossiped by memberlist whenever
// it changes:
//
//	u8 version (1) | u64 BE boot time (unix ns) | u64 BE seq | u8 n |
//	n × (u8 app, u8 key, u16 BE len) | the n payloads, in that order
const (
	metaVersion = 1
	metaHeader  = 1 + 8 + 8 + 1
	payloadHdr  = 4
)

// MaxPayload is the room for payloads in a node's heartbeat: each payload
// costs 4 bytes plus its data, and all of a node's payloads together must
// fit here (494 bytes).
const MaxPayload = memberlist.MetaMaxSize - metaHeader

// ErrPayloadTooLarge is returned by SetPayload when the payloads would no
// longer fit in MaxPayload.
var ErrPayloadTooLarge = errors.New("payloads exceed the heartbeat's room")

// errMeta marks metadata this package cannot read (another program on the
// port, or a newer version).
var errMeta = errors.New("unreadable node metadata")

type meta struct {
	boot     time.Time
	seq      int64
	payloads map[PayloadKey][]byte
}

func payloadSize(p map[PayloadKey][]byte) int {
	n := 0
	for _, v := range p {
		n += payloadHdr + len(v)
	}
	return n
}

func (m meta) encode() []byte {
	keys := make([]PayloadKey, 0, len(m.payloads))
	for k := range m.payloads {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b PayloadKey) int {
		return int(a.App)<<8 | int(a.Key) - (int(b.App)<<8 | int(b.Key))
	})
	b := make([]byte, 0, metaHeader+payloadSize(m.payloads))
	b = append(b, metaVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(m.boot.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, uint64(m.seq))
	b = append(b, uint8(len(keys)))
	for _, k := range keys {
		b = append(b, k.App, k.Key)
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.payloads[k])))
	}
	for _, k := range keys {
		b = append(b, m.payloads[k]...)
	}
	return b
}

func decodeMeta(b []byte) (meta, error) {
	if len(b) < metaHeader {
		return meta{}, fmt.Errorf("%w: %d bytes", errMeta, len(b))
	}
	if b[0] != metaVersion {
		return meta{}, fmt.Errorf("%w: version %d", errMeta, b[0])
	}
	m := meta{
		boot: time.Unix(0, int64(binary.BigEndian.Uint64(b[1:]))),
		seq:  int64(binary.BigEndian.Uint64(b[9:])),
	}
	n := int(b[17])
	rest := b[metaHeader:]
	if len(rest) < n*payloadHdr {
		return meta{}, fmt.Errorf("%w: %d payload headers in %d bytes", errMeta, n, len(rest))
	}
	data := rest[n*payloadHdr:]
	m.payloads = make(map[PayloadKey][]byte, n)
	for i := range n {
		h := rest[i*payloadHdr:]
		k := PayloadKey{App: h[0], Key: h[1]}
		l := int(binary.BigEndian.Uint16(h[2:]))
		if l > len(data) {
			return meta{}, fmt.Errorf("%w: payload %d/%d runs past the end", errMeta, k.App, k.Key)
		}
		if _, dup := m.payloads[k]; dup {
			return meta{}, fmt.Errorf("%w: payload %d/%d twice", errMeta, k.App, k.Key)
		}
		m.payloads[k] = slices.Clone(data[:l])
		data = data[l:]
	}
	if len(data) != 0 {
		return meta{}, fmt.Errorf("%w: %d trailing bytes", errMeta, len(data))
	}
	return m, nil
}

func samePayloads(a, b map[PayloadKey][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || string(v) != string(w) {
			return false
		}
	}
	return true
}
