//go:build !unix

package probe

import "net"

// probeDialer returns a plain dialer where socket lingering cannot be set the Unix way.
func probeDialer() *net.Dialer { return &net.Dialer{} }
