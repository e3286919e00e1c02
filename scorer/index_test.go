package scorer

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// slotOf returns the slot of a known lead; it panics for an unknown one so
// that a test cannot read slot -1 by mistake.
func (e *Engine) slotOf(key string) int32 {
	slot, ok := e.lookup(key)
	if !ok {
		panic(fmt.Sprintf("lead %q unknown", key))
	}
	return slot
}

// keys returns every lead key in the index with its slot, read from the
// index cells (not from the leads), so that tests ranging over it see what
// the index holds.
func (e *Engine) keys() map[string]int32 {
	out := map[string]int32{}
	for _, c := range e.index.cells {
		if c != 0 {
			slot := int32(uint32(c)) - 1
			out[e.leads[slot].key()] = slot
		}
	}
	return out
}

// checkIndex verifies that the index holds exactly the live leads, each
// findable, each cell within reach of its home (no hole on its probe path).
func checkIndex(t *testing.T, e *Engine) {
	t.Helper()
	x := &e.index
	mask := uint64(len(x.cells) - 1)
	n := 0
	for i, c := range x.cells {
		if c == 0 {
			continue
		}
		n++
		for j := c >> x.shift; j != uint64(i); j = (j + 1) & mask {
			if x.cells[j] == 0 {
				t.Fatalf("cell %d: hole at %d on its probe path", i, j)
			}
		}
		slot := int32(uint32(c)) - 1
		key := e.leads[slot].key()
		if got, ok := e.lookup(key); !ok || got != slot {
			t.Fatalf("lookup(%q) = %d %v, want %d", key, got, ok, slot)
		}
		if h := x.hash(key); h>>32 != c>>32 {
			t.Fatalf("cell %d: tag %x, hash of %q %x", i, c>>32, key, h)
		}
	}
	if n != x.n || n != e.Len() {
		t.Fatalf("index holds %d cells, counts %d, engine %d leads", n, x.n, e.Len())
	}
}

// TestLeadIndex creates and removes leads at random (through Restore, the
// path that removes) and checks the index against a map after each step.
func TestLeadIndex(t *testing.T) {
	e := NewEngine(txnModel())
	rng := rand.New(rand.NewPCG(7, 8))
	state := encodedLead(t)
	want := map[string]bool{}
	for step := range 20000 {
		key := fmt.Sprintf("k%d", rng.IntN(3000))
		if rng.IntN(3) == 0 {
			if err := e.Restore(key, nil); err != nil {
				t.Fatal(err)
			}
			delete(want, key)
		} else {
			if err := e.Restore(key, state); err != nil {
				t.Fatal(err)
			}
			want[key] = true
		}
		if step%1000 == 0 || step == 19999 {
			checkIndex(t, e)
		}
	}
	if e.Len() != len(want) {
		t.Fatalf("Len %d, want %d", e.Len(), len(want))
	}
	for key := range want {
		if _, _, ok := e.Score(key, 0); !ok {
			t.Fatalf("%s lost", key)
		}
	}
	for i := range 3000 {
		key := fmt.Sprintf("k%d", i)
		if _, _, ok := e.Score(key, 0); ok != want[key] {
			t.Fatalf("%s: known %v, want %v", key, ok, want[key])
		}
	}
}

// TestLeadIndexCollidingTags forces every key onto the same tag and home
// cell: lookups must still compare the keys, and removal must keep the
// others reachable.
func TestLeadIndexCollidingTags(t *testing.T) {
	e := NewEngine(txnModel())
	const h = 0xdeadbeef_00000000
	keys := []string{"a", "b", "c", "d", "e", "f"}
	for _, k := range keys {
		e.alloc(packStrs(k, "", "", nil), h)
	}
	find := func(k string) (int32, bool) { return e.index.find(h, k, e.leads) }
	for _, k := range keys {
		if slot, ok := find(k); !ok || e.leads[slot].key() != k {
			t.Fatalf("find(%q) = %d %v", k, slot, ok)
		}
	}
	if _, ok := find("zz"); ok {
		t.Fatal("found a key never inserted")
	}
	slot, _ := find("c")
	e.index.remove(h, slot)
	for _, k := range keys {
		_, ok := find(k)
		if ok != (k != "c") {
			t.Fatalf("after removing c: find(%q) = %v", k, ok)
		}
	}
}

// encodedLead returns a valid state record.
func encodedLead(t *testing.T) []byte {
	t.Helper()
	e := NewEngine(txnModel())
	applyAll(e, randomStream(1, 1, 20))
	for key := range e.keys() {
		b, _ := e.EncodeLead(key, nil)
		return b
	}
	t.Fatal("no lead")
	return nil
}

