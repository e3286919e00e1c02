package synth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscore/leadscore/ingest"
	"github.com/leadscore/leadscore/models"
	"github.com/leadscore/leadscore/scorer"
)

var testStart = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

func newGen(t testing.TB, cfg GenConfig) *Generator {
	t.Helper()
	g, err := NewGenerator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func expectHeader(r *kgo.Record) string {
	for _, h := range r.Headers {
		if h.Key == HeaderExpect {
			return string(h.Value)
		}
	}
	return ""
}

func TestGenConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg   GenConfig
		field string
	}{
		{GenConfig{Leads: -1}, "Leads"},
		{GenConfig{HotFraction: 1.5}, "HotFraction"},
		{GenConfig{BadFraction: math.NaN()}, "BadFraction"},
		{GenConfig{DuplicateFraction: 2}, "DuplicateFraction"},
		{GenConfig{BadFraction: 0.6, DuplicateFraction: 0.6}, "DuplicateFraction"},
		{GenConfig{Step: -time.Second}, "Step"},
		{GenConfig{Start: testStart}, "Start"},
		{GenConfig{Formats: []string{"json", "avro"}}, "Formats[1]"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), "GenConfig."+tc.field) {
			t.Errorf("%+v: got %v, want an error naming %s", tc.cfg, err, tc.field)
		}
		if _, err := NewGenerator(tc.cfg); err == nil {
			t.Errorf("%+v: NewGenerator accepted it", tc.cfg)
		}
	}
	for _, cfg := range []GenConfig{
		{},
		{HotFraction: -1, BadFraction: -1, DuplicateFraction: -1},
		{Step: time.Millisecond, Start: testStart, Formats: []string{"segment", "cloudevents", "json"}},
		{Leads: 1, HotFraction: 1, BadFraction: 1, DuplicateFraction: -1},
	} {
		if err := cfg.Validate(); err != nil {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}

func TestDeterministic(t *testing.T) {
	cfg := GenConfig{Seed: 7, Leads: 500, Step: 50 * time.Millisecond, Start: testStart,
		Formats: []string{"json", "segment", "cloudevents"}, BadFraction: 0.05, DuplicateFraction: 0.02}
	a, b := newGen(t, cfg), newGen(t, cfg)
	cfg.Seed = 8
	c := newGen(t, cfg)
	same := 0
	for i := range 20000 {
		ra, rb, rc := a.Next(), b.Next(), c.Next()
		if !bytes.Equal(ra.Key, rb.Key) || !bytes.Equal(ra.Value, rb.Value) || fmt.Sprint(ra.Headers) != fmt.Sprint(rb.Headers) {
			t.Fatalf("record %d differs with the same seed:\n%s %s\n%s %s", i, ra.Key, ra.Value, rb.Key, rb.Value)
		}
		if bytes.Equal(ra.Value, rc.Value) {
			same++
		}
	}
	if same > 0 {
		t.Errorf("%d records equal across seeds 7 and 8", same)
	}
	if fmt.Sprint(a.Counts()) != fmt.Sprint(b.Counts()) {
		t.Errorf("counts differ: %+v vs %+v", a.Counts(), b.Counts())
	}
}

// canonical is SCORING.md 1, decoded strictly with encoding/json.
type canonical struct {
	EventID     *string         `json:"event_id"`
	LeadID      string          `json:"lead_id"`
	AnonymousID string          `json:"anonymous_id"`
	AccountID   string          `json:"account_id"`
	Type        *string         `json:"type"`
	Channel     string          `json:"channel"`
	Campaign    string          `json:"campaign"`
	OccurredAt  json.RawMessage `json:"occurred_at"`
	Properties  map[string]any  `json:"properties"`
	Traits      map[string]any  `json:"traits"`
}

// checkCanonical validates one canonical JSON record against SCORING.md 1
// and returns its event id and event time.
func checkCanonical(key, value []byte) (id string, at time.Time, err error) {
	if len(value) >= 64<<10 {
		return "", at, fmt.Errorf("value is %d bytes", len(value))
	}
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.DisallowUnknownFields()
	var c canonical
	if err := dec.Decode(&c); err != nil {
		return "", at, err
	}
	switch {
	case c.EventID == nil || len(*c.EventID) == 0 || len(*c.EventID) > 128:
		return "", at, fmt.Errorf("event_id missing or not 1-128 bytes")
	case c.LeadID == "" && c.AnonymousID == "":
		return "", at, fmt.Errorf("neither lead_id nor anonymous_id")
	case len(c.LeadID) > 256 || len(c.AnonymousID) > 256:
		return "", at, fmt.Errorf("id over 256 bytes")
	case c.Type == nil || *c.Type == "":
		return "", at, fmt.Errorf("no type")
	case string(key) != c.LeadID && string(key) != c.AnonymousID:
		return "", at, fmt.Errorf("key %q is neither id", key)
	case c.LeadID != "" && string(key) != c.LeadID:
		return "", at, fmt.Errorf("key %q is not the lead id %q", key, c.LeadID)
	}
	if c.LeadID != "" && c.AccountID == "" {
		return "", at, fmt.Errorf("known lead without account_id")
	}
	if c.AccountID != "" && c.Traits["email"] != nil && !strings.HasSuffix(c.Traits["email"].(string), "@"+c.AccountID) {
		return "", at, fmt.Errorf("account_id %q is not the e-mail domain of %v", c.AccountID, c.Traits["email"])
	}
	var s string
	var ms int64
	if err := json.Unmarshal(c.OccurredAt, &s); err == nil {
		if at, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return "", at, fmt.Errorf("occurred_at: %w", err)
		}
	} else if err := json.Unmarshal(c.OccurredAt, &ms); err == nil {
		at = time.UnixMilli(ms)
	} else {
		return "", at, fmt.Errorf("occurred_at %s is neither RFC 3339 nor epoch ms", c.OccurredAt)
	}
	if !utf8.Valid(value) {
		return "", at, fmt.Errorf("not UTF-8")
	}
	return *c.EventID, at, nil
}

