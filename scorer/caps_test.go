package scorer

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestCapsReference checks the points of every touchpoint of capped rules
// against a plain map of (rule, day) usage, over a stream of many capped
// rules with touchpoints up to and past max_lateness late, so that cap
// usage moves between the hot and the cold caps, is charged in both, is
// rolled back and is restored from encoded state.
func TestCapsReference(t *testing.T) {
	var src strings.Builder
	src.WriteString("name: caps\nversion: \"1\"\nhalf_life: 14d\nmax_lateness: 7d\ndedupe_window: 1h\nthresholds: {mql: 1000000}\nrules:\n")
	const nRules = 12
	for i := range nRules {
		fmt.Fprintf(&src, "  - {name: r%d, type: t%d, points: %d, cap: %d}\n", i, i, 1+i%3, 2+i%5)
	}
	m := mustParse(t, src.String())
	points := func(rule int) float64 { return float64(1 + rule%3) }
	limit := func(rule int) float64 { return float64(2 + rule%5) }

	type key struct {
		lead      string
		rule, day int64
	}
	rng := rand.New(rand.NewPCG(5, 6))
	e := NewEngine(m)
	ref, committed := map[key]float64{}, map[key]float64{}
	clock := t0
	var res Result
	cold, charged := 0, 0
	state := snapshot(e)
	for i := range 6000 {
		clock += rng.Int64N(2 * 60 * 60 * 1000)
		at := clock - rng.Int64N(60_000)
		switch p := rng.IntN(10); {
		case p < 3:
			at = clock - rng.Int64N(8*day) // a few too late
		case p < 5:
			at = clock - rng.Int64N(day)
		}
		lead := fmt.Sprintf("lead-%d", rng.IntN(3))
		if rng.IntN(20) == 0 {
			lead = "sparse" // hot caps of many days, moved out a week old
		}
		rule := rng.IntN(nRules)
		if rng.IntN(2) == 0 {
			rule = rng.IntN(3) // the same few rules often, so that usage is charged again
		}
		e.Apply(ev(lead, fmt.Sprint("ev-", i), fmt.Sprint("t", rule), at), at, &res)
		if res.Outcome != Scored {
			continue
		}
		k := key{lead, int64(rule), floorDiv(at, day)}
		want := min(points(rule), max(limit(rule)-ref[k], 0))
		if res.Points != want {
			t.Fatalf("touchpoint %d (%s, rule %d, day %d): %v points, want %v (used %v)", i, lead, rule, k.day, res.Points, want, ref[k])
		}
		ref[k] += want
		charged++
		l := &e.leads[e.slotOf(lead)]
		if hot := l.hotCaps(); len(hot) > 0 && k.day < hot[0].day() {
			cold++
		}
		switch {
		case i%97 == 96: // abort
			e.Rollback()
			clear(ref)
			for k, v := range committed {
				ref[k] = v
			}
			checkInvariants(t, e)
			if !reflect.DeepEqual(snapshot(e), state) {
				t.Fatalf("touchpoint %d: rollback did not restore every lead exactly", i)
			}
		case i%31 == 30:
			e.Commit()
			clear(committed)
			for k, v := range ref {
				committed[k] = v
			}
			checkInvariants(t, e)
			state = snapshot(e)
		case i%1000 == 999: // a restart: restore a new engine from the state
			e.Commit()
			clear(committed)
			for k, v := range ref {
				committed[k] = v
			}
			e2 := NewEngine(m)
			for k, b := range snapshot(e) {
				if err := e2.Restore(k, b); err != nil {
					t.Fatal(err)
				}
			}
			checkInvariants(t, e2)
			if state = snapshot(e2); !reflect.DeepEqual(state, snapshot(e)) {
				t.Fatalf("touchpoint %d: restored state differs", i)
			}
			e = e2
		}
	}
	if cold < 100 || charged < 3000 {
		t.Fatalf("test needs charges of cold caps: %d of %d", cold, charged)
	}
}

// TestColdCapsOldestDay: usage moved to the cold caps on the oldest day a
// touchpoint can still fall on is kept there and charged.
func TestColdCapsOldestDay(t *testing.T) {
	e := NewEngine(mustParse(t, capModel+"max_lateness: 7d\n"))
	const h = 60 * 60 * 1000
	step := func(id string, at int64, url string, want float64) {
		t.Helper()
		tp := ev("a", id, "page_view", at)
		if url != "" {
			tp.Props = []Attr{{"url", url}}
		}
		if r := apply(e, tp); r.Outcome != Scored || r.Points != want {
			t.Fatalf("%s: %v, %v points, want scored, %v", id, r.Outcome, r.Points, want)
		}
	}
	step("d0a", t0+10*h, "", 4)
	step("d0b", t0+11*h, "", 4)
	step("d0c", t0+12*h, "", 2) // day 0's cap used up
	// Two entries a day up to day 7: the one that passes hotCapsMax moves
	// all days but the last to the cold caps, day 0 among them, the oldest
	// still open to a touchpoint (after 13:00).
	days := int64(hotCapsMax/2 + 1)
	if days > 8 {
		t.Fatalf("hotCapsMax %d needs more days than max_lateness", hotCapsMax)
	}
	for d := 8 - days + 1; d < 8; d++ {
		step(fmt.Sprint("pv", d), t0+d*day+12*h, "", 4)
		step(fmt.Sprint("pricing", d), t0+d*day+13*h, "https://x.test/pricing", 6)
	}
	l := &e.leads[e.slotOf("a")]
	if len(l.hotCaps()) != 2 || len(e.coldCaps(l)) != int(2*days-3) {
		t.Fatalf("%d hot caps, %d cold, want 2 and %d", len(l.hotCaps()), len(e.coldCaps(l)), 2*days-3)
	}
	step("late", t0+23*h, "", 0)
	checkCaps(t, e, "a", l)
}

// TestRestoreDropsStaleCaps: Restore keeps only the cap usage of days a
// touchpoint can still fall on under the engine's model (here a shorter
// max_lateness than the one that wrote the state).
func TestRestoreDropsStaleCaps(t *testing.T) {
	e := NewEngine(mustParse(t, capModel+"max_lateness: 7d\n"))
	for d := range int64(7) {
		apply(e, ev("a", fmt.Sprint(d), "page_view", t0+d*day+12*60*60*1000))
	}
	state, _ := e.EncodeLead("a", nil)
	e2 := NewEngine(mustParse(t, capModel+"max_lateness: 2d\n"))
	if err := e2.Restore("a", state); err != nil {
		t.Fatal(err)
	}
	l := &e2.leads[e2.slotOf("a")]
	caps := slices.Concat(e2.coldCaps(l), l.hotCaps())
	if len(caps) != 3 || caps[0].day() != floorDiv(t0, day)+4 {
		t.Fatalf("caps after restore: %v, want days 4 to 6", caps)
	}
	checkCaps(t, e2, "a", l)
}
