package watchdog

import (
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dgramReader reads notify datagrams in batches with recvmmsg(2), with
// their SCM_CREDENTIALS, into buffers it owns: under a flood, one system
// call and no allocation per batch.
type dgramReader struct {
	raw  syscall.RawConn
	bufs [dgramBatch][4096]byte
	oobs [dgramBatch][dgramOOB]byte
	iovs [dgramBatch]unix.Iovec
	hdrs [dgramBatch]unix.Mmsghdr
}

const (
	dgramBatch = 32
	// dgramOOB is room for one SCM_CREDENTIALS (unix.CmsgSpace(SizeofUcred))
	// and no more: the kernel puts the credentials first and drops file
	// descriptors that do not fit (SCM_RIGHTS), so none is ever installed
	// in this process, and a sender waiting for its fd to be closed
	// (sd_notify_barrier, systemd-notify --ready) goes on at once.
	dgramOOB = 32
)

func init() {
	if unix.CmsgSpace(unix.SizeofUcred) != dgramOOB {
		panic("watchdog: dgramOOB must be unix.CmsgSpace(unix.SizeofUcred)")
	}
}

func newDgramReader(raw syscall.RawConn) *dgramReader {
	r := &dgramReader{raw: raw}
	for i := range r.hdrs {
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(len(r.bufs[i]))
		h := &r.hdrs[i].Hdr
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
	}
	return r
}

// read waits for at least one datagram and returns how many it read; the
// i-th is msg(i). An error is the socket's end (net.ErrClosed) or a read
// error.
func (r *dgramReader) read() (int, error) {
	var n int
	var serr error
	err := r.raw.Read(func(fd uintptr) bool {
		for i := range r.hdrs {
			h := &r.hdrs[i].Hdr
			h.Control = &r.oobs[i][0]
			h.SetControllen(dgramOOB)
			h.Flags = 0
			r.hdrs[i].Len = 0
		}
		r1, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), dgramBatch, unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			n = int(r1)
			return true
		case unix.EAGAIN:
			return false // wait for the poller
		case unix.EINTR:
			return false
		}
		serr = fmt.Errorf("watchdog: notify socket: recvmmsg: %w", e)
		return true
	})
	if err != nil {
		return 0, err
	}
	return n, serr
}

// msg returns the payload and control data of the i-th datagram of the
// last read.
func (r *dgramReader) msg(i int) (payload, oob []byte) {
	h := &r.hdrs[i]
	return r.bufs[i][:min(int(h.Len), len(r.bufs[i]))], r.oobs[i][:min(int(h.Hdr.Controllen), dgramOOB)]
}
