package hugepages

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The kernel's THP modes, as Mode reports them.
const (
	ModeAlways  = "always"
	ModeMadvise = "madvise"
	ModeNever   = "never"
)

// Stats says what one call of Advise found and did.
type Stats struct {
	// Mode is the kernel's THP mode for huge pages of the PMD size:
	// ModeAlways, ModeMadvise or ModeNever. Advise makes system calls
	// only in ModeMadvise.
	Mode string
	// Mappings is the number of private anonymous read-write mappings
	// in /proc/self/maps (0 unless Mode is ModeMadvise).
	Mappings int
	// AdvisedBytes is what this call advised MADV_HUGEPAGE: ranges not
	// advised by an earlier call.
	AdvisedBytes int64
	// CollapsedBytes is what this call's MADV_COLLAPSE left backed by
	// huge pages (including huge pages already there), of the ranges not
	// collapsed by an earlier call.
	CollapsedBytes int64
	// TotalBytes is what is advised, by this call and earlier ones, and
	// still mapped.
	TotalBytes int64
}

// bracketed returns the word in brackets of a sysfs setting such as
// "always [madvise] never".
func bracketed(s string) (string, error) {
	i := strings.IndexByte(s, '[')
	j := strings.IndexByte(s, ']')
	if i < 0 || j < i+2 {
		return "", fmt.Errorf("no [selected] word in %q", strings.TrimSpace(s))
	}
	return s[i+1 : j], nil
}

// readMode reads the THP mode for PMD-sized pages from dir: the setting
// of hugepages-<size>kB/enabled when the kernel has per-size settings
// (Linux 6.8 and later) and that one is not "inherit", else the global
// setting in enabled.
func readMode(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "enabled"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("hugepages: %w: no transparent huge pages in this kernel (%w)", errors.ErrUnsupported, err)
		}
		return "", fmt.Errorf("hugepages: %w", err)
	}
	mode, err := bracketed(string(data))
	if err != nil {
		return "", fmt.Errorf("hugepages: %s: %w", filepath.Join(dir, "enabled"), err)
	}
	per := filepath.Join(dir, fmt.Sprintf("hugepages-%dkB", readPMDSize(dir)>>10), "enabled")
	if data, err := os.ReadFile(per); err == nil {
		m, err := bracketed(string(data))
		if err != nil {
			return "", fmt.Errorf("hugepages: %s: %w", per, err)
		}
		if m != "inherit" {
			mode = m
		}
	}
	switch mode {
	case ModeAlways, ModeMadvise, ModeNever:
		return mode, nil
	}
	return "", fmt.Errorf("hugepages: unknown THP mode %q", mode)
}

// defaultPMDSize is the huge page size when the kernel does not say.
const defaultPMDSize = 2 << 20

// readPMDSize reads the size of a PMD-mapped huge page from dir
// (hpage_pmd_size): 2 MiB on amd64, 2 MiB, 32 MiB or 512 MiB on arm64
// with 4, 16 or 64 KiB base pages.
func readPMDSize(dir string) uint64 {
	data, err := os.ReadFile(filepath.Join(dir, "hpage_pmd_size"))
	if err != nil {
		return defaultPMDSize
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil || n == 0 || n&(n-1) != 0 {
		return defaultPMDSize
	}
	return n
}

// span is the address range [lo, hi).
type span struct{ lo, hi uint64 }

// parseMaps returns the private anonymous read-write mappings of a
// /proc/<pid>/maps text, in its order (ascending addresses). A line reads
//
//	7f8db2a00000-7f8db4a00000 rw-p 00000000 00:00 0          [anon: Go: heap]
//
// address range, permissions, offset, device, inode and an optional name
// (which may hold spaces). Anonymous means inode 0 and no name, or a name
// given with PR_SET_VMA_ANON_NAME ("[anon:...]"); [stack], [heap], [vvar]
// and the like are left out.
func parseMaps(data []byte) ([]span, error) {
	var out []span
	for line := range bytes.Lines(data) {
		f, rest := nextField(line)
		if len(f) == 0 {
			continue
		}
		addr := f
		perms, rest := nextField(rest)
		_, rest = nextField(rest) // offset
		_, rest = nextField(rest) // device
		inode, rest := nextField(rest)
		name := string(bytes.TrimSpace(rest))
		a, b, ok := bytes.Cut(addr, []byte{'-'})
		if !ok || len(inode) == 0 {
			return nil, fmt.Errorf("hugepages: maps: bad line %q", bytes.TrimSpace(line))
		}
		lo, err1 := strconv.ParseUint(string(a), 16, 64)
		hi, err2 := strconv.ParseUint(string(b), 16, 64)
		if err1 != nil || err2 != nil || hi < lo {
			return nil, fmt.Errorf("hugepages: maps: bad address range in %q", bytes.TrimSpace(line))
		}
		if len(perms) != 4 || perms[0] != 'r' || perms[1] != 'w' || perms[3] != 'p' {
			continue
		}
		if string(inode) != "0" || (name != "" && !strings.HasPrefix(name, "[anon:")) {
			continue
		}
		out = append(out, span{lo, hi})
	}
	return out, nil
}

// nextField returns the first space-separated field of b and what
// follows it.
func nextField(b []byte) (field, rest []byte) {
	b = bytes.TrimLeft(b, " \t")
	i := bytes.IndexAny(b, " \t\n")
	if i < 0 {
		return b, nil
	}
	return b[:i], b[i:]
}

// parseRollup returns AnonHugePages, in bytes, of a
// /proc/<pid>/smaps_rollup text ("AnonHugePages:    2048 kB").
func parseRollup(data []byte) (int64, error) {
	for line := range bytes.Lines(data) {
		rest, ok := bytes.CutPrefix(line, []byte("AnonHugePages:"))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("hugepages: smaps_rollup: bad line %q", bytes.TrimSpace(line))
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("hugepages: smaps_rollup: bad line %q", bytes.TrimSpace(line))
		}
		return n << 10, nil
	}
	return 0, errors.New("hugepages: smaps_rollup: no AnonHugePages line")
}

