package hugepages

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseMaps(t *testing.T) {
	maps := `00400000-004ac000 r-xp 00000000 fe:00 10010634                           /usr/bin/leadscore
0058f000-0059a000 rw-p 0018f000 fe:00 10010634                           /usr/bin/leadscore
0059a000-005d0000 rw-p 00000000 00:00 0 
3d2d80000000-3d2d82000000 ---p 00000000 00:00 0 
3d2d82000000-3d2d86400000 rw-p 00000000 00:00 0 
7f0000000000-7f0000400000 rw-p 00000000 00:00 0                          [anon: Go: heap]
7f0000400000-7f0000600000 rw-s 00000000 00:01 1234                       /dev/zero (deleted)
7f0000600000-7f0000800000 rw-s 00000000 00:01 1235                       [anon_shmem:shared]
7f0000800000-7f0000a00000 rwxp 00000000 00:00 0 
7f0000a00000-7f0000c00000 r--p 00000000 00:00 0 
7f0000c00000-7f0000e00000 rw-p 00000000 00:00 0                          [heap]
7f8df94ba000-7f8df94be000 r--p 00000000 00:00 0                          [vvar]
7f8df94c0000-7f8df94c2000 r-xp 00000000 00:00 0                          [vdso]
7fff6c006000-7fff6c027000 rw-p 00000000 00:00 0                          [stack]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
`
	got, err := parseMaps([]byte(maps))
	if err != nil {
		t.Fatal(err)
	}
	want := []span{
		{0x0059a000, 0x005d0000},
		{0x3d2d82000000, 0x3d2d86400000},
		{0x7f0000000000, 0x7f0000400000},
		{0x7f0000800000, 0x7f0000a00000},
	}
	if !slices.Equal(got, want) {
		t.Errorf("parseMaps:\n got %x\nwant %x", got, want)
	}
	for _, bad := range []string{"zzz-1000 rw-p 00000000 00:00 0\n", "2000-1000 rw-p 00000000 00:00 0\n", "1000 rw-p\n"} {
		if _, err := parseMaps([]byte(bad)); err == nil {
			t.Errorf("parseMaps(%q): no error", bad)
		}
	}
}

func TestParseRollup(t *testing.T) {
	rollup := `00400000-7fff6c027000 ---p 00000000 00:00 0                              [rollup]
Rss:               68060 kB
Anonymous:         66444 kB
AnonHugePages:     61440 kB
ShmemPmdMapped:        0 kB
`
	if n, err := parseRollup([]byte(rollup)); err != nil || n != 61440<<10 {
		t.Errorf("parseRollup = %d, %v; want %d", n, err, 61440<<10)
	}
	for _, bad := range []string{"Rss: 1 kB\n", "AnonHugePages: 12 MB\n", "AnonHugePages: x kB\n", ""} {
		if _, err := parseRollup([]byte(bad)); err == nil {
			t.Errorf("parseRollup(%q): no error", bad)
		}
	}
}

