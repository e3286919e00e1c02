package scorer

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/leadscore/leadscore/models"
)

// txnModel exercises every part of the state: caps, fit, qualification,
// many contributor groups.
func txnModel() *models.Model {
	m := benchModel()
	m.Thresholds.MQL = 40
	m.Thresholds.Rearm = 15
	m.Thresholds.Cooldown = 2 * 24 * time.Hour
	return m
}

// randomStream returns n touchpoints for nLeads leads, deep copies (the
// engine must not depend on the caller keeping them), over a few days, a
// few of them redeliveries.
func randomStream(seed uint64, nLeads, n int) []*Touchpoint {
	s := newBenchStream(1, 1, 1000)
	s.rng = rand.New(rand.NewPCG(seed, 99))
	var out []*Touchpoint
	for i := range n {
		var tp Touchpoint
		s.next(&tp)
		tp.EventID = fmt.Sprintf("ev-%d-%d", seed, i)
		tp.LeadID = fmt.Sprintf("lead-%d", s.rng.IntN(nLeads))
		if s.rng.IntN(5) == 0 {
			tp.AnonymousID, tp.LeadID = "anon-"+tp.LeadID, ""
		}
		tp.Campaign = fmt.Sprintf("c%d", s.rng.IntN(25)) // more groups than a lead keeps
		tp.OccurredAt = t0 + int64(i)*20*60*1000 - s.rng.Int64N(day)
		if s.rng.IntN(4) == 0 {
			tp.Traits = []Attr{{"title", []string{"VP Sales", "Engineer"}[s.rng.IntN(2)]}, {"company_size", fmt.Sprint(s.rng.IntN(1000))}}
		}
		if s.rng.IntN(8) == 0 {
			tp.AccountID = fmt.Sprintf("acct-%d", s.rng.IntN(3))
		}
		if s.rng.IntN(10) == 0 && len(out) > 0 {
			prev := *out[s.rng.IntN(len(out))]
			tp = prev // a redelivery
		}
		tp.Props = slices.Clone(tp.Props)
		out = append(out, &tp)
	}
	return out
}

// snapshot encodes every lead of e.
func snapshot(e *Engine) map[string][]byte {
	out := map[string][]byte{}
	for key := range e.keys() {
		b, _ := e.EncodeLead(key, nil)
		out[key] = b
	}
	return out
}

// checkInvariants verifies what the engine keeps derived or bounded in
// every lead.
func checkInvariants(t *testing.T, e *Engine) {
	t.Helper()
	n := 0
	coldUsers := map[uint32]string{}
	for key, slot := range e.keys() {
		l := &e.leads[slot]
		n++
		if l.key() != key {
			t.Fatalf("%s: slot holds %q", key, l.key())
		}
		if ids := l.seenIDs(); len(ids) > 0 && l.idFirst != ids[0].time() {
			t.Fatalf("%s: idFirst %d, first event id time %d", key, l.idFirst, ids[0].time())
		}
		checkCaps(t, e, key, l)
		if l.cold != 0 {
			if coldUsers[l.cold] != "" {
				t.Fatalf("%s: cold caps place %d also used by %s", key, l.cold, coldUsers[l.cold])
			}
			coldUsers[l.cold] = key
		}
		if len(l.groups()) > maxGroups || len(l.seenIDs()) > maxDedupe {
			t.Fatalf("%s: %d groups, %d ids", key, len(l.groups()), len(l.seenIDs()))
		}
		sum := 0.0
		for _, g := range l.groups() {
			sum += g.points()
		}
		if math.Abs(sum-l.eRef) > 1e-9*math.Max(1, math.Abs(l.eRef)) {
			t.Fatalf("%s: groups sum %v, E_ref %v", key, sum, l.eRef)
		}
		if fit := e.computeFit(l); fit != l.fit {
			t.Fatalf("%s: fit %v, recomputed %v", key, l.fit, fit)
		}
	}
	if n != e.Len() {
		t.Fatalf("Len %d, index %d", e.Len(), n)
	}
	if used := len(e.colds) - len(e.coldFree); used != len(coldUsers) {
		t.Fatalf("%d cold caps places taken, %d leads have one", used, len(coldUsers))
	}
	for _, c := range e.coldFree {
		if e.colds[c-1] != nil || coldUsers[c] != "" {
			t.Fatalf("free cold caps place %d is in use", c)
		}
	}
	checkIndex(t, e)
	for key, slot := range e.keys() {
		checkSeen(t, key, &e.leads[slot])
	}
}

