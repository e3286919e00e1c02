package models

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	m, err := Parse(DefaultFile, DefaultYAML())
	if err != nil {
		t.Fatalf("embedded default model: %v", err)
	}
	if a, b := Default(), Default(); a != b {
		t.Error("Default parses more than once")
	}
	if m.Name != "b2b-default" || m.Version == "" {
		t.Errorf("name/version = %q/%q", m.Name, m.Version)
	}
	if got, want := m.PropertyKeys(), []string{"form_id", "url"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("PropertyKeys = %q, want %q", got, want)
	}
	if got, want := m.TraitKeys(), []string{"company_size", "country", "industry", "title"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("TraitKeys = %q, want %q", got, want)
	}
	// Every rule is named: names show up in the archive, and derived
	// names are for quick experiments.
	for _, r := range m.Rules {
		if r.Name == DefaultRuleName(&r) {
			t.Errorf("rule %q has no explicit name", r.Name)
		}
	}
}

// TestDefaultDocumented checks the "documented line by line" promise: each
// rule, fit rule and top-level setting has a comment right above it.
func TestDefaultDocumented(t *testing.T) {
	lines := strings.Split(string(defaultYAML), "\n")
	undocumented := 0
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		isTop := line != "" && line[0] != ' ' && line[0] != '#' && !strings.HasPrefix(line, "rules:") &&
			!strings.HasPrefix(line, "fit:") && !strings.HasPrefix(line, "thresholds:") && !strings.HasPrefix(line, "version:")
		isThreshold := strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   ") && !strings.HasPrefix(trimmed, "-") && !strings.HasPrefix(trimmed, "#")
		isRule := strings.HasPrefix(line, "  - name:")
		if !(isTop || isThreshold || isRule) {
			continue
		}
		// Look back over the rule's own lines for a comment.
		documented := false
		for j := i - 1; j >= 0; j-- {
			prev := strings.TrimSpace(lines[j])
			if strings.HasPrefix(prev, "#") {
				documented = true
				break
			}
			if prev == "" || strings.HasPrefix(lines[j], "  - ") || strings.HasPrefix(lines[j], "    ") {
				break
			}
		}
		if !documented {
			t.Errorf("default.yaml:%d: %q has no comment above it", i+1, trimmed)
			undocumented++
		}
	}
	if undocumented > 0 {
		t.Logf("%d undocumented lines", undocumented)
	}
}

// event is a touchpoint for the hand computation below.
type event struct {
	at     time.Duration // since the start of the scenario
	typ    string
	props  map[string]string
	traits map[string]string
}

// handScore scores events with the default model's rule table the way
// SCORING.md 2-3 describes (most specific rule, caps per rule per UTC day,
// exact decay to the last event), in order, independently of package
// scorer. It returns the engagement at the last event and the fit.
func handScore(t *testing.T, m *Model, start time.Time, events []event) (engagement, fit float64) {
	t.Helper()
	capUsed := map[string]float64{} // rule name + day -> positive points given
	traits := map[string]string{}
	var last time.Time
	for _, e := range events {
		at := start.Add(e.at)
		var best *Rule
		bestN := -1
		for i := range m.Rules {
			r := &m.Rules[i]
			if r.Type != e.typ {
				continue
			}
			ok := true
			for _, pm := range r.Properties {
				v, has := e.props[pm.Key]
				ok = ok && has && MatchGlob(pm.Glob, v)
			}
			if n := 1 + len(r.Properties); ok && n > bestN {
				best, bestN = r, n
			}
		}
		points := 0.0
		if best != nil {
			points = best.Points
			if best.Cap > 0 && points > 0 {
				key := best.Name + at.UTC().Format(time.DateOnly)
				points = math.Min(points, best.Cap-capUsed[key])
				capUsed[key] += points
			}
		}
		if !last.IsZero() {
			engagement *= math.Exp2(-float64(at.Sub(last)) / float64(m.HalfLife))
		}
		engagement += points
		last = at
		for k, v := range e.traits {
			traits[k] = v
		}
	}
	for _, f := range m.Fit {
		v, ok := traits[f.Trait]
		if !ok {
			continue
		}
		match := false
		switch {
		case f.Equals != nil:
			for _, want := range f.Equals {
				match = match || strings.EqualFold(want, v)
			}
		case f.Glob != "":
			match = MatchGlob(f.Glob, v)
		default:
			x, err := strconv.ParseFloat(v, 64)
			match = err == nil && (f.Min == nil || x >= *f.Min) && (f.Max == nil || x < *f.Max)
		}
		if match {
			fit += f.Points
		}
	}
	return engagement, fit
}

