package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// The built-in network masquerades with one nat rule for the whole pod CIDR instead of the
// bridge plugin's per-pod chain (ipMasq), which costs several iptables calls on every CNI ADD
// and DEL (about 1.8 ms each with iptables-nft): the largest CPU cost when many pods start or
// stop at once. The rule belongs to the network, not to a pod or to a daemon run: like the
// bridge device it outlives the daemon, because pods keep running while the daemon restarts.

const (
	// masqCheckPeriod is how often a running daemon checks that the rule is still there,
	// without any pod being set up: the period of the kubelet's iptables canary, so that a
	// firewall reload or `iptables -t nat -F` leaves running pods without outbound NAT for at
	// most about a minute. One check is one `iptables -C` (a few ms of CPU).
	masqCheckPeriod = time.Minute
	// masqSetupSpacing is the least time between two checks asked for by sandbox setups. A
	// pod started after a flush then has outbound NAT at once; and at one check a second at
	// most, a burst of pods pays next to nothing for it (the per-pod chain cost several
	// iptables calls per pod). The check runs in the background: setup never waits for it.
	masqSetupSpacing = time.Second
	// masqTimeout bounds one check-and-add, xtables lock wait included.
	masqTimeout = 30 * time.Second
)

// MasqueradeComment is the comment of the built-in network's masquerade rule for a bridge.
// It marks the rule as minipod's (the .deb's purge and the tests find it by it).
func MasqueradeComment(bridge string) string {
	return "minipod: masquerade for " + bridge
}

// MasqueradeRule returns the iptables program (iptables or ip6tables, by the subnet's family)
// and the rule, without the table and the -A/-C/-D command: traffic from the pod CIDR to
// anywhere outside it leaves with the host's address. Traffic between pods stays unchanged.
// The bridge plugin's per-pod chain also left multicast destinations alone; forwarded
// multicast is not routed off the bridge without a multicast router, so one rule suffices.
func MasqueradeRule(bridge, subnet string) (program string, rule []string, err error) {
	ip, ipnet, err := net.ParseCIDR(subnet)
	if err != nil {
		return "", nil, fmt.Errorf("masquerade rule: subnet %q: %w", subnet, err)
	}
	if !ip.Equal(ipnet.IP) {
		return "", nil, fmt.Errorf("masquerade rule: subnet %q has host bits set (the network is %s)", subnet, ipnet)
	}
	program = "iptables"
	if ip.To4() == nil {
		program = "ip6tables"
	}
	cidr := ipnet.String()
	return program, []string{"POSTROUTING", "-s", cidr, "!", "-d", cidr,
		"-m", "comment", "--comment", MasqueradeComment(bridge), "-j", "MASQUERADE"}, nil
}

// masqArgs is the full argument list of one iptables command on the nat table. -w: wait for
// the xtables lock (iptables-legacy, or a legacy tool beside nft) for at most 5 s rather than
// fail when another process (a CNI plugin, kube-proxy, a firewall) holds it.
func masqArgs(cmd string, rule []string) []string {
	return append([]string{"-w", "5", "-t", "nat", cmd}, rule...)
}

// EnsureMasquerade installs the masquerade rule of the built-in network on bridge and subnet
// unless it is there already (iptables -C, then -A). It reports whether it added the rule.
func EnsureMasquerade(ctx context.Context, bridge, subnet string) (added bool, err error) {
	program, rule, err := MasqueradeRule(bridge, subnet)
	if err != nil {
		return false, err
	}
	present, err := ruleExists(ctx, program, rule)
	if err != nil || present {
		return false, err
	}
	if out, err := exec.CommandContext(ctx, program, masqArgs("-A", rule)...).CombinedOutput(); err != nil {
		return false, fmt.Errorf("%s -t nat -A %s: %v: %s", program, strings.Join(rule, " "), err, strings.TrimSpace(string(out)))
	}
	return true, nil
}

