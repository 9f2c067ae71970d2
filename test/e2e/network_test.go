package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minipod/minipod/pkg/sandbox"
)

// The built-in network: one masquerade rule for the pod CIDR instead of a chain per pod, and
// portmap only for pods with hostPorts.

// outsideNet is a stand-in for "another network": a network namespace of the test's own,
// joined to the host by a veth pair, with addresses from 198.18.0.0/15 (RFC 2544, for
// benchmarks: no real host has them). Its names and addresses derive from MINIPOD_E2E_NET, so
// concurrent runs on other test networks do not collide. Traffic from pods goes only there.
type outsideNet struct {
	ns           string // name under /run/netns
	hostIf, nsIf string
	hostIP, nsIP string
}

func newOutsideNet() outsideNet {
	n := strings.TrimPrefix(testBridge, "mpe2e")
	return outsideNet{
		ns:     "mpe2eout" + n,
		hostIf: "mpo" + n + "h",
		nsIf:   "mpo" + n + "n",
		hostIP: "198.18." + n + ".1",
		nsIP:   "198.18." + n + ".2",
	}
}

// remove deletes the namespace (its end of the veth pair goes with it) and the host's end.
// Missing parts are not errors: it also runs before setup, after a crashed run.
func (o outsideNet) remove() {
	_ = exec.Command("ip", "netns", "del", o.ns).Run()
	_ = exec.Command("ip", "link", "del", o.hostIf).Run()
}