func qualifies(m *Model, engagement, fit float64) bool {
	return engagement >= m.Thresholds.MQL && (m.Thresholds.FitMin == nil || fit >= *m.Thresholds.FitMin)
}

func TestDefaultScoresSensibly(t *testing.T) {
	m := Default()
	start := time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC) // a Monday
	const day = 24 * time.Hour
	vp := map[string]string{"title": "VP Marketing", "company_size": "800", "industry": "software", "country": "US"}
	pricing := map[string]string{"url": "https://acme.io/pricing"}

	tests := []struct {
		name   string
		events []event
		want   bool
	}{
		{"hot lead: webinar, pricing, demo request within a week", []event{
			{at: 0, typ: "webinar_registered", traits: vp},
			{at: 2 * day, typ: "webinar_attended"},
			{at: 3 * day, typ: "page_view", props: pricing},
			{at: 3*day + time.Minute, typ: "page_view", props: pricing},
			{at: 3*day + 2*time.Minute, typ: "email_click"},
			{at: 4 * day, typ: "demo_request"},
		}, true},
		{"page views only: 40 in one day, pricing included", func() []event {
			var es []event
			urls := []string{"/", "/product", "/pricing", "/customers/x", "/compare/y", "/blog/z", "/pricing?annual"}
			for i := range 40 {
				es = append(es, event{at: time.Duration(i) * 5 * time.Minute, typ: "page_view",
					props: map[string]string{"url": "https://acme.io" + urls[i%len(urls)]}, traits: vp})
			}
			return es
		}(), false},
		{"a lone demo request goes to nurture", []event{
			{at: 0, typ: "demo_request", traits: vp},
		}, false},
		{"e-mail opens all week", func() []event {
			var es []event
			for i := range 7 * 20 {
				es = append(es, event{at: time.Duration(i) * time.Hour, typ: "email_open", traits: vp})
			}
			return es
		}(), false},
		{"engaged student does not qualify", []event{
			{at: 0, typ: "webinar_registered", traits: map[string]string{"title": "student", "company_size": "3", "country": "US"}},
			{at: day, typ: "webinar_attended"},
			{at: day, typ: "page_view", props: pricing},
			{at: 2 * day, typ: "demo_request"},
			{at: 2 * day, typ: "content_download"},
		}, false},
		{"demo request then bounce", []event{
			{at: 0, typ: "webinar_attended", traits: vp},
			{at: day, typ: "page_view", props: pricing},
			{at: day, typ: "email_bounce"},
			{at: 2 * day, typ: "demo_request"},
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, fit := handScore(t, m, start, tt.events)
			if got := qualifies(m, e, fit); got != tt.want {
				t.Errorf("engagement %.2f, fit %.0f: qualifies = %v, want %v", e, fit, got, tt.want)
			}
			if testing.Verbose() {
				t.Logf("engagement %.2f, fit %.0f", e, fit)
			}
		})
	}
}

// TestDefaultPageViewsCannotQualify checks the cap design: all the page
// view rules together give less than the re-arm level in one day, so no
// amount of browsing on one day is an MQL.
func TestDefaultPageViewsCannotQualify(t *testing.T) {
	m := Default()
	total := 0.0
	for _, r := range m.Rules {
		if r.Type != "page_view" || r.Points <= 0 {
			continue
		}
		if r.Cap == 0 {
			t.Fatalf("page view rule %q has no cap", r.Name)
		}
		total += r.Cap
	}
	if total >= m.Thresholds.Rearm {
		t.Errorf("page views can give %v points a day, at or above rearm %v", total, m.Thresholds.Rearm)
	}
}