// RemoveMasquerade deletes the masquerade rule of bridge and subnet, every copy of it (two
// daemons racing between -C and -A could add it twice). A missing rule is not an error. The
// daemon never calls it: the rule outlives the daemon, as the bridge does; it is for whoever
// removes the network (the tests, an uninstall).
func RemoveMasquerade(ctx context.Context, bridge, subnet string) error {
	program, rule, err := MasqueradeRule(bridge, subnet)
	if err != nil {
		return err
	}
	for range 100 {
		present, err := ruleExists(ctx, program, rule)
		if err != nil || !present {
			return err
		}
		if out, err := exec.CommandContext(ctx, program, masqArgs("-D", rule)...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s -t nat -D %s: %v: %s", program, strings.Join(rule, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return fmt.Errorf("%s: masquerade rule for %s still present after 100 deletions", program, subnet)
}

// ruleExists runs iptables -C. Exit status 1 means "no such rule"; anything else (no iptables
// binary, no permission, a lock timeout: status 4) is an error.
func ruleExists(ctx context.Context, program string, rule []string) (bool, error) {
	out, err := exec.CommandContext(ctx, program, masqArgs("-C", rule)...).CombinedOutput()
	if err == nil {
		return true, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		return false, nil
	}
	return false, fmt.Errorf("%s -t nat -C %s: %v: %s", program, strings.Join(rule, " "), err, strings.TrimSpace(string(out)))
}

// masquerade keeps the built-in network's rule installed while the daemon runs.
type masquerade struct {
	bridge, subnet string
	log            *slog.Logger
	nudge          chan struct{} // sandbox setups ask for a check; nil until started

	mu        sync.Mutex
	started   bool
	lastCheck time.Time
	failing   bool // the last check failed
	seen      bool // a check succeeded in this run: a rule added later had been removed
}

// start checks the rule once, synchronously, then keeps checking in the background until ctx
// ends: every masqCheckPeriod, and when a sandbox setup asks (at most every masqSetupSpacing).
func (m *masquerade) start(ctx context.Context) {
	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return
	}
	m.started = true
	m.nudge = make(chan struct{}, 1)
	m.mu.Unlock()
	m.check(ctx, true)
	go func() {
		tick := time.NewTicker(masqCheckPeriod)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				m.check(ctx, true)
			case <-m.nudge:
				m.check(ctx, false)
			}
		}
	}()
}

// poke asks for a check in the background when the last one is older than masqSetupSpacing.
// It never blocks: it runs on every sandbox setup.
func (m *masquerade) poke() {
	m.mu.Lock()
	due := m.started && time.Since(m.lastCheck) >= masqSetupSpacing
	if due {
		// Counted from now, so that the pods of a burst do not queue a check each.
		m.lastCheck = time.Now()
	}
	m.mu.Unlock()
	if due {
		select {
		case m.nudge <- struct{}{}:
		default:
		}
	}
}

// check ensures the rule and logs what a user needs to know: an error while it cannot be
// installed (pods then still reach each other and this host, but not other networks), and a
// warning when it had gone (someone flushed or reloaded the firewall) and was put back.
// A failure is logged when it starts, and then on periodic checks only (once a minute), so a
// burst of pods does not repeat it.
func (m *masquerade) check(ctx context.Context, periodic bool) {
	cctx, cancel := context.WithTimeout(ctx, masqTimeout)
	added, err := EnsureMasquerade(cctx, m.bridge, m.subnet)
	cancel()
	if ctx.Err() != nil {
		return // the daemon is stopping
	}
	m.mu.Lock()
	m.lastCheck = time.Now()
	wasFailing, seen := m.failing, m.seen
	m.failing = err != nil
	m.seen = m.seen || err == nil
	m.mu.Unlock()
	switch {
	case err != nil && (!wasFailing || periodic):
		m.log.Error("pod network: cannot install the masquerade rule: pods reach each other and this host, but not other networks",
			"bridge", m.bridge, "subnet", m.subnet, "err", err)
	case err == nil && wasFailing:
		m.log.Warn("pod network: masquerade rule installed after earlier failures; pods reach other networks again",
			"bridge", m.bridge, "subnet", m.subnet, "added", added)
	case added && seen:
		m.log.Warn("pod network: masquerade rule had gone (firewall flushed or reloaded?), added again",
			"bridge", m.bridge, "subnet", m.subnet)
	case added:
		m.log.Info("pod network: masquerade rule added", "bridge", m.bridge, "subnet", m.subnet)
	}
}
