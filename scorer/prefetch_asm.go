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
//go:noescape
func prefetch(p unsafe.Pointer) uint64

// prefetchLines is prefetch for every cache line of the n > 0 bytes at p.
//
//go:noescape
func prefetchLines(p unsafe.Pointer, n uintptr) uint64
