package main

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Text that containers write (termination messages, probe output in events, reasons) and that
// manifests carry reaches the admin's terminal through the human-readable outputs (table,
// describe, events, error messages). A terminal acts on control characters: an escape
// sequence can retitle the window, clear or rewrite the screen, move the cursor over earlier
// lines, or on some terminals answer back into the input. So those outputs print control
// characters as Go-style escapes; -o json and -o yaml print the data exactly as it is.

// escape returns s with every control character written as an escape, for a field printed on
// one line (a table cell, a describe value): C0 controls including newline and tab (a tab
// would also shift the table's columns), DEL, the C1 controls U+0080–U+009F (which some
// terminals act on like their ESC forms), and bytes that are not UTF-8 (a lone 0x9b is a
// CSI on an 8-bit terminal). ESC becomes \x1b, so an escape sequence is shown, not run.
func escape(s string) string { return escapeText(s, false) }

// escapeLines is escape for a field printed over several lines: newlines and tabs are kept.
func escapeLines(s string) string { return escapeText(s, true) }

func escapeText(s string, multiline bool) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < 0x20 || b >= 0x7f {
			clean = false
			break
		}
	}
	if clean { // the common case: printable ASCII
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case multiline && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r >= 0x80 && r <= 0x9f:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
