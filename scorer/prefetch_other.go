//go:build !amd64 && !arm64

package scorer

import "unsafe"

// prefetchSink keeps the loads that stand in for prefetch instructions on
// architectures without the assembly versions.
var prefetchSink uint64

// prefetch loads the byte at p: it waits for the line, unlike the
// assembly versions, but still overlaps the misses of a batch.
func prefetch(p unsafe.Pointer) { prefetchSink += uint64(*(*byte)(p)) }

// prefetchLines is prefetch for every cache line of the n > 0 bytes at p.
func prefetchLines(p unsafe.Pointer, n uintptr) { prefetchSink += lines(p, n) }

// lines loads a byte of every cache line of the n > 0 bytes at p.
func lines(p unsafe.Pointer, n uintptr) uint64 {
	acc := uint64(*(*byte)(p))
	for off := cacheLine - uintptr(p)&(cacheLine-1); off < n; off += cacheLine {
		acc += uint64(*(*byte)(unsafe.Add(p, off)))
	}
	return acc
}

const cacheLine = 64
