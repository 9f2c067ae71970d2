package sandbox

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
)

// builtinConf is the part of the built-in conflist the tests look at.
type builtinConf struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Plugins    []struct {
		Type         string          `json:"type"`
		Bridge       string          `json:"bridge"`
		IsGateway    bool            `json:"isGateway"`
		IPMasq       bool            `json:"ipMasq"`
		HairpinMode  bool            `json:"hairpinMode"`
		Capabilities map[string]bool `json:"capabilities"`
		IPAM         *struct {
			Type    string                `json:"type"`
			Ranges  [][]map[string]string `json:"ranges"`
			Routes  []map[string]string   `json:"routes"`
			DataDir string                `json:"dataDir"`
		} `json:"ipam"`
	} `json:"plugins"`
}

func TestBuiltinConfList(t *testing.T) {
	tests := []struct {
		bridge, subnet, dataDir, route string
	}{
		{"minipod0", "10.88.0.0/16", "/var/lib/minipod/networks", "0.0.0.0/0"},
		{"br-test", "192.168.100.0/24", "/tmp/x", "0.0.0.0/0"},
		{"br6", "fd00:88::/64", "/d", "::/0"},
	}
	for _, tt := range tests {
		for _, portmap := range []bool{false, true} {
			b, err := BuiltinConfList(tt.bridge, tt.subnet, tt.dataDir, portmap)
			if err != nil {
				t.Errorf("BuiltinConfList(%q, %q, %q, %v): %v", tt.bridge, tt.subnet, tt.dataDir, portmap, err)
				continue
			}
			var c builtinConf
			if err := json.Unmarshal(b, &c); err != nil {
				t.Fatalf("decode %s: %v", b, err)
			}
			wantPlugins := 1
			if portmap {
				wantPlugins = 2
			}
			// The same name in both variants: libcni's cache of a pod's ADD is keyed by it.
			if c.CNIVersion != "1.0.0" || c.Name != "minipod" || len(c.Plugins) != wantPlugins {
				t.Fatalf("conflist %s: want cniVersion 1.0.0, name minipod, %d plugins", b, wantPlugins)
			}
			br := c.Plugins[0]
			// No per-pod masquerade chain: one rule for the subnet does it (masq.go).
			if br.Type != "bridge" || br.Bridge != tt.bridge || !br.IsGateway || br.IPMasq || !br.HairpinMode {
				t.Errorf("bridge plugin %+v, want type bridge, bridge %q, gateway, no ipMasq, hairpin", br, tt.bridge)
			}
			if !strings.Contains(string(b), `"ipMasq":false`) {
				t.Errorf("conflist %s does not say ipMasq false (the plugin's default, but say it)", b)
			}
			if br.IPAM == nil {
				t.Fatalf("bridge plugin without ipam: %s", b)
			}
			wantRanges := [][]map[string]string{{{"subnet": tt.subnet}}}
			if br.IPAM.Type != "host-local" || !reflect.DeepEqual(br.IPAM.Ranges, wantRanges) || br.IPAM.DataDir != tt.dataDir {
				t.Errorf("ipam %+v, want host-local, ranges %v, dataDir %q", *br.IPAM, wantRanges, tt.dataDir)
			}
			if want := []map[string]string{{"dst": tt.route}}; !reflect.DeepEqual(br.IPAM.Routes, want) {
				t.Errorf("ipam routes %v, want %v (the subnet's family)", br.IPAM.Routes, want)
			}
			if portmap {
				if pm := c.Plugins[1]; pm.Type != "portmap" || !pm.Capabilities["portMappings"] {
					t.Errorf("second plugin %+v, want portmap with the portMappings capability", pm)
				}
			}
			// libcni accepts it.
			list, err := libcni.ConfListFromBytes(b)
			if err != nil {
				t.Errorf("libcni refuses the built-in conflist: %v", err)
			} else if list.Name != "minipod" || len(list.Plugins) != wantPlugins {
				t.Errorf("libcni: name %q, %d plugins", list.Name, len(list.Plugins))
			}
		}
	}
}

