//go:build !linux

package reclaim

// dropExecutablePages does nothing off Linux.
func dropExecutablePages() error { return nil }
