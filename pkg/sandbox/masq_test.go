package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMasqueradeRule(t *testing.T) {
	for _, tt := range []struct {
		bridge, subnet string
		program        string
		rule           string
	}{
		{"minipod0", "10.88.0.0/16", "iptables",
			`POSTROUTING -s 10.88.0.0/16 ! -d 10.88.0.0/16 -m comment --comment minipod: masquerade for minipod0 -j MASQUERADE`},
		{"mpe2e3", "10.213.3.0/24", "iptables",
			`POSTROUTING -s 10.213.3.0/24 ! -d 10.213.3.0/24 -m comment --comment minipod: masquerade for mpe2e3 -j MASQUERADE`},
		// --pod-cidr may be IPv6: then the rule is ip6tables'.
		{"br6", "fd00:88::/64", "ip6tables",
			`POSTROUTING -s fd00:88::/64 ! -d fd00:88::/64 -m comment --comment minipod: masquerade for br6 -j MASQUERADE`},
	} {
		program, rule, err := MasqueradeRule(tt.bridge, tt.subnet)
		if err != nil {
			t.Errorf("MasqueradeRule(%q, %q): %v", tt.bridge, tt.subnet, err)
			continue
		}
		if program != tt.program || strings.Join(rule, " ") != tt.rule {
			t.Errorf("MasqueradeRule(%q, %q) = %s %q, want %s %q", tt.bridge, tt.subnet, program, strings.Join(rule, " "), tt.program, tt.rule)
		}
		// The comment is one argument (it has spaces), as iptables needs it.
		if i := indexOf(rule, "--comment"); i < 0 || rule[i+1] != MasqueradeComment(tt.bridge) {
			t.Errorf("rule %q: comment is not one argument %q", rule, MasqueradeComment(tt.bridge))
		}
	}
	for _, subnet := range []string{"", "10.88.0.0", "10.88.1.0/16", "fd00:88::1/64", "nonsense"} {
		if p, r, err := MasqueradeRule("b", subnet); err == nil {
			t.Errorf("MasqueradeRule(subnet %q) = %s %q, want an error", subnet, p, r)
		}
	}
	got := masqArgs("-C", []string{"POSTROUTING", "-j", "MASQUERADE"})
	if want := []string{"-w", "5", "-t", "nat", "-C", "POSTROUTING", "-j", "MASQUERADE"}; !reflect.DeepEqual(got, want) {
		t.Errorf("masqArgs = %q, want %q", got, want)
	}
}

func indexOf(s []string, v string) int {
	for i := range s {
		if s[i] == v {
			return i
		}
	}
	return -1
}

// needIptables skips tests that change the machine's nat table when they cannot (not root,
// no iptables). The rules they make match only documentation addresses (RFC 5737, RFC 3849),
// carry a bridge name unique to this test process, and are removed at the end.
func needIptables(t *testing.T, program string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: changes the nat table")
	}
	if _, err := exec.LookPath(program); err != nil {
		t.Skipf("%s not found", program)
	}
	if err := exec.Command(program, "-w", "5", "-t", "nat", "-S", "POSTROUTING").Run(); err != nil {
		t.Skipf("%s cannot read the nat table here: %v", program, err)
	}
}

// countRules counts the nat POSTROUTING rules with bridge's masquerade comment.
func countRules(t *testing.T, program, bridge string) int {
	t.Helper()
	out, err := exec.Command(program, "-w", "5", "-t", "nat", "-S", "POSTROUTING").Output()
	if err != nil {
		t.Fatalf("%s -S: %v", program, err)
	}
	return strings.Count(string(out), `"`+MasqueradeComment(bridge)+`"`)
}