// checkCaps verifies the order of a lead's cap usage (Engine.capped): cold
// caps, then hot ones, each in order of day, every cold one that is not
// stale of a day before every hot one's, hot ones of one day only past
// hotCapsMax, none stale among the hot ones and no (rule, day) twice.
func checkCaps(t *testing.T, e *Engine, key string, l *lead) {
	t.Helper()
	hot, cold := l.hotCaps(), e.coldCaps(l)
	minDay := e.minCapDay(l)
	cold = cold[capsBefore(cold, minDay):]
	if len(hot) == 0 && len(cold) > 0 {
		t.Fatalf("%s: %d cold caps, no hot ones", key, len(cold))
	}
	if len(hot) > hotCapsMax && hot[0].day() != hot[len(hot)-1].day() {
		t.Fatalf("%s: %d hot caps of several days: %v", key, len(hot), hot)
	}
	all := slices.Concat(cold, hot)
	for i, c := range all {
		if c.day() < minDay {
			t.Fatalf("%s: cap usage of day %d kept hot, before %d", key, c.day(), minDay)
		}
		if i > 0 && c.day() < all[i-1].day() {
			t.Fatalf("%s: cap usage out of order: %v, %v", key, cold, hot)
		}
	}
	if len(cold) > 0 && cold[len(cold)-1].day() == hot[0].day() {
		t.Fatalf("%s: a cold cap of a hot cap's day: %v, %v", key, cold, hot)
	}
	if hasDuplicateKeys(all) {
		t.Fatalf("%s: cap usage twice: %v", key, all)
	}
}

func applyAll(e *Engine, tps []*Touchpoint) []Result {
	var out []Result
	for _, tp := range tps {
		var r Result
		e.Apply(tp, tp.OccurredAt, &r)
		r.MQL.Contributors = slices.Clone(r.MQL.Contributors)
		out = append(out, r)
	}
	return out
}

func TestRollback(t *testing.T) {
	e := NewEngine(txnModel())
	applyAll(e, randomStream(1, 40, 1500))
	e.Commit()
	before, n := snapshot(e), e.Len()

	stream := randomStream(11, 60, 1500) // 20 more leads
	first := applyAll(e, stream)
	if e.Dirty() == 0 || e.Len() == n {
		t.Fatalf("test needs changes and new leads: dirty %d, leads %d -> %d", e.Dirty(), n, e.Len())
	}
	mqls := 0
	for _, r := range first {
		if r.Qualified {
			mqls++
		}
	}
	if mqls == 0 {
		t.Fatal("test needs MQLs in the rolled back part")
	}
	e.Rollback()
	if e.Dirty() != 0 || e.Len() != n {
		t.Fatalf("after rollback: dirty %d, leads %d, want 0, %d", e.Dirty(), e.Len(), n)
	}
	checkInvariants(t, e)
	if after := snapshot(e); !reflect.DeepEqual(before, after) {
		t.Fatal("rollback did not restore every lead exactly")
	}
	// Replaying the aborted part gives the same results.
	if again := applyAll(e, stream); !reflect.DeepEqual(first, again) {
		t.Fatal("replay after rollback differs")
	}
	// Rollback right after Commit is a no-op.
	e.Commit()
	committed := snapshot(e)
	e.Rollback()
	if !reflect.DeepEqual(committed, snapshot(e)) {
		t.Fatal("rollback after commit changed state")
	}
}

