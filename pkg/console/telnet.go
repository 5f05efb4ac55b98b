package console

import (
	"bytes"
	"io"
	"sync"
)

// Telnet bytes (RFC 854) and the options the console negotiates.
const (
	tnIAC  = 255
	tnDONT = 254
	tnDO   = 253
	tnWONT = 252
	tnWILL = 251
	tnSB   = 250
	tnIP   = 244
	tnSE   = 240
	tnNOP  = 241

	optEcho = 1
	optSGA  = 3
	optNAWS = 31
)

// negotiation is what the server sends to a telnet client: it echoes and
// suppresses go-ahead itself (so the client sends each key at once and
// leaves echo to the server's line editor), and asks for the window size.
var negotiation = []byte{tnIAC, tnWILL, optEcho, tnIAC, tnWILL, optSGA, tnIAC, tnDO, optNAWS}

// maxSB bounds a subnegotiation; longer ones are dropped.
const maxSB = 64

// telnetDecoder turns the bytes a client sends into data, answering and
// acting on commands. It is a pure state machine (fuzzed): feed may be
// called with any split of the input.
type telnetDecoder struct {
	state   int
	cmd     byte
	sb      []byte
	sbOver  bool
	lastCR  bool
	willOpt map[byte]bool // options we have agreed to (WILL) or refused
	doOpt   map[byte]bool // options we asked the client for (DO)
	// reply receives bytes to send back; naws the window size.
	reply func([]byte)
	naws  func(w, h int)
}

const (
	tsData = iota
	tsIAC
	tsOpt
	tsSB
	tsSBIAC
)

func newTelnetDecoder(reply func([]byte), naws func(w, h int)) *telnetDecoder {
	return &telnetDecoder{
		// What negotiation already offered: answers to those are acks.
		willOpt: map[byte]bool{optEcho: true, optSGA: true},
		doOpt:   map[byte]bool{optNAWS: true},
		reply:   reply, naws: naws,
	}
}

// feed decodes in, appending data to out.
func (d *telnetDecoder) feed(in, out []byte) []byte {
	for _, c := range in {
		switch d.state {
		case tsData:
			switch {
			case c == tnIAC:
				d.state = tsIAC
			case d.lastCR && c == 0:
				// CR NUL is a bare carriage return.
				d.lastCR = false
			default:
				d.lastCR = c == '\r'
				out = append(out, c)
			}
		case tsIAC:
			d.lastCR = false
			switch c {
			case tnIAC:
				out = append(out, tnIAC)
				d.state = tsData
			case tnWILL, tnWONT, tnDO, tnDONT:
				d.cmd, d.state = c, tsOpt
			case tnSB:
				d.sb, d.sbOver, d.state = d.sb[:0], false, tsSB
			case tnIP:
				out = append(out, 3) // interrupt: ^C
				d.state = tsData
			default: // NOP, GA, AYT, BRK, ...: nothing to do
				d.state = tsData
			}
		case tsOpt:
			d.option(d.cmd, c)
			d.state = tsData
		case tsSB:
			if c == tnIAC {
				d.state = tsSBIAC
			} else {
				d.sbByte(c)
			}
		case tsSBIAC:
			switch c {
			case tnSE:
				d.subnegotiation()
				d.state = tsData
			case tnIAC:
				d.sbByte(tnIAC)
				d.state = tsSB
			default:
				// Malformed: IAC x inside SB. Drop the SB.
				d.sbOver = true
				d.state = tsSB
			}
		}
	}
	return out
}

func (d *telnetDecoder) sbByte(c byte) {
	if len(d.sb) >= maxSB {
		d.sbOver = true
		return
	}
	d.sb = append(d.sb, c)
}

func (d *telnetDecoder) subnegotiation() {
	if d.sbOver || len(d.sb) != 5 || d.sb[0] != optNAWS {
		return
	}
	w := int(d.sb[1])<<8 | int(d.sb[2])
	h := int(d.sb[3])<<8 | int(d.sb[4])
	if d.naws != nil && w > 0 && h > 0 {
		d.naws(w, h)
	}
}

// option answers WILL/WONT/DO/DONT without loops (RFC 1143's rule: answer
// only what changes our state).
func (d *telnetDecoder) option(cmd, opt byte) {
	switch cmd {
	case tnDO:
		if opt == optEcho || opt == optSGA {
			return // agreed already (we offered)
		}
		if on, seen := d.willOpt[opt]; seen && !on {
			return
		}
		d.willOpt[opt] = false
		d.send(tnWONT, opt)
	case tnDONT:
		if on := d.willOpt[opt]; on {
			d.willOpt[opt] = false
			d.send(tnWONT, opt)
		}
	case tnWILL:
		if opt == optNAWS {
			return // we asked
		}
		if on, seen := d.doOpt[opt]; seen && !on {
			return
		}
		d.doOpt[opt] = false
		d.send(tnDONT, opt)
	case tnWONT:
		if on := d.doOpt[opt]; on {
			d.doOpt[opt] = false
			d.send(tnDONT, opt)
		}
	}
}

func (d *telnetDecoder) send(cmd, opt byte) {
	if d.reply != nil {
		d.reply([]byte{tnIAC, cmd, opt})
	}
}

// escapeIAC doubles every IAC byte of p.
func escapeIAC(p []byte) []byte {
	if bytes.IndexByte(p, tnIAC) < 0 {
		return p
	}
	out := make([]byte, 0, len(p)+8)
	for _, c := range p {
		if c == tnIAC {
			out = append(out, tnIAC)
		}
		out = append(out, c)
	}
	return out
}

// lineConn is the byte stream of a session: reads decode telnet (when on)
// and drop the rest of any line longer than max; writes escape IAC (when
// telnet is on). Writes are serialized.
type lineConn struct {
	rw     io.ReadWriter
	telnet *telnetDecoder
	max    int
	run    int  // bytes since the last line end
	over   bool // dropping the rest of a long line
	// overflowed is set when a line was cut; the reader of lines reports
	// it.
	overflowed bool

	raw  []byte
	pend []byte

	wmu sync.Mutex
}

func (c *lineConn) Read(p []byte) (int, error) {
	for len(c.pend) == 0 {
		if cap(c.raw) == 0 {
			c.raw = make([]byte, 4096)
		}
		n, err := c.rw.Read(c.raw[:cap(c.raw)])
		data := c.raw[:n]
		if c.telnet != nil {
			data = c.telnet.feed(data, nil)
		}
		c.pend = c.limit(data)
		if err != nil && len(c.pend) == 0 {
			return 0, err
		}
	}
	n := copy(p, c.pend)
	c.pend = c.pend[n:]
	return n, nil
}

// limit drops the bytes of a line beyond max, keeping the line end.
func (c *lineConn) limit(data []byte) []byte {
	if c.max <= 0 {
		return data
	}
	out := data[:0:0]
	for _, b := range data {
		if b == '\r' || b == '\n' {
			c.run, c.over = 0, false
			out = append(out, b)
			continue
		}
		c.run++
		if c.run > c.max {
			if !c.over {
				c.over, c.overflowed = true, true
			}
			continue
		}
		out = append(out, b)
	}
	return out
}

func (c *lineConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	out := p
	if c.telnet != nil {
		out = escapeIAC(p)
	}
	if _, err := c.rw.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeRaw writes telnet commands unescaped.
func (c *lineConn) writeRaw(p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.rw.Write(p)
	return err
}
