package scorer

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/leadscore/leadscore/models"
)

const (
	hour = int64(time.Hour / time.Millisecond)
	day  = 24 * hour
)

// t0 is midnight UTC, so t0 + k*day are day boundaries.
var t0 = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC).UnixMilli()

func mustParse(t testing.TB, src string) *models.Model {
	t.Helper()
	m, err := models.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

type opt func(*Touchpoint)

func channel(c string) opt  { return func(tp *Touchpoint) { tp.Channel = c } }
func campaign(c string) opt { return func(tp *Touchpoint) { tp.Campaign = c } }
func prop(k, v string) opt {
	return func(tp *Touchpoint) { tp.Props = append(tp.Props, Attr{k, v}) }
}
func trait(k, v string) opt {
	return func(tp *Touchpoint) { tp.Traits = append(tp.Traits, Attr{k, v}) }
}

func ev(lead, id, typ string, at int64, opts ...opt) *Touchpoint {
	tp := &Touchpoint{LeadID: lead, EventID: id, Type: typ, OccurredAt: at}
	for _, o := range opts {
		o(tp)
	}
	return tp
}

// apply scores tp with the wall clock at its event time.
func apply(e *Engine, tp *Touchpoint) Result {
	var r Result
	e.Apply(tp, tp.OccurredAt, &r)
	return r
}

func near(a, b float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

func TestGlob(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "https://x/y/z", true},
		{"abc", "abc", true},
		{"abc", "abd", false},
		{"abc", "ab", false},
		{"ab", "abc", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"?", "", false},
		{"*/pricing*", "https://acme.test/pricing", true},
		{"*/pricing*", "https://acme.test/en/pricing?plan=pro", true},
		{"*/pricing*", "https://acme.test/price", false},
		{"*/docs/*", "https://acme.test/docs/", true},
		{"*/docs/*", "https://acme.test/docs", false},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
		{"a*b*c", "abcbc", true},
		{"*a*a*a", "aaaa", true},
		{"*a*a*a*", "aa", false},
		{"**", "x", true},
		{"*?", "", false},
		{"*?", "x", true},
		{"Pricing", "pricing", false}, // case-sensitive
		{"contact-*", "contact-sales", true},
		{"contact-*", "xcontact-sales", false},
		{"*ä*", "bär", true},  // bytes, any UTF-8 is just bytes
		{"b?r", "bär", false}, // '?' is one byte, ä is two
		{"b??r", "bär", true},
	} {
		if got := globMatch(c.pattern, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
		g := compileGlob(c.pattern)
		if got := g.match(c.s); got != c.want {
			t.Errorf("compiled glob %q on %q = %v, want %v", c.pattern, c.s, got, c.want)
		}
		if got := models.MatchGlob(c.pattern, c.s); got != c.want {
			t.Errorf("models.MatchGlob(%q, %q) = %v, want %v (the engine and the models package disagree)", c.pattern, c.s, got, c.want)
		}
	}
}

// FuzzGlob checks the compiled glob against the general matcher.
func FuzzGlob(f *testing.F) {
	f.Add("*/pricing*", "https://x/pricing?a=1")
	f.Add("a*b*c", "abcbc")
	f.Add("*a*a*a*", "aa")
	f.Add("x?y*", "xzy")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		g := compileGlob(pattern)
		if got, want := g.match(s), globMatch(pattern, s); got != want {
			t.Fatalf("compiled glob %q on %q = %v, globMatch %v", pattern, s, got, want)
		}
	})
}

func TestGlobZeroAlloc(t *testing.T) {
	g := compileGlob("*/pricing*")
	n := testing.AllocsPerRun(100, func() {
		_ = globMatch("*a*b?c*", "xxaxxbxcxx")
		g.match("https://acme.test/en/pricing?x")
	})
	if n != 0 {
		t.Fatalf("globMatch allocates %v times", n)
	}
}

const selectionModel = `name: sel
version: "1"
thresholds: {mql: 1000}
rules:
  - {name: pv, type: page_view, points: 1}
  - {name: pv-web, type: page_view, channel: web, points: 2}
  - {name: pv-pricing, type: page_view, properties: {url: "*/pricing*"}, points: 5}
  - {name: pv-pricing-again, type: page_view, properties: {url: "*pricing"}, points: 50}
  - {name: pv-pricing-web-spring, type: page_view, channel: web, campaign: spring, properties: {url: "*/pricing*"}, points: 9}
  - {name: pv-two-props, type: page_view, properties: {url: "*/docs/*", ref: "g?ogle"}, points: 7}
  - {type: form_submit, campaign: spring, points: 4}
  - {name: unsub, type: unsubscribe, points: -20}
`