func TestReadMode(t *testing.T) {
	cases := []struct {
		name    string
		files   map[string]string
		want    string
		wantErr string
	}{
		{"madvise", map[string]string{"enabled": "always [madvise] never\n"}, ModeMadvise, ""},
		{"always", map[string]string{"enabled": "[always] madvise never\n"}, ModeAlways, ""},
		{"never", map[string]string{"enabled": "always madvise [never]\n"}, ModeNever, ""},
		{"per-size inherits", map[string]string{
			"enabled": "always [madvise] never\n", "hpage_pmd_size": "2097152\n",
			"hugepages-2048kB/enabled": "always [inherit] madvise never\n",
		}, ModeMadvise, ""},
		{"per-size wins", map[string]string{
			"enabled": "always madvise [never]\n", "hpage_pmd_size": "2097152\n",
			"hugepages-2048kB/enabled": "always inherit [madvise] never\n",
			"hugepages-64kB/enabled":   "[always] inherit madvise never\n",
		}, ModeMadvise, ""},
		{"per-size of the PMD size", map[string]string{
			"enabled": "always [madvise] never\n", "hpage_pmd_size": "33554432\n",
			"hugepages-2048kB/enabled":  "[always] inherit madvise never\n",
			"hugepages-32768kB/enabled": "always inherit madvise [never]\n",
		}, ModeNever, ""},
		{"no THP", map[string]string{}, "", "no transparent huge pages"},
		{"no brackets", map[string]string{"enabled": "always madvise never\n"}, "", "no [selected] word"},
		{"unknown", map[string]string{"enabled": "always [sometimes] never\n"}, "", `unknown THP mode "sometimes"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range c.files {
				p := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := readMode(dir)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("readMode = %q, %v; want an error mentioning %q", got, err, c.wantErr)
				}
				if c.name == "no THP" && !errors.Is(err, errors.ErrUnsupported) {
					t.Errorf("readMode without THP: %v does not wrap errors.ErrUnsupported", err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Errorf("readMode = %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

func TestReadPMDSize(t *testing.T) {
	dir := t.TempDir()
	if got := readPMDSize(dir); got != 2<<20 {
		t.Errorf("no hpage_pmd_size: %d, want the 2 MiB default", got)
	}
	for body, want := range map[string]uint64{"33554432\n": 32 << 20, "3000000\n": 2 << 20, "x\n": 2 << 20} {
		if err := os.WriteFile(filepath.Join(dir, "hpage_pmd_size"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := readPMDSize(dir); got != want {
			t.Errorf("hpage_pmd_size %q: %d, want %d", body, got, want)
		}
	}
}

// TestSpanSet checks add, missing and keepOnly against a set of
// addresses kept as one bool per address.
func TestSpanSet(t *testing.T) {
	const n = 64
	r := rand.New(rand.NewPCG(1, 2))
	randSpan := func() span {
		lo := uint64(r.IntN(n))
		return span{lo, lo + uint64(r.IntN(n-int(lo))+1)}
	}
	for round := range 300 {
		var set spanSet
		var model [n]bool
		for range 12 {
			switch r.IntN(3) {
			case 0, 1:
				s := randSpan()
				set.add(s)
				for a := s.lo; a < s.hi; a++ {
					model[a] = true
				}
			case 2:
				var keep []span
				for lo := uint64(0); lo < n; {
					s := span{lo + uint64(r.IntN(8)), lo + uint64(r.IntN(8)) + 8}
					s.hi = min(s.hi, n)
					if s.lo < s.hi {
						keep = append(keep, s)
					}
					lo = s.hi + 1
				}
				set.keepOnly(keep)
				var kept [n]bool
				for _, k := range keep {
					for a := k.lo; a < k.hi; a++ {
						kept[a] = true
					}
				}
				for a := range model {
					model[a] = model[a] && kept[a]
				}
			}
			// The set is sorted, disjoint, not adjacent, and equals the model.
			var got [n]bool
			for i, s := range set {
				if s.lo >= s.hi || (i > 0 && set[i-1].hi >= s.lo) {
					t.Fatalf("round %d: set not canonical: %v", round, set)
				}
				for a := s.lo; a < s.hi; a++ {
					got[a] = true
				}
			}
			if got != model {
				t.Fatalf("round %d: set %v differs from the model %v", round, set, model)
			}
			q := randSpan()
			var fromModel []span
			for a := q.lo; a < q.hi; a++ {
				if model[a] {
					continue
				}
				if k := len(fromModel); k > 0 && fromModel[k-1].hi == a {
					fromModel[k-1].hi++
				} else {
					fromModel = append(fromModel, span{a, a + 1})
				}
			}
			if m := set.missing(q); !slices.Equal(m, fromModel) {
				t.Fatalf("round %d: %v.missing(%v) = %v, want %v", round, set, q, m, fromModel)
			}
			var size int64
			for _, in := range model {
				if in {
					size++
				}
			}
			if set.bytes() != size {
				t.Fatalf("round %d: %v.bytes() = %d, want %d", round, set, set.bytes(), size)
			}
		}
	}
}

// call is one madvise made by a test advisor.
type call struct {
	lo, hi uint64
	a      advice
}

// recorder is a test advisor's madvise: it records calls and fails those
// named in fail.
type recorder struct {
	calls []call
	fail  map[call]error
}

func (r *recorder) madvise(lo, hi uint64, a advice) error {
	c := call{lo, hi, a}
	r.calls = append(r.calls, c)
	return r.fail[c]
}

func (r *recorder) take() []call {
	c := r.calls
	r.calls = nil
	return c
}

const mb2 = 2 << 20

func hp(lo, hi uint64) call { return call{lo, hi, adviceHugePage} }

// co is the collapse of [lo, hi), one 2 MiB page at a time.
func co(lo, hi uint64) []call {
	var cs []call
	for x := lo; x < hi; x += mb2 {
		cs = append(cs, call{x, x + mb2, adviceCollapse})
	}
	return cs
}

// seq strings calls and lists of calls together.
func seq(parts ...any) []call {
	var out []call
	for _, p := range parts {
		switch p := p.(type) {
		case call:
			out = append(out, p)
		case []call:
			out = append(out, p...)
		}
	}
	return out
}

// TestAdvisorBookkeeping follows a heap growing as the Go runtime grows
// it: advice goes to new ranges only, collapse once per range, and ranges
// unmapped and mapped again are advised again.
func TestAdvisorBookkeeping(t *testing.T) {
	rec := &recorder{}
	ad := advisor{madvise: rec.madvise}
	step := func(name, maps string, collapse bool, wantCalls []call, want Stats, wantErr string) {
		t.Helper()
		st, err := ad.advise(context.Background(), []byte(maps), mb2, collapse)
		if wantErr == "" && err != nil || wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("%s: error %v, want %q", name, err, wantErr)
		}
		if calls := rec.take(); !slices.Equal(calls, wantCalls) {
			t.Errorf("%s: calls\n got %x\nwant %x", name, calls, wantCalls)
		}
		if st != want {
			t.Errorf("%s: stats %+v, want %+v", name, st, want)
		}
	}
	file := "00400000-004ac000 r-xp 00000000 fe:00 10010634   /usr/bin/leadscore\n"
	stack := "7fff6c006000-7fff6c027000 rw-p 00000000 00:00 0   [stack]\n"

	// An unaligned mapping (interior 2 MiB), an aligned one of 8 MiB, one
	// too small for a huge page.
	maps := file + "10001000-10401000 rw-p 00000000 00:00 0\n" +
		"20000000-20800000 rw-p 00000000 00:00 0\n" +
		"30000000-301ff000 rw-p 00000000 00:00 0\n" + stack
	step("first", maps, false,
		[]call{hp(0x10200000, 0x10400000), hp(0x20000000, 0x20800000)},
		Stats{Mappings: 3, AdvisedBytes: 10 << 20, TotalBytes: 10 << 20}, "")

	// The kernel split the first mapping around its advised interior.
	maps = file + "10001000-10200000 rw-p 00000000 00:00 0\n" +
		"10200000-10400000 rw-p 00000000 00:00 0\n" +
		"10400000-10401000 rw-p 00000000 00:00 0\n" +
		"20000000-20800000 rw-p 00000000 00:00 0\n" +
		"30000000-301ff000 rw-p 00000000 00:00 0\n" + stack
	step("again", maps, false, nil, Stats{Mappings: 5, TotalBytes: 10 << 20}, "")

	// The heap grew: a new mapping merged with the unadvised tail of the
	// first, another next to the second (different flags: not merged).
	// Collapse now: every interior once.
	maps = file + "10001000-10200000 rw-p 00000000 00:00 0\n" +
		"10200000-10400000 rw-p 00000000 00:00 0\n" +
		"10400000-10801000 rw-p 00000000 00:00 0\n" +
		"20000000-20800000 rw-p 00000000 00:00 0\n" +
		"20800000-20c00000 rw-p 00000000 00:00 0\n" + stack
	step("grown, collapse", maps, true,
		seq(
			co(0x10200000, 0x10400000),
			hp(0x10400000, 0x10800000), co(0x10400000, 0x10800000),
			co(0x20000000, 0x20800000),
			hp(0x20800000, 0x20c00000), co(0x20800000, 0x20c00000),
		),
		Stats{Mappings: 5, AdvisedBytes: 8 << 20, CollapsedBytes: 18 << 20, TotalBytes: 18 << 20}, "")

	// Advised ranges merged by the kernel: nothing new.
	maps = file + "10001000-10200000 rw-p 00000000 00:00 0\n" +
		"10200000-10800000 rw-p 00000000 00:00 0\n" +
		"10800000-10801000 rw-p 00000000 00:00 0\n" +
		"20000000-20c00000 rw-p 00000000 00:00 0\n" + stack
	step("merged", maps, true, nil, Stats{Mappings: 4, TotalBytes: 18 << 20}, "")

	// The second mapping went away: forgotten.
	maps = file + "10001000-10200000 rw-p 00000000 00:00 0\n" +
		"10200000-10800000 rw-p 00000000 00:00 0\n" + stack
	step("unmapped", maps, true, nil, Stats{Mappings: 2, TotalBytes: 6 << 20}, "")

	// Mapped again (without the flag): advised and collapsed again. The
	// first advice finds the range gone (ENOMEM): not remembered, no
	// error. Of the other range's two huge pages, the kernel does not
	// collapse one (empty, busy: not counted, no error) and fails the
	// other (reported); both are remembered (best effort).
	maps = file + "10200000-10800000 rw-p 00000000 00:00 0\n" +
		"20000000-20400000 rw-p 00000000 00:00 0\n" +
		"40000000-40400000 rw-p 00000000 00:00 0\n" + stack
	rec.fail = map[call]error{
		hp(0x20000000, 0x20400000):               errGone,
		{0x40000000, 0x40200000, adviceCollapse}: errNotCollapsed,
		{0x40200000, 0x40400000, adviceCollapse}: errors.New("EIO"),
	}
	step("remapped", maps, true,
		seq(hp(0x20000000, 0x20400000), hp(0x40000000, 0x40400000), co(0x40000000, 0x40400000)),
		Stats{Mappings: 3, AdvisedBytes: 4 << 20, TotalBytes: 10 << 20},
		"madvise(0x40200000, 2097152, MADV_COLLAPSE): EIO")

	// A failed advice is retried, and its error reported; collapse waits
	// for the advice.
	rec.fail = map[call]error{hp(0x20000000, 0x20400000): errors.New("EPERM")}
	step("advice fails", maps, true,
		[]call{hp(0x20000000, 0x20400000)},
		Stats{Mappings: 3, TotalBytes: 10 << 20}, "MADV_HUGEPAGE): EPERM")

	// A range gone during its collapse is collapsed again next time.
	rec.fail = map[call]error{{0x20200000, 0x20400000, adviceCollapse}: errGone}
	step("gone during collapse", maps, true,
		seq(hp(0x20000000, 0x20400000), co(0x20000000, 0x20400000)),
		Stats{Mappings: 3, AdvisedBytes: 4 << 20, CollapsedBytes: 2 << 20, TotalBytes: 14 << 20}, "")
	rec.fail = nil
	step("collapse works", maps, true,
		co(0x20000000, 0x20400000),
		Stats{Mappings: 3, CollapsedBytes: 4 << 20, TotalBytes: 14 << 20}, "")
	step("all done", maps, true, nil, Stats{Mappings: 3, TotalBytes: 14 << 20}, "")

	// A larger huge page size (arm64 with 16 KiB pages: 32 MiB).
	ad2 := advisor{madvise: rec.madvise}
	if st, err := ad2.advise(context.Background(), []byte("1000000-5000000 rw-p 00000000 00:00 0\n"), 32<<20, false); err != nil ||
		st.AdvisedBytes != 32<<20 || !slices.Equal(rec.take(), []call{hp(0x2000000, 0x4000000)}) {
		t.Errorf("32 MiB pages: %+v, %v", st, err)
	}
}

// TestAdvisorStops: a collapse stops when the context is done, and what
// it did not collapse is collapsed by the next call.
func TestAdvisorStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls []call
	ad := advisor{madvise: func(lo, hi uint64, a advice) error {
		calls = append(calls, call{lo, hi, a})
		if a == adviceCollapse {
			cancel()
		}
		return nil
	}}
	maps := []byte("20000000-20600000 rw-p 00000000 00:00 0\n")
	st, err := ad.advise(ctx, maps, mb2, true)
	if want := seq(hp(0x20000000, 0x20600000), co(0x20000000, 0x20200000)); err != nil || !slices.Equal(calls, want) {
		t.Errorf("stopped: %x, %v; want %x", calls, err, want)
	}
	if st.CollapsedBytes != 2<<20 || st.AdvisedBytes != 6<<20 {
		t.Errorf("stopped: %+v", st)
	}
	calls = nil
	st, err = ad.advise(context.Background(), maps, mb2, true)
	if want := co(0x20000000, 0x20600000); err != nil || !slices.Equal(calls, want) {
		t.Errorf("next call: %x, %v; want %x", calls, err, want)
	}
	if st.CollapsedBytes != 6<<20 || st.AdvisedBytes != 0 {
		t.Errorf("next call: %+v", st)
	}
}

// TestKeepLogs: Keep says at once what it found and did, and returns
// when its context is done.
func TestKeepLogs(t *testing.T) {
	mode, modeErr := Mode()
	var buf bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	Keep(ctx, 1, slog.New(slog.NewTextHandler(&buf, nil)))
	out := buf.String()
	var want string
	switch {
	case errors.Is(modeErr, errors.ErrUnsupported):
		want = "huge pages: not supported here"
	case modeErr != nil:
		want = "cannot read the kernel's mode"
	case mode == ModeMadvise:
		want = "kernel_mode=madvise advised_mib="
	case mode == ModeAlways:
		want = "no advice needed kernel_mode=always"
	case mode == ModeNever:
		want = "huge pages: not available\" kernel_mode=never"
	}
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, want) {
		t.Errorf("Keep logged %q, want one line with %q", out, want)
	}
}
