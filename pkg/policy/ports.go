package policy

import (
	"fmt"
	"strconv"
	"strings"
)

// portRange is one entry of allowedHostPorts: a port ("443") or an inclusive range of ports
// ("8000-8999").
type portRange struct{ lo, hi int }

// parsePortRange reads one entry of allowedHostPorts.
func parsePortRange(s string) (portRange, error) {
	port := func(v string) (int, error) {
		n, err := strconv.Atoi(v)
		if err != nil || v != strconv.Itoa(n) {
			return 0, fmt.Errorf("%q is not a port (1-65535) or a range of ports like \"8000-8999\"", s)
		}
		if n < 1 || n > 65535 {
			return 0, fmt.Errorf("%q: port %d is not between 1 and 65535", s, n)
		}
		return n, nil
	}
	first, last, isRange := strings.Cut(s, "-")
	lo, err := port(first)
	if err != nil {
		return portRange{}, err
	}
	hi := lo
	if isRange {
		if hi, err = port(last); err != nil {
			return portRange{}, err
		}
		if hi < lo {
			return portRange{}, fmt.Errorf("%q: the range ends before it starts (write \"%d-%d\")", s, hi, lo)
		}
	}
	return portRange{lo, hi}, nil
}

// portAllowed reports whether port is in one of the ranges. An entry that does not parse
// allows nothing (Validate refuses it when the policy is read).
func portAllowed(ranges []string, port int32) bool {
	for _, s := range ranges {
		if r, err := parsePortRange(s); err == nil && r.lo <= int(port) && int(port) <= r.hi {
			return true
		}
	}
	return false
}