func TestRuleSelection(t *testing.T) {
	for _, c := range []struct {
		name string
		tp   *Touchpoint
		rule string
		pts  float64
	}{
		{"type only", ev("a", "1", "page_view", t0), "pv", 1},
		{"channel adds a condition", ev("a", "1", "page_view", t0, channel("web")), "pv-web", 2},
		{"other channel falls back", ev("a", "1", "page_view", t0, channel("email")), "pv", 1},
		{"property beats channel: first in file among equals", ev("a", "1", "page_view", t0, channel("web"), prop("url", "https://x/pricing")), "pv-web", 2},
		{"property glob", ev("a", "1", "page_view", t0, prop("url", "https://x/pricing")), "pv-pricing", 5},
		{"four conditions win", ev("a", "1", "page_view", t0, channel("web"), campaign("spring"), prop("url", "https://x/pricing?a")), "pv-pricing-web-spring", 9},
		{"three conditions of four: falls back", ev("a", "1", "page_view", t0, channel("web"), campaign("fall"), prop("url", "https://x/pricing")), "pv-web", 2},
		{"two properties", ev("a", "1", "page_view", t0, prop("url", "/a/docs/b"), prop("ref", "google")), "pv-two-props", 7},
		{"one of two properties", ev("a", "1", "page_view", t0, prop("url", "/a/docs/b"), prop("ref", "bing")), "pv", 1},
		{"missing property", ev("a", "1", "page_view", t0, prop("ref", "google")), "pv", 1},
		{"derived name", ev("a", "1", "form_submit", t0, campaign("spring")), "form_submit/campaign=spring", 4},
		{"campaign required", ev("a", "1", "form_submit", t0), "", 0},
		{"negative", ev("a", "1", "unsubscribe", t0), "unsub", -20},
		{"no rule for type", ev("a", "1", "email_open", t0), "", 0},
		{"type is case-sensitive", ev("a", "1", "Page_View", t0), "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := NewEngine(mustParse(t, selectionModel))
			r := apply(e, c.tp)
			if r.Outcome != Scored || r.Rule != c.rule || r.Points != c.pts {
				t.Fatalf("got %v rule %q points %v, want scored rule %q points %v", r.Outcome, r.Rule, r.Points, c.rule, c.pts)
			}
		})
	}
}

const fitModel = `name: fit
version: "1"
thresholds: {mql: 1000}
rules:
  - {type: page_view, points: 1}
fit:
  - {trait: title, equals: [VP, Director], points: 15}
  - {trait: title, glob: "*Chief*", points: 20}
  - {trait: company_size, min: 200, max: 5000, points: 10}
  - {trait: company_size, min: 5000, points: 4}
  - {trait: country, equals: [us, DE], points: -1}
`

func TestFit(t *testing.T) {
	for _, c := range []struct {
		name   string
		traits [][]Attr // one touchpoint per element
		want   float64
	}{
		{"none", nil, 0},
		{"equals case-insensitive", [][]Attr{{{"title", "vp"}}}, 15},
		{"equals other", [][]Attr{{{"title", "Director"}}}, 15},
		{"equals is whole value", [][]Attr{{{"title", "VP Sales"}}}, 0},
		{"glob", [][]Attr{{{"title", "Chief Revenue Officer"}}}, 20},
		{"glob case-sensitive", [][]Attr{{{"title", "chief of staff"}}}, 0},
		{"range low bound in", [][]Attr{{{"company_size", "200"}}}, 10},
		{"range below", [][]Attr{{{"company_size", "199.99"}}}, 0},
		{"range high bound out", [][]Attr{{{"company_size", "5000"}}}, 4},
		{"range float syntax", [][]Attr{{{"company_size", "1e3"}}}, 10},
		{"range spaces", [][]Attr{{{"company_size", " 300 "}}}, 10},
		{"range unparseable", [][]Attr{{{"company_size", "300 people"}}}, 0},
		{"range NaN", [][]Attr{{{"company_size", "NaN"}}}, 0},
		{"open max", [][]Attr{{{"company_size", "1e9"}}}, 4},
		{"equals any of", [][]Attr{{{"country", "de"}}}, -1},
		{"empty value", [][]Attr{{{"country", ""}}}, 0},
		{"sum", [][]Attr{{{"title", "VP"}, {"company_size", "250"}}}, 25},
		{"latest value wins", [][]Attr{{{"title", "VP"}}, {{"title", "Engineer"}}}, 0},
		{"latest value wins, other trait kept", [][]Attr{{{"title", "VP"}, {"company_size", "250"}}, {{"title", "Engineer"}}}, 10},
		{"unreferenced trait ignored", [][]Attr{{{"shoe_size", "44"}}}, 0},
		{"last of repeated key in one touchpoint", [][]Attr{{{"title", "VP"}, {"title", "Intern"}}}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := NewEngine(mustParse(t, fitModel))
			var r Result
			for i, tr := range c.traits {
				tp := ev("a", string(rune('a'+i)), "page_view", t0+int64(i)*hour)
				tp.Traits = tr
				r = apply(e, tp)
			}
			if len(c.traits) == 0 {
				r = apply(e, ev("a", "x", "page_view", t0))
			}
			if r.Fit != c.want {
				t.Fatalf("fit %v, want %v", r.Fit, c.want)
			}
			if _, fit, _ := e.Score("a", t0); fit != c.want {
				t.Fatalf("Score fit %v, want %v", fit, c.want)
			}
		})
	}
}

