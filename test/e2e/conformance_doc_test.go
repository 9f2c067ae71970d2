package e2e

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestConformanceDoc holds docs/conformance.md to the code: every ported scenario has exactly
// one row, a row says "passes" exactly when the scenario is not in pendingScenarios, and the
// counts on the page and in the README are the ones the table gives. A page that drifts from
// the ports fails here, not in a reader's hands.
func TestConformanceDoc(t *testing.T) {
	doc, err := os.ReadFile("../../docs/conformance.md")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := parseConformanceDoc(string(doc))
	if err != nil {
		t.Fatal(err)
	}
	ported := map[string]bool{}
	for _, sc := range allScenarios(t) {
		ported[sc.group+"/"+sc.name] = true
	}
	for key := range separatePorts {
		ported[key] = true
	}
	seen := map[string]bool{}
	var pass, fail, notPorted, na int
	for _, r := range rows {
		switch r.kind {
		case "not applicable":
			na++
			continue
		case "not ported":
			notPorted++
			continue
		case "passes":
			pass++
		case "fails":
			fail++
		default:
			t.Errorf("line %d: %q is no state (passes, fails, not ported, not applicable)", r.line, r.kind)
			continue
		}
		key := r.group + "/" + r.port
		if !ported[key] {
			t.Errorf("line %d: %s is no ported scenario", r.line, key)
			continue
		}
		if seen[key] {
			t.Errorf("line %d: %s has a second row", r.line, key)
		}
		seen[key] = true
		_, pending := pendingScenarios[key]
		if pending != (r.kind == "fails") {
			t.Errorf("line %d: %s says %q, but pendingScenarios has it: %v", r.line, key, r.kind, pending)
		}
	}
	for key := range ported {
		if !seen[key] {
			t.Errorf("ported scenario %s has no row in docs/conformance.md", key)
		}
	}
	applicable := pass + fail + notPorted
	want := []struct{ file, text string }{
		{"docs/conformance.md", fmt.Sprintf("**%d of %d applicable scenarios are ported and pass.** %d more are ported and fail", pass, applicable, fail)},
		{"docs/conformance.md", fmt.Sprintf("%d do not apply", na)},
		{"README.md", fmt.Sprintf("%d of the %d applicable", pass, applicable)},
	}
	for _, w := range want {
		in := string(doc)
		if w.file == "README.md" {
			in = string(readme)
		}
		if !strings.Contains(strings.Join(strings.Fields(in), " "), w.text) {
			t.Errorf("%s does not say %q", w.file, w.text)
		}
	}
}

// docRow is one scenario row of docs/conformance.md: the port's group (from the section
// heading) and name (the upstream name unless the row says "as “...”"), and its state.
type docRow struct {
	line        int
	group, port string
	kind        string
}

var (
	docSection = regexp.MustCompile("^### .*?(?: \\(`([a-z_]+)`\\))?$")
	docAs      = regexp.MustCompile(`^(passes|fails) as “(.*?)”`)
)

func parseConformanceDoc(doc string) ([]docRow, error) {
	var rows []docRow
	group := ""
	for i, line := range strings.Split(doc, "\n") {
		if m := docSection.FindStringSubmatch(line); m != nil {
			group = m[1]
			continue
		}
		if !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| Upstream scenario |") {
			continue
		}
		cells := splitDocRow(line)
		if len(cells) != 4 {
			return nil, fmt.Errorf("line %d: %d cells, want 4", i+1, len(cells))
		}
		r := docRow{line: i + 1, group: group, port: cells[0]}
		here := cells[2]
		if m := docAs.FindStringSubmatch(here); m != nil {
			r.kind, r.port = m[1], m[2]
		} else if k, _, ok := strings.Cut(here, ":"); ok {
			r.kind = k
		} else {
			r.kind = here
		}
		if (r.kind == "passes" || r.kind == "fails") && group == "" {
			return nil, fmt.Errorf("line %d: a ported scenario in a section without a group", i+1)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// splitDocRow splits a Markdown table row on its unescaped bars and unescapes the cells.
func splitDocRow(line string) []string {
	line = strings.TrimSuffix(strings.TrimPrefix(line, "| "), " |")
	const bar = "\x00"
	line = strings.ReplaceAll(line, `\|`, bar)
	cells := strings.Split(line, " | ")
	unesc := strings.NewReplacer(bar, "|", `\*`, "*", `\<`, "<")
	for i, c := range cells {
		cells[i] = unesc.Replace(strings.TrimSpace(c))
	}
	return cells
}
