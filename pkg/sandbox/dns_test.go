package sandbox

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestResolvConf(t *testing.T) {
	host := []byte("# generated\nnameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch example.org\noptions edns0 ndots:1\n")
	two := "2"
	for _, tc := range []struct {
		name   string
		policy corev1.DNSPolicy
		cfg    *corev1.PodDNSConfig
		want   string
	}{
		{"cluster first falls back to the host's", corev1.DNSClusterFirst, nil,
			"nameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch example.org\noptions edns0 ndots:1\n"},
		{"default with dnsConfig merged", corev1.DNSDefault, &corev1.PodDNSConfig{
			Nameservers: []string{"192.0.2.54", "198.51.100.1", "198.51.100.2"},
			Searches:    []string{"svc.local"},
			Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: &two}, {Name: "rotate"}},
		}, "nameserver 192.0.2.53\nnameserver 192.0.2.54\nnameserver 198.51.100.1\nsearch example.org svc.local\noptions edns0 ndots:2 rotate\n"},
		{"none uses dnsConfig only", corev1.DNSNone, &corev1.PodDNSConfig{Nameservers: []string{"198.51.100.1"}, Searches: []string{"a.example"}},
			"nameserver 198.51.100.1\nsearch a.example\n"},
		{"none without dnsConfig is empty", corev1.DNSNone, nil, ""},
	} {
		if got := string(ResolvConf(tc.policy, tc.cfg, host)); got != tc.want {
			t.Errorf("%s:\ngot  %q\nwant %q", tc.name, got, tc.want)
		}
	}
}
