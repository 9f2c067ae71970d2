package sandbox

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
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
		bridge, subnet, dataDir string
	}{
		{"minipod0", "10.88.0.0/16", "/var/lib/minipod/networks"},
		{"br-test", "192.168.100.0/24", "/tmp/x"},
		{"br6", "fd00:88::/64", "/d"},
	}
	for _, tt := range tests {
		b, err := BuiltinConfList(tt.bridge, tt.subnet, tt.dataDir)
		if err != nil {
			t.Errorf("BuiltinConfList(%q, %q, %q): %v", tt.bridge, tt.subnet, tt.dataDir, err)
			continue
		}
		if !json.Valid(b) {
			t.Errorf("BuiltinConfList(%q): invalid JSON %s", tt.subnet, b)
			continue
		}
		var c builtinConf
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		if c.CNIVersion != "1.0.0" || c.Name != "minipod" || len(c.Plugins) != 2 {
			t.Fatalf("conflist %s: want cniVersion 1.0.0, name minipod, two plugins", b)
		}
		br, pm := c.Plugins[0], c.Plugins[1]
		if br.Type != "bridge" || br.Bridge != tt.bridge || !br.IsGateway || !br.IPMasq || !br.HairpinMode {
			t.Errorf("bridge plugin %+v, want type bridge, bridge %q, gateway, masquerade, hairpin", br, tt.bridge)
		}
		if br.IPAM == nil {
			t.Fatalf("bridge plugin without ipam: %s", b)
		}
		wantRanges := [][]map[string]string{{{"subnet": tt.subnet}}}
		if br.IPAM.Type != "host-local" || !reflect.DeepEqual(br.IPAM.Ranges, wantRanges) || br.IPAM.DataDir != tt.dataDir {
			t.Errorf("ipam %+v, want host-local, ranges %v, dataDir %q", *br.IPAM, wantRanges, tt.dataDir)
		}
		if len(br.IPAM.Routes) == 0 {
			t.Errorf("ipam has no default route")
		}
		if pm.Type != "portmap" || !pm.Capabilities["portMappings"] {
			t.Errorf("second plugin %+v, want portmap with the portMappings capability", pm)
		}
		// libcni accepts it.
		list, err := libcni.ConfListFromBytes(b)
		if err != nil {
			t.Errorf("libcni refuses the built-in conflist: %v", err)
		} else if list.Name != "minipod" || len(list.Plugins) != 2 {
			t.Errorf("libcni: name %q, %d plugins", list.Name, len(list.Plugins))
		}
	}
}

func TestBuiltinConfListBadSubnet(t *testing.T) {
	for _, subnet := range []string{"", "10.88.0.0", "10.88.0.0/33", "not-a-cidr", "10.88.0.0/16 ", "300.1.0.0/16"} {
		if b, err := BuiltinConfList("minipod0", subnet, "/d"); err == nil {
			t.Errorf("BuiltinConfList(subnet %q): got %s, want an error", subnet, b)
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
