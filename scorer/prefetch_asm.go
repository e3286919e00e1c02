//go:build amd64 || arm64

package scorer

import "unsafe"

// prefetch asks the CPU to bring the cache line at p into its caches and
// returns at once: unlike a load, a prefetch instruction does not hold up
// the instructions after it while the line is on its way, and never
// faults. Assembly, because Go has no prefetch intrinsic for user code;
// the call costs a couple of nanoseconds, far less than the miss it hides.
// It returns 0; the plain-Go version (prefetch_other.go) returns what it
// loaded, for the caller to keep.
//
// On amd64 the line goes to the second-level cache, not the first
// (PREFETCHT1, not PREFETCHT0): a level of the walk prefetches up to a few
// hundred lines at once, and bringing them all into the first-level cache
// was slower (RESULTS.md, session 14: BenchmarkApplyPrefetch 24 % faster
// with PREFETCHT1). Apply then reads them from the second-level cache, a
// dozen cycles away. arm64 keeps PLDL1KEEP: not measured.
//
//go:noescape
func prefetch(p unsafe.Pointer) uint64

// prefetchLines is prefetch for every cache line of the n > 0 bytes at p.
//
//go:noescape
func prefetchLines(p unsafe.Pointer, n uintptr) uint64