func TestAppendDirty(t *testing.T) {
	e := NewEngine(txnModel())
	tps := []*Touchpoint{
		ev("b", "1", "page_view", t0),
		ev("a", "2", "page_view", t0),
		ev("b", "3", "page_view", t0+1),
		ev("c", "4", "page_view", t0+2),
	}
	applyAll(e, tps)
	var keys []string
	states := map[string][]byte{}
	e.AppendDirty(func(lead string, state []byte) {
		keys = append(keys, lead)
		states[lead] = bytes.Clone(state)
	})
	if !slices.Equal(keys, []string{"b", "a", "c"}) || e.Dirty() != 3 {
		t.Fatalf("dirty leads %v (%d), want [b a c] in order of first change", keys, e.Dirty())
	}
	for k, s := range states {
		if enc, _ := e.EncodeLead(k, nil); !bytes.Equal(enc, s) {
			t.Fatalf("%s: AppendDirty state differs from EncodeLead", k)
		}
	}
	e.Commit()
	if e.Dirty() != 0 {
		t.Fatal("dirty after commit")
	}
	// A duplicate, a too_late and a future touchpoint do not make a lead dirty.
	var r Result
	e.Apply(ev("a", "2", "page_view", t0), t0, &r)
	e.Apply(ev("a", "9", "page_view", t0-30*day), t0, &r)
	e.Apply(ev("a", "10", "page_view", t0+day), t0, &r)
	e.AppendDirty(func(string, []byte) { t.Fatal("AppendDirty called with no dirty leads") })
	if e.Dirty() != 0 {
		t.Fatalf("dirty %d after touchpoints that were not applied", e.Dirty())
	}
}

func TestRestoreReproduces(t *testing.T) {
	a := NewEngine(txnModel())
	stream := randomStream(2, 30, 4000)
	changelog := map[string][]byte{}
	for i := 0; i < 2000; i += 100 {
		applyAll(a, stream[i:i+100])
		a.AppendDirty(func(lead string, state []byte) { changelog[lead] = bytes.Clone(state) })
		a.Commit()
	}
	b := NewEngine(txnModel())
	for k, s := range changelog {
		if err := b.Restore(k, s); err != nil {
			t.Fatal(err)
		}
	}
	if b.Len() != a.Len() || b.Dirty() != 0 {
		t.Fatalf("restored %d leads (dirty %d), want %d", b.Len(), b.Dirty(), a.Len())
	}
	if !reflect.DeepEqual(snapshot(a), snapshot(b)) {
		t.Fatal("restored state differs")
	}
	checkInvariants(t, a)
	checkInvariants(t, b)
	ra, rb := applyAll(a, stream[2000:]), applyAll(b, stream[2000:])
	checkInvariants(t, a)
	if !reflect.DeepEqual(ra, rb) {
		for i := range ra {
			if !reflect.DeepEqual(ra[i], rb[i]) {
				t.Fatalf("touchpoint %d: original %+v, restored %+v", 2000+i, ra[i], rb[i])
			}
		}
	}
	for _, k := range []string{"lead-1", "anon-lead-2"} {
		ea, fa, oka := a.Score(k, t0+100*day)
		eb, fb, okb := b.Score(k, t0+100*day)
		if ea != eb || fa != fb || oka != okb || !oka {
			t.Fatalf("%s: scores differ or unknown", k)
		}
	}
}

