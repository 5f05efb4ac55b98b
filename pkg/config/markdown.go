package config

import (
	"fmt"
	"io"
	"strings"
)

// Markdown writes the reference documentation of sections: a heading and a
// table of attributes and of child elements per section and per declared
// element that has attributes or children of its own.
func Markdown(w io.Writer, sections ...Section) error {
	var b strings.Builder
	for _, s := range sections {
		title := s.Path
		if !strings.HasPrefix(title, "/") {
			title = "/<app>/" + title
		}
		fmt.Fprintf(&b, "## `%s`\n\n", title)
		if s.Doc != "" {
			b.WriteString(strings.TrimSpace(s.Doc) + "\n\n")
		}
		var flags []string
		if s.Required {
			flags = append(flags, "required")
		}
		if s.Repeated {
			flags = append(flags, "may repeat")
		}
		if s.Open {
			flags = append(flags, "free-form content allowed")
		}
		if len(flags) > 0 {
			fmt.Fprintf(&b, "Section: %s.\n\n", strings.Join(flags, ", "))
		}
		writeElement(&b, title, s.Element, true)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeElement(b *strings.Builder, title string, e Element, top bool) {
	if !top {
		fmt.Fprintf(b, "### `%s`\n\n", title)
		if e.Doc != "" {
			b.WriteString(strings.TrimSpace(e.Doc) + "\n\n")
		}
	}
	if e.Type != TypeNone {
		fmt.Fprintf(b, "Text value: %s%s.\n\n", typeText(e.Type, e.Enum, e.Pattern), defaultNote(e.Default))
	}
	if len(e.Attrs) > 0 {
		b.WriteString("| attribute | type | default | required | description |\n|---|---|---|---|---|\n")
		for _, a := range e.Attrs {
			fmt.Fprintf(b, "| `%s` | %s | %s | %s | %s |\n", a.Name, typeCell(a.Type, a.Enum, a.Pattern),
				code(a.Default), yes(a.Required), cell(a.Doc))
		}
		b.WriteString("\n")
	}
	if len(e.Children) > 0 {
		b.WriteString("| element | type | default | required | repeated | description |\n|---|---|---|---|---|---|\n")
		for _, c := range e.Children {
			fmt.Fprintf(b, "| `<%s>` | %s | %s | %s | %s | %s |\n", c.Name, typeCell(c.Type, c.Enum, c.Pattern),
				code(c.Default), yes(c.Required), yes(c.Repeated), cell(c.Doc))
		}
		b.WriteString("\n")
	}
	for _, c := range e.Children {
		if len(c.Attrs) > 0 || len(c.Children) > 0 {
			writeElement(b, title+"/"+c.Name, c, false)
		}
	}
}

func typeCell(t Type, enum []string, pattern string) string {
	return cell(typeText(t, enum, pattern))
}

func typeText(t Type, enum []string, pattern string) string {
	s := t.String()
	if t == TypeNone {
		s = "(element)"
	}
	if t == TypeEnum {
		s = "one of " + strings.Join(enum, ", ")
	}
	if pattern != "" {
		s += " matching `" + pattern + "`"
	}
	return s
}

func defaultNote(d string) string {
	if d == "" {
		return ""
	}
	return ", default `" + d + "`"
}

func code(s string) string {
	if s == "" {
		return ""
	}
	return "`" + strings.ReplaceAll(s, "|", `\|`) + "`"
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return ""
}

// cell makes text safe for one table cell.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", `\|`)
}
