//go:build !linux

package reclaim

// DropExecutablePages does nothing off Linux.
func DropExecutablePages() error { return nil }
