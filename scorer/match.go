package scorer

import (
	"hash/maphash"
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

// propMatch is a compiled models.PropertyMatch. Its glob is one of the
// globs of a property key (matcher.keys[ki]), bit of that key's mask; a
// condition on a key the rule's type has more than maxTypeKeys of is
// matched on its own (slot < 0).
type propMatch struct {
	key  string
	glob glob
	slot int8  // index of the key in the type's keys (matcher.typeKeys), or -1
	bit  uint8 // the glob's bit in the key's mask
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

// matches reports whether tp meets r's conditions. With masks, property
// conditions read the masks of the type's keys (computed as needed into
// masks, at most once per key and touchpoint); with nil masks, or for a
// condition without a mask (slot < 0), each glob is matched on its own.
func (r *rule) matches(m *matcher, tp *Touchpoint, ti uint32, masks *typeMasks) bool {
	if r.channel != "" && r.channel != tp.Channel {
		return false
	}
	if r.campaign != "" && r.campaign != tp.Campaign {
		return false
	}
	for i := range r.props {
		p := &r.props[i]
		if masks == nil || p.slot < 0 {
			v, ok := tp.Prop(p.key)
			if !ok || !p.glob.match(v) {
				return false
			}
			continue
		}
		if masks.done&(1<<p.slot) == 0 {
			masks.mask[p.slot] = m.keyMask(m.typeKeys[ti][p.slot], tp)
			masks.done |= 1 << p.slot
		}
		if masks.mask[p.slot]&(1<<p.bit) == 0 {
			return false
		}
	}
	return true
}

// propKey is a property key the rules match on, with the distinct globs
// they match its value against (at most 64: a key with more has several
// propKeys).
type propKey struct {
	name  string
	globs []glob
}

// maskOf returns the mask of the globs v matches: bit i for globs[i].
func (k *propKey) maskOf(v string) uint64 {
	var mask uint64
	for i := range k.globs {
		if k.globs[i].match(v) {
			mask |= 1 << i
		}
	}
	return mask
}

// maxTypeKeys bounds the property keys (propKeys) whose masks a type's
// rules share; conditions on more keys are matched one by one.
const maxTypeKeys = 8

// typeMasks holds, while one touchpoint is matched, the masks of its
// type's keys computed so far.
type typeMasks struct {
	done uint8
	mask [maxTypeKeys]uint64
}

// matcher selects the winning rule of a touchpoint.
//
// Property conditions are globs, and matching several of them against a
// URL for every page view is most of the cost of choosing a rule. Values
// repeat (a site has far fewer pages than views), so each property value's
// matches are computed once for all the globs on its key (a mask) and kept
// in a small cache (valueMemo) for the next touchpoint with the same value.
type matcher struct {
	types    nameTable  // touchpoint type -> index into byType
	byType   [][]rule   // by type, in order of precedence
	typeKeys [][]uint16 // by type: the indexes in keys of the keys its rules match on
	keys     []propKey
	memo     *valueMemo // nil when no rule has a property condition

	// While compiling: where each (key, glob) is, and each key's last
	// propKey.
	globAt  map[models.PropertyMatch]keyBit
	lastKey map[string]int
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
			m.typeKeys = append(m.typeKeys, nil)
		}
		for _, p := range r.Properties {
			cr.props = append(cr.props, m.compileProp(ti, p))
		}
		m.byType[ti] = append(m.byType[ti], cr)
	}
	for _, rs := range m.byType {
		// Stable: file order among rules with as many conditions.
		slices.SortStableFunc(rs, func(a, b rule) int { return b.nconds - a.nconds })
	}
	if len(m.keys) > 0 {
		m.memo = &valueMemo{seed: maphash.MakeSeed()}
	}
	m.globAt, m.lastKey = nil, nil
	return m
}

// compileProp compiles a property condition of a rule of type ti, adding
// its glob to its key's (and the key to the type's keys) when they are not
// there yet. Keys past the 65536th (a model no one writes, but one the
// loader accepts) are matched on their own.
func (m *matcher) compileProp(ti uint32, p models.PropertyMatch) propMatch {
	pm := propMatch{key: p.Key, glob: compileGlob(p.Glob), slot: -1}
	if m.globAt == nil {
		m.globAt = make(map[models.PropertyMatch]keyBit)
		m.lastKey = make(map[string]int)
	}
	kb, ok := m.globAt[p]
	if !ok {
		// A new glob goes to the key's last propKey, or a new one when
		// that is full.
		ki, has := m.lastKey[p.Key]
		if !has || len(m.keys[ki].globs) == 64 {
			if len(m.keys) > math.MaxUint16 {
				return pm
			}
			ki = len(m.keys)
			m.keys = append(m.keys, propKey{name: p.Key})
			m.lastKey[p.Key] = ki
		}
		k := &m.keys[ki]
		kb = keyBit{ki: uint16(ki), bit: uint8(len(k.globs))}
		k.globs = append(k.globs, pm.glob)
		m.globAt[p] = kb
	}
	pm.bit = kb.bit
	tk := m.typeKeys[ti]
	if j := slices.Index(tk, kb.ki); j >= 0 {
		pm.slot = int8(j)
	} else if len(tk) < maxTypeKeys {
		pm.slot = int8(len(tk))
		m.typeKeys[ti] = append(tk, kb.ki)
	}
	return pm
}

