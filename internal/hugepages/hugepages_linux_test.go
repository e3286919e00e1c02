//go:build linux

package hugepages

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// needMadvise skips the test unless the kernel's THP mode is madvise: in
// "always" there is no flag to see, in "never" nothing to do. The tests
// never change the mode.
func needMadvise(t *testing.T) {
	t.Helper()
	mode, err := Mode()
	if err != nil {
		t.Skipf("no THP mode: %v", err)
	}
	if mode != ModeMadvise {
		t.Skipf("THP mode is %q, not madvise", mode)
	}
}

// smapsEntry returns the /proc/self/smaps lines of the mapping that holds
// addr.
func smapsEntry(t *testing.T, addr uint64) map[string]string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var entry map[string]string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(f[0], "-"); ok && !strings.HasSuffix(f[0], ":") {
			// A mapping's first line: its range, permissions, ...
			if entry != nil {
				return entry
			}
			l, err1 := strconv.ParseUint(lo, 16, 64)
			h, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 == nil && err2 == nil && l <= addr && addr < h {
				entry = map[string]string{"range": f[0]}
			}
			continue
		}
		if entry != nil {
			key, val, _ := strings.Cut(line, ":")
			entry[key] = strings.TrimSpace(val)
		}
	}
	if entry == nil {
		t.Fatalf("no mapping in /proc/self/smaps holds %#x", addr)
	}
	return entry
}

func hasFlag(entry map[string]string, flag string) bool {
	for _, f := range strings.Fields(entry["VmFlags"]) {
		if f == flag {
			return true
		}
	}
	return false
}

// touched returns a slice of n bytes, every page of it written.
func touched(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 4096 {
		b[i] = 1
	}
	return b
}

// interior is the huge-page-aligned interior of b.
func interior(b []byte) span {
	p := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
	return span{alignUp(p, pmdSize()), alignDown(p+uint64(len(b)), pmdSize())}
}

// TestAdviseHeap: after Advise, the heap mapping that holds a large slice
// has the huge page flag ("hg" in VmFlags), and a second Advise finds
// nothing new to advise.
func TestAdviseHeap(t *testing.T) {
	needMadvise(t)
	b := touched(64 << 20)
	in := interior(b)
	mid := in.lo + (in.hi-in.lo)/2
	// An earlier test (or -count) may have advised part of the slice's
	// memory already; what is not advised must not have the flag.
	proc.mu.Lock()
	var toAdvise int64
	for _, s := range proc.advised.missing(in) {
		toAdvise += int64(s.hi - s.lo)
	}
	midNew := len(proc.advised.missing(span{alignDown(mid, pmdSize()), alignDown(mid, pmdSize()) + pmdSize()})) > 0
	proc.mu.Unlock()
	if before := smapsEntry(t, mid); hasFlag(before, "hg") && midNew {
		t.Fatalf("the slice's mapping %s has the hg flag before any advice: %s", before["range"], before["VmFlags"])
	}

	st, err := Advise(false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first call: %+v", st)
	if st.Mode != ModeMadvise || st.Mappings == 0 || st.CollapsedBytes != 0 {
		t.Errorf("first call: %+v", st)
	}
	if st.AdvisedBytes < toAdvise {
		t.Errorf("first call advised %d bytes, less than the %d of the slice not advised before", st.AdvisedBytes, toAdvise)
	}
	if after := smapsEntry(t, mid); !hasFlag(after, "hg") {
		t.Errorf("after Advise the slice's mapping %s has no hg flag: %s", after["range"], after["VmFlags"])
	}
	if st.TotalBytes < int64(in.hi-in.lo) {
		t.Errorf("total advised %d, less than the slice's %d", st.TotalBytes, in.hi-in.lo)
	}

	// The second call gives no advice to what the first advised (and is
	// still mapped); in a quiet process it advises nothing at all, but
	// the race detector's runtime maps memory of its own meanwhile.
	proc.mu.Lock()
	advised := slices.Clone(proc.advised)
	sys := proc.madvise
	var again []span
	proc.madvise = func(lo, hi uint64, a advice) error {
		if m := advised.missing(span{lo, hi}); a == adviceHugePage && (len(m) != 1 || m[0] != span{lo, hi}) {
			again = append(again, span{lo, hi})
		}
		return sys(lo, hi, a)
	}
	proc.mu.Unlock()
	defer func() {
		proc.mu.Lock()
		proc.madvise = sys
		proc.mu.Unlock()
	}()
	st2, err := Advise(false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second call: %+v", st2)
	if len(again) > 0 {
		t.Errorf("second call advised %d bytes, ranges advised by the first call again: %x", st2.AdvisedBytes, again)
	}
	if st2.AdvisedBytes != 0 {
		t.Logf("second call advised %d new bytes (memory mapped since the first)", st2.AdvisedBytes)
	}
	runtime.KeepAlive(b)
}

// kernelAtLeast reports whether the running kernel is major.minor or
// later.
func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var maj, min int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &maj, &min); err != nil {
		return false
	}
	return maj > major || maj == major && min >= minor
}

// TestAdviseCollapse: with collapse, memory already written is backed by
// huge pages when Advise returns, and AnonHugeBytes sees it.
func TestAdviseCollapse(t *testing.T) {
	needMadvise(t)
	if !kernelAtLeast(6, 1) {
		t.Skip("MADV_COLLAPSE needs Linux 6.1")
	}
	b := touched(32 << 20)
	in := interior(b)
	// An earlier call (-count) may have collapsed this address range for
	// a slice since freed, whose huge pages the scavenger may have split:
	// forget it, so that this call collapses the range again.
	proc.mu.Lock()
	proc.collapsed.keepOnly([]span{{0, in.lo}, {in.hi, math.MaxUint64}})
	proc.mu.Unlock()
	if _, err := Advise(true); err != nil {
		t.Fatal(err)
	}
	e := smapsEntry(t, in.lo)
	kb, err := strconv.ParseInt(strings.TrimSuffix(e["AnonHugePages"], " kB"), 10, 64)
	if err != nil {
		t.Fatalf("AnonHugePages of %s: %q", e["range"], e["AnonHugePages"])
	}
	// Collapse is best effort (a huge page the kernel cannot find free
	// memory for stays as it was): half of the slice's huge pages, on a
	// machine with memory to spare, is a working collapse; none, or a few,
	// is not.
	if kb<<10 < int64(in.hi-in.lo)/2 {
		t.Errorf("mapping %s holding a written %d MiB slice: AnonHugePages %d kB after collapse, want at least %d kB",
			e["range"], len(b)>>20, kb, (in.hi-in.lo)>>11)
	}
	total, err := AnonHugeBytes()
	if err != nil {
		t.Fatal(err)
	}
	if total < kb<<10 {
		t.Errorf("AnonHugeBytes = %d, less than one mapping's %d", total, kb<<10)
	}
	runtime.KeepAlive(b)
}
