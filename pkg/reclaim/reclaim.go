// Package reclaim gives memory the daemon holds but no longer uses back to the system, at the
// moments it knows it is idle: after start-up and after a burst of pod starts or stops.
//
// Two kinds of memory are returned:
//
//   - Free Go heap, which the runtime's background scavenger returns only slowly and not at all
//     where it lies among pages in use.
//   - Pages of the daemon's own executable. Go initialises every linked package at start-up
//     (about 600 here, spread over the whole binary), and the kernel maps file pages in 64 KiB
//     runs around each fault ("fault-around"), so nearly the whole 26 MB binary is mapped once
//     start-up is over, though a running daemon uses about half of it. Dropping the mappings
//     of the read-only parts leaves the pages in the page cache; the ones still used are mapped
//     again on their next use by a minor fault, without I/O. What stays mapped is what the
//     daemon runs.
package reclaim

import "runtime/debug"

// Release returns free heap and unmaps the executable's read-only pages. It is cheap enough to
// call after every burst (a garbage collection and one madvise per mapping) but not meant for
// a hot path: everything the daemon runs next faults its code back in. A kernel that refuses
// the madvise leaves the pages mapped, as they were before; nothing else depends on it.
func Release() {
	debug.FreeOSMemory()
	_ = dropExecutablePages()
}