const capModel = `name: caps
version: "1"
half_life: 14d
thresholds: {mql: 1000}
rules:
  - {name: pv, type: page_view, points: 4, cap: 10}
  - {name: pricing, type: page_view, properties: {url: "*pricing*"}, points: 6, cap: 10}
  - {name: bounce, type: email_bounce, points: -3}
`

func TestCaps(t *testing.T) {
	type step struct {
		at   int64
		typ  string
		url  string
		want float64
	}
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"cap reached, remainder then zero", []step{
			{t0, "page_view", "", 4}, {t0 + 1, "page_view", "", 4}, {t0 + 2, "page_view", "", 2}, {t0 + 3, "page_view", "", 0},
		}},
		{"new UTC day resets", []step{
			{t0 + day - 3, "page_view", "", 4}, {t0 + day - 2, "page_view", "", 4}, {t0 + day - 1, "page_view", "", 2},
			{t0 + day, "page_view", "", 4}, {t0 + day + 1, "page_view", "", 4},
		}},
		{"late event charges its own day", []step{
			{t0 + day, "page_view", "", 4}, {t0 + day + 1, "page_view", "", 4}, {t0 + day + 2, "page_view", "", 2},
			{t0 + day - 1, "page_view", "", 4}, {t0 + day + 3, "page_view", "", 0},
		}},
		{"rules have separate budgets", []step{
			{t0, "page_view", "", 4}, {t0, "page_view", "", 4}, {t0, "page_view", "", 2},
			{t0, "page_view", "/pricing", 6}, {t0, "page_view", "/pricing", 4}, {t0, "page_view", "/pricing", 0},
		}},
		{"negative points never capped", []step{
			{t0, "email_bounce", "", -3}, {t0 + 1, "email_bounce", "", -3}, {t0 + 2, "email_bounce", "", -3},
		}},
		{"negative points give no room back", []step{
			{t0, "page_view", "", 4}, {t0, "page_view", "", 4}, {t0, "page_view", "", 2},
			{t0, "email_bounce", "", -3}, {t0, "page_view", "", 0},
		}},
		{"usage forgotten only after it cannot matter", []step{
			{t0, "page_view", "", 4}, {t0, "page_view", "", 4}, {t0, "page_view", "", 2},
			{t0 + 7*day, "page_view", "", 4}, // t_ref - max_lateness = t0: day 0 still reachable
			{t0, "page_view", "", 0},         // exactly max_lateness late: accepted, day 0 still full
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := mustParse(t, capModel)
			// The loader refuses a cap on a negative rule; a model built in
			// Go may still have one, and it must be ignored.
			m.Rules[2].Cap = 1
			e := NewEngine(m)
			for i, s := range c.steps {
				tp := ev("a", string(rune('A'+i)), s.typ, s.at)
				if s.url != "" {
					tp.Props = []Attr{{"url", s.url}}
				}
				r := apply(e, tp)
				if r.Outcome != Scored || r.Points != s.want {
					t.Fatalf("step %d: %v points %v, want scored %v", i, r.Outcome, r.Points, s.want)
				}
			}
		})
	}
}

func TestCapPruning(t *testing.T) {
	e := NewEngine(mustParse(t, capModel))
	for d := range int64(30) {
		apply(e, ev("a", string(rune('A'+d)), "page_view", t0+d*day))
	}
	l := &e.leads[e.slotOf("a")]
	// t_ref is day 29; days 22..29 can still receive touchpoints.
	cold := e.coldCaps(l)
	caps := slices.Concat(cold[capsBefore(cold, e.minCapDay(l)):], l.hotCaps())
	if len(caps) != 8 || caps[0].day() != floorDiv(t0, day)+22 {
		t.Fatalf("%d cap entries kept, want 8 from day 22: %+v", len(caps), caps)
	}
	checkCaps(t, e, "a", l)
}

const timeModel = `name: time
version: "1"
half_life: 1d
max_lateness: 2d
max_future_skew: 5m
dedupe_window: 1d
thresholds: {mql: 1000}
rules:
  - {type: page_view, points: 8}
`