// keyBit locates a glob: its propKey and its bit there.
type keyBit struct {
	ki  uint16
	bit uint8
}

// match returns the winning rule for tp, or nil.
func (m *matcher) match(tp *Touchpoint) *rule {
	ti, ok := m.types.get(tp.Type)
	if !ok {
		return nil
	}
	var masks typeMasks
	mp := &masks
	if len(m.typeKeys[ti]) == 0 || m.memo.resting() {
		mp = nil // no masks for this type, or the cache is resting
	}
	rs := m.byType[ti]
	for i := range rs {
		if rs[i].matches(m, tp, ti, mp) {
			return &rs[i]
		}
	}
	return nil
}

// keyMask returns the mask of the globs of keys[ki] that tp's value of the
// key matches: 0 when tp does not have the key.
func (m *matcher) keyMask(ki uint16, tp *Touchpoint) uint64 {
	k := &m.keys[ki]
	v, ok := tp.Prop(k.name)
	if !ok {
		return 0
	}
	return m.memo.mask(k, ki, v)
}

// valueMemo remembers the masks of recent property values: a four-way
// set-associative cache of memoSlots entries, each with a copy of its
// value (values longer than memoMaxLen are matched every time). An entry
// is served only when its key and whole value are those asked for, so the
// cache changes what is computed, never the result. Each engine has its
// own: one writer, no locks.
//
// Where values hardly ever repeat (URLs with unique query strings), the
// cache would only add a hash and a copy to every match: after a window of
// memoWindow lookups with fewer than memoMinHits hits, it is left alone
// for the next memoRest touchpoints, then tried again.
type valueMemo struct {
	ents   [memoSlots]memoEntry         // a set is 4 entries, one cache line
	bytes  [memoSlots * memoMaxLen]byte // entry i's value: bytes[i*memoMaxLen:][:its length]
	next   [memoSlots / memoWays]uint8  // per set: the way to replace next
	seed   maphash.Seed
	looked uint32 // lookups in this window
	hits   uint32 // hits in this window
	rest   uint32 // touchpoints left to leave the cache alone for
}

// memoEntry is a cached mask. Its tag is the value's hash (high 32 bits),
// its key's index (bits 16-31), 1 (bit 15, so that no tag is 0) and its
// length (bits 0-14): equal tags mean the same key and length.
type memoEntry struct {
	tag, mask uint64
}

const (
	memoBits    = 10
	memoSlots   = 1 << memoBits
	memoWays    = 4
	memoMaxLen  = 128
	memoWindow  = 1 << 10
	memoMinHits = memoWindow / 16
	memoRest    = 1 << 18
)

// resting reports whether the cache is being left alone, counting the
// touchpoint it is left alone for.
func (c *valueMemo) resting() bool {
	if c.rest == 0 {
		return false
	}
	c.rest--
	return true
}

// mask returns the mask of value v of key k (keys[ki]).
func (c *valueMemo) mask(k *propKey, ki uint16, v string) uint64 {
	if len(v) > memoMaxLen {
		return k.maskOf(v)
	}
	if c.looked++; c.looked == memoWindow {
		if c.hits < memoMinHits {
			c.rest = memoRest
		}
		c.looked, c.hits = 0, 0
	}
	h := maphash.String(c.seed, v)
	tag := h&^0xffff_ffff | uint64(ki)<<16 | 1<<15 | uint64(len(v))
	set := (h ^ uint64(ki)) & (memoSlots/memoWays - 1) // low bits: the tag has the high ones
	first := set * memoWays
	for i := first; i < first+memoWays; i++ {
		if c.ents[i].tag == tag && string(c.bytes[i*memoMaxLen:i*memoMaxLen+uint64(len(v))]) == v {
			c.hits++
			return c.ents[i].mask
		}
	}
	mask := k.maskOf(v)
	i := first + uint64(c.next[set])
	c.next[set] = (c.next[set] + 1) % memoWays
	copy(c.bytes[i*memoMaxLen:i*memoMaxLen+memoMaxLen], v)
	c.ents[i] = memoEntry{tag: tag, mask: mask}
	return mask
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
