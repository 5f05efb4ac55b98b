package config

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"

	"github.com/beevik/etree"
)

// maxDepth bounds element nesting so that hostile input cannot exhaust the
// stack of the recursive walkers.
const maxDepth = 256

// attrLine records the line of an attribute that does not sit on the same
// line as its element's start (multi-line start tags).
type attrLine struct {
	name string
	line int
}

// meta is what the parser knows about an element beyond etree's model.
type meta struct {
	pos   Pos
	attrs []attrLine // only attributes whose line differs from pos.Line
}

// parsed is one file as read from disk.
type parsed struct {
	path string
	// doc holds the prolog (declaration, comments) and, unless snippet,
	// the root element.
	doc *etree.Document
	// top is the root element, or for a snippet a detached container
	// holding the top-level elements.
	top *etree.Element
}

// parseXML parses data (read from path) into etree elements, recording the
// line of every element and attribute in metas. With snippet, the input may
// hold any number of top-level elements; they are returned as the children
// of a detached container element.
func parseXML(path string, data []byte, snippet bool, metas map[*etree.Element]*meta) (*parsed, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	dec.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }

	doc := etree.NewDocument()
	var container *etree.Element
	base := &doc.Element
	if snippet {
		container = etree.NewElement("")
		base = container
	}
	stack := []*etree.Element{base}

	// line tracking: count newlines up to each token's start offset.
	line, lineOff := 1, 0
	lineAt := func(off int) int {
		if off > len(data) {
			off = len(data)
		}
		if off > lineOff {
			line += bytes.Count(data[lineOff:off], []byte{'\n'})
			lineOff = off
		}
		return line
	}
	var roots int

	for {
		start := int(dec.InputOffset())
		tok, err := dec.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, syntaxError(path, err, lineAt(int(dec.InputOffset())))
		}
		top := stack[len(stack)-1]
		switch t := tok.(type) {
		case xml.StartElement:
			l := lineAt(start)
			if len(stack) > maxDepth {
				return nil, errorf(Pos{path, l}, ErrSyntax, "elements nested deeper than %d", maxDepth)
			}
			if len(stack) == 1 && !snippet {
				roots++
				if roots > 1 {
					return nil, errorf(Pos{path, l}, ErrSyntax, "second root element <%s>", t.Name.Local)
				}
			}
			e := etree.NewElement(qname(t.Name))
			m := &meta{pos: Pos{path, l}}
			end := int(dec.InputOffset())
			var lines []int
			if len(t.Attr) > 0 {
				lines = attrLines(data[start:min(end, len(data))], l, len(t.Attr))
			}
			for i, a := range t.Attr {
				key := qname(a.Name)
				if e.SelectAttr(key) != nil {
					return nil, errorf(Pos{path, l}, ErrSyntax, "duplicate attribute %q on <%s>", key, e.FullTag())
				}
				e.CreateAttr(key, a.Value)
				if i < len(lines) && lines[i] != l {
					m.attrs = append(m.attrs, attrLine{key, lines[i]})
				}
			}
			metas[e] = m
			top.AddChild(e)
			stack = append(stack, e)
		case xml.EndElement:
			if len(stack) == 1 || top.FullTag() != qname(t.Name) {
				return nil, errorf(Pos{path, lineAt(start)}, ErrSyntax, "unexpected end element </%s>", qname(t.Name))
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 1 && !snippet {
				if len(bytes.TrimSpace(t)) != 0 {
					return nil, errorf(Pos{path, lineAt(start)}, ErrSyntax, "text outside the root element")
				}
				continue
			}
			top.CreateText(string(t))
		case xml.Comment:
			top.CreateComment(string(t))
		case xml.ProcInst:
			if len(stack) == 1 && !snippet {
				doc.CreateProcInst(t.Target, string(t.Inst))
			}
		case xml.Directive:
			if len(stack) == 1 && !snippet {
				doc.CreateDirective(string(t))
			}
		}
	}
	if len(stack) != 1 {
		return nil, errorf(Pos{path, lineAt(len(data))}, ErrSyntax, "unexpected end of file inside <%s>", stack[len(stack)-1].FullTag())
	}
	p := &parsed{path: path, doc: doc}
	if snippet {
		p.top = container
		return p, nil
	}
	if doc.Root() == nil {
		return nil, errorf(Pos{path, lineAt(len(data))}, ErrSyntax, "no root element")
	}
	p.top = doc.Root()
	return p, nil
}

func qname(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

func syntaxError(path string, err error, line int) error {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return errorf(Pos{path, se.Line}, ErrSyntax, "%s", se.Msg)
	}
	return errorf(Pos{path, line}, ErrSyntax, "%v", err)
}

// attrLines returns the line of each of the n attributes of a start tag,
// given the tag's raw bytes and the line it starts on. It scans the tag the
// way the XML grammar lays it out: name, then name="value" pairs.
func attrLines(tag []byte, line, n int) []int {
	out := make([]int, 0, n)
	i := 1 // skip '<'
	for i < len(tag) && !isSpace(tag[i]) && tag[i] != '>' && tag[i] != '/' {
		i++
	}
	for len(out) < n && i < len(tag) {
		for i < len(tag) && isSpace(tag[i]) {
			if tag[i] == '\n' {
				line++
			}
			i++
		}
		if i >= len(tag) || tag[i] == '>' || tag[i] == '/' {
			break
		}
		out = append(out, line)
		for i < len(tag) && tag[i] != '=' {
			if tag[i] == '\n' {
				line++
			}
			i++
		}
		for i < len(tag) && tag[i] != '"' && tag[i] != '\'' {
			if tag[i] == '\n' {
				line++
			}
			i++
		}
		if i >= len(tag) {
			break
		}
		q := tag[i]
		i++
		for i < len(tag) && tag[i] != q {
			if tag[i] == '\n' {
				line++
			}
			i++
		}
		i++
	}
	return out
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// isWhitespace reports whether s holds only XML whitespace.
func isWhitespace(s string) bool { return strings.TrimSpace(s) == "" }