func TestTimeEdges(t *testing.T) {
	const skew = 5 * 60 * 1000
	e := NewEngine(mustParse(t, timeModel))
	var r Result
	now := t0
	e.Apply(ev("a", "1", "page_view", now+skew+1), now, &r)
	if r.Outcome != Future || r.Outcome.String() != "future" {
		t.Fatalf("1 ms past the skew: %v, want future", r.Outcome)
	}
	if e.Len() != 0 {
		t.Fatal("a future touchpoint created a lead")
	}
	e.Apply(ev("a", "2", "page_view", now+skew), now, &r)
	if r.Outcome != Scored {
		t.Fatalf("exactly at the skew: %v, want scored", r.Outcome)
	}
	// A new lead is never too late.
	e.Apply(ev("b", "1", "page_view", t0-365*day), now, &r)
	if r.Outcome != Scored || r.RefTime != t0-365*day {
		t.Fatalf("new lead, old event: %v ref %d", r.Outcome, r.RefTime)
	}
	tref := now + skew
	e.Apply(ev("a", "3", "page_view", tref-2*day), now, &r)
	if r.Outcome != Scored {
		t.Fatalf("exactly max_lateness late: %v, want scored", r.Outcome)
	}
	// 8 at tref plus 8 two half-lives earlier: 8 + 8/4 = 10.
	if !near(r.Engagement, 10) || r.RefTime != tref {
		t.Fatalf("engagement %v ref %d, want 10 at %d", r.Engagement, r.RefTime, tref)
	}
	before, _ := e.EncodeLead("a", nil)
	dirty := e.Dirty()
	e.Apply(ev("a", "4", "page_view", tref-2*day-1), now, &r)
	if r.Outcome != TooLate || r.Outcome.String() != "too_late" || r.Points != 0 || !near(r.Engagement, 10) {
		t.Fatalf("1 ms too late: %+v", r)
	}
	after, _ := e.EncodeLead("a", nil)
	if !bytes.Equal(before, after) || e.Dirty() != dirty {
		t.Fatal("a too_late touchpoint changed the lead")
	}
}

func TestDedupeWindow(t *testing.T) {
	// max_lateness 2d, dedupe_window 1d: entries are kept while their event
	// time is >= t_ref - 3d.
	for _, c := range []struct {
		name   string
		first  int64 // event time of the first delivery
		moveTo int64 // then another event advances t_ref here (0: none)
		again  int64 // event time of the redelivery
		want   Outcome
	}{
		{"same time", t0, 0, t0, Duplicate},
		{"re-stamped one window later", t0, 0, t0 + day, Duplicate},
		{"re-stamped one window earlier", t0 + day, 0, t0, Duplicate},
		{"re-stamped past the window", t0, 0, t0 + day + 1, Scored},
		{"re-stamped before the window", t0 + day + 1, 0, t0, Scored},
		{"same time after t_ref moved max_lateness", t0, t0 + 2*day, t0, Duplicate},
		{"same time after t_ref moved further: too late, not applied", t0, t0 + 2*day + 1, t0, TooLate},
		{"guaranteed edge: window and lateness both at their bound", t0, t0 + 3*day, t0 + day, Duplicate},
		{"past the guaranteed edge", t0, t0 + 3*day + 1, t0 + day + 1, Scored},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := NewEngine(mustParse(t, timeModel))
			var r Result
			now := t0 + 10*day
			e.Apply(ev("a", "dup", "page_view", c.first), now, &r)
			if c.moveTo != 0 {
				e.Apply(ev("a", "other", "page_view", c.moveTo), now, &r)
			}
			e.Commit()
			before, _ := e.EncodeLead("a", nil)
			e.Apply(ev("a", "dup", "page_view", c.again), now, &r)
			if r.Outcome != c.want {
				t.Fatalf("redelivery: %v, want %v", r.Outcome, c.want)
			}
			if c.want != Scored {
				after, _ := e.EncodeLead("a", nil)
				if !bytes.Equal(before, after) || e.Dirty() != 0 {
					t.Fatalf("a %v touchpoint changed the lead", c.want)
				}
				if r.Points != 0 || r.Rule != "" {
					t.Fatalf("a %v touchpoint reports points", c.want)
				}
			}
		})
	}
}

func TestDedupePerLead(t *testing.T) {
	e := NewEngine(mustParse(t, timeModel))
	if r := apply(e, ev("a", "x", "page_view", t0)); r.Outcome != Scored {
		t.Fatal(r.Outcome)
	}
	if r := apply(e, ev("b", "x", "page_view", t0)); r.Outcome != Scored {
		t.Fatalf("same event id for another lead: %v", r.Outcome)
	}
	if r := apply(e, ev("b", "x", "page_view", t0)); r.Outcome != Duplicate || r.Outcome.String() != "duplicate" {
		t.Fatalf("redelivery: %v", r.Outcome)
	}
}

