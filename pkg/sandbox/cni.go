package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// NetworkConfig says where CNI configuration and plugins are, and what the built-in network
// looks like when the configuration directory holds none.
type NetworkConfig struct {
	ConfDir  string       // first *.conflist (or *.conf/*.json) in lexical order wins
	BinDirs  []string     // plugin search path
	StateDir string       // libcni result cache and the built-in network's IPAM data live under it
	Bridge   string       // built-in network: bridge name
	Subnet   string       // built-in network: pod CIDR
	Log      *slog.Logger // the built-in network's masquerade rule reports here; nil: slog.Default()
}

// Network runs CNI ADD and DEL for pod sandboxes. The configuration is loaded once, by
// NewNetwork; it is safe for concurrent use.
type Network struct {
	cni  *libcni.CNIConfig
	list *libcni.NetworkConfigList
	// withPorts is the built-in network with portmap, for pods with hostPorts; list is then
	// the same network (same name, so libcni's cache finds either) without it. nil for a
	// user's configuration, which is used as it is for every pod.
	withPorts *libcni.NetworkConfigList
	// loopback is CNI's loopback plugin, which earlier minipods ran for every pod; it is kept
	// to DEL their pods' attachments only (NewNetNS brings lo up itself).
	loopback *libcni.NetworkConfigList
	source   string      // file the list came from, or "built-in"
	masq     *masquerade // the built-in network's masquerade rule; nil for a user's configuration
}

// Port is one hostPort mapping for the portmap plugin.
type Port struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// Attachment identifies one pod's network attachment to CNI.
type Attachment struct {
	ID        string // CNI container ID: stable for the sandbox's life, also after a daemon restart
	NetNS     string
	Namespace string
	Name      string
	UID       string
	Ports     []Port
}

const loopbackConf = `{"cniVersion":"1.0.0","name":"minipod-loopback","plugins":[{"type":"loopback"}]}`

// NewNetwork loads the CNI configuration, or builds the built-in bridge network.
func NewNetwork(cfg NetworkConfig) (*Network, error) {
	n := &Network{cni: libcni.NewCNIConfigWithCacheDir(cfg.BinDirs, filepath.Join(cfg.StateDir, "cache"), nil)}
	var err error
	n.loopback, err = libcni.ConfListFromBytes([]byte(loopbackConf))
	if err != nil {
		return nil, fmt.Errorf("loopback network: %w", err)
	}
	file, err := firstConfFile(cfg.ConfDir)
	if err != nil {
		return nil, err
	}
	if file != "" {
		n.source = file
		if strings.HasSuffix(file, ".conflist") {
			n.list, err = libcni.ConfListFromFile(file)
		} else {
			var one *libcni.NetworkConfig
			if one, err = libcni.ConfFromFile(file); err == nil {
				n.list, err = libcni.ConfListFromConf(one)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("load CNI config %s: %w", file, err)
		}
		return n, nil
	}
	n.source = "built-in"
	dataDir := filepath.Join(cfg.StateDir, "networks")
	for _, l := range []struct {
		portmap bool
		list    **libcni.NetworkConfigList
	}{{false, &n.list}, {true, &n.withPorts}} {
		b, err := BuiltinConfList(cfg.Bridge, cfg.Subnet, dataDir, l.portmap)
		if err != nil {
			return nil, err
		}
		if *l.list, err = libcni.ConfListFromBytes(b); err != nil {
			return nil, fmt.Errorf("built-in network: %w", err)
		}
	}
	if _, _, err := MasqueradeRule(cfg.Bridge, cfg.Subnet); err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	n.masq = &masquerade{bridge: cfg.Bridge, subnet: cfg.Subnet, log: log}
	return n, nil
}

// StartMasquerade installs the built-in network's masquerade rule for the pod CIDR unless it
// is there, and keeps it installed until ctx ends (see masq.go): checked every minute, and
// in the background when pods are set up. The first check runs before it returns. Failures
// are logged, never returned: without the rule pods still reach each other and this host.
// The rule stays when the daemon stops, as the bridge does. With a user's CNI configuration
// it does nothing: that configuration does its own masquerading, or none.
func (n *Network) StartMasquerade(ctx context.Context) {
	if n.masq != nil {
		n.masq.start(ctx)
	}
}

// listFor is the network list a pod is added with: portmap only for pods with hostPorts,
// because portmap runs iptables on every ADD and DEL even with no port to map.
func (n *Network) listFor(a Attachment) *libcni.NetworkConfigList {
	if n.withPorts != nil && len(a.Ports) > 0 {
		return n.withPorts
	}
	return n.list
}

// Source names where the network configuration came from.
func (n *Network) Source() string { return n.source }

// Name is the CNI network name.
func (n *Network) Name() string { return n.list.Name }

func firstConfFile(dir string) (string, error) {
	if dir == "" {
		return "", nil
	}
	files, err := libcni.ConfFiles(dir, []string{".conflist", ".conf", ".json"})
	if err != nil {
		if os.IsNotExist(err) {
			return "", nil
		}
		return "", fmt.Errorf("read CNI config dir %s: %w", dir, err)
	}
	sort.Strings(files)
	if len(files) == 0 {
		return "", nil
	}
	return files[0], nil
}

// BuiltinConfList is the network minipod uses when no CNI configuration exists: a bridge and
// host-local IPAM whose state lives under dataDir, and with portmap, for pods with hostPorts.
// Both variants have the same name, so that a pod's DEL finds libcni's record of its ADD
// whichever it was added with.
//
// The bridge does not masquerade (ipMasq false): its per-pod chain costs several iptables
// calls on every ADD and DEL. One rule for the whole subnet does it instead (masq.go).
func BuiltinConfList(bridge, subnet, dataDir string, portmap bool) ([]byte, error) {
	ip, _, err := net.ParseCIDR(subnet)
	if err != nil {
		return nil, fmt.Errorf("built-in network subnet %q: %w", subnet, err)
	}
	defaultRoute := "0.0.0.0/0"
	if ip.To4() == nil {
		defaultRoute = "::/0"
	}
	plugins := []any{
		map[string]any{
			"type":        "bridge",
			"bridge":      bridge,
			"isGateway":   true,
			"ipMasq":      false,
			"hairpinMode": true,
			"ipam": map[string]any{
				"type":    "host-local",
				"ranges":  [][]map[string]string{{{"subnet": subnet}}},
				"routes":  []map[string]string{{"dst": defaultRoute}},
				"dataDir": dataDir,
			},
		},
	}
	if portmap {
		plugins = append(plugins, map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}})
	}
	return json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": "minipod", "plugins": plugins})
}

