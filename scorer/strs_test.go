package scorer

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"
)

// TestLeadSize: the lead table's elements are two cache lines, so that a
// lead never straddles a third (see lead). A new field must take the
// padding's place or find room elsewhere. (On 64-bit platforms: the
// others are not tuned.)
func TestLeadSize(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("32-bit platform")
	}
	if n := unsafe.Sizeof(lead{}); n != 128 {
		t.Fatalf("lead is %d bytes, want 128", n)
	}
}

// TestStrsRoundTrip packs random strings and traits and reads them back
// through every accessor.
func TestStrsRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	str := func() string {
		switch rng.IntN(4) {
		case 0:
			return ""
		case 1:
			return strings.Repeat("x", rng.IntN(300))
		default:
			return fmt.Sprintf("s%d", rng.IntN(1000))
		}
	}
	for range 2000 {
		key, anon, account := str(), str(), str()
		if key == "" {
			key = "k"
		}
		var traits []traitVal
		for i := range rng.IntN(6) {
			traits = append(traits, traitVal{idx: uint16(i*7 + rng.IntN(7)), v: str()})
		}
		l := lead{strs: packStrs(key, anon, account, traits)}
		check := func(what string) {
			t.Helper()
			if l.key() != key || l.anon() != anon || l.account() != account {
				t.Fatalf("%s: got %q %q %q, want %q %q %q", what, l.key(), l.anon(), l.account(), key, anon, account)
			}
			got := l.traits(nil)
			if len(got) != len(traits) || l.nTraits() != len(traits) {
				t.Fatalf("%s: %d traits (nTraits %d), want %d", what, len(got), l.nTraits(), len(traits))
			}
			for i, tr := range traits {
				if got[i] != tr {
					t.Fatalf("%s: trait %d = %+v, want %+v", what, i, got[i], tr)
				}
				if v, ok := l.trait(tr.idx); !ok || v != tr.v {
					t.Fatalf("%s: trait(%d) = %q %v, want %q", what, tr.idx, v, ok, tr.v)
				}
			}
			if _, ok := l.trait(999); ok {
				t.Fatalf("%s: found a trait never set", what)
			}
		}
		check("packed")
		anon, account = str(), str()
		l.strs = l.withIdentity(anon, account)
		check("new identity")
	}
	var zero lead
	if zero.key() != "" || zero.anon() != "" || zero.account() != "" || zero.nTraits() != 0 {
		t.Fatal("a free slot has strings")
	}
	if _, ok := zero.trait(0); ok {
		t.Fatal("a free slot has traits")
	}
}

// TestStrsNotAliased: a lead's strings are copies, and a change of
// identity or traits replaces them instead of writing into them (the undo
// record shares the old ones).
func TestStrsNotAliased(t *testing.T) {
	e := NewEngine(mustParse(t, fitModel))
	apply(e, ev("lead-1", "1", "page_view", t0, trait("title", "VP")))
	e.Commit()
	title := traitOf(t, e, "title")
	l := &e.leads[e.slotOf("lead-1")]
	before := l.strs
	snapshot := strings.Clone(before)
	tp := ev("lead-1", "2", "page_view", t0+1)
	tp.AccountID, tp.AnonymousID = "acme", "cookie"
	tp.Traits = []Attr{{"title", "CEO"}}
	apply(e, tp)
	if before != snapshot {
		t.Fatal("the old strings were changed in place")
	}
	if v, _ := l.trait(title); l.account() != "acme" || l.anon() != "cookie" || v != "CEO" || l.key() != "lead-1" {
		t.Fatalf("got %q %q %q %q", l.key(), l.anon(), l.account(), v)
	}
	e.Rollback()
	l = &e.leads[e.slotOf("lead-1")]
	if v, _ := l.trait(title); l.account() != "" || l.anon() != "" || v != "VP" {
		t.Fatalf("rolled back to %q %q %q, want the lead as committed", l.anon(), l.account(), v)
	}
}

// traitOf returns the index of a trait some fit rule of e's model uses.
func traitOf(t *testing.T, e *Engine, name string) uint16 {
	t.Helper()
	i, ok := e.traitIndex.get(name)
	if !ok {
		t.Fatalf("the model has no fit rule on %q", name)
	}
	return uint16(i)
}

// TestSetTraitsScratchKept: a touchpoint whose traits no fit rule
// references keeps the engine's scratch buffer, so that the next one with
// a known, unchanged trait does not allocate (it dropped it once).
func TestSetTraitsScratchKept(t *testing.T) {
	e := NewEngine(mustParse(t, fitModel))
	apply(e, ev("lead-1", "0", "page_view", t0, trait("title", "VP")))
	e.Commit()
	const runs = 200
	ids := make([]string, 2*runs+2) // AllocsPerRun runs once more to warm up
	for i := range ids {
		ids[i] = fmt.Sprint("e", i+1)
	}
	known := ev("lead-1", "", "page_view", t0, trait("title", "VP"))
	unknown := ev("lead-1", "", "page_view", t0, trait("shoe_size", "9"))
	var res Result
	i := 0
	n := testing.AllocsPerRun(runs, func() {
		unknown.EventID, known.EventID = ids[i], ids[i+1]
		i += 2
		e.Apply(unknown, t0, &res)
		e.Apply(known, t0, &res)
		if res.Outcome != Scored {
			t.Fatalf("outcome %v", res.Outcome)
		}
		e.Commit()
	})
	if n != 0 {
		t.Fatalf("%v allocations per pair of touchpoints", n)
	}
}

// TestRestoreCopies: a restored lead keeps nothing of the key and state
// buffers Restore was given (the restore loop reuses them).
func TestRestoreCopies(t *testing.T) {
	src := NewEngine(mustParse(t, fitModel))
	tp := ev("lead-1", "1", "page_view", t0, trait("title", "VP"))
	tp.AccountID, tp.AnonymousID = "acme", "cookie"
	apply(src, tp)
	state, _ := src.EncodeLead("lead-1", nil)
	key := []byte("lead-1")
	e := NewEngine(mustParse(t, fitModel))
	if err := e.Restore(unsafe.String(&key[0], len(key)), state); err != nil {
		t.Fatal(err)
	}
	for i := range key {
		key[i] = '#'
	}
	for i := range state {
		state[i] = '#'
	}
	l := &e.leads[e.slotOf("lead-1")]
	if v, _ := l.trait(traitOf(t, e, "title")); l.key() != "lead-1" || l.account() != "acme" || l.anon() != "cookie" || v != "VP" {
		t.Fatalf("restored lead aliases its input: %q %q %q %q", l.key(), l.anon(), l.account(), v)
	}
}