func TestDedupeBounded(t *testing.T) {
	e := NewEngine(mustParse(t, timeModel))
	for i := range maxDedupe + 10 {
		apply(e, ev("a", "id"+string(rune(i)), "page_view", t0+int64(i)))
	}
	// When the 2049th arrived, the first eighth to arrive was forgotten:
	// event times t0 .. t0+255.
	forgotten := maxDedupe / 8
	l := &e.leads[e.slotOf("a")]
	if got, want := len(l.seenIDs()), maxDedupe+10-forgotten; got != want {
		t.Fatalf("%d entries, want %d", got, want)
	}
	e.Commit()
	for i := range maxDedupe + 10 {
		want := Duplicate
		if i < forgotten {
			want = Scored
		}
		e.Rollback() // keep the list as it is
		tp := ev("a", "id"+string(rune(i)), "page_view", t0+int64(i))
		if r := apply(e, tp); r.Outcome != want {
			t.Fatalf("id %d redelivered: %v, want %v", i, r.Outcome, want)
		}
	}
}

func TestDedupeBatchedPruning(t *testing.T) {
	// max_lateness 2d + dedupe_window 1d: entries are needed while their
	// time is >= t_ref - 3d, and dropped once the oldest is more than
	// 3d/8 = 9h past that.
	e := NewEngine(mustParse(t, timeModel))
	for i := range int64(40) {
		apply(e, ev("a", "id"+string(rune(i)), "page_view", t0+i*hour))
	}
	l := &e.leads[e.slotOf("a")]
	if n := len(l.seenIDs()); n != 40 {
		t.Fatalf("%d entries before anything is stale, want 40", n)
	}
	apply(e, ev("a", "x", "page_view", t0+3*day+9*hour)) // oldest exactly 9h stale: kept
	if n := len(l.seenIDs()); n != 41 {
		t.Fatalf("%d entries, want 41", n)
	}
	apply(e, ev("a", "y", "page_view", t0+3*day+9*hour+1)) // now dropped: t0 .. t0+9h
	if n := len(l.seenIDs()); n != 42-10 {
		t.Fatalf("%d entries after pruning, want 32", n)
	}
	if l.idFirst != t0+10*hour {
		t.Fatalf("idFirst %d, want %d", l.idFirst, t0+10*hour)
	}
}

const qualModel = `name: qual
version: "7"
half_life: 1d
max_lateness: 7d
thresholds: {mql: 100, rearm: 50, cooldown: 3d}
rules:
  - {type: demo_request, points: 100}
  - {type: page_view, points: 10}
  - {type: unsubscribe, points: -80}
`

func TestQualification(t *testing.T) {
	type step struct {
		at   int64
		typ  string
		want int // MQL sequence expected, 0 for none
	}
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"exactly at the threshold", []step{{t0, "demo_request", 1}}},
		{"below the threshold", []step{{t0, "page_view", 0}}},
		{"stays disarmed while above rearm", []step{{t0, "demo_request", 1}, {t0 + 1, "demo_request", 0}}},
		// 400 at t0 decays to exactly 50 at t0+3d: not below rearm, so the
		// lead stays disarmed although the cooldown has passed; 1 ms later
		// it would be rearmed.
		{"rearm is strict", []step{{t0, "demo_request", 1}, {t0, "demo_request", 0}, {t0, "demo_request", 0}, {t0, "demo_request", 0}, {t0 + 3*day, "demo_request", 0}}},
		{"rearm just below", []step{{t0, "demo_request", 1}, {t0, "demo_request", 0}, {t0, "demo_request", 0}, {t0, "demo_request", 0}, {t0 + 3*day + 1, "demo_request", 2}}},
		// At t0+4d, 200/16 = 12.5 < 50: rearmed; 12.5+100 >= 100 and 4d >= 3d cooldown.
		{"rearm and second MQL", []step{{t0, "demo_request", 1}, {t0 + 1, "demo_request", 0}, {t0 + 4*day, "demo_request", 2}}},
		// At t0+2d, 100/4 = 25 < 50: rearmed, but 2d < 3d cooldown.
		{"cooldown blocks", []step{{t0, "demo_request", 1}, {t0 + 2*day, "demo_request", 0}}},
		// Still armed (blocked only by cooldown): qualifies once the cooldown passed.
		// 125 at t0+2d is 62.5 at t0+3d: not rearmed then, but still armed.
		{"qualifies after cooldown while armed", []step{{t0, "demo_request", 1}, {t0 + 2*day, "demo_request", 0}, {t0 + 3*day, "demo_request", 2}}},
		// Negative points bring engagement below rearm at once.
		{"negative points rearm", []step{{t0, "demo_request", 1}, {t0 + 1, "unsubscribe", 0}, {t0 + 3*day, "page_view", 0}, {t0 + 3*day + 1, "demo_request", 2}}},
		// A late demo request lands on a disarmed lead: no second MQL.
		{"late event does not requalify", []step{{t0 + day, "demo_request", 1}, {t0, "demo_request", 0}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := NewEngine(mustParse(t, qualModel))
			for i, s := range c.steps {
				r := apply(e, ev("a", string(rune('A'+i)), s.typ, s.at))
				got := 0
				if r.Qualified {
					got = r.MQL.Sequence
				}
				if got != s.want {
					t.Fatalf("step %d (%s at %+dms): MQL %d, want %d (engagement %v)", i, s.typ, s.at-t0, got, s.want, r.Engagement)
				}
			}
		})
	}
}

