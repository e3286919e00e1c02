package scorer

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// checkSeen verifies the summaries derived from a lead's remembered ids:
// without a heavy-lead index the Bloom filter holds every id; the index,
// when present, lists every position exactly once and is at most half
// full.
func checkSeen(t *testing.T, key string, l *lead) {
	t.Helper()
	ids := l.seenIDs()
	for i, d := range ids {
		if l.ids == nil && !l.bloom.mayHave(d.k) {
			t.Fatalf("%s: id %d (%x) not in the Bloom filter", key, i, d.k)
		}
	}
	if len(ids) > heavyIDs && l.ids == nil {
		t.Fatalf("%s: %d ids and no index", key, len(ids))
	}
	if l.ids == nil {
		return
	}
	if 2*len(ids) > len(l.ids.cells) {
		t.Fatalf("%s: %d ids in %d cells", key, len(ids), len(l.ids.cells))
	}
	found := make([]int, len(ids))
	for _, c := range l.ids.cells {
		if c == 0 {
			continue
		}
		if int(c) > len(ids) {
			t.Fatalf("%s: index cell %d past the %d ids", key, c, len(ids))
		}
		found[c-1]++
	}
	for i, n := range found {
		if n != 1 {
			t.Fatalf("%s: id %d indexed %d times", key, i, n)
		}
	}
}

// naiveSeen is the definition seen() implements: a scan of every id.
func naiveSeen(l *lead, h uint64, t, window int64) bool {
	for _, d := range l.seenIDs() {
		if d.k == h && d.time()-window <= t && t <= d.time()+window {
			return true
		}
	}
	return false
}

// TestSeenMatchesScan drives leads across the heavy threshold and back
// (bursts of traffic, then quiet periods in which ids expire), with
// redeliveries, cap and group changes that move the ids inside ent, and
// rollbacks, and checks after every touchpoint that seen() answers as a
// full scan does and the summaries are consistent.
func TestSeenMatchesScan(t *testing.T) {
	e := NewEngine(txnModel())
	rng := rand.New(rand.NewPCG(3, 4))
	types := []string{"page_view", "email_open", "form_submit", "webinar_attended", "other"}
	now := t0
	var res Result
	var sent []*Touchpoint
	heavyBefore := map[string]bool{}
	toHeavy, toLight := 0, 0
	for step := range 30000 {
		// Bursts of up to ~300 touchpoints a lead, separated by gaps of days.
		if step%997 == 0 {
			now += int64(rng.IntN(4)) * day
		}
		now += int64(rng.IntN(60_000))
		var tp *Touchpoint
		if len(sent) > 0 && rng.IntN(8) == 0 {
			c := *sent[rng.IntN(len(sent))] // redelivery, maybe shifted in time
			c.OccurredAt += int64(rng.IntN(3)-1) * hour * 20
			tp = &c
		} else {
			tp = &Touchpoint{
				EventID:    fmt.Sprintf("e%d", rng.IntN(50_000)),
				LeadID:     fmt.Sprintf("l%d", rng.IntN(3)),
				Type:       types[rng.IntN(len(types))],
				Channel:    []string{"web", "email"}[rng.IntN(2)],
				Campaign:   fmt.Sprintf("c%d", rng.IntN(20)),
				OccurredAt: now - int64(rng.IntN(3_600_000)),
			}
			sent = append(sent, tp)
			if len(sent) > 2000 {
				sent = sent[1:]
			}
		}
		want := Scored
		if slot, ok := e.lookup(tp.Lead()); ok {
			l := &e.leads[slot]
			h := hashID(tp.EventID)
			got := l.seen(h, tp.OccurredAt, e.window)
			if got != naiveSeen(l, h, tp.OccurredAt, e.window) {
				t.Fatalf("step %d: seen %v, scan disagrees", step, got)
			}
			if got && tp.OccurredAt >= l.tRef-e.maxLate && tp.OccurredAt <= now+e.maxFuture {
				want = Duplicate
			}
		}
		e.Apply(tp, now, &res)
		if slot, ok := e.lookup(tp.Lead()); ok {
			h := e.leads[slot].ids != nil
			if h && !heavyBefore[tp.Lead()] {
				toHeavy++
			} else if !h && heavyBefore[tp.Lead()] {
				toLight++
			}
			heavyBefore[tp.Lead()] = h
		}
		if want == Duplicate && res.Outcome != Duplicate {
			t.Fatalf("step %d: %v, want duplicate", step, res.Outcome)
		}
		switch rng.IntN(50) {
		case 0:
			e.Rollback()
		case 1, 2, 3:
			e.Commit()
		}
		if step%500 == 0 {
			checkInvariants(t, e)
		}
	}
	checkInvariants(t, e)
	if toHeavy < 3 || toLight < 3 {
		t.Fatalf("leads became heavy %d times, light %d times: the test does not cover the threshold", toHeavy, toLight)
	}
}
