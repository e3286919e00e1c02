package scorer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/leadscore/leadscore/models"
)

// TestOrderIndependence applies the same touchpoints for a few leads in many
// random orders. Without caps, and with every event time within
// max_lateness of every other (so nothing is too late) and unique event
// ids, SCORING.md 3 promises the same engagement whatever the order, and
// equal to the sum formula. Each trait is set by one touchpoint only, so fit
// is order-independent too.
func TestOrderIndependence(t *testing.T) {
	m := &models.Model{
		Name: "perm", Version: "1",
		HalfLife: 36 * time.Hour, MaxLateness: 7 * 24 * time.Hour,
		Rules: []models.Rule{
			{Name: "pv", Type: "page_view", Points: 1.5},
			{Name: "pricing", Type: "page_view", Properties: []models.PropertyMatch{{Key: "url", Glob: "*/pricing*"}}, Points: 7},
			{Name: "demo", Type: "demo_request", Points: 40},
			{Name: "unsub", Type: "unsubscribe", Points: -25},
			{Name: "click", Type: "email_click", Channel: "email", Points: 3.25},
		},
		Fit: []models.FitRule{
			{Name: "vp", Trait: "title", Equals: []string{"VP"}, Points: 10},
			{Name: "size", Trait: "company_size", Min: ptr(100.0), Points: 5},
		},
		Thresholds: models.Thresholds{MQL: 1e9},
	}
	type event struct {
		lead string
		tp   Touchpoint
		pts  float64
	}
	rng := rand.New(rand.NewPCG(7, 7))
	kinds := []struct {
		tp  Touchpoint
		pts float64
	}{
		{Touchpoint{Type: "page_view"}, 1.5},
		{Touchpoint{Type: "page_view", Props: []Attr{{"url", "https://x/pricing"}}}, 7},
		{Touchpoint{Type: "demo_request"}, 40},
		{Touchpoint{Type: "unsubscribe"}, -25},
		{Touchpoint{Type: "email_click", Channel: "email"}, 3.25},
		{Touchpoint{Type: "email_click"}, 0},
		{Touchpoint{Type: "webinar_attended"}, 0},
	}
	leads := []string{"a", "b", "c", "d"}
	var events []event
	for i := range 200 {
		k := kinds[rng.IntN(len(kinds))]
		lead := leads[rng.IntN(len(leads))]
		tp := k.tp
		tp.LeadID = lead
		tp.EventID = fmt.Sprint("e", i)
		tp.OccurredAt = t0 + rng.Int64N(7*day) // any two within max_lateness
		tp.Campaign = fmt.Sprint("c", rng.IntN(30))
		events = append(events, event{lead, tp, k.pts})
	}
	// One touchpoint per lead carries each trait.
	for li, lead := range leads {
		for _, tr := range []Attr{{"title", []string{"VP", "Engineer"}[li%2]}, {"company_size", fmt.Sprint(50 * li)}} {
			for i := range events {
				if events[i].lead == lead && events[i].tp.Traits == nil {
					events[i].tp.Traits = []Attr{tr}
					break
				}
			}
		}
	}
	at := t0 + 9*day
	// The sum formula, and fit by hand.
	want := map[string]float64{}
	for _, ev := range events {
		want[ev.lead] += ev.pts * math.Exp2(-float64(at-ev.tp.OccurredAt)/float64(36*hour))
	}
	wantFit := map[string]float64{"a": 10, "b": 0, "c": 10 + 5, "d": 5}

	order := make([]int, len(events))
	for i := range order {
		order[i] = i
	}
	for perm := range 200 {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		e := NewEngine(m)
		for _, i := range order {
			tp := events[i].tp
			var r Result
			e.Apply(&tp, at, &r)
			if r.Outcome != Scored {
				t.Fatalf("permutation %d: %v", perm, r.Outcome)
			}
		}
		for _, lead := range leads {
			got, fit, _ := e.Score(lead, at)
			if math.Abs(got-want[lead]) > 1e-9*math.Max(1, math.Abs(want[lead])) {
				t.Fatalf("permutation %d, lead %s: engagement %.17g, want %.17g", perm, lead, got, want[lead])
			}
			if fit != wantFit[lead] {
				t.Fatalf("permutation %d, lead %s: fit %v, want %v", perm, lead, fit, wantFit[lead])
			}
			// Contributor groups (folded or not) still sum to E_ref.
			l := &e.leads[e.slotOf(lead)]
			sum := 0.0
			for _, g := range l.groups() {
				sum += g.points()
			}
			if math.Abs(sum-l.eRef) > 1e-9*math.Max(1, math.Abs(l.eRef)) {
				t.Fatalf("lead %s: groups sum %v, E_ref %v", lead, sum, l.eRef)
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }
