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
	// dgramOOB is room for one SCM_CREDENTIALS (unix.CmsgSpace(SizeofUcred),
	// which the kernel puts first) and FDsPerMessage descriptors
	// (SCM_RIGHTS, for FDSTORE=1); the kernel discards descriptors that do
	// not fit and flags the message MSG_CTRUNC. Descriptors arrive
	// close-on-exec (MSG_CMSG_CLOEXEC); every one that is not stored is
	// closed by the reader or the loop as soon as its message is handled,
	// so that a sender waiting for its fd to be closed (sd_notify_barrier,
	// systemd-notify --ready) goes on at once.
	dgramOOB = 32 + 16 + 4*FDsPerMessage
)

func init() {
	if unix.CmsgSpace(unix.SizeofUcred)+unix.CmsgSpace(4*FDsPerMessage) != dgramOOB {
		panic("watchdog: dgramOOB must hold SCM_CREDENTIALS and FDsPerMessage descriptors")
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
		r1, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), dgramBatch, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC, 0, 0)
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

// truncated reports whether the i-th datagram of the last read carried
// more control data (descriptors) than fit.
func (r *dgramReader) truncated(i int) bool { return r.hdrs[i].Hdr.Flags&unix.MSG_CTRUNC != 0 }

// rightsFDs returns the descriptors of the SCM_RIGHTS control messages of
// oob (installed in this process by the read), or nil.
func rightsFDs(oob []byte) []int {
	if len(oob) <= unix.CmsgSpace(unix.SizeofUcred) {
		return nil // credentials only: the common case allocates nothing
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for i := range msgs {
		if msgs[i].Header.Level == unix.SOL_SOCKET && msgs[i].Header.Type == unix.SCM_RIGHTS {
			if r, err := unix.ParseUnixRights(&msgs[i]); err == nil {
				fds = append(fds, r...)
			}
		}
	}
	return fds
}