func TestRestoreEdges(t *testing.T) {
	e := NewEngine(txnModel())
	applyAll(e, []*Touchpoint{ev("a", "1", "page_view", t0)})
	state, _ := e.EncodeLead("a", nil)
	if err := e.Restore("b", state); !errors.Is(err, ErrDirty) {
		t.Fatalf("restore while dirty: %v", err)
	}
	e.Commit()
	if err := e.Restore("b", state); err != nil {
		t.Fatal(err)
	}
	if e.Dirty() != 0 || e.Len() != 2 {
		t.Fatal("restore marked dirty or did not add")
	}
	if err := e.Restore("b", state[:len(state)-1]); !errors.Is(err, ErrBadState) {
		t.Fatalf("truncated: %v", err)
	}
	if got, _ := e.EncodeLead("b", nil); !bytes.Equal(got, state) {
		t.Fatal("a failed restore changed the lead")
	}
	if err := e.Restore("b", nil); err != nil || e.Len() != 1 {
		t.Fatalf("empty state: %v, %d leads", err, e.Len())
	}
	if _, ok := e.EncodeLead("b", nil); ok {
		t.Fatal("lead not removed")
	}
	if err := e.Restore("zzz", nil); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]byte{
		"version":  append([]byte{3}, state[1:]...),
		"flags":    append([]byte{2, 0x40}, state[2:]...),
		"flags v1": append([]byte{1, 0x04}, state[2:]...), // no version 1 ids flag in version 1
		"fnvUntil": {2, 0x06, 0x80},                       // flag 4, its time truncated
		"trailing": append(bytes.Clone(state), 0),
		"nan":      {1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f, 0, 0, 0, 0, 0, 0, 0},
		"count":    {1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x03},
	} {
		if err := e.Restore("c", bad); !errors.Is(err, ErrBadState) {
			t.Errorf("%s: %v, want ErrBadState", name, err)
		}
	}
}

// TestStateSurvivesModelChange: cap usage and traits are stored by name, so
// a state written under one model restores under another that renamed or
// dropped some of them.
func TestStateSurvivesModelChange(t *testing.T) {
	e := NewEngine(txnModel())
	applyAll(e, []*Touchpoint{ev("a", "1", "page_view", t0, trait("title", "VP"), trait("industry", "saas"))})
	state, _ := e.EncodeLead("a", nil)
	m := txnModel()
	m.Fit = m.Fit[1:] // drop the title rule
	m.Rules[0].Name = "renamed"
	e2 := NewEngine(m)
	if err := e2.Restore("a", state); err != nil {
		t.Fatal(err)
	}
	l := &e2.leads[e2.slotOf("a")]
	if len(l.hotCaps()) != 0 || l.cold != 0 || len(l.seenIDs()) != 1 || l.nTraits() != 1 || l.fit != 5 {
		t.Fatalf("caps %v %v traits %v fit %v", e2.coldCaps(l), l.hotCaps(), l.traits(nil), l.fit)
	}
}

// goldenModel is the model of the golden state records below.
func goldenModel(t *testing.T) *models.Model {
	t.Helper()
	return mustParse(t, `name: g
version: "1"
thresholds: {mql: 5}
rules:
  - {name: pv, type: page_view, points: 2.5, cap: 10}
fit:
  - {trait: title, equals: [VP], points: 1}
`)
}

func TestEncodingStable(t *testing.T) {
	// The format is part of the changelog: a golden record guards it.
	e := NewEngine(goldenModel(t))
	applyAll(e, []*Touchpoint{
		{LeadID: "l", AnonymousID: "an", AccountID: "ac", EventID: "e", Type: "page_view", Channel: "web", OccurredAt: 1000 * day, Traits: []Attr{{"title", "VP"}}},
		{LeadID: "l", EventID: "f", Type: "page_view", Channel: "web", OccurredAt: 1000 * day},
	})
	got, _ := e.EncodeLead("l", nil)
	want := "02" + "02" + "02616e" + "026163" + "0000000000001440" + // version, flags (disarmed, lead id), anon, account, E_ref 5
		"8080bbdd8305" + "8080bbdd8305" + "01" + // t_ref, last MQL, sequence
		"01" + "027076" + "d00f" + "0000000000001440" + // caps: pv, day 1000, 5 used
		"02" + "23073e111372fc1c" + "8080bbdd8305" + "5036037c3fdfa2f7" + "8080bbdd8305" + // hashID of "e" and "f", times
		"01" + "09706167655f76696577" + "03776562" + "00" + "0000000000001440" + // group page_view/web, 5
		"01" + "057469746c65" + "025650" // trait title=VP
	if fmt.Sprintf("%x", got) != want {
		t.Fatalf("encoding changed:\ngot  %x\nwant %s", got, want)
	}
}

