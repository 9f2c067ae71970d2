package probe

import (
	"strings"
	"testing"
)

// seq turns "SSF?F" into results: S success, F failure, ? unknown.
func seq(s string) []Result {
	out := make([]Result, 0, len(s))
	for _, c := range s {
		switch c {
		case 'S':
			out = append(out, Success)
		case 'F':
			out = append(out, Failure)
		default:
			out = append(out, Unknown)
		}
	}
	return out
}

func letter(r Result) byte {
	switch r {
	case Success:
		return 'S'
	case Failure:
		return 'F'
	}
	return '?'
}

func TestTracker(t *testing.T) {
	tests := []struct {
		name             string
		success, failure int32
		initial          Result
		in               string
		// verdict after each result, and '*' marks a change.
		want string
	}{
		{"readiness defaults: first success flips", 1, 3, Failure, "S", "S*"},
		{"readiness defaults: three failures flip back", 1, 3, Failure, "SFFFF", "S*SSF*F"},
		{"failures below threshold keep success", 1, 3, Failure, "SFFSFF", "S*SSSSS"},
		{"success threshold 3", 3, 1, Failure, "SSSF", "FFS*F*"},
		{"success run broken by failure restarts", 3, 2, Failure, "SSFSSS", "FFFFFS*"},
		{"flapping never decides", 2, 2, Failure, "SFSFSFSF", "FFFFFFFF"},
		{"flapping from success stays success", 2, 2, Success, "FSFSFS", "SSSSSS"},
		{"liveness: initial success, failures flip", 1, 3, Success, "SFFF", "SSSF*"},
		{"unknown ignored and does not break a run", 1, 3, Success, "FF?F", "SSSF*"},
		{"unknown alone changes nothing", 1, 1, Unknown, "???", "???"},
		{"startup: unknown until success", 1, 30, Unknown, "FFS", "??S*"},
		{"startup: unknown until failing for good", 1, 2, Unknown, "FF", "?F*"},
		{"threshold 1 follows every result", 1, 1, Failure, "SFSF", "S*F*S*F*"},
		{"zero thresholds count as one", 0, 0, Failure, "SF", "S*F*"},
		{"same verdict again is not a change", 1, 1, Success, "SS", "SS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(tt.success, tt.failure, tt.initial)
			var got strings.Builder
			for _, r := range seq(tt.in) {
				changed, v := tr.observe(r)
				got.WriteByte(letter(v))
				if changed {
					got.WriteByte('*')
				}
				if v != tr.verdict {
					t.Fatalf("returned verdict %v, tracker holds %v", v, tr.verdict)
				}
			}
			if got.String() != tt.want {
				t.Errorf("after %q: got %q, want %q", tt.in, got.String(), tt.want)
			}
		})
	}
}

func TestTrackerReset(t *testing.T) {
	tr := newTracker(1, 2, Success)
	tr.observe(Failure)
	tr.reset()
	if changed, _ := tr.observe(Failure); changed {
		t.Fatal("a failure after reset should start a new run")
	}
	if changed, v := tr.observe(Failure); !changed || v != Failure {
		t.Fatalf("got %v %v, want a change to Failure", changed, v)
	}
}

func TestStrings(t *testing.T) {
	for v, want := range map[Kind]string{Startup: "Startup", Liveness: "Liveness", Readiness: "Readiness", Kind(9): "Kind(9)"} {
		if v.String() != want {
			t.Errorf("%d: %q", int(v), v.String())
		}
	}
	for v, want := range map[Result]string{Unknown: "Unknown", Success: "Success", Failure: "Failure", Warning: "Warning", Result(7): "Result(7)"} {
		if v.String() != want {
			t.Errorf("%d: %q", int(v), v.String())
		}
	}
}