func (n *Network) runtimeConf(a Attachment, ifName string) *libcni.RuntimeConf {
	rc := &libcni.RuntimeConf{
		ContainerID: a.ID,
		NetNS:       a.NetNS,
		IfName:      ifName,
		// IgnoreUnknown: plugins that do not know the K8S_* args would otherwise fail.
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", a.Namespace},
			{"K8S_POD_NAME", a.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", a.ID},
			{"K8S_POD_UID", a.UID},
		},
	}
	if len(a.Ports) > 0 {
		rc.CapabilityArgs = map[string]any{"portMappings": a.Ports}
	}
	return rc
}

// Setup attaches the pod's network namespace, made by NewNetNS (which brought its loopback up),
// to the pod network. It returns the pod's IP addresses (IPv4 first). On failure whatever was
// added is deleted again.
func (n *Network) Setup(ctx context.Context, a Attachment) (ips []string, err error) {
	if n.masq != nil {
		// A pod set up after a firewall flush gets its outbound NAT back at once.
		n.masq.poke()
	}
	list := n.listFor(a)
	res, err := n.cni.AddNetworkList(ctx, list, n.runtimeConf(a, "eth0"))
	if err != nil {
		// libcni records an ADD only when it succeeded: undo with the list that was used.
		_ = n.teardown(context.WithoutCancel(ctx), a, list)
		return nil, fmt.Errorf("CNI ADD on network %s: %w", list.Name, err)
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		_ = n.teardown(context.WithoutCancel(ctx), a, list)
		return nil, fmt.Errorf("CNI result: %w", err)
	}
	for _, ip := range r.IPs {
		if ip.Address.IP.To4() != nil {
			ips = append([]string{ip.Address.IP.String()}, ips...)
		} else {
			ips = append(ips, ip.Address.IP.String())
		}
	}
	return ips, nil
}

// Teardown runs CNI DEL for the pod network. It works from libcni's cached configuration when
// there is one (the configuration may have changed since ADD: pods added by an older minipod
// have the bridge's own masquerading and portmap in theirs, and their DEL removes exactly
// that), and is idempotent: a DEL for something already gone succeeds.
func (n *Network) Teardown(ctx context.Context, a Attachment) error {
	// Without a record of the ADD (a crash before it was written, a DEL repeated after one
	// that succeeded) nothing says whether the pod had hostPorts: the list with portmap
	// removes whatever either list could have made.
	fallback := n.list
	if n.withPorts != nil {
		fallback = n.withPorts
	}
	return n.teardown(ctx, a, fallback)
}