// stateV1 is TestEncodingStable's lead as the version 1 format encoded it:
// the same fields, the event ids hashed with FNV-1a.
const stateV1 = "01" + "02" + "02616e" + "026163" + "0000000000001440" +
	"8080bbdd8305" + "8080bbdd8305" + "01" +
	"01" + "027076" + "d00f" + "0000000000001440" +
	"02" + "c0e501864cd863af" + "8080bbdd8305" + "d9ea01864cdb63af" + "8080bbdd8305" + // FNV-1a of "e" and "f"
	"01" + "09706167655f76696577" + "03776562" + "00" + "0000000000001440" +
	"01" + "057469746c65" + "025650"

// TestRestoreVersion1: a lead restored from version 1 state still catches
// the redelivery of an event it remembers under the old hash, across a
// second restore (the flag and its time are encoded), and forgets the old
// hash once those ids have left the dedupe window.
func TestRestoreVersion1(t *testing.T) {
	m := goldenModel(t)
	v1, err := hex.DecodeString(stateV1)
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(m)
	if err := e.Restore("l", v1); err != nil {
		t.Fatal(err)
	}
	pv := func(id string, at int64) *Touchpoint {
		return &Touchpoint{LeadID: "l", EventID: id, Type: "page_view", Channel: "web", OccurredAt: at}
	}
	var r Result
	e.Apply(pv("e", 1000*day+1), 1000*day+1, &r)
	if r.Outcome != Duplicate {
		t.Fatalf("redelivery of a version 1 id: %v, want duplicate", r.Outcome)
	}
	e.Apply(pv("g", 1000*day+2), 1000*day+2, &r)
	if r.Outcome != Scored {
		t.Fatalf("new id: %v", r.Outcome)
	}
	e.Commit()
	state, _ := e.EncodeLead("l", nil)
	if state[0] != StateVersion || state[1] != flagLeadID|flagFNV {
		t.Fatalf("re-encoded: version %d flags %#x, want %d and %#x", state[0], state[1], StateVersion, flagLeadID|flagFNV)
	}
	e2 := NewEngine(m)
	if err := e2.Restore("l", state); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"f", "g"} { // a version 1 id, a version 2 id
		if e2.Apply(pv(id, 1000*day+3), 1000*day+3, &r); r.Outcome != Duplicate {
			t.Fatalf("after a second restore, redelivery of %q: %v, want duplicate", id, r.Outcome)
		}
	}
	if l := &e2.leads[e2.slotOf("l")]; l.fnvUntil != 1000*day {
		t.Fatalf("fnvUntil %d, want %d", l.fnvUntil, 1000*day)
	}
	// Twenty days later every id of day 1000 has been dropped.
	late := (1000 + 20) * day
	e2.Apply(pv("h", late), late, &r)
	e2.Commit()
	l := &e2.leads[e2.slotOf("l")]
	if l.flags&flagFNV != 0 || l.fnvUntil != 0 || len(l.seenIDs()) != 1 {
		t.Fatalf("after the window: flags %#x fnvUntil %d, %d ids", l.flags, l.fnvUntil, len(l.seenIDs()))
	}
	if state, _ := e2.EncodeLead("l", nil); state[1]&flagFNV != 0 {
		t.Fatalf("flags %#x still encoded", state[1])
	}
}

