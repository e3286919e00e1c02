// Package hugepages backs the process's anonymous memory, the Go heap
// above all, with transparent huge pages (THP) on Linux when the kernel
// leaves them to madvise(2), and measures how much of it they back.
//
// # Why
//
// The scorer is bound by TLB misses: a partition's 150k leads are small
// objects scattered over a heap of a few hundred MB, and with 4 KiB pages
// nearly every lead touched is a TLB miss and a page walk. A 2 MiB page
// covers 512 times as much memory per TLB entry. With the kernel's THP
// mode at "madvise" (a common default, and this project's machines'),
// only memory marked with madvise(MADV_HUGEPAGE) gets huge pages, and the
// Go runtime marks none of its heap: it did in Go 1.21.0 and stopped in
// 1.21.4 (golang/go#61718, #64342), since when it only keeps its
// scavenger friendly to huge pages. So the heap is all 4 KiB pages.
//
// Measured (ns/op, one core, 2026-11-25; DESIGN.md has the runs): with
// THP "always" system-wide, BenchmarkApplySynth 1002-1007 -> 847-895 and
// BenchmarkDecodeApply 1178-1189 -> 1060-1076; with this package's
// advice, THP left at "madvise", BenchmarkApplyPrefetch (100k leads)
// 410-420 -> 381-393 and BenchmarkDecodeApply 1134-1175 -> 1066-1141.
// leadscore gives the advice only with --huge-pages (off by default): see
// the trade-offs below.
//
// # What it does
//
// [Advise] reads /proc/self/maps and, for every private anonymous
// read-write mapping (no file, no [stack], [heap], [vvar] or other
// special mapping; named anonymous ones, "[anon: Go: heap]" where the
// kernel names mappings, included), calls madvise(MADV_HUGEPAGE) on the
// mapping's interior aligned to the huge page size (2 MiB on amd64 and on
// arm64 with 4 KiB pages, read from hpage_pmd_size); with collapse, also
// MADV_COLLAPSE (Linux 6.1 and later), which turns the pages already
// there into huge pages at once instead of waiting for khugepaged (which
// scans 16 MiB every 10 s by default). Collapse goes one huge page at a
// time: over a range, the kernel stops at the first empty huge page it
// meets (seen on Linux 6.18: a 16 MiB range with an empty 2 MiB page in
// its middle had 4 MiB collapsed), and the heap has empty ones wherever
// it was never touched or the scavenger released memory. Advise does
// all this only in "madvise" mode: in "always" every anonymous mapping
// already gets huge pages, in "never" none can.
//
// The runtime maps its heap as it grows, a few MiB at a time, with
// mmap(MAP_FIXED) over address space it reserved, and every such mapping
// is a new VMA without the huge page flag: advice must be given again as
// the heap grows, which is what [Keep] does. Advise remembers the address
// ranges it advised (and collapsed), so that a later call makes system
// calls for new ranges only; the kernel merges adjacent mappings with
// equal flags, so ranges, not mappings, are what it compares. A range
// that is no longer mapped is forgotten, so that it is advised again if
// it is mapped again.
//
// # Trade-offs
//
//   - Memory: a huge page is allocated whole. A first fault in an empty
//     2 MiB region of an advised range allocates all of it, and
//     khugepaged (with its default max_ptes_none of 511) and
//     MADV_COLLAPSE fill in the 4 KiB holes of a partly used region,
//     including the ones the Go scavenger returned to the kernel; the
//     resident size can grow by up to 2 MiB per partly used region. This
//     includes the runtime's sparse metadata and, in a binary with cgo,
//     the stacks of C threads, which are anonymous mappings too.
//   - Latency: with the kernel's THP defrag setting at "madvise" (the
//     default), a page fault in an advised range that finds no free huge
//     page may compact or reclaim memory before it returns
//     (golang/go#61718 saw stalls of the allocating goroutine).
//     MADV_COLLAPSE is synchronous and may do the same, in the goroutine
//     that calls Advise ([Keep]'s), not in the scorer's workers; but the
//     kernel copies each huge page holding the process's memory map lock
//     for writing, so a page fault or mmap elsewhere in the process
//     meanwhile waits for that one copy.
//   - Mappings: each advised mapping is split into at most three (the
//     unaligned head and tail keep 4 KiB pages) and adjacent advised
//     ranges merge again, so the process's mapping count stays small
//     (unlike advice per span of the heap, which can exhaust
//     vm.max_map_count).
//   - The kernel has the last word: "never" (in
//     /sys/kernel/mm/transparent_hugepage/enabled, or for 2 MiB pages in
//     its hugepages-2048kB/enabled) disables all of this, and this
//     package never changes those settings.
//
// [AnonHugeBytes] reports the process's memory backed by huge pages
// (AnonHugePages of /proc/self/smaps_rollup), for a metric. On other
// systems than Linux every function reports [errors.ErrUnsupported] and
// Keep logs it once and returns.
package hugepages
