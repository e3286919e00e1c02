package synth

import (
	"os"
	"testing"
	"time"

	"github.com/leadscore/leadscore/ingest"
	"github.com/leadscore/leadscore/models"
	"github.com/leadscore/leadscore/scorer"
)

// TestSampleFile checks bench/testdata/sample.jsonl, the hand-written
// replay: 20 leads over 10 days, every line a canonical touchpoint, and
// under the default model exactly the three leads with a buying journey
// qualify (Maya Chen and Jonas Weber at their demo requests, Priya Patel at
// the contact-sales form), while the student with more engagement than
// most (no fit) and the CEO with a lone demo request (too little research)
// do not.
func TestSampleFile(t *testing.T) {
	f, err := os.Open("../testdata/sample.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := readAll(ReplayJSONL(f, ""))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 180 || len(recs) > 220 {
		t.Errorf("%d records, want about 200", len(recs))
	}
	dec, err := ingest.NewDecoder(ingest.DecoderConfig{Format: ingest.FormatJSON})
	if err != nil {
		t.Fatal(err)
	}
	eng := scorer.NewEngine(models.Default())
	var (
		tp       scorer.Touchpoint
		res      scorer.Result
		leads    = map[string]bool{}
		ids      = map[string]bool{}
		triggers = map[string]string{}
		first    = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC).UnixMilli()
		last     = first + 10*24*3600*1000
	)
	now := time.Date(2026, 11, 12, 0, 0, 0, 0, time.UTC).UnixMilli()
	for i, r := range recs {
		if _, _, err := checkCanonical(r.Key, r.Value); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if err := dec.Decode(r.Key, r.Value, r.Headers, &tp); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if ids[tp.EventID] {
			t.Errorf("line %d: event_id %s repeated", i+1, tp.EventID)
		}
		ids[tp.EventID] = true
		if tp.OccurredAt < first || tp.OccurredAt >= last {
			t.Errorf("line %d: occurred_at %v outside 2026-11-02..11", i+1, time.UnixMilli(tp.OccurredAt).UTC())
		}
		if tp.LeadID != "" {
			leads[tp.LeadID] = true
		}
		eng.Apply(&tp, now, &res)
		if res.Outcome != scorer.Scored {
			t.Fatalf("line %d: %v", i+1, res.Outcome)
		}
		if res.Qualified {
			triggers[tp.LeadID] = tp.Type
		}
	}
	if len(leads) != 20 {
		t.Errorf("%d leads, want 20", len(leads))
	}
	want := map[string]string{
		"lead-000001": "demo_request",
		"lead-000002": "demo_request",
		"lead-000003": "form_submit",
	}
	if !mapsEqual(triggers, want) {
		t.Errorf("qualified %v, want %v", triggers, want)
	}
	for _, id := range []string{"lead-000004", "lead-000006"} {
		e, fit, _ := eng.Score(id, now)
		t.Logf("%s: engagement %.1f, fit %.0f", id, e, fit)
	}
	e4, fit4, _ := eng.Score("lead-000004", now)
	if e4 < models.Default().Thresholds.MQL || fit4 >= *models.Default().Thresholds.FitMin {
		t.Errorf("the student has engagement %.1f and fit %.0f: want enough engagement, too little fit", e4, fit4)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
