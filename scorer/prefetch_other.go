//go:build !amd64 && !arm64

package scorer

import "unsafe"

// prefetch loads the byte at p and returns it, for the caller to keep
// (Engine.sink) so that the load is not optimized away: it waits for the
// line, unlike the assembly versions, but still overlaps the misses of a
// batch. Each engine keeps its own sum: a shared one would be written by
// every partition's worker at once.
func prefetch(p unsafe.Pointer) uint64 { return uint64(*(*byte)(p)) }

// prefetchLines is prefetch for every cache line of the n > 0 bytes at p.
func prefetchLines(p unsafe.Pointer, n uintptr) uint64 { return lines(p, n) }

// lines loads a byte of every cache line of the n > 0 bytes at p.
func lines(p unsafe.Pointer, n uintptr) uint64 {
	acc := uint64(*(*byte)(p))
	for off := cacheLine - uintptr(p)&(cacheLine-1); off < n; off += cacheLine {
		acc += uint64(*(*byte)(unsafe.Add(p, off)))
	}
	return acc
}

const cacheLine = 64