func TestNameTable(t *testing.T) {
	var nt nameTable
	if _, ok := nt.get("x"); ok {
		t.Fatal("empty table found x")
	}
	names := []string{"", "page_view", "email_open", "email_click", "form_submit", "a", "b", "ab", "ba", "content_download", "webinar_attended"}
	for i := range 200 {
		names = append(names, fmt.Sprintf("type-%d", i))
	}
	for i, n := range names {
		nt.put(n, uint32(i))
	}
	nt.put("a", 1000) // replace
	for i, n := range names {
		want := uint32(i)
		if n == "a" {
			want = 1000
		}
		if v, ok := nt.get(n); !ok || v != want {
			t.Fatalf("get(%q) = %d %v, want %d", n, v, ok, want)
		}
	}
	for _, n := range []string{"c", "page_vie", "page_view_", "type-200", "aa"} {
		if _, ok := nt.get(n); ok {
			t.Fatalf("found %q", n)
		}
	}
	if nt.count() != len(names) || 2*nt.count() > len(nt.cells) {
		t.Fatalf("%d names in %d cells", nt.count(), len(nt.cells))
	}
}

// TestInternGroupCache checks that the group cache in front of the map
// gives the same ids as the map for keys that collide in it, for the empty
// key and after evictions.
func TestInternGroupCache(t *testing.T) {
	e := NewEngine(txnModel())
	type key struct{ typ, ch, camp string }
	var keys []key
	for i := range 2000 {
		keys = append(keys, key{fmt.Sprintf("t%d", i%7), []string{"", "web", "email"}[i%3], fmt.Sprintf("camp-%d", i)})
	}
	keys = append(keys, key{}, key{otherType, "", ""})
	want := map[key]uint32{}
	rng := rand.New(rand.NewPCG(1, 1))
	for range 20000 {
		k := keys[rng.IntN(len(keys))]
		id := e.internGroup(k.typ, k.ch, k.camp)
		if w, ok := want[k]; ok && w != id {
			t.Fatalf("%v: id %d, earlier %d", k, id, w)
		}
		want[k] = id
		if g := e.groupKeys[id]; g != (groupKey{k.typ, k.ch, k.camp}) {
			t.Fatalf("%v: id %d names %v", k, id, g)
		}
	}
	if id := want[key{otherType, "", ""}]; id != 0 {
		t.Fatalf("(other) has id %d", id)
	}
	if id, ok := want[key{}]; ok && id == 0 {
		t.Fatal("empty key served as (other)")
	}
}

// TestPrefetchChangesNothing applies one stream twice, once with Prefetch
// before every batch (with touchpoints of known, unknown and heavy leads,
// and more than PrefetchBatch of them), once without: results and states
// must be equal.
func TestPrefetchChangesNothing(t *testing.T) {
	tps := randomStream(7, 300, 4000)
	for i := range 600 { // a heavy lead (more than heavyIDs ids)
		tps = append(tps, &Touchpoint{EventID: fmt.Sprintf("h-%d", i), LeadID: "heavy", Type: "page_view",
			OccurredAt: t0 + int64(i)*60_000})
	}
	rand.New(rand.NewPCG(1, 1)).Shuffle(len(tps), func(i, j int) { tps[i], tps[j] = tps[j], tps[i] })
	plain, warm := NewEngine(txnModel()), NewEngine(txnModel())
	var want, got []Result
	for i := 0; i < len(tps); i += 37 {
		batch := tps[i:min(i+37, len(tps))]
		hints := []Touchpoint{{}, {LeadID: "nobody", EventID: "x"}, {LeadID: "heavy", EventID: "h-1"}}
		for _, tp := range batch {
			hints = append(hints, *tp)
		}
		warm.Prefetch(hints)
		for _, tp := range batch {
			var a, b Result
			plain.Apply(tp, tp.OccurredAt, &a)
			warm.Apply(tp, tp.OccurredAt, &b)
			a.MQL.Contributors = slices.Clone(a.MQL.Contributors)
			b.MQL.Contributors = slices.Clone(b.MQL.Contributors)
			want, got = append(want, a), append(got, b)
		}
		plain.Commit()
		warm.Commit()
	}
	if l := &warm.leads[warm.slotOf("heavy")]; l.ids == nil {
		t.Fatal("test needs a heavy lead")
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatal("results differ with Prefetch")
	}
	if !reflect.DeepEqual(snapshot(plain), snapshot(warm)) {
		t.Fatal("states differ with Prefetch")
	}
	NewEngine(txnModel()).Prefetch([]Touchpoint{{LeadID: "x"}}) // an empty index
}