// spanSet is a set of addresses: sorted, disjoint, non-adjacent spans.
type spanSet []span

// missing returns the parts of s not in the set, in order.
func (set spanSet) missing(s span) []span {
	var out []span
	lo := s.lo
	// The first span that ends after lo.
	i, _ := slices.BinarySearchFunc(set, lo, func(x span, a uint64) int {
		if x.hi <= a {
			return -1
		}
		return 1
	})
	for ; i < len(set) && lo < s.hi; i++ {
		x := set[i]
		if x.lo >= s.hi {
			break
		}
		if x.lo > lo {
			out = append(out, span{lo, x.lo})
		}
		lo = max(lo, x.hi)
	}
	if lo < s.hi {
		out = append(out, span{lo, s.hi})
	}
	return out
}

// add puts s in the set.
func (set *spanSet) add(s span) {
	if s.lo >= s.hi {
		return
	}
	old := *set
	// The spans that touch or overlap s: [i, j).
	i, _ := slices.BinarySearchFunc(old, s.lo, func(x span, a uint64) int {
		if x.hi < a {
			return -1
		}
		return 1
	})
	j := i
	for j < len(old) && old[j].lo <= s.hi {
		s.lo = min(s.lo, old[j].lo)
		s.hi = max(s.hi, old[j].hi)
		j++
	}
	*set = slices.Replace(old, i, j, s)
}

// keepOnly removes from the set what is not in the sorted, disjoint
// spans of keep.
func (set *spanSet) keepOnly(keep []span) {
	var out spanSet
	old := *set
	i := 0
	for _, k := range keep {
		for i < len(old) && old[i].hi <= k.lo {
			i++
		}
		for j := i; j < len(old) && old[j].lo < k.hi; j++ {
			out.add(span{max(old[j].lo, k.lo), min(old[j].hi, k.hi)})
		}
	}
	*set = out
}

// bytes is the size of the set.
func (set spanSet) bytes() int64 {
	var n int64
	for _, s := range set {
		n += int64(s.hi - s.lo)
	}
	return n
}

// advice is what to ask of madvise.
type advice int

const (
	adviceHugePage advice = iota // MADV_HUGEPAGE
	adviceCollapse               // MADV_COLLAPSE
)

// Errors of an advisor's madvise that are not failures.
var (
	// errGone is a range no longer (all) mapped: it is not remembered,
	// and is advised again if it is still seen in a later call.
	errGone = errors.New("hugepages: range no longer mapped")
	// errNotCollapsed is a huge page the kernel did not collapse, for a
	// reason to ignore (empty, busy, no free huge page, the cgroup's
	// memory limit reached, no MADV_COLLAPSE in the kernel): collapse is
	// best effort.
	errNotCollapsed = errors.New("hugepages: not collapsed")
)

// advisor gives huge page advice to new ranges and remembers what it
// advised. The process has one (proc).
type advisor struct {
	mu        sync.Mutex
	advised   spanSet
	collapsed spanSet
	// madvise gives advice a on [lo, hi) (one huge page for a collapse):
	// nil on success, errGone when the range is not mapped any more,
	// errNotCollapsed for a collapse the kernel did not make.
	madvise func(lo, hi uint64, a advice) error
}