func TestEnsureAndRemoveMasquerade(t *testing.T) {
	for _, tt := range []struct{ program, subnet string }{
		{"iptables", "192.0.2.0/24"},
		{"ip6tables", "2001:db8:88::/64"},
	} {
		t.Run(tt.program, func(t *testing.T) {
			needIptables(t, tt.program)
			bridge := fmt.Sprintf("mput%d", os.Getpid())
			ctx := context.Background()
			t.Cleanup(func() { _ = RemoveMasquerade(context.Background(), bridge, tt.subnet) })

			added, err := EnsureMasquerade(ctx, bridge, tt.subnet)
			if err != nil || !added {
				t.Fatalf("EnsureMasquerade: added %v, %v; want added", added, err)
			}
			// Idempotent: a second call finds the rule and adds nothing.
			added, err = EnsureMasquerade(ctx, bridge, tt.subnet)
			if err != nil || added {
				t.Fatalf("EnsureMasquerade again: added %v, %v; want found", added, err)
			}
			if n := countRules(t, tt.program, bridge); n != 1 {
				t.Fatalf("%d rules with the comment, want 1", n)
			}
			// iptables prints it back as the rule minipod asked for, with the subnet on both sides.
			out, _ := exec.Command(tt.program, "-t", "nat", "-S", "POSTROUTING").Output()
			want := fmt.Sprintf(`-A POSTROUTING -s %s ! -d %s -m comment --comment "%s" -j MASQUERADE`, tt.subnet, tt.subnet, MasqueradeComment(bridge))
			if !strings.Contains(string(out), want+"\n") {
				t.Errorf("nat POSTROUTING has no line %q:\n%s", want, out)
			}
			// Two copies (two daemons racing between -C and -A) are both removed.
			program, rule, _ := MasqueradeRule(bridge, tt.subnet)
			if out, err := exec.Command(program, masqArgs("-A", rule)...).CombinedOutput(); err != nil {
				t.Fatalf("add a second copy: %v: %s", err, out)
			}
			if err := RemoveMasquerade(ctx, bridge, tt.subnet); err != nil {
				t.Fatalf("RemoveMasquerade: %v", err)
			}
			if n := countRules(t, tt.program, bridge); n != 0 {
				t.Errorf("%d rules left after RemoveMasquerade, want 0", n)
			}
			if err := RemoveMasquerade(ctx, bridge, tt.subnet); err != nil {
				t.Errorf("RemoveMasquerade of a missing rule: %v", err)
			}
		})
	}
}

// syncBuffer is a log destination the keeper's goroutine and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The daemon's keeper puts the rule back after it was removed (a firewall flush), when a
// pod is set up, and says so in the log.
func TestMasqueradeKeeper(t *testing.T) {
	needIptables(t, "iptables")
	const subnet = "198.51.100.0/24"
	bridge := fmt.Sprintf("mpuk%d", os.Getpid())
	t.Cleanup(func() { _ = RemoveMasquerade(context.Background(), bridge, subnet) })
	var logs syncBuffer
	m := &masquerade{bridge: bridge, subnet: subnet, log: slog.New(slog.NewTextHandler(&logs, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	m.poke() // before start: nothing happens, and nothing blocks
	m.start(ctx)
	if n := countRules(t, "iptables", bridge); n != 1 {
		t.Fatalf("after start: %d rules, want 1 (the first check runs before start returns)", n)
	}
	if !strings.Contains(logs.String(), "masquerade rule added") {
		t.Errorf("log after start: %q, want the rule added", logs.String())
	}
	m.start(ctx) // a second start is a no-op
	if err := RemoveMasquerade(ctx, bridge, subnet); err != nil {
		t.Fatal(err)
	}

	// A setup within masqSetupSpacing of the last check asks for nothing...
	m.poke()
	// ...one after it does: make the last check old instead of waiting for it to be.
	m.mu.Lock()
	m.lastCheck = time.Now().Add(-masqSetupSpacing)
	m.mu.Unlock()
	m.poke()
	deadline := time.Now().Add(10 * time.Second)
	for countRules(t, "iptables", bridge) != 1 || !strings.Contains(logs.String(), "had gone") {
		if time.Now().After(deadline) {
			t.Fatalf("rule not put back after a setup: %d rules; log:\n%s", countRules(t, "iptables", bridge), logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A rule that cannot be installed is reported as an error in the log, not returned: the pod
// network still works between pods. Here iptables is not installed (an empty PATH), as on a
// minimal image.
func TestMasqueradeFailureLogged(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	bridge := "mpfail"
	var logs syncBuffer
	m := &masquerade{bridge: bridge, subnet: "203.0.113.0/24", log: slog.New(slog.NewTextHandler(&logs, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m.start(ctx)
	got := logs.String()
	if !strings.Contains(got, "level=ERROR") || !strings.Contains(got, "cannot install the masquerade rule") || !strings.Contains(got, "executable file not found") {
		t.Fatalf("log after a failed start: %q, want an error that says iptables is missing", got)
	}
	// A setup-triggered check that fails again does not repeat it (periodic ones do).
	m.check(ctx, false)
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
		t.Errorf("%d errors logged after a second failure from a setup, want 1:\n%s", n, logs.String())
	}
	m.check(ctx, true)
	if n := strings.Count(logs.String(), "level=ERROR"); n != 2 {
		t.Errorf("%d errors logged after a periodic failure, want 2:\n%s", n, logs.String())
	}
}
