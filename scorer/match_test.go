package scorer

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/leadscore/leadscore/models"
)

// refWinner is SCORING.md's rule choice written out plainly: of the rules
// whose every condition holds, the one with the most conditions, the first
// in the file among equals; each glob matched on its own.
func refWinner(rs []models.Rule, tp *Touchpoint) (int, bool) {
	best, bestN := -1, 0
	for i := range rs {
		r := &rs[i]
		if r.Type != tp.Type || r.Channel != "" && r.Channel != tp.Channel || r.Campaign != "" && r.Campaign != tp.Campaign {
			continue
		}
		ok := true
		for _, p := range r.Properties {
			v, has := tp.Prop(p.Key)
			if !has || !globMatch(p.Glob, v) {
				ok = false
				break
			}
		}
		n := 1 + len(r.Properties)
		if r.Channel != "" {
			n++
		}
		if r.Campaign != "" {
			n++
		}
		if ok && n > bestN {
			best, bestN = i, n
		}
	}
	return best, best >= 0
}

// TestMatcherAgreesWithGlobs checks the matcher, with its shared masks and
// its cache of values, against refWinner: models with many globs on one
// key (more than a mask holds), more keys on a type than it shares, the
// same glob in several rules; values from a pool large enough to evict
// entries of the cache, some too long for it, some absent.
func TestMatcherAgreesWithGlobs(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	alpha := "ab/?*"
	word := func(n int) string {
		var b strings.Builder
		for range 1 + rng.IntN(n) {
			b.WriteByte(alpha[rng.IntN(len(alpha))])
		}
		return b.String()
	}
	for round := range 20 {
		nKeys := 1 + rng.IntN(12)
		var rs []models.Rule
		for i := range 40 + rng.IntN(150) {
			r := models.Rule{Name: fmt.Sprintf("r%d", i), Type: []string{"page_view", "form_submit"}[rng.IntN(2)], Points: float64(i + 1)}
			if rng.IntN(4) == 0 {
				r.Channel = "web"
			}
			for range rng.IntN(3) {
				r.Properties = append(r.Properties, models.PropertyMatch{Key: fmt.Sprintf("k%d", rng.IntN(nKeys)), Glob: word(5)})
			}
			rs = append(rs, r)
		}
		m := newMatcher(rs)
		// Rounds alternate a pool the cache mostly hits and one it mostly
		// misses (and so rests from).
		var pool []string
		for range []int{300, 20000}[round%2] {
			v := strings.NewReplacer("*", "x", "?", "y").Replace(word(8))
			switch rng.IntN(50) {
			case 0: // too long for the cache
				v = strings.Repeat(v, memoMaxLen/len(v)+1)
			case 1: // as long as the cache keeps
				v = strings.Repeat(v, memoMaxLen/len(v)+1)[:memoMaxLen]
			case 2:
				v = ""
			}
			pool = append(pool, v)
		}
		for i := range 20000 {
			if i%2000 == 0 {
				m.memo.rest = 0 // the cache, not only the fallback, on values it misses
			}
			tp := &Touchpoint{Type: []string{"page_view", "form_submit", "other"}[rng.IntN(3)]}
			if rng.IntN(2) == 0 {
				tp.Channel = "web"
			}
			for k := range nKeys {
				if rng.IntN(3) != 0 {
					tp.Props = append(tp.Props, Attr{fmt.Sprintf("k%d", k), pool[rng.IntN(len(pool))]})
				}
			}
			want, wantOK := refWinner(rs, tp)
			got := m.match(tp)
			if got == nil && wantOK || got != nil && (!wantOK || int(got.idx) != want) {
				t.Fatalf("round %d: touchpoint %+v: matcher chose %v, want rule %d (found %v)", round, tp, got, want, wantOK)
			}
		}
	}
}

// TestValueMemoRests checks that the cache of values steps aside where
// values do not repeat, and comes back.
func TestValueMemoRests(t *testing.T) {
	m := newMatcher(models.Default().Rules)
	tps := benchURLs(memoWindow*2, true)
	for i := range memoWindow {
		m.match(&tps[i])
	}
	if m.memo.rest != memoRest {
		t.Fatalf("after %d values that never repeat: rest %d, want %d", memoWindow, m.memo.rest, memoRest)
	}
	for i := range memoRest {
		m.match(&tps[i%len(tps)])
	}
	if m.memo.rest != 0 || m.memo.looked != 0 {
		t.Fatalf("after resting: rest %d, looked %d, want 0, 0", m.memo.rest, m.memo.looked)
	}
	// Repeating values: the cache stays on.
	pages := benchURLs(memoWindow+memoWindow/2, false)
	for i := range pages {
		m.match(&pages[i])
	}
	if m.memo.rest != 0 || m.memo.looked != memoWindow/2 || m.memo.hits < m.memo.looked*9/10 {
		t.Fatalf("over 200 pages: rest %d, hits %d of %d", m.memo.rest, m.memo.hits, m.memo.looked)
	}
}