func (n *Network) teardown(ctx context.Context, a Attachment, fallback *libcni.NetworkConfigList) error {
	rc := n.runtimeConf(a, "eth0")
	list := fallback
	if cached, cachedRC, err := n.cni.GetNetworkListCachedConfig(n.list, rc); err == nil && len(cached) > 0 {
		if l, err := libcni.ConfListFromBytes(cached); err == nil {
			list = l
			if cachedRC != nil {
				rc.CapabilityArgs = cachedRC.CapabilityArgs
			}
		}
	}
	if err := n.cni.DelNetworkList(ctx, list, rc); err != nil {
		return fmt.Errorf("CNI DEL on network %s: %w", list.Name, err)
	}
	if a.NetNS == "" && perPodMasquerade(list) {
		// Without the network namespace the bridge plugin releases the address but cannot
		// find it to remove its masquerading rule (it reads the address off the interface),
		// and the rule would block the chain's removal on the next DEL of this ID. Only
		// lists whose plugins masquerade per pod made such a rule (the built-in network of
		// older minipods, or a user's configuration).
		if err := removeMasqRules(ctx, list.Name, a.ID); err != nil {
			return err
		}
	}
	// A pod set up by an older minipod also has a loopback attachment in libcni's cache. Its
	// DEL does nothing that outlives the netns, but it drops the cache entry.
	lo := n.runtimeConf(a, "lo")
	if cached, _, err := n.cni.GetNetworkListCachedConfig(n.loopback, lo); err == nil && len(cached) > 0 {
		_ = n.cni.DelNetworkList(ctx, n.loopback, lo)
	}
	return nil
}

// perPodMasquerade reports whether a plugin of the list sets up per-container masquerading
// (ipMasq, as bridge and ptp do). When a plugin's configuration cannot be read it says yes:
// removeMasqRules is then only a wasted iptables-save.
func perPodMasquerade(list *libcni.NetworkConfigList) bool {
	for _, p := range list.Plugins {
		var c struct {
			IPMasq *bool `json:"ipMasq"`
		}
		if err := json.Unmarshal(p.Bytes, &c); err != nil || c.IPMasq != nil && *c.IPMasq {
			return true
		}
	}
	return false
}

// removeMasqRules deletes the nat rules whose comment names this network and container ID,
// and the per-container chains they jump to.
func removeMasqRules(ctx context.Context, network, id string) error {
	out, err := exec.CommandContext(ctx, "iptables-save", "-t", "nat").Output()
	if err != nil {
		return fmt.Errorf("read nat rules: %w", err)
	}
	mark := fmt.Sprintf(`name: \"%s\" id: \"%s\"`, network, id)
	var chains []string
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "-A ") || !strings.Contains(line, mark) {
			continue
		}
		f := strings.Fields(line)
		if f[1] != "POSTROUTING" {
			continue
		}
		// iptables-save quotes the comment the way a shell does.
		if out, err := exec.CommandContext(ctx, "sh", "-c", "iptables -t nat -D "+strings.TrimPrefix(line, "-A ")).CombinedOutput(); err != nil {
			return fmt.Errorf("delete nat rule: %v: %s", err, out)
		}
		for i := range f {
			if f[i] == "-j" && i+1 < len(f) && strings.HasPrefix(f[i+1], "CNI-") {
				chains = append(chains, f[i+1])
			}
		}
	}
	for _, c := range chains {
		_ = exec.CommandContext(ctx, "iptables", "-t", "nat", "-F", c).Run()
		_ = exec.CommandContext(ctx, "iptables", "-t", "nat", "-X", c).Run()
	}
	return nil
}

// CachedIPs returns the pod IPs from libcni's record of the last ADD, which survives a daemon
// restart. It returns nil when there is none.
func (n *Network) CachedIPs(a Attachment) []string {
	res, err := n.cni.GetNetworkListCachedResult(n.list, n.runtimeConf(a, "eth0"))
	if err != nil || res == nil {
		return nil
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil
	}
	var ips []string
	for _, ip := range r.IPs {
		if ip.Address.IP.To4() != nil {
			ips = append([]string{ip.Address.IP.String()}, ips...)
		} else {
			ips = append(ips, ip.Address.IP.String())
		}
	}
	return ips
}