func TestGoodRecordsAreCanonical(t *testing.T) {
	g := newGen(t, GenConfig{Leads: 2000, Step: 20 * time.Millisecond, Start: testStart})
	first := map[string][]byte{}
	repeats := 0
	for range 30000 {
		r := g.Next()
		if reason := expectHeader(r); reason != "" {
			continue
		}
		id, at, err := checkCanonical(r.Key, r.Value)
		if err != nil {
			t.Fatalf("%v:\n%s %s", err, r.Key, r.Value)
		}
		if at.Before(testStart) || at.After(testStart.Add(time.Hour)) {
			t.Fatalf("occurred_at %v outside the simulated hour", at)
		}
		if prev, ok := first[id]; ok {
			repeats++
			if !bytes.Equal(prev, r.Value) {
				t.Fatalf("event_id %s reused by a different record:\n%s\n%s", id, prev, r.Value)
			}
			continue
		}
		first[id] = r.Value
	}
	c := g.Counts()
	if int64(repeats) != c.Duplicates || repeats == 0 {
		t.Errorf("%d repeated event ids, generator made %d duplicates", repeats, c.Duplicates)
	}
}

// TestDecodesWithIngest checks every format against the real decoder: good
// records decode, bad ones fail with the reason they are marked with.
func TestDecodesWithIngest(t *testing.T) {
	dec, err := ingest.NewDecoder(ingest.DecoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	g := newGen(t, GenConfig{Leads: 1000, Step: 10 * time.Millisecond, Start: testStart,
		Formats: []string{"json", "segment", "cloudevents"}, BadFraction: 0.1})
	var tp scorer.Touchpoint
	types := map[string]int{}
	formats := map[ingest.Format]int{}
	reasons := map[string]int{}
	for range 30000 {
		r := g.Next()
		err := dec.Decode(r.Key, r.Value, r.Headers, &tp)
		want := expectHeader(r)
		switch want {
		case "":
			if err != nil {
				t.Fatalf("good record: %v\n%s %s", err, r.Key, r.Value)
			}
			if tp.EventID == "" || tp.Type == "" || tp.Lead() == "" || tp.OccurredAt < testStart.UnixMilli() {
				t.Fatalf("decoded %+v from %s", tp, r.Value)
			}
			types[tp.Type]++
			formats[dec.LastFormat()]++
		case "future":
			if err != nil {
				t.Fatalf("future record does not decode: %v\n%s", err, r.Value)
			}
			if tp.OccurredAt < time.Now().AddDate(50, 0, 0).UnixMilli() {
				t.Fatalf("future record at %v", time.UnixMilli(tp.OccurredAt))
			}
			reasons[want]++
		default:
			got, ok := ingest.ReasonOf(err)
			if !ok || string(got) != want {
				t.Fatalf("bad record marked %s decodes with %v\n%q %s", want, err, r.Key, r.Value)
			}
			reasons[want]++
		}
	}
	for _, typ := range []string{"page_view", "email_open", "email_click", "form_submit", "content_download",
		"webinar_registered", "webinar_attended", "event_attended", "demo_request", "unsubscribe", "email_bounce"} {
		if types[typ] == 0 {
			t.Errorf("no %s touchpoint", typ)
		}
	}
	for _, f := range []ingest.Format{ingest.FormatJSON, ingest.FormatSegment, ingest.FormatCloudEvents} {
		if formats[f] < 5000 {
			t.Errorf("%d %v records, want about 9000", formats[f], f)
		}
	}
	for _, reason := range BadReasons() {
		if reasons[reason] == 0 {
			t.Errorf("no bad record of kind %s", reason)
		}
	}
}

// TestMix scores a simulated stream with the default model: hot leads get
// far more high-intent touches and qualify; ordinary leads seldom do; bad
// records and duplicates come at the configured rates.
func TestMix(t *testing.T) {
	const n = 150000
	g := newGen(t, GenConfig{Leads: 10000, Step: 100 * time.Millisecond, Start: testStart})
	dec, err := ingest.NewDecoder(ingest.DecoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	eng := scorer.NewEngine(models.Default())
	hot := map[string]bool{}
	for _, id := range g.HotLeads() {
		hot[id] = true
	}
	if len(hot) != 200 {
		t.Fatalf("%d hot leads, want 2%% of 10000", len(hot))
	}
	var (
		tp                  scorer.Touchpoint
		res                 scorer.Result
		intent              = map[string]int{} // high-intent touches per lead
		touched             = map[string]bool{}
		qualified           = map[string]bool{}
		bad, anon, scoreDup int
	)
	now := testStart.Add(30 * 24 * time.Hour).UnixMilli()
	for range n {
		r := g.Next()
		if err := dec.Decode(r.Key, r.Value, r.Headers, &tp); err != nil || expectHeader(r) != "" {
			bad++
			continue
		}
		if tp.LeadID == "" {
			anon++
		} else {
			touched[tp.LeadID] = true
		}
		url, _ := tp.Prop("url")
		if tp.Type == "demo_request" || tp.Type == "webinar_attended" ||
			(tp.Type == "page_view" && strings.Contains(url, "/pricing")) {
			intent[tp.Lead()]++
		}
		eng.Apply(&tp, now, &res)
		switch {
		case res.Outcome == scorer.Duplicate:
			scoreDup++
		case res.Outcome != scorer.Scored:
			t.Fatalf("good record %s: %v", r.Value, res.Outcome)
		}
		if res.Qualified {
			qualified[tp.LeadID] = true
		}
	}
	c := g.Counts()
	if got := float64(bad) / n; math.Abs(got-0.01) > 0.002 {
		t.Errorf("bad fraction %.4f, want 0.01", got)
	}
	if int64(bad) != c.Bad {
		t.Errorf("%d records failed to decode or were marked, generator made %d bad", bad, c.Bad)
	}
	if got := float64(c.Duplicates) / n; math.Abs(got-0.005) > 0.0015 {
		t.Errorf("duplicate fraction %.4f, want 0.005", got)
	}
	if int64(scoreDup) != c.Duplicates {
		t.Errorf("engine saw %d duplicates, generator made %d", scoreDup, c.Duplicates)
	}
	if got := float64(anon) / n; math.Abs(got-0.05*0.985) > 0.003 {
		t.Errorf("anonymous share %.4f, want about 0.049", got)
	}

	var hotIntent, coldIntent, coldQualified, hotQualified int
	for id := range touched {
		if hot[id] {
			hotIntent += intent[id]
			if qualified[id] {
				hotQualified++
			}
		} else {
			coldIntent += intent[id]
			if qualified[id] {
				coldQualified++
			}
		}
	}
	nCold := len(touched) - len(hot)
	hotPer, coldPer := float64(hotIntent)/float64(len(hot)), float64(coldIntent)/float64(nCold)
	t.Logf("leads touched %d; high-intent touches per hot lead %.1f, per other lead %.2f; qualified: %d hot, %d other",
		len(touched), hotPer, coldPer, hotQualified, coldQualified)
	if hotPer < 20*coldPer {
		t.Errorf("hot leads have %.1f high-intent touches each, others %.2f: want 20 times as many", hotPer, coldPer)
	}
	if hotQualified < len(hot)*95/100 {
		t.Errorf("%d of %d hot leads qualified, want at least 95%%", hotQualified, len(hot))
	}
	// The busiest ordinary leads (hundreds of touches in these few hours)
	// do qualify, as they would; but only a few.
	if coldQualified > nCold*15/1000 {
		t.Errorf("%d of %d other leads qualified, want under 1.5%%", coldQualified, nCold)
	}
	if len(touched) < 8000 {
		t.Errorf("only %d of 10000 leads touched", len(touched))
	}
}

// TestLive checks live mode: event times follow the clock, mostly within
// seconds, never in the future or more than 3 days late; event ids differ
// between runs with the same seed.
func TestLive(t *testing.T) {
	now := testStart.Add(10 * 24 * time.Hour)
	clock := func() time.Time { return now }
	g := newGen(t, GenConfig{Leads: 1000, Now: clock, BadFraction: -1, DuplicateFraction: -1})
	later := now.Add(time.Second)
	g2 := newGen(t, GenConfig{Leads: 1000, Now: func() time.Time { return later }, BadFraction: -1, DuplicateFraction: -1})
	recent, minutes := 0, 0
	const n = 20000
	for range n {
		r := g.Next()
		id, at, err := checkCanonical(r.Key, r.Value)
		if err != nil {
			t.Fatal(err)
		}
		id2, _, _ := checkCanonical(nil, g2.Next().Value)
		if id == id2 {
			t.Fatalf("event id %s repeated by a later run", id)
		}
		d := now.Sub(at)
		switch {
		case d < 0 || d > 72*time.Hour:
			t.Fatalf("occurred_at %v is %v before the clock", at, d)
		case d < 10*time.Second:
			recent++
		case d > time.Minute:
			minutes++
		}
		now = now.Add(time.Millisecond)
	}
	if recent < n*9/10 || minutes < n/50 {
		t.Errorf("%d records within 10s, %d over a minute late, of %d", recent, minutes, n)
	}
}

func TestHotLeadsAndIDs(t *testing.T) {
	g := newGen(t, GenConfig{Leads: 1234567, HotFraction: 0.001, Step: time.Second, Start: testStart})
	ids := g.HotLeads()
	if len(ids) != 1235 {
		t.Errorf("%d hot leads, want 1235", len(ids))
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] || len(id) != len("lead-0000000") || !strings.HasPrefix(id, "lead-") {
			t.Fatalf("bad or repeated hot lead id %q", id)
		}
		seen[id] = true
	}
	// One lead, everything hot: still works.
	g = newGen(t, GenConfig{Leads: 1, HotFraction: 1, BadFraction: 0.5, Step: time.Second, Start: testStart})
	for range 1000 {
		r := g.Next()
		if expectHeader(r) == "" && string(r.Key) != "lead-000000" && !strings.HasPrefix(string(r.Key), "anon-") {
			t.Fatalf("key %q", r.Key)
		}
	}
}

func TestDomainsUnique(t *testing.T) {
	p := newPopulation(3, 40000)
	seen := map[string]int{}
	for i := range p.accounts {
		a := p.account(i)
		d := string(a.appendDomain(nil))
		if j, ok := seen[d]; ok {
			t.Fatalf("accounts %d and %d share domain %s", j, i, d)
		}
		seen[d] = i
	}
	a := account{word: "pied-piper", suffix: "-labs", gen: 2}
	if got := string(a.appendName(nil)); got != "Pied Piper Labs 3" {
		t.Errorf("name %q", got)
	}
}

func BenchmarkNext(b *testing.B) {
	for _, f := range []string{"json", "segment", "cloudevents"} {
		b.Run(f, func(b *testing.B) {
			g := newGen(b, GenConfig{Step: time.Millisecond, Start: testStart, Formats: []string{f}})
			var n int64
			b.ReportAllocs()
			for b.Loop() {
				n += int64(len(g.Next().Value))
			}
			b.SetBytes(n / int64(b.N))
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