func TestQualificationFitMin(t *testing.T) {
	e := NewEngine(mustParse(t, `name: q
version: "1"
thresholds: {mql: 10, fit_min: 5}
rules:
  - {type: demo_request, points: 20}
  - {type: identify, points: 0}
fit:
  - {trait: title, equals: [VP], points: 5}
`))
	if r := apply(e, ev("a", "1", "demo_request", t0)); r.Qualified {
		t.Fatal("qualified without fit")
	}
	// A touchpoint worth nothing, carrying only traits, qualifies the lead.
	r := apply(e, ev("a", "2", "identify", t0+1, trait("title", "vp")))
	if !r.Qualified || r.MQL.Fit != 5 || r.MQL.TriggerEventID != "2" {
		t.Fatalf("trait update did not qualify: %+v", r)
	}
}

func TestCooldownZero(t *testing.T) {
	e := NewEngine(mustParse(t, `name: q
version: "1"
half_life: 1d
thresholds: {mql: 100, rearm: 50}
rules:
  - {type: demo_request, points: 100}
  - {type: unsubscribe, points: -50}
`))
	seq := 0
	for i, typ := range []string{"demo_request", "unsubscribe", "demo_request"} {
		if r := apply(e, ev("a", string(rune('A'+i)), typ, t0+int64(i))); r.Qualified {
			seq = r.MQL.Sequence
		}
	}
	if seq != 2 {
		t.Fatalf("without a cooldown a rearmed lead qualifies again at once; last sequence %d", seq)
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestMQLEvent(t *testing.T) {
	src := `name: mqlm
version: "3.1"
half_life: 1d
top_contributors: 2
thresholds: {mql: 30, fit_min: 1, rearm: 10, cooldown: 1h}
rules:
  - {type: page_view, points: 4}
  - {type: email_click, points: 8}
  - {type: webinar_attended, points: 20}
  - {type: unsubscribe, points: -1}
fit:
  - {trait: title, glob: "*", points: 1}
`
	run := func() Result {
		e := NewEngine(mustParse(t, src))
		var last Result
		for i, tp := range []*Touchpoint{
			ev("lead-1", "a", "page_view", t0, channel("web")),
			ev("lead-1", "b", "page_view", t0, channel("web")),
			{AnonymousID: "anon-9", LeadID: "lead-1", AccountID: "acme.test", EventID: "c", Type: "unsubscribe", OccurredAt: t0 + 1},
			ev("lead-1", "d", "email_click", t0+day, channel("email"), campaign("spring")),
			ev("lead-1", "e", "webinar_attended", t0+day, channel("event"), trait("title", "CTO")),
		} {
			last = apply(e, tp)
			if last.Qualified != (i == 4) {
				t.Fatalf("touchpoint %d: qualified %v", i, last.Qualified)
			}
		}
		return last
	}
	r := run()
	m := r.MQL
	// (4+4-1)/2 + 8 + 20 = 31.5 at t0+1d.
	if !near(m.Score, 31.5) || m.Score != r.Engagement || m.Fit != 1 {
		t.Fatalf("score %v fit %v", m.Score, m.Fit)
	}
	if m.LeadID != "lead-1" || m.AnonymousID != "anon-9" || m.AccountID != "acme.test" || m.Sequence != 1 ||
		m.TriggerEventID != "e" || !m.QualifiedAt.Equal(time.UnixMilli(t0+day)) || m.QualifiedAt.Location() != time.UTC ||
		!m.EmittedAt.IsZero() {
		t.Fatalf("fields: %+v", m)
	}
	fm := 1.0
	if m.Thresholds.MQL != 30 || m.Thresholds.Rearm != 10 || m.Thresholds.CooldownSeconds != 3600 ||
		m.Thresholds.FitMin == nil || *m.Thresholds.FitMin != fm || m.Model != (ModelRef{"mqlm", "3.1"}) {
		t.Fatalf("thresholds/model: %+v %+v", m.Thresholds, m.Model)
	}
	want := []Contributor{
		{Type: "webinar_attended", Channel: "event", Points: 20},
		{Type: "email_click", Channel: "email", Campaign: "spring", Points: 8},
	}
	if len(m.Contributors) != 2 || m.Contributors[0] != want[0] || m.Contributors[1] != want[1] {
		t.Fatalf("contributors %+v, want %+v", m.Contributors, want)
	}
	if !uuidRE.MatchString(m.MQLID) {
		t.Fatalf("mql_id %q is not UUID-shaped", m.MQLID)
	}
	if again := run(); again.MQL.MQLID != m.MQLID {
		t.Fatalf("mql_id not deterministic: %q then %q", m.MQLID, again.MQL.MQLID)
	}
	e := NewEngine(mustParse(t, src))
	ids := map[string]bool{
		e.mqlID("lead-1", 1, "e"): true, e.mqlID("lead-1", 2, "e"): true,
		e.mqlID("lead-1", 1, "f"): true, e.mqlID("lead-2", 1, "e"): true,
		e.mqlID("lead-1e", 1, ""): true, e.mqlID("lead-", 1, "1e"): true,
	}
	if len(ids) != 6 || !ids[m.MQLID] {
		t.Fatalf("mql ids collide or changed: %v", ids)
	}
}

func TestMQLAnonymousLead(t *testing.T) {
	e := NewEngine(mustParse(t, qualModel))
	r := apply(e, &Touchpoint{LeadID: "lead-7", EventID: "0", Type: "demo_request", OccurredAt: t0})
	if !r.Qualified || r.MQL.LeadID != "lead-7" || r.MQL.AnonymousID != "" {
		t.Fatalf("%+v", r.MQL)
	}
	// An anonymous lead's MQL is keyed by its anonymous id; nothing of the
	// previous MQL (reused Result) carries over.
	r = apply(e, &Touchpoint{AnonymousID: "cookie-1", EventID: "1", Type: "demo_request", OccurredAt: t0})
	if !r.Qualified || r.MQL.LeadID != "cookie-1" || r.MQL.AnonymousID != "cookie-1" {
		t.Fatalf("%+v", r.MQL)
	}
}

func TestContributorTies(t *testing.T) {
	e := NewEngine(mustParse(t, `name: t
version: "1"
top_contributors: 10
thresholds: {mql: 45}
rules:
  - {type: b, points: 10}
  - {type: a, points: 10}
  - {type: c, points: 10}
  - {type: n, points: -5}
`))
	for i, typ := range []string{"n", "c", "b", "a", "b"} {
		tp := ev("x", string(rune('0'+i)), typ, t0)
		if typ == "b" && i == 4 {
			tp.Channel = "web" // another group with the same points as a and c
		}
		apply(e, tp)
	}
	r := apply(e, ev("x", "z", "a", t0))
	want := []string{"a/", "b/", "b/web", "c/"}
	if !r.Qualified || len(r.MQL.Contributors) != 4 {
		t.Fatalf("%+v", r.MQL.Contributors)
	}
	for i, c := range r.MQL.Contributors {
		if c.Type+"/"+c.Channel != want[i] {
			t.Fatalf("order %+v, want %v", r.MQL.Contributors, want)
		}
	}
}

func TestGroupsFold(t *testing.T) {
	e := NewEngine(mustParse(t, `name: g
version: "1"
half_life: 1d
thresholds: {mql: 1e9}
rules:
  - {type: page_view, points: 1}
  - {type: demo_request, points: 50}
`))
	// 40 campaigns with 1 point each, one demo request, spread over time.
	for i := range 40 {
		apply(e, ev("a", "pv"+string(rune('A'+i)), "page_view", t0+int64(i)*hour, campaign(string(rune('A'+i)))))
	}
	apply(e, ev("a", "demo", "demo_request", t0+10*hour))
	l := &e.leads[e.slotOf("a")]
	if len(l.groups()) != maxGroups {
		t.Fatalf("%d groups, want %d", len(l.groups()), maxGroups)
	}
	sum, other, demo := 0.0, false, false
	for _, g := range l.groups() {
		sum += g.points()
		k := e.groupKeys[g.groupID()]
		other = other || k.typ == otherType
		demo = demo || k.typ == "demo_request"
	}
	if !near(sum, l.eRef) {
		t.Fatalf("groups sum to %v, E_ref %v", sum, l.eRef)
	}
	if !other || !demo {
		t.Fatal("the largest group was folded, or there is no (other) group")
	}
	// The newest campaigns (least decayed) are kept by name.
	names := map[string]bool{}
	for _, g := range l.groups() {
		names[e.groupKeys[g.groupID()].campaign] = true
	}
	if !names[string(rune('A'+39))] || names["A"] {
		t.Fatalf("kept %v", names)
	}
}

func TestScoreNeverBackwards(t *testing.T) {
	e := NewEngine(mustParse(t, timeModel))
	apply(e, ev("a", "1", "page_view", t0))
	if got, _, ok := e.Score("a", t0-5*day); !ok || got != 8 {
		t.Fatalf("before t_ref: %v", got)
	}
	if got, _, _ := e.Score("a", t0+day); !near(got, 4) {
		t.Fatalf("one half-life later: %v", got)
	}
	if got, _, _ := e.Score("a", t0+10*day); !near(got, 8.0/1024) {
		t.Fatalf("ten half-lives later: %v", got)
	}
	if _, _, ok := e.Score("nobody", t0); ok {
		t.Fatal("unknown lead reported known")
	}
}

func TestIdentityLatestNonEmpty(t *testing.T) {
	e := NewEngine(mustParse(t, qualModel))
	apply(e, &Touchpoint{LeadID: "l", AnonymousID: "c1", AccountID: "acme", EventID: "1", Type: "page_view", OccurredAt: t0})
	apply(e, &Touchpoint{LeadID: "l", AnonymousID: "c2", EventID: "2", Type: "page_view", OccurredAt: t0})
	r := apply(e, &Touchpoint{LeadID: "l", EventID: "3", Type: "demo_request", OccurredAt: t0})
	if r.MQL.AnonymousID != "c2" || r.MQL.AccountID != "acme" {
		t.Fatalf("%+v", r.MQL)
	}
}

func TestApplyCopiesStrings(t *testing.T) {
	e := NewEngine(mustParse(t, fitModel))
	buf := []byte("lead-1|evt-1|acme|VP|cookie")
	alias := func(from, to int) string { return unsafe.String(&buf[from], to-from) }
	tp := &Touchpoint{LeadID: alias(0, 6), EventID: alias(7, 12), AccountID: alias(13, 17), AnonymousID: alias(21, 27),
		Type: "page_view", OccurredAt: t0, Traits: []Attr{{"title", alias(18, 20)}}}
	apply(e, tp)
	for i := range buf { // the decoder reuses its buffer for the next record
		buf[i] = '#'
	}
	l := &e.leads[e.slotOf("lead-1")]
	if v, _ := l.trait(traitOf(t, e, "title")); l.key() != "lead-1" || l.account() != "acme" || l.anon() != "cookie" || v != "VP" {
		t.Fatalf("engine kept strings aliasing the caller's buffer: %+v", l)
	}
	if r := apply(e, ev("lead-1", "evt-1", "page_view", t0)); r.Outcome != Duplicate {
		t.Fatalf("event id not remembered: %v", r.Outcome)
	}
}

func TestApplyZeroAlloc(t *testing.T) {
	e := NewEngine(benchModel())
	s := newBenchStream(1000, 1<<16+7, 1000)
	var tp Touchpoint
	var res Result
	for range 50_000 {
		now := s.next(&tp)
		e.Apply(&tp, now, &res)
		e.Commit()
	}
	n := testing.AllocsPerRun(20_000, func() {
		now := s.next(&tp)
		e.Apply(&tp, now, &res)
		if res.Qualified { // MQL ids are new strings; not steady state
			return
		}
		e.Commit()
	})
	if n > 0.01 {
		t.Fatalf("Apply allocates %v times per call in steady state", n)
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{Scored: "scored", Duplicate: "duplicate", TooLate: "too_late", Future: "future", 9: "Outcome(9)"} {
		if o.String() != want {
			t.Errorf("%d: %q, want %q", o, o.String(), want)
		}
	}
}

// TestGroupPerChannelAndCampaign checks that touchpoints of one rule are
// grouped by their own channel and campaign (the rule remembers only its
// last group), with points summed per group: 12 groups, fewer than a
// lead holds.
func TestGroupPerChannelAndCampaign(t *testing.T) {
	e := NewEngine(mustParse(t, `name: g
version: "1"
top_contributors: 16
thresholds: {mql: 1e9}
rules:
  - {type: email_click, points: 1}
  - {type: page_view, points: 100}
`))
	want := map[Contributor]float64{}
	rng := rand.New(rand.NewPCG(1, 9))
	for i := range 300 {
		tp := ev("x", fmt.Sprint(i), "email_click", t0, channel([]string{"email", ""}[rng.IntN(2)]), campaign([]string{"a", "b", ""}[rng.IntN(3)]))
		if i%7 == 0 {
			tp.Type = "page_view"
		}
		apply(e, tp)
		want[Contributor{Type: tp.Type, Channel: tp.Channel, Campaign: tp.Campaign}] += e.rules.match(tp).points
	}
	l := &e.leads[0]
	got := map[Contributor]float64{}
	for _, c := range e.contributors(l, nil) {
		got[Contributor{Type: c.Type, Channel: c.Channel, Campaign: c.Campaign}] = c.Points
	}
	if len(got) != len(want) {
		t.Fatalf("%d groups %v, want %d %v", len(got), got, len(want), want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("group %+v: %v points, want %v", k, got[k], v)
		}
	}
}