// TestPrefetcherInterleaved runs a Prefetcher's levels for one batch
// between the Apply calls of the batch before, as the pipeline never does
// but a caller may: leads are created (the lead table reallocated) and
// changed between the levels. Results and states must still equal those
// of an engine that never prefetches, and the levels must run out.
func TestPrefetcherInterleaved(t *testing.T) {
	tps := randomStream(11, 2000, 3000) // mostly new leads: the table grows
	for i := range 300 {
		tps = append(tps, &Touchpoint{EventID: fmt.Sprintf("h-%d", i), LeadID: "heavy", Type: "page_view",
			OccurredAt: t0 + int64(i)*60_000})
	}
	rand.New(rand.NewPCG(2, 2)).Shuffle(len(tps), func(i, j int) { tps[i], tps[j] = tps[j], tps[i] })
	plain, warm := NewEngine(txnModel()), NewEngine(txnModel())
	var pf Prefetcher
	if pf.Step() {
		t.Fatal("a zero Prefetcher has levels to run")
	}
	var want, got []Result
	var next [PrefetchBatch]Touchpoint
	for i := 0; i < len(tps); i += PrefetchBatch {
		batch := tps[i:min(i+PrefetchBatch, len(tps))]
		started := false // a walk of the next batch runs during this one
		if j := i + PrefetchBatch; j < len(tps) {
			n := 0
			for _, tp := range tps[j:min(j+PrefetchBatch, len(tps))] {
				next[n] = *tp
				n++
			}
			pf.Start(warm, next[:n])
			started = i > 0 // (at 0 the engine is empty: nothing to walk)
		}
		steps := 0
		for _, tp := range batch {
			var a, b Result
			plain.Apply(tp, tp.OccurredAt, &a)
			warm.Apply(tp, tp.OccurredAt, &b)
			if pf.Step() {
				steps++
			}
			a.MQL.Contributors = slices.Clone(a.MQL.Contributors)
			b.MQL.Contributors = slices.Clone(b.MQL.Contributors)
			want, got = append(want, a), append(got, b)
		}
		if started && len(batch) >= prefetchLevels && steps != prefetchLevels-2 {
			// Start ran level 1; the last Step runs the last level and
			// reports none left.
			t.Fatalf("batch at %d: %d levels left after Start, want %d", i, steps+1, prefetchLevels-1)
		}
		pf.Finish()
		if i%(4*PrefetchBatch) == 0 {
			plain.Commit()
			warm.Commit()
		}
	}
	if warm.Len() < 1000 {
		t.Fatalf("only %d leads: the table did not grow", warm.Len())
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatal("results differ with a Prefetcher")
	}
	if !reflect.DeepEqual(snapshot(plain), snapshot(warm)) {
		t.Fatal("states differ with a Prefetcher")
	}
	pf.Start(NewEngine(txnModel()), next[:1]) // an empty index: nothing to walk
	if pf.Step() {
		t.Fatal("levels left on an empty engine")
	}
}

// TestPrefetchForeseesDrops checks the walk's guess that Apply will drop
// old ids (Engine.dropsIDs, which makes it prefetch them) against what
// Apply does: over weeks of event time, with late touchpoints, for light
// and heavy leads, every scored touchpoint drops ids exactly when it was
// foreseen.
func TestPrefetchForeseesDrops(t *testing.T) {
	e := NewEngine(txnModel())
	rng := rand.New(rand.NewPCG(5, 5))
	var drops [2]int // by light (0) and heavy (1) lead
	for i := range 6000 {
		lead := fmt.Sprintf("busy-%d", rng.IntN(8)) // about 9 a day each: heavy
		if rng.IntN(2) == 0 {
			lead = fmt.Sprintf("light-%d", rng.IntN(100)) // one every day and a half
		}
		at := t0 + int64(i)*10*60_000 // 10 minutes apart: 6 weeks in all
		if rng.IntN(5) == 0 {
			at -= rng.Int64N(6 * day) // late, within the lateness
		}
		tp := &Touchpoint{EventID: fmt.Sprintf("e-%d", i), LeadID: lead, Type: "page_view", OccurredAt: at}
		slot, known := e.lookup(lead)
		foreseen, before, heavy := false, 0, 0
		if known {
			l := &e.leads[slot]
			foreseen, before = e.dropsIDs(l, at), l.nIDs()
			if l.ids != nil {
				heavy = 1
			}
		}
		var res Result
		e.Apply(tp, at, &res)
		if res.Outcome != Scored || !known {
			continue
		}
		after := e.leads[slot].nIDs()
		if dropped := after <= before; dropped != foreseen {
			t.Fatalf("touchpoint %d: ids %d -> %d, foreseen a drop: %v", i, before, after, foreseen)
		}
		if foreseen {
			drops[heavy]++
		}
		if i%100 == 0 {
			e.Commit()
		}
	}
	if drops[0] < 50 || drops[1] < 50 {
		t.Fatalf("drops by light and heavy leads: %v; the test does not exercise both", drops)
	}
}