func TestBuiltinConfListBadSubnet(t *testing.T) {
	for _, subnet := range []string{"", "10.88.0.0", "10.88.0.0/33", "not-a-cidr", "10.88.0.0/16 ", "300.1.0.0/16"} {
		if b, err := BuiltinConfList("minipod0", subnet, "/d", false); err == nil {
			t.Errorf("BuiltinConfList(subnet %q): got %s, want an error", subnet, b)
		}
	}
}

// The built-in network adds pods without hostPorts with the bridge alone and pods with
// hostPorts with portmap too, under one network name; a user's configuration is used as it is
// for every pod.
func TestListChoice(t *testing.T) {
	plugins := func(l *libcni.NetworkConfigList) []string {
		var types []string
		for _, p := range l.Plugins {
			types = append(types, p.Network.Type)
		}
		return types
	}
	noPorts := Attachment{ID: "a"}
	withPorts := Attachment{ID: "b", Ports: []Port{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}}

	n, err := NewNetwork(NetworkConfig{StateDir: t.TempDir(), Bridge: "minipod0", Subnet: "10.88.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	if got := plugins(n.listFor(noPorts)); !reflect.DeepEqual(got, []string{"bridge"}) {
		t.Errorf("built-in, no hostPort: plugins %v, want [bridge]", got)
	}
	if got := plugins(n.listFor(withPorts)); !reflect.DeepEqual(got, []string{"bridge", "portmap"}) {
		t.Errorf("built-in, a hostPort: plugins %v, want [bridge portmap]", got)
	}
	if a, b := n.listFor(noPorts).Name, n.listFor(withPorts).Name; a != "minipod" || b != "minipod" {
		t.Errorf("network names %q and %q, want minipod for both", a, b)
	}
	if n.masq == nil {
		t.Error("built-in network without its masquerade rule")
	}
	for _, l := range []*libcni.NetworkConfigList{n.list, n.withPorts} {
		if perPodMasquerade(l) {
			t.Errorf("built-in list %v masquerades per pod", plugins(l))
		}
	}

	confDir := t.TempDir()
	const user = `{"cniVersion":"1.0.0","name":"mine","plugins":[{"type":"bridge","bridge":"b0","ipMasq":true},{"type":"portmap","capabilities":{"portMappings":true}}]}`
	if err := os.WriteFile(filepath.Join(confDir, "10-mine.conflist"), []byte(user), 0o644); err != nil {
		t.Fatal(err)
	}
	u, err := NewNetwork(NetworkConfig{ConfDir: confDir, StateDir: t.TempDir(), Bridge: "minipod0", Subnet: "10.88.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	if u.listFor(noPorts) != u.list || u.listFor(withPorts) != u.list || u.withPorts != nil {
		t.Error("a user's configuration is not used as it is for every pod")
	}
	if u.masq != nil {
		t.Error("a user's configuration got minipod's masquerade rule")
	}
	if !perPodMasquerade(u.list) {
		t.Error("a user's bridge with ipMasq true: perPodMasquerade says no")
	}
	// StartMasquerade with a user's configuration touches nothing (no iptables here).
	u.StartMasquerade(t.Context())
}

func TestPerPodMasquerade(t *testing.T) {
	for _, tt := range []struct {
		conf string
		want bool
	}{
		// The built-in network of older minipods: its DEL without a netns needs removeMasqRules.
		{`{"cniVersion":"1.0.0","name":"minipod","plugins":[{"type":"bridge","ipMasq":true},{"type":"portmap","capabilities":{"portMappings":true}}]}`, true},
		{`{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"ptp","ipMasq":true}]}`, true},
		{`{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge","ipMasq":false}]}`, false},
		{`{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"},{"type":"portmap"}]}`, false},
	} {
		l, err := libcni.ConfListFromBytes([]byte(tt.conf))
		if err != nil {
			t.Fatal(err)
		}
		if got := perPodMasquerade(l); got != tt.want {
			t.Errorf("perPodMasquerade(%s) = %v, want %v", tt.conf, got, tt.want)
		}
	}
}

func TestNewNetwork(t *testing.T) {
	const (
		b = `{"cniVersion":"1.0.0","name":"net-b","plugins":[{"type":"bridge","bridge":"b0"}]}`
		a = `{"cniVersion":"1.0.0","name":"net-a","plugins":[{"type":"bridge","bridge":"a0"}]}`
		c = `{"cniVersion":"1.0.0","name":"net-c","type":"bridge"}`
	)
	tests := []struct {
		name       string
		files      map[string]string
		wantName   string
		wantSource string // file name, or "built-in"
		wantErr    bool
	}{
		{name: "no config: built-in", wantName: "minipod", wantSource: "built-in"},
		{name: "unrelated files only: built-in", files: map[string]string{"README": "x"}, wantName: "minipod", wantSource: "built-in"},
		{name: "first conflist in lexical order", files: map[string]string{"20-b.conflist": b, "10-a.conflist": a},
			wantName: "net-a", wantSource: "10-a.conflist"},
		{name: "single-plugin .conf", files: map[string]string{"05-c.conf": c, "10-a.conflist": a},
			wantName: "net-c", wantSource: "05-c.conf"},
		{name: "broken first file", files: map[string]string{"00-bad.conflist": "{", "10-a.conflist": a}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			confDir := t.TempDir()
			for name, data := range tt.files {
				if err := os.WriteFile(filepath.Join(confDir, name), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			n, err := NewNetwork(NetworkConfig{
				ConfDir: confDir, BinDirs: []string{"/nonexistent"}, StateDir: t.TempDir(),
				Bridge: "minipod0", Subnet: "10.88.0.0/16",
			})
			if tt.wantErr {
				if err == nil {
					t.Fatalf("NewNetwork: got network %q, want an error", n.Name())
				}
				return
			}
			if err != nil {
				t.Fatalf("NewNetwork: %v", err)
			}
			wantSource := tt.wantSource
			if wantSource != "built-in" {
				wantSource = filepath.Join(confDir, wantSource)
			}
			if n.Name() != tt.wantName || n.Source() != wantSource {
				t.Errorf("network %q from %q, want %q from %q", n.Name(), n.Source(), tt.wantName, wantSource)
			}
		})
	}

	// A missing configuration directory means the built-in network; a bad subnet then fails.
	n, err := NewNetwork(NetworkConfig{ConfDir: filepath.Join(t.TempDir(), "none"), StateDir: t.TempDir(), Bridge: "x", Subnet: "10.0.0.0/8"})
	if err != nil || n.Source() != "built-in" {
		t.Errorf("missing conf dir: got %v, %v; want the built-in network", n, err)
	}
	if _, err := NewNetwork(NetworkConfig{StateDir: t.TempDir(), Bridge: "x", Subnet: "bad"}); err == nil {
		t.Error("built-in network with a bad subnet: no error")
	}
}

func TestRuntimeConf(t *testing.T) {
	n := &Network{}
	a := Attachment{ID: "id1", NetNS: "/run/netns/p", Namespace: "ns", Name: "web", UID: "u1"}
	rc := n.runtimeConf(a, "eth0")
	if rc.ContainerID != "id1" || rc.NetNS != "/run/netns/p" || rc.IfName != "eth0" {
		t.Errorf("runtime conf %+v", rc)
	}
	wantArgs := [][2]string{
		{"IgnoreUnknown", "1"},
		{"K8S_POD_NAMESPACE", "ns"},
		{"K8S_POD_NAME", "web"},
		{"K8S_POD_INFRA_CONTAINER_ID", "id1"},
		{"K8S_POD_UID", "u1"},
	}
	if !reflect.DeepEqual(rc.Args, wantArgs) {
		t.Errorf("args %v, want %v", rc.Args, wantArgs)
	}
	if rc.CapabilityArgs != nil {
		t.Errorf("capability args %v without ports, want none", rc.CapabilityArgs)
	}
	a.Ports = []Port{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}
	rc = n.runtimeConf(a, "eth0")
	if got, ok := rc.CapabilityArgs["portMappings"].([]Port); !ok || !reflect.DeepEqual(got, a.Ports) {
		t.Errorf("portMappings %v, want %v", rc.CapabilityArgs["portMappings"], a.Ports)
	}
	b, err := json.Marshal(a.Ports)
	if err != nil {
		t.Fatal(err)
	}
	if want := `[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]`; string(b) != want {
		t.Errorf("ports JSON %s, want %s (the portmap plugin's field names)", b, want)
	}
}