// TestHashIDProperties: ids of the same length that differ in one byte (so
// in one word) never collide, and the hash does not depend on where the
// string's bytes sit.
func TestHashIDProperties(t *testing.T) {
	base := []byte("d1f324d3-f2a0-4073-8bb1-e7dfe4bce950")
	seen := map[uint64]string{hashID(string(base)): string(base)}
	for i := range base {
		for c := range 256 {
			if byte(c) == base[i] {
				continue
			}
			b := bytes.Clone(base)
			b[i] = byte(c)
			h := hashID(string(b))
			if other, dup := seen[h]; dup {
				t.Fatalf("%q and %q collide", b, other)
			}
			seen[h] = string(b)
		}
	}
	buf := make([]byte, 64)
	for off := range 9 {
		copy(buf[off:], base)
		if hashID(string(buf[off:off+len(base)])) != hashID(string(base)) {
			t.Fatalf("hash depends on the offset %d", off)
		}
	}
	if hashID("") == hashID("\x00") || hashID("a") == hashID("a\x00") {
		t.Fatal("the length is not in the hash")
	}
}

func FuzzRestore(f *testing.F) {
	e := NewEngine(txnModel())
	applyAll(e, randomStream(3, 5, 300))
	for key := range e.keys() {
		b, _ := e.EncodeLead(key, nil)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{1, 1, 0, 0})
	v1, _ := hex.DecodeString(stateV1)
	f.Add(v1)
	f.Add([]byte{2, 6, 0x80}) // flag 4 and a truncated time
	f.Fuzz(func(t *testing.T, data []byte) {
		e := NewEngine(txnModel())
		err := e.Restore("x", data)
		if len(data) == 0 {
			if err != nil || e.Len() != 0 {
				t.Fatal("empty state must remove")
			}
			return
		}
		if err != nil {
			if !errors.Is(err, ErrBadState) {
				t.Fatalf("error %v does not wrap ErrBadState", err)
			}
			if e.Len() != 0 {
				t.Fatal("failed restore added a lead")
			}
			return
		}
		// Accepted: re-encoding is a fixed point after one round.
		once, _ := e.EncodeLead("x", nil)
		e2 := NewEngine(txnModel())
		if err := e2.Restore("x", once); err != nil {
			t.Fatalf("re-encoded state rejected: %v", err)
		}
		twice, _ := e2.EncodeLead("x", nil)
		if !bytes.Equal(once, twice) {
			t.Fatalf("not stable:\n%x\n%x", once, twice)
		}
		// And the engine can keep scoring it.
		var r Result
		e2.Apply(ev("x", "fuzz", "page_view", t0), t0, &r)
	})
}

// TestRollbackDroppedIDs rolls back transactions in which leads dropped
// remembered ids, by age and by the per-lead bound, once (the undo log
// journals the dropped ids) and more than once (it copies the old ids):
// every path of Engine.oldIDs.
func TestRollbackDroppedIDs(t *testing.T) {
	const h3 = 3 * 60 * 60 * 1000
	for _, tc := range []struct {
		name              string
		first, n          int   // touchpoints of the lead before the transaction, in all
		step              int64 // event time between them
		journaled, copied int   // leads whose undo record does that
	}{
		{"one drop by age", 80, 87, h3, 1, 0}, // 10 days, then 21 h more (< slack): ids older than 8 days go once
		{"drops by age", 150, 300, h3, 0, 1},  // 18.75 days more: they go again and again
		{"one drop by bound", maxDedupe, maxDedupe + 10, 1000, 1, 0},
		{"drops by bound", maxDedupe, maxDedupe + 700, 1000, 0, 1},
		{"no drop", 20, 40, 1000, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEngine(txnModel())
			mk := func(i int) *Touchpoint {
				return &Touchpoint{EventID: fmt.Sprintf("ev-%d", i), LeadID: "heavy", Type: "page_view",
					Channel: "web", OccurredAt: t0 + int64(i)*tc.step}
			}
			var r Result
			for i := range tc.first {
				e.Apply(mk(i), t0+int64(i)*tc.step, &r)
			}
			e.Apply(&Touchpoint{EventID: "other", LeadID: "quiet", Type: "email_open", OccurredAt: t0}, t0, &r)
			e.Commit()
			before := snapshot(e)
			slot, _ := e.lookup("heavy")
			entBefore := slices.Clone(e.leads[slot].ent)
			for i := tc.first; i < tc.n; i++ {
				e.Apply(mk(i), t0+int64(i)*tc.step, &r)
			}
			e.Apply(&Touchpoint{EventID: "other-2", LeadID: "quiet", Type: "email_open", OccurredAt: t0 + 1}, t0+1, &r)
			journaled, copied := 0, 0
			for _, u := range e.undoRec {
				switch {
				case u.seenOff >= 0:
					copied++
				case u.dropOff >= 0:
					journaled++
				}
			}
			if journaled != tc.journaled || copied != tc.copied {
				t.Fatalf("%d leads journaled dropped ids and %d copied them, want %d and %d",
					journaled, copied, tc.journaled, tc.copied)
			}
			e.Rollback()
			checkInvariants(t, e)
			if after := snapshot(e); !reflect.DeepEqual(before, after) {
				t.Fatal("rollback did not restore the leads exactly")
			}
			if ent := e.leads[slot].ent; !slices.Equal(entBefore, ent) {
				t.Fatalf("rollback did not restore the entries: %d, want %d", len(ent), len(entBefore))
			}
		})
	}
}

