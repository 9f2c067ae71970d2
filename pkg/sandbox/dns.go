package sandbox

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// The kubelet's limits for a pod's resolv.conf.
const (
	maxNameservers = 3
	maxSearches    = 32
)

// ResolvConf builds a pod's /etc/resolv.conf from its dnsPolicy and dnsConfig, the way the
// kubelet does on a node without cluster DNS: ClusterFirst and ClusterFirstWithHostNet fall
// back to Default (the host's file), None starts empty, and dnsConfig's nameservers, searches
// and options are merged in.
func ResolvConf(policy corev1.DNSPolicy, cfg *corev1.PodDNSConfig, host []byte) []byte {
	var ns, search []string
	opts := map[string]string{}
	var order []string
	setOpt := func(name, value string) {
		if _, ok := opts[name]; !ok {
			order = append(order, name)
		}
		opts[name] = value
	}
	if policy != corev1.DNSNone {
		sc := bufio.NewScanner(bytes.NewReader(host))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
				continue
			}
			switch f[0] {
			case "nameserver":
				ns = append(ns, f[1])
			case "search", "domain":
				search = f[1:]
			case "options":
				for _, o := range f[1:] {
					name, value, _ := strings.Cut(o, ":")
					setOpt(name, value)
				}
			}
		}
	}
	if cfg != nil {
		ns = append(ns, cfg.Nameservers...)
		search = append(search, cfg.Searches...)
		for _, o := range cfg.Options {
			v := ""
			if o.Value != nil {
				v = *o.Value
			}
			setOpt(o.Name, v)
		}
	}
	ns = dedupe(ns, maxNameservers)
	search = dedupe(search, maxSearches)
	var b bytes.Buffer
	for _, n := range ns {
		fmt.Fprintf(&b, "nameserver %s\n", n)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(order) > 0 {
		var parts []string
		for _, name := range order {
			if v := opts[name]; v != "" {
				parts = append(parts, name+":"+v)
			} else {
				parts = append(parts, name)
			}
		}
		fmt.Fprintf(&b, "options %s\n", strings.Join(parts, " "))
	}
	return b.Bytes()
}

func dedupe(in []string, limit int) []string {
	var out []string
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}