// setup makes the namespace and the veth pair. The namespace routes the test subnet back
// through the host: without masquerading a pod's connection would still succeed, with the
// pod's own address as source, so the test tells "NAT" from "no NAT" by the address seen,
// not by a timeout.
func (o outsideNet) setup(t *testing.T) {
	t.Helper()
	o.remove()
	t.Cleanup(o.remove)
	for _, args := range [][]string{
		{"netns", "add", o.ns},
		{"link", "add", o.hostIf, "type", "veth", "peer", "name", o.nsIf, "netns", o.ns},
		{"addr", "add", o.hostIP + "/30", "dev", o.hostIf},
		{"link", "set", o.hostIf, "up"},
		{"-n", o.ns, "addr", "add", o.nsIP + "/30", "dev", o.nsIf},
		{"-n", o.ns, "link", "set", o.nsIf, "up"},
		{"-n", o.ns, "link", "set", "lo", "up"},
		{"-n", o.ns, "route", "add", testSubnet, "via", o.hostIP},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
}

// listen opens a TCP listener on the namespace's address, port chosen by the kernel. The
// socket is made on a thread that has entered the namespace; it stays in it after the thread
// goes back, so Accept works from any goroutine.
func (o outsideNet) listen(t *testing.T) *net.TCPListener {
	t.Helper()
	var ln net.Listener
	err := sandbox.InNetNS(filepath.Join("/run/netns", o.ns), func() (err error) {
		ln, err = net.Listen("tcp4", o.nsIP+":0")
		return err
	})
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("listen in %s: %v", o.ns, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// sourceOfConnection has the pod connect to the listener (busybox nc) and returns the source
// address the listener saw, after checking that the pod's bytes arrived.
func sourceOfConnection(t *testing.T, d *daemon, pod string, o outsideNet, ln *net.TCPListener) string {
	t.Helper()
	type conn struct {
		from, line string
		err        error
	}
	got := make(chan conn, 1)
	go func() {
		_ = ln.SetDeadline(time.Now().Add(20 * time.Second))
		c, err := ln.Accept()
		if err != nil {
			got <- conn{err: err}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		got <- conn{from: host, line: line, err: err}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	out, errs, code := d.ctl("exec", pod, "--", "sh", "-c", fmt.Sprintf("echo from-%s | nc -w 5 %s %d", pod, o.nsIP, port))
	c := <-got
	if c.err != nil {
		t.Fatalf("pod %s -> %s:%d: listener: %v (nc: exit %d, %q %q)", pod, o.nsIP, port, c.err, code, out, errs)
	}
	if strings.TrimSpace(c.line) != "from-"+pod {
		t.Fatalf("pod %s -> %s:%d: listener read %q, want %q", pod, o.nsIP, port, c.line, "from-"+pod)
	}
	return c.from
}

// masqueradeRulePresent reports whether the test network's masquerade rule is in the nat table.
func masqueradeRulePresent(t *testing.T) bool {
	t.Helper()
	program, rule, err := sandbox.MasqueradeRule(testBridge, testSubnet)
	if err != nil {
		t.Fatal(err)
	}
	err = exec.Command(program, append([]string{"-w", "5", "-t", "nat", "-C"}, rule...)...).Run()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
		return false
	}
	if err != nil {
		t.Fatalf("%s -C: %v", program, err)
	}
	return true
}

// iptablesLinesWith returns the lines of every table's rules that name one of the addresses.
func iptablesLinesWith(t *testing.T, ips ...string) []string {
	t.Helper()
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	var lines []string
	for _, line := range strings.Split(string(out), "\n") {
		for _, ip := range ips {
			if strings.Contains(line, ip+"/") || strings.Contains(line, ip+":") || strings.Contains(line, ip+" ") || strings.HasSuffix(line, " "+ip) {
				lines = append(lines, line)
			}
		}
	}
	return lines
}

// cachedPlugins returns, for the pod with this IP, the plugin types and the bridge's ipMasq of
// the configuration libcni recorded at its ADD (what its DEL will use).
func cachedPlugins(t *testing.T, d *daemon, ip string) (types []string, ipMasq bool) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(d.state, "cni", "cache", "results", "minipod-*-eth0"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var entry struct {
			Config []byte `json:"config"`
			Result struct {
				IPs []struct {
					Address string `json:"address"`
				} `json:"ips"`
			} `json:"result"`
		}
		if err := json.Unmarshal(b, &entry); err != nil {
			t.Fatalf("libcni cache %s: %v", f, err)
		}
		if len(entry.Result.IPs) == 0 || !strings.HasPrefix(entry.Result.IPs[0].Address, ip+"/") {
			continue
		}
		var conf struct {
			Plugins []struct {
				Type   string `json:"type"`
				IPMasq bool   `json:"ipMasq"`
			} `json:"plugins"`
		}
		if err := json.Unmarshal(entry.Config, &conf); err != nil {
			t.Fatalf("libcni cache %s: config: %v", f, err)
		}
		for _, p := range conf.Plugins {
			types = append(types, p.Type)
			ipMasq = ipMasq || p.IPMasq
		}
		return types, ipMasq
	}
	t.Fatalf("no libcni cache entry for pod IP %s among %v", ip, files)
	return nil, false
}

func sleeperPod(name, ports string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "mkdir -p /www && echo %s > /www/index.html && httpd -p 8080 -h /www; trap 'exit 0' TERM; while true; do sleep 1; done"]
%s`, name, name, ports)
}

// Pods reach other networks with the host's address (one masquerade rule for the pod CIDR,
// made when the daemon starts, put back after a flush, kept after the daemon stops); a pod
// without hostPorts makes no iptables rule at all; a pod with one is reachable on it.
func TestBuiltinNetworkMasquerade(t *testing.T) {
	ctx := context.Background()
	// The rule outlives daemons, so an earlier test's may be there: start without it to see
	// that the daemon makes it.
	if err := sandbox.RemoveMasquerade(ctx, testBridge, testSubnet); err != nil {
		t.Fatal(err)
	}
	out := newOutsideNet()
	out.setup(t)
	ln := out.listen(t)

	d := newDaemon(t)
	d.start()
	// The first check runs before the API serves.
	if !masqueradeRulePresent(t) {
		t.Fatalf("no masquerade rule for %s once the daemon answers", testSubnet)
	}

	d.writeManifest("egress.yaml", sleeperPod("egress", ""))
	ip := d.waitRunning("egress", 60*time.Second).Status.PodIP
	// Any check that egress's setup asked for has run by now (setup comes before Running).
	egressRunning := time.Now()
	// No hostPort: added with the bridge alone, without its per-pod masquerading.
	if types, masq := cachedPlugins(t, d, ip); strings.Join(types, ",") != "bridge" || masq {
		t.Errorf("pod without hostPorts added with plugins %v (ipMasq %v), want the bridge alone without ipMasq", types, masq)
	}
	// ... so no rule anywhere names it: no CNI-xxxx masquerade chain, no CNI-DN chain.
	if lines := iptablesLinesWith(t, ip); len(lines) > 0 {
		t.Errorf("iptables rules name pod IP %s of a pod without hostPorts:\n%s", ip, strings.Join(lines, "\n"))
	}

	if from := sourceOfConnection(t, d, "egress", out, ln); from != out.hostIP {
		t.Fatalf("the outside network saw the pod's connection from %s, want the host's %s (pod IP %s): not masqueraded", from, out.hostIP, ip)
	}

	// A firewall reload drops the rule (only ours is removed here: never flush a machine's
	// table in a test). The next pod's setup brings it back at once, if the last check is
	// more than a second old (the daemon's spacing between checks that setups ask for): this
	// wait is that rate limit, not a wait for readiness. Without the setup's check the rule
	// would come back only with the daemon's periodic one, a minute after its start, after
	// the deadline below.
	if err := sandbox.RemoveMasquerade(ctx, testBridge, testSubnet); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(egressRunning.Add(1100 * time.Millisecond)))
	// A hostPort pod: added with portmap, reachable on the host's loopback.
	hostPort := testHostPort(18100)
	d.writeManifest("hp.yaml", sleeperPod("hp", fmt.Sprintf("    ports:\n    - {containerPort: 8080, hostPort: %d}\n", hostPort)))
	hpIP := d.waitRunning("hp", 60*time.Second).Status.PodIP
	if types, masq := cachedPlugins(t, d, hpIP); strings.Join(types, ",") != "bridge,portmap" || masq {
		t.Errorf("pod with a hostPort added with plugins %v (ipMasq %v), want bridge and portmap without ipMasq", types, masq)
	}
	// The test connects to 127.0.0.1 only: no traffic to any other address of this machine.
	var body []byte
	d.eventually(20*time.Second, fmt.Sprintf("hostPort %d answers on 127.0.0.1", hostPort), func() (bool, string) {
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(fmt.Sprintf("http://127.0.0.1:%d/", hostPort))
		if err != nil {
			return false, err.Error()
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.TrimSpace(string(body)) == "hp", fmt.Sprintf("body %q", body)
	})
	d.eventually(20*time.Second, "masquerade rule put back by the hp pod's setup", func() (bool, string) {
		return masqueradeRulePresent(t), "missing"
	})
	if log, _ := os.ReadFile(d.logPath); !strings.Contains(string(log), "masquerade rule had gone") {
		t.Errorf("the daemon put the rule back without saying so; log:\n%s", d.logTail())
	}
	if from := sourceOfConnection(t, d, "egress", out, ln); from != out.hostIP {
		t.Fatalf("after the rule came back, the outside network saw %s, want %s", from, out.hostIP)
	}

	d.removeAndCheck("egress", "hp")
	// The portmap DNAT chain of the hostPort pod went with it (removeAndCheck checked every
	// rule naming either pod IP); the one rule for the subnet stays while the network does,
	// also when the daemon stops: pods outlive the daemon.
	d.stop(syscall.SIGTERM)
	if !masqueradeRulePresent(t) {
		t.Error("the masquerade rule went with the daemon; pods outlive it and need it")
	}
}

// Pods that an older minipod added with the bridge's own per-pod masquerading and portmap
// (libcni's record of their ADD says so) are removed completely by a newer one: their
// CNI-xxxx chains go, also when the network namespace was lost (the DEL without a netns).
func TestBuiltinNetworkOldPodsTeardown(t *testing.T) {
	d := newDaemon(t)
	// What minipod's built-in network was before: bridge with ipMasq, and portmap, under the
	// same network name and IPAM directory. As a CNI configuration, the daemon uses it as is.
	old := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"minipod","plugins":[`+
		`{"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":true,"hairpinMode":true,`+
		`"ipam":{"type":"host-local","ranges":[[{"subnet":%q}]],"routes":[{"dst":"0.0.0.0/0"}],"dataDir":%q}},`+
		`{"type":"portmap","capabilities":{"portMappings":true}}]}`,
		testBridge, testSubnet, filepath.Join(d.state, "cni", "networks"))
	conf := filepath.Join(d.dir, "cni", "10-minipod.conflist")
	if err := os.WriteFile(conf, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	d.start()
	d.writeManifest("old1.yaml", sleeperPod("old1", ""))
	d.writeManifest("old2.yaml", sleeperPod("old2", ""))
	ip1 := d.waitRunning("old1", 60*time.Second).Status.PodIP
	ip2 := d.waitRunning("old2", 60*time.Second).Status.PodIP
	var chains []string // the pods' CNI-xxxx chains
	for _, ip := range []string{ip1, ip2} {
		for _, l := range iptablesLinesWith(t, ip) {
			if f := strings.Fields(l); strings.HasPrefix(l, "-A POSTROUTING -s "+ip+"/32 ") && f[len(f)-2] == "-j" && strings.HasPrefix(f[len(f)-1], "CNI-") {
				chains = append(chains, f[len(f)-1])
			}
		}
	}
	if len(chains) != 2 {
		t.Fatalf("the old-style network made per-pod masquerade chains %v for %s and %s, want one each: the test would prove nothing", chains, ip1, ip2)
	}

	// The upgrade: the daemon stops (pods run on), the new one uses the built-in network.
	d.stop(syscall.SIGTERM)
	if err := os.Remove(conf); err != nil {
		t.Fatal(err)
	}
	// old2's network namespace is lost meanwhile (as /run after a crash): its sandbox is made
	// again, and the old one torn down without a netns.
	lost := ""
	entries, _ := os.ReadDir(d.netns)
	for _, e := range entries {
		p := filepath.Join(d.netns, e.Name())
		addrs, _ := exec.Command("nsenter", "--net="+p, "ip", "-o", "-4", "addr", "show", "dev", "eth0").Output()
		if strings.Contains(string(addrs), " "+ip2+"/") {
			lost = p
		}
	}
	if lost == "" {
		t.Fatalf("no network namespace in %s has %s", d.netns, ip2)
	}
	unmountUnder(lost)
	if err := os.Remove(lost); err != nil {
		t.Fatal(err)
	}
	d.start()
	d.waitRunning("old1", 60*time.Second)
	var newIP2 string
	d.eventually(60*time.Second, "old2 on a new sandbox", func() (bool, string) {
		p := d.pod("old2")
		if p == nil || p.Status.PodIP == "" || p.Status.PodIP == ip2 {
			return false, "not yet"
		}
		newIP2 = p.Status.PodIP
		return true, ""
	})
	d.waitRunning("old2", 60*time.Second)
	d.eventually(15*time.Second, "old2's old rules gone", func() (bool, string) {
		lines := iptablesLinesWith(t, ip2)
		return len(lines) == 0, strings.Join(lines, "\n")
	})
	// The new sandbox is the new style.
	if types, masq := cachedPlugins(t, d, newIP2); strings.Join(types, ",") != "bridge" || masq {
		t.Errorf("old2's new sandbox added with %v (ipMasq %v), want the bridge alone", types, masq)
	}
	if !masqueradeRulePresent(t) {
		t.Error("the new daemon made no masquerade rule")
	}
	// old1 is removed by its record of the old-style ADD: its chain goes too.
	d.removeAndCheck("old1", "old2")
	if lines := iptablesLinesWith(t, ip1, ip2, newIP2); len(lines) > 0 {
		t.Errorf("rules left of the old pods:\n%s", strings.Join(lines, "\n"))
	}
	// The chains themselves, not only the jumps to them.
	nat, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chains {
		if strings.Contains(string(nat), c) {
			t.Errorf("per-pod chain %s is left", c)
		}
	}
}