// TestGrowThenRestore: after Grow(n), restoring n leads neither moves the
// lead table nor grows the index, and the engine behaves as without Grow.
func TestGrowThenRestore(t *testing.T) {
	a := NewEngine(txnModel())
	applyAll(a, randomStream(3, 400, 3000))
	changelog := map[string][]byte{}
	a.AppendDirty(func(lead string, state []byte) { changelog[lead] = bytes.Clone(state) })
	a.Commit()
	if len(changelog) < 300 {
		t.Fatalf("only %d leads", len(changelog))
	}

	b := NewEngine(txnModel())
	// Some leads first, one of them removed: a free slot counts as room.
	k0 := ""
	for k, s := range changelog {
		if err := b.Restore(k, s); err != nil {
			t.Fatal(err)
		}
		k0 = k
		break
	}
	if err := b.Restore(k0, nil); err != nil {
		t.Fatal(err)
	}
	b.Grow(len(changelog))
	leads, cells, capBefore := unsafe.SliceData(b.leads), len(b.index.cells), cap(b.leads)
	if capBefore-len(b.leads)+len(b.free) < len(changelog) {
		t.Fatalf("Grow(%d): room for %d", len(changelog), capBefore-len(b.leads)+len(b.free))
	}
	for k, s := range changelog {
		if err := b.Restore(k, s); err != nil {
			t.Fatal(err)
		}
	}
	if unsafe.SliceData(b.leads) != leads || len(b.index.cells) != cells {
		t.Fatalf("the lead table or the index grew after Grow (cap %d -> %d, cells %d -> %d)",
			capBefore, cap(b.leads), cells, len(b.index.cells))
	}
	b.Grow(0)
	b.Grow(-1)
	if b.Len() != a.Len() || !reflect.DeepEqual(snapshot(a), snapshot(b)) {
		t.Fatalf("restored %d leads, want %d, or states differ", b.Len(), a.Len())
	}
	checkInvariants(t, b)
	more := randomStream(4, 500, 1000)
	if ra, rb := applyAll(a, more), applyAll(b, more); !reflect.DeepEqual(ra, rb) {
		t.Fatal("results differ after Grow")
	}
	checkInvariants(t, b)
}