// TestMatcherManyKeys checks a model with more property keys than a key
// index holds: those past it are matched on their own, never taken for
// another key.
func TestMatcherManyKeys(t *testing.T) {
	r0 := models.Rule{Type: "a", Points: 1}
	for i := range 1<<16 + 1 {
		r0.Properties = append(r0.Properties, models.PropertyMatch{Key: fmt.Sprintf("k%d", i), Glob: "*"})
	}
	rs := []models.Rule{r0, {Type: "b", Points: 2, Properties: []models.PropertyMatch{{Key: "url", Glob: "*pricing*"}}}}
	m := newMatcher(rs)
	if len(m.keys) != 1<<16 {
		t.Fatalf("%d keys with masks, want %d", len(m.keys), 1<<16)
	}
	if r := m.match(&Touchpoint{Type: "b", Props: []Attr{{"url", "/pricing"}, {"k0", "x"}}}); r == nil || r.idx != 1 {
		t.Fatalf("got %v, want rule 1", r)
	}
	if r := m.match(&Touchpoint{Type: "a", Props: []Attr{{"k0", "x"}, {"url", "/pricing"}}}); r != nil {
		t.Fatalf("got %v, want no rule", r)
	}
}

// TestMatcherKeyLimits checks how rules are compiled when a key has more
// globs than a mask holds and a type more keys than it shares.
func TestMatcherKeyLimits(t *testing.T) {
	var rs []models.Rule
	for i := range 70 {
		rs = append(rs, models.Rule{Type: "page_view", Points: 1, Properties: []models.PropertyMatch{{Key: "url", Glob: fmt.Sprintf("*/p%d/*", i)}}})
	}
	for i := range maxTypeKeys + 2 {
		rs = append(rs, models.Rule{Type: "form_submit", Points: 1, Properties: []models.PropertyMatch{{Key: fmt.Sprintf("k%d", i), Glob: "x"}}})
	}
	// The same glob again: it shares the first one's bit.
	rs = append(rs, models.Rule{Type: "page_view", Channel: "web", Points: 1, Properties: []models.PropertyMatch{{Key: "url", Glob: "*/p3/*"}}})
	m := newMatcher(rs)
	var urlKeys, globs int
	for _, k := range m.keys {
		if k.name == "url" {
			urlKeys++
			globs += len(k.globs)
			if len(k.globs) > 64 {
				t.Errorf("key %q has %d globs in one mask", k.name, len(k.globs))
			}
		}
	}
	if urlKeys != 2 || globs != 70 {
		t.Errorf("url: %d masks with %d globs, want 2 with 70", urlKeys, globs)
	}
	ti, _ := m.types.get("form_submit")
	direct := 0
	for _, r := range m.byType[ti] {
		if r.props[0].slot < 0 {
			direct++
		}
	}
	if len(m.typeKeys[ti]) != maxTypeKeys || direct != 2 {
		t.Errorf("form_submit: %d shared keys and %d conditions matched alone, want %d and 2", len(m.typeKeys[ti]), direct, maxTypeKeys)
	}
	pv, _ := m.types.get("page_view")
	if r := m.byType[pv][0]; r.channel != "web" || r.props[0].bit != 3 {
		t.Errorf("the repeated glob: rule %+v, want the channel rule first with bit 3", r)
	}
	for _, c := range []struct {
		url  string
		want int
	}{{"/x/p3/", 70 + maxTypeKeys + 2}, {"/p65/", 65}, {"/p1/", 1}} {
		tp := &Touchpoint{Type: "page_view", Channel: "web", Props: []Attr{{"url", c.url}}}
		if r := m.match(tp); r == nil || int(r.idx) != c.want {
			t.Errorf("%s: got %v, want rule %d", c.url, r, c.want)
		}
	}
}

func TestMatcherZeroAlloc(t *testing.T) {
	m := newMatcher(mustParse(t, selectionModel).Rules)
	tps := []*Touchpoint{
		ev("a", "1", "page_view", t0, prop("url", "https://x/pricing")),
		ev("a", "1", "page_view", t0, prop("url", "https://x/"+strings.Repeat("long", 40))),
	}
	if n := testing.AllocsPerRun(100, func() {
		for _, tp := range tps {
			m.match(tp)
		}
	}); n != 0 {
		t.Fatalf("match allocates %v times", n)
	}
}

// benchURLs returns n page view touchpoints of the default model's kind:
// URLs of a site's pages (n distinct ones when unique, else 200 pages).
func benchURLs(n int, unique bool) []Touchpoint {
	sections := []string{"blog", "docs", "pricing", "customers", "compare", "careers", "product", "integrations"}
	tps := make([]Touchpoint, n)
	for i := range tps {
		page := i % 200
		if unique {
			page = i
		}
		url := fmt.Sprintf("https://www.acme-analytics.test/%s/page-%d", sections[page%len(sections)], page)
		tps[i] = Touchpoint{Type: "page_view", Channel: "web", Props: []Attr{{"url", url}, {"referrer", "https://www.google.com/"}}}
	}
	return tps
}

// BenchmarkMatch measures choosing the rule of a page view: under the
// default model (four URL globs) and under one with 40 page rules (a glob
// each), over a site's 200 pages and over URLs that never repeat (every
// value misses the cache).
func BenchmarkMatch(b *testing.B) {
	many := models.Default().Rules
	for i := range 36 {
		many = append(many, models.Rule{Name: fmt.Sprintf("page-%d", i), Type: "page_view", Points: 2,
			Properties: []models.PropertyMatch{{Key: "url", Glob: fmt.Sprintf("*/section-%d/*", i)}}})
	}
	for _, c := range []struct {
		name   string
		rules  []models.Rule
		unique bool
	}{
		{"Default/Pages", models.Default().Rules, false},
		{"Default/Unique", models.Default().Rules, true},
		{"40Globs/Pages", many, false},
		{"40Globs/Unique", many, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			m := newMatcher(c.rules)
			tps := benchURLs(1<<16, c.unique)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if m.match(&tps[i&(1<<16-1)]) == nil {
					b.Fatal("no rule")
				}
			}
		})
	}
}