// advise advises the interiors, aligned to pageSize, of maps's private
// anonymous read-write mappings that are not advised yet and, with
// collapse, collapses those not collapsed yet, until ctx is done (what
// it did not collapse then is collapsed by a later call). It goes on past
// an error, and returns the first one.
func (ad *advisor) advise(ctx context.Context, maps []byte, pageSize uint64, collapse bool) (Stats, error) {
	mappings, err := parseMaps(maps)
	if err != nil {
		return Stats{}, err
	}
	ad.mu.Lock()
	defer ad.mu.Unlock()
	st := Stats{Mappings: len(mappings)}
	var firstErr error
	interiors := make([]span, 0, len(mappings))
	for _, m := range mappings {
		in := span{alignUp(m.lo, pageSize), alignDown(m.hi, pageSize)}
		if in.lo >= in.hi {
			continue
		}
		interiors = append(interiors, in)
		ok := true
		for _, s := range ad.advised.missing(in) {
			err := ad.madvise(s.lo, s.hi, adviceHugePage)
			if err == nil {
				ad.advised.add(s)
				st.AdvisedBytes += int64(s.hi - s.lo)
				continue
			}
			ok = false
			if !errors.Is(err, errGone) && firstErr == nil {
				firstErr = fmt.Errorf("hugepages: madvise(%#x, %d, MADV_HUGEPAGE): %w", s.lo, s.hi-s.lo, err)
			}
		}
		if !collapse || !ok {
			continue // a mapping whose advice failed is collapsed once advised
		}
		// One huge page at a time: the kernel stops a range's collapse at
		// the first huge page it finds empty (seen on Linux 6.18), and
		// the heap has empty ones wherever the scavenger released memory.
		for _, s := range ad.collapsed.missing(in) {
			gone := false
			for x := s.lo; x < s.hi && !gone; x += pageSize {
				if ctx.Err() != nil {
					gone = true // not collapsed: next time
					break
				}
				err := ad.madvise(x, x+pageSize, adviceCollapse)
				switch {
				case err == nil:
					st.CollapsedBytes += int64(pageSize)
				case errors.Is(err, errNotCollapsed):
				case errors.Is(err, errGone):
					gone = true
				case firstErr == nil:
					firstErr = fmt.Errorf("hugepages: madvise(%#x, %d, MADV_COLLAPSE): %w", x, pageSize, err)
				}
			}
			// Remembered even where the kernel did not collapse (best
			// effort): khugepaged collapses advised ranges in its own
			// time.
			if !gone {
				ad.collapsed.add(s)
			}
		}
	}
	// Forget what is not mapped any more: if it is mapped again, it is a
	// new mapping without the flag. Interiors of mappings in address
	// order are sorted and disjoint.
	ad.advised.keepOnly(interiors)
	ad.collapsed.keepOnly(interiors)
	st.TotalBytes = ad.advised.bytes()
	return st, firstErr
}

func alignUp(x, a uint64) uint64   { return (x + a - 1) &^ (a - 1) }
func alignDown(x, a uint64) uint64 { return x &^ (a - 1) }

// Keep advises the process's memory at once (Advise with collapse) and
// then every interval until ctx is done, so that the heap's new mappings
// get huge pages as it grows; new ranges are collapsed once, when first
// seen. It logs one line at the start (Info) with the kernel's mode and
// what was advised, a line when the mode changes, newly advised memory
// at Debug, and the first error at Warn (later ones at Debug). It
// returns at once, after its line, where huge pages are not supported;
// otherwise when ctx is done, cutting a collapse short (collapsing
// copies memory: about half a second for 200 MiB on this project's
// machines). Advice given stays in force after Keep returns.
func Keep(ctx context.Context, interval time.Duration, log *slog.Logger) {
	start := time.Now()
	st, err := advise(ctx, true)
	took := time.Since(start).Round(time.Millisecond)
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		log.Info("huge pages: not supported here", "reason", err.Error())
		return
	case st.Mode == "" && err != nil:
		log.Warn("huge pages: cannot read the kernel's mode", "err", err)
	default:
		logStart(log, st, took)
		if err != nil {
			log.Warn("huge pages: advice failed", "err", err)
		}
	}
	warned := err != nil
	mode := st.Mode
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		st, err := advise(ctx, true)
		took := time.Since(start).Round(time.Millisecond)
		if st.Mode != mode && st.Mode != "" {
			logStart(log, st, took)
			mode = st.Mode
		} else if st.AdvisedBytes > 0 || st.CollapsedBytes > 0 {
			log.Debug("huge pages: advised new memory", "advised_mib", st.AdvisedBytes>>20,
				"collapsed_mib", st.CollapsedBytes>>20, "total_mib", st.TotalBytes>>20, "mappings", st.Mappings, "took", took)
		}
		if err != nil {
			if warned {
				log.Debug("huge pages: advice failed", "err", err)
			} else {
				log.Warn("huge pages: advice failed", "err", err)
				warned = true
			}
		}
	}
}

func logStart(log *slog.Logger, st Stats, took time.Duration) {
	switch st.Mode {
	case ModeMadvise:
		log.Info("huge pages: advised the process's anonymous memory", "kernel_mode", st.Mode,
			"advised_mib", st.AdvisedBytes>>20, "collapsed_mib", st.CollapsedBytes>>20, "mappings", st.Mappings, "took", took)
	case ModeAlways:
		log.Info("huge pages: the kernel gives them to all anonymous memory, no advice needed", "kernel_mode", st.Mode)
	case ModeNever:
		log.Info("huge pages: not available", "kernel_mode", st.Mode)
	}
}