// TestRestoreRejectsDuplicateCaps: a rule and day have one cap entry;
// a record with two is malformed.
func TestRestoreRejectsDuplicateCaps(t *testing.T) {
	e := NewEngine(goldenModel(t))
	head := "02" + "02" + "00" + "00" + "0000000000001440" + "8080bbdd8305" + "00" + "00"
	entry := "027076" + "d00f" + "0000000000001440" // pv, day 1000, 5 used
	tail := "00" + "00" + "00"                      // no ids, groups, traits
	for _, c := range []struct {
		caps string
		ok   bool
	}{
		{"01" + entry, true},
		{"02" + entry + entry, false},
		{"02" + entry + "027076" + "d20f" + "0000000000001440", true}, // day 1001
	} {
		b, err := hex.DecodeString(head + c.caps + tail)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Restore("l", b); (err == nil) != c.ok {
			t.Errorf("caps %s: %v, want ok %v", c.caps, err, c.ok)
		} else if err != nil && !errors.Is(err, ErrBadState) {
			t.Errorf("caps %s: %v, want ErrBadState", c.caps, err)
		}
	}
}

func TestHasDuplicateKeys(t *testing.T) {
	for _, n := range []int{0, 1, 2, 16, 17, 100} {
		es := make([]entry, n)
		for i := range es {
			es[i] = capEntry(uint16(i%7), int64(i/7), 1)
		}
		if hasDuplicateKeys(es) {
			t.Fatalf("%d distinct: duplicate reported", n)
		}
		if n >= 2 {
			es[n-1] = es[n/2-1]
			if !hasDuplicateKeys(es) {
				t.Fatalf("%d with a duplicate: not reported", n)
			}
		}
	}
}

// TestRollbackHeavyLeadsRandom applies weeks of touchpoints to a few heavy
// leads (one every few minutes each, some late by up to a day, some
// redelivered), committing or rolling back at random, seldom enough that
// transactions span days, with several drops, and the id indexes carry
// stale cells.
// After every rollback each lead must encode as at the last commit, with
// its derived summaries consistent.
func TestRollbackHeavyLeadsRandom(t *testing.T) {
	for seed := range uint64(4) {
		e := NewEngine(txnModel())
		rng := rand.New(rand.NewPCG(seed, 77))
		leads := []string{"h1", "h2", "h3"}
		committed := snapshot(e)
		var sent []*Touchpoint
		var res Result
		at := t0
		rollbacks, withStale, multiDrop := 0, 0, 0
		for i := range 20000 {
			at += rng.Int64N(8 * 60_000)
			tp := &Touchpoint{EventID: fmt.Sprintf("e%d", i), LeadID: leads[rng.IntN(len(leads))], Type: "page_view", OccurredAt: at}
			switch rng.IntN(30) {
			case 0:
				tp.OccurredAt -= rng.Int64N(day)
			case 1:
				if len(sent) > 0 {
					tp = sent[len(sent)-1-rng.IntN(min(len(sent), 500))]
				}
			}
			sent = append(sent, tp)
			e.Apply(tp, at, &res)
			// A transaction lasts about 400 touchpoints (a day and more).
			switch rng.IntN(800) {
			case 0:
				for _, r := range e.undoRec {
					if r.seenOff >= 0 {
						multiDrop++
					}
				}
				for _, k := range leads {
					if slot, ok := e.lookup(k); ok && e.leads[slot].ids != nil && e.leads[slot].ids.base > 0 {
						withStale++
					}
				}
				e.Rollback()
				rollbacks++
				checkInvariants(t, e)
				for _, k := range leads {
					if slot, ok := e.lookup(k); ok {
						checkSeen(t, k, &e.leads[slot])
					}
				}
				if got := snapshot(e); !reflect.DeepEqual(committed, got) {
					t.Fatalf("seed %d, touchpoint %d: rollback did not restore the last commit", seed, i)
				}
			case 1:
				e.Commit()
				committed = snapshot(e)
			}
		}
		if rollbacks < 10 || withStale < 5 || multiDrop < 3 {
			t.Fatalf("seed %d: %d rollbacks, %d of a lead with stale index cells, %d with two drops in one transaction: not covered",
				seed, rollbacks, withStale, multiDrop)
		}
	}
}
