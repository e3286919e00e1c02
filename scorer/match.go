package scorer

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/leadscore/leadscore/models"
)

// globMatch reports whether s matches pattern: '*' matches any run of bytes
// (including '/' and the empty run), '?' exactly one byte, any other byte
// itself. It works on bytes, does not allocate, and runs in O(len(pattern) *
// len(s)) at worst (linear for patterns with one '*').
func globMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0 // position after the last '*' and where it resumed in s
	for i < len(s) {
		if p < len(pattern) {
			switch c := pattern[p]; c {
			case '*':
				p++
				star, mark = p, i
				continue
			case '?':
				p++
				i++
				continue
			default:
				if c == s[i] {
					p++
					i++
					continue
				}
			}
		}
		if star < 0 {
			return false
		}
		// Let the last '*' swallow one more byte and retry from there.
		mark++
		p, i = star, mark
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// glob is a compiled glob pattern. Patterns without '?' (the usual
// "*/pricing*") are matched with a prefix, a suffix and substring searches
// between them, which is exact for '*'-only patterns (the leftmost match of
// each segment is always a safe choice); others use globMatch.
type glob struct {
	pattern string
	segs    []string // pattern split at '*', when the pattern has no '?'
}

func compileGlob(pattern string) glob {
	g := glob{pattern: pattern}
	if !strings.Contains(pattern, "?") {
		g.segs = strings.Split(pattern, "*")
	}
	return g
}

func (g *glob) match(s string) bool {
	if g.segs == nil {
		return globMatch(g.pattern, s)
	}
	n := len(g.segs)
	if n == 1 {
		return s == g.pattern
	}
	first, last := g.segs[0], g.segs[n-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	s = s[len(first) : len(s)-len(last)]
	for _, seg := range g.segs[1 : n-1] {
		i := strings.Index(s, seg)
		if i < 0 {
			return false
		}
		s = s[i+len(seg):]
	}
	return true
}

// propMatch is a compiled models.PropertyMatch.
type propMatch struct {
	key  string
	glob glob
}

// rule is a compiled models.Rule.
type rule struct {
	idx      uint16
	nconds   int
	name     string
	channel  string
	campaign string
	props    []propMatch
	points   float64
	cap      float64
}

func (r *rule) matches(tp *Touchpoint) bool {
	if r.channel != "" && r.channel != tp.Channel {
		return false
	}
	if r.campaign != "" && r.campaign != tp.Campaign {
		return false
	}
	for i := range r.props {
		v, ok := tp.Prop(r.props[i].key)
		if !ok || !r.props[i].glob.match(v) {
			return false
		}
	}
	return true
}

// matcher selects the winning rule of a touchpoint.
type matcher struct {
	types  nameTable // touchpoint type -> index into byType
	byType [][]rule
}

func newMatcher(rs []models.Rule) matcher {
	var m matcher
	for i := range rs {
		r := &rs[i]
		cr := rule{
			idx:      uint16(i),
			nconds:   1 + len(r.Properties),
			name:     r.Name,
			channel:  r.Channel,
			campaign: r.Campaign,
			points:   r.Points,
			cap:      r.Cap,
		}
		for _, p := range r.Properties {
			cr.props = append(cr.props, propMatch{key: p.Key, glob: compileGlob(p.Glob)})
		}
		if r.Channel != "" {
			cr.nconds++
		}
		if r.Campaign != "" {
			cr.nconds++
		}
		if cr.name == "" {
			cr.name = models.DefaultRuleName(r)
		}
		ti, ok := m.types.get(r.Type)
		if !ok {
			ti = uint32(len(m.byType))
			m.types.put(r.Type, ti)
			m.byType = append(m.byType, nil)
		}
		m.byType[ti] = append(m.byType[ti], cr)
	}
	for _, rs := range m.byType {
		// Stable: file order among rules with as many conditions.
		slices.SortStableFunc(rs, func(a, b rule) int { return b.nconds - a.nconds })
	}
	return m
}

// match returns the winning rule for tp, or nil.
func (m *matcher) match(tp *Touchpoint) *rule {
	ti, ok := m.types.get(tp.Type)
	if !ok {
		return nil
	}
	rs := m.byType[ti]
	for i := range rs {
		if rs[i].matches(tp) {
			return &rs[i]
		}
	}
	return nil
}

// fitRule is a compiled models.FitRule.
type fitRule struct {
	trait  uint16
	equals []string
	glob   *glob   // nil when not set
	min    float64 // -Inf when open
	max    float64 // +Inf when open
	points float64
}

func compileFit(fr *models.FitRule, trait uint16) fitRule {
	c := fitRule{
		trait:  trait,
		equals: slices.Clone(fr.Equals),
		min:    math.Inf(-1),
		max:    math.Inf(1),
		points: fr.Points,
	}
	if fr.Glob != "" {
		g := compileGlob(fr.Glob)
		c.glob = &g
	}
	if fr.Min != nil {
		c.min = *fr.Min
	}
	if fr.Max != nil {
		c.max = *fr.Max
	}
	return c
}

// matches reports whether trait value v satisfies the rule: any of Equals
// (case-insensitive) when set, else Glob when set, else the numeric range
// [min, max).
func (f *fitRule) matches(v string) bool {
	switch {
	case len(f.equals) > 0:
		for _, e := range f.equals {
			if strings.EqualFold(e, v) {
				return true
			}
		}
		return false
	case f.glob != nil:
		return f.glob.match(v)
	default:
		x, ok := parseNumber(v)
		return ok && x >= f.min && x < f.max
	}
}

// parseNumber parses a trait value as a float64. It rejects NaN and values
// that are not numbers without allocating an error for the common
// non-numeric case.
func parseNumber(v string) (float64, bool) {
	v = strings.TrimSpace(v)
	if v == "" || !looksNumeric(v) {
		return 0, false
	}
	x, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(x) {
		return 0, false
	}
	return x, true
}

// looksNumeric is a cheap filter before strconv.ParseFloat: the first byte
// must start a decimal number.
func looksNumeric(v string) bool {
	c := v[0]
	if c == '+' || c == '-' {
		if len(v) == 1 {
			return false
		}
		c = v[1]
	}
	return c == '.' || (c >= '0' && c <= '9')
}
