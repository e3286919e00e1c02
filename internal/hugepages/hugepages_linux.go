//go:build linux

package hugepages

import (
	"context"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// sysfsTHP is the kernel's THP settings directory.
const sysfsTHP = "/sys/kernel/mm/transparent_hugepage"

// proc is the advisor of this process's memory.
var proc = advisor{madvise: madvise}

var pmdSize = sync.OnceValue(func() uint64 { return readPMDSize(sysfsTHP) })

// Mode returns the kernel's THP mode for PMD-sized huge pages (2 MiB on
// amd64): ModeAlways, ModeMadvise or ModeNever, read from
// /sys/kernel/mm/transparent_hugepage/enabled (or, where the kernel has
// per-size settings and that of the PMD size is not "inherit", from
// hugepages-<size>kB/enabled). The error wraps errors.ErrUnsupported in
// a kernel without THP.
func Mode() (string, error) { return readMode(sysfsTHP) }

// Advise gives huge page advice to the process's private anonymous
// read-write mappings not advised by an earlier call, when the kernel's
// mode is ModeMadvise (otherwise it only reports the mode): MADV_HUGEPAGE
// on each mapping's huge-page-aligned interior and, with collapse,
// MADV_COLLAPSE, one huge page at a time, on the interiors not collapsed
// by an earlier call (best effort: where the kernel cannot, or has no
// MADV_COLLAPSE, before Linux 6.1, khugepaged collapses in its own time).
// Collapsing copies the pages already there: it takes about as long as
// copying the memory, in the calling goroutine.
// It goes on past an error and returns the first one with the Stats of
// what it did. It is safe for concurrent use.
func Advise(collapse bool) (Stats, error) {
	return advise(context.Background(), collapse)
}

// advise is Advise, collapsing until ctx is done.
func advise(ctx context.Context, collapse bool) (Stats, error) {
	mode, err := Mode()
	if err != nil {
		return Stats{}, err
	}
	if mode != ModeMadvise {
		return Stats{Mode: mode}, nil
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return Stats{Mode: mode}, fmt.Errorf("hugepages: %w", err)
	}
	st, err := proc.advise(ctx, maps, pmdSize(), collapse)
	st.Mode = mode
	return st, err
}

// madvise is the advisor's system call. The range comes from
// /proc/self/maps, not from a Go pointer: a range unmapped since it was
// read fails MADV_HUGEPAGE with ENOMEM (errGone), and advice on memory
// mapped there since is harmless. MADV_COLLAPSE fails with EINVAL for an
// empty huge page (and in kernels without it), EAGAIN for a busy one,
// ENOMEM where no huge page could be had, EBUSY where the cgroup's memory
// limit left no room for one: errNotCollapsed.
func madvise(lo, hi uint64, a advice) error {
	adv := unix.MADV_HUGEPAGE
	if a == adviceCollapse {
		adv = unix.MADV_COLLAPSE
	}
	_, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(lo), uintptr(hi-lo), uintptr(adv))
	switch {
	case e == 0:
		return nil
	case a == adviceHugePage && e == unix.ENOMEM:
		return errGone
	case a == adviceCollapse && (e == unix.EINVAL || e == unix.EAGAIN || e == unix.ENOMEM || e == unix.EBUSY):
		return errNotCollapsed
	}
	return e
}

// AnonHugeBytes returns how much of the process's anonymous memory is
// backed by huge pages: AnonHugePages of /proc/self/smaps_rollup (Linux
// 4.14 and later), in bytes. Reading it walks the process's page tables:
// fine for a metric scraped every few seconds, not for a loop.
func AnonHugeBytes() (int64, error) {
	data, err := os.ReadFile("/proc/self/smaps_rollup")
	if err != nil {
		return 0, fmt.Errorf("hugepages: %w", err)
	}
	return parseRollup(data)
}
