package scorer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/leadscore/leadscore/models"
)

// Outcome says what Apply did with a touchpoint.
type Outcome uint8

const (
	// Scored: applied (the points may be 0: no rule matched, or the cap was
	// exhausted).
	Scored Outcome = iota
	// Duplicate: the same event id for the same lead within the model's
	// DedupeWindow of event time of the first delivery; not applied.
	Duplicate
	// TooLate: more than MaxLateness before the lead's t_ref; dead-letter
	// reason "too_late".
	TooLate
	// Future: more than MaxFutureSkew after the wall clock; dead-letter
	// reason "future".
	Future
)

// String returns "scored", "duplicate", "too_late" or "future", the names
// used in metrics and dead-letter headers.
func (o Outcome) String() string {
	switch o {
	case Scored:
		return "scored"
	case Duplicate:
		return "duplicate"
	case TooLate:
		return "too_late"
	case Future:
		return "future"
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// Result is what Apply reports about one touchpoint.
type Result struct {
	Outcome Outcome
	// Rule is the name of the winning rule, "" when none matched or the
	// touchpoint was not applied.
	Rule string
	// Points is what was applied, after the cap.
	Points float64
	// Engagement and RefTime are E_ref and t_ref (Unix ms) right after
	// applying; for a touchpoint that was not applied, the lead's current
	// values (zero for an unknown lead).
	Engagement float64
	RefTime    int64
	// Fit is the lead's fit after applying this touchpoint's traits.
	Fit float64
	// Qualified says this touchpoint triggered an MQL, described by MQL.
	Qualified bool
	// MQL is valid when Qualified. EmittedAt is left zero for the
	// pipeline to set. Its Contributors slice is reused (overwritten) by the
	// next Apply into the same Result; every string in it may be kept.
	MQL MQL
}

// Engine scores the touchpoints of one partition. It is not safe for
// concurrent use.
type Engine struct {
	m *models.Model

	halfLife  float64 // ms
	maxLate   int64   // ms
	maxFuture int64   // ms
	window    int64   // dedupe window, ms
	cooldown  int64   // ms
	topN      int

	rules    matcher
	capKeys  []string          // per rule index: the name cap usage is stored under
	capIndex map[string]uint16 // capKeys -> rule index
	// capsBounded: the capped rules times the days a touchpoint can fall
	// on stay below maxCaps, so that capped need not count a lead's caps.
	capsBounded bool

	fit        []fitRule
	traitIndex nameTable // trait name -> index into traitNames
	traitNames []string

	groupKeys  []groupKey
	groupIndex map[groupKey]uint32
	groupHot   []groupHot  // direct-mapped cache in front of groupIndex
	ruleGroups []lastGroup // by rule index: the group of its last touchpoint

	index leadIndex // lead key -> slot in leads
	leads []lead
	free  []int32 // unused slots
	n     int     // leads held

	txn     []int32   // dirty slots in order of first change
	undoRec []undoRec // one per dirty slot
	undoEnt []entry   // the leads' groups and hot caps before their first change, cold caps, dropped ids

	colds    [][]entry // the leads' cold caps (lead.cold)
	coldFree []uint32  // unused places in colds (lead.cold values)

	enc      []byte     // scratch for AppendDirty
	traitBuf []traitVal // scratch for setTraits, decodeState and appendState
	idBuf    []byte     // scratch for MQL ids
	sink     uint64     // keeps what the plain-Go prefetch loads (prefetch_other.go)
}

// undoRec undoes the changes to one lead: remove it if created, else put
// back old with its groups and hot caps from undoEnt[entOff:entEnd], the
// seenLen event ids it had (Engine.oldIDs) and, if they changed, its cold
// caps from undoEnt[coldOff:coldEnd]. Its strings were left alone (they
// are replaced, never changed in place).
//
// The ids are not copied on the first change: until some are dropped they
// only grow at the end, so the first seenLen are the old ones. Ids are
// dropped from the front: the first drop journals the old ids it removes
// at undoEnt[dropOff:dropEnd], and the old ids are then the journal
// followed by the first kept ones. A second drop in the same transaction
// copies the old ids whole to undoEnt[seenOff:].
type undoRec struct {
	slot             int32
	created          bool
	entOff, entEnd   int32
	seenLen          int32
	dropOff, dropEnd int32 // -1: no drop yet
	seenOff          int32 // -1: not copied
	coldOff, coldEnd int32 // the cold caps before their first change; -1: unchanged
	old              lead
}

type groupKey struct {
	typ, channel, campaign string
}

// groupHot caches the id of a recently used group key. An unused entry has
// the empty key, which is never served from the cache (a touchpoint with
// an empty type, channel and campaign goes to the map).
type groupHot struct {
	k  groupKey
	id uint32
}

// groupHotSize is the number of entries of the group cache, a power of two.
const groupHotSize = 256

// groupHotSlot is a cheap hash of a group key for the cache: lengths and a
// few bytes. Keys that collide only evict each other; the map behind stays
// exact.
func groupHotSlot(typ, channel, campaign string) uint {
	h := uint(len(typ)) | uint(len(channel))<<8 | uint(len(campaign))<<16
	for _, s := range [3]string{typ, channel, campaign} {
		if n := len(s); n > 0 {
			h = (h ^ uint(s[n-1]) ^ uint(s[n/2])<<8) * 0x9e3779b1
		}
	}
	return (h ^ h>>15 ^ h>>23) & (groupHotSize - 1)
}

// otherGroup is group key 0: the fold of the smallest groups of a lead.
const otherType = "(other)"

// Defaults for model fields left zero, as documented in models.Model.
const (
	defaultHalfLife    = 14 * 24 * time.Hour
	defaultMaxLateness = 7 * 24 * time.Hour
	defaultMaxFuture   = 5 * time.Minute
	defaultWindow      = 24 * time.Hour
	defaultTopN        = 5
)

func orDefault(d, def time.Duration) int64 {
	if d <= 0 {
		d = def
	}
	return d.Milliseconds()
}

// NewEngine compiles m into an engine with no leads. m must be a validated
// model and is not modified; zero durations and TopContributors take the
// documented defaults. It panics on a nil model or one with more than
// 65535 rules or referenced traits.
func NewEngine(m *models.Model) *Engine {
	if m == nil {
		panic("scorer: NewEngine with a nil model")
	}
	if len(m.Rules) > math.MaxUint16 || len(m.Fit) > math.MaxUint16 {
		panic("scorer: model has too many rules")
	}
	e := &Engine{
		m:          m,
		halfLife:   float64(orDefault(m.HalfLife, defaultHalfLife)),
		maxLate:    orDefault(m.MaxLateness, defaultMaxLateness),
		maxFuture:  orDefault(m.MaxFutureSkew, defaultMaxFuture),
		window:     orDefault(m.DedupeWindow, defaultWindow),
		cooldown:   max(m.Thresholds.Cooldown.Milliseconds(), 0),
		topN:       m.TopContributors,
		rules:      newMatcher(m.Rules),
		capIndex:   make(map[string]uint16, len(m.Rules)),
		groupIndex: make(map[groupKey]uint32),
		groupHot:   make([]groupHot, groupHotSize),
		ruleGroups: make([]lastGroup, len(m.Rules)),
		index:      newLeadIndex(),
	}
	if e.topN <= 0 {
		e.topN = defaultTopN
	}
	capped := 0 // rules with a cap, for capsBounded
	// Cap usage is stored by rule name; make the names unique so that two
	// rules never share a budget.
	for i := range m.Rules {
		name := m.Rules[i].Name
		if name == "" {
			name = models.DefaultRuleName(&m.Rules[i])
		}
		key := name
		for n := 2; ; n++ {
			if _, dup := e.capIndex[key]; !dup {
				break
			}
			key = fmt.Sprintf("%s#%d", name, n)
		}
		e.capKeys = append(e.capKeys, key)
		e.capIndex[key] = uint16(i)
		if m.Rules[i].Cap > 0 {
			capped++
		}
	}
	e.capsBounded = int64(capped)*(e.maxLate/msPerDay+2) < maxCaps
	for i := range m.Fit {
		fr := &m.Fit[i]
		ti, ok := e.traitIndex.get(fr.Trait)
		if !ok {
			ti = uint32(len(e.traitNames))
			e.traitIndex.put(fr.Trait, ti)
			e.traitNames = append(e.traitNames, fr.Trait)
		}
		e.fit = append(e.fit, compileFit(fr, uint16(ti)))
	}
	e.internGroup(otherType, "", "")
	return e
}

// Model returns the model the engine scores with.
func (e *Engine) Model() *models.Model { return e.m }

// Len returns the number of leads held.
func (e *Engine) Len() int { return e.n }

// decay returns 2^(-dt/H), the factor by which points fade over dt
// milliseconds for half-life H: after one half-life a touchpoint counts
// half, after two a quarter. Engagement at t is
//
//	E(t) = sum_i p_i * 2^(-(t - t_i)/H)   over touchpoints with t_i <= t
//
// and is kept as (E_ref, t_ref), the value at the latest event time seen.
// A touchpoint (p, t) updates it as
//
//	t >= t_ref:  E_ref = E_ref * decay(t - t_ref) + p;  t_ref = t
//	t <  t_ref:  E_ref = E_ref + p * decay(t_ref - t)    (late: t_ref stays)
//
// Both are exact rewrites of the sum, so the result does not depend on the
// arrival order. The form is numerically stable: decay is only ever called
// with dt >= 0, so every factor is in (0, 1] and nothing is scaled up; a
// late touchpoint has its own points scaled down instead of E_ref being
// moved back to t and forward again; and E_ref, being the value at t_ref
// rather than at a fixed epoch, stays bounded by the sum of the |points|
// however long the engine runs. Each update costs one exp2 and at most a
// few ulps of relative error.
func (e *Engine) decay(dt int64) float64 {
	if dt <= 0 {
		return 1
	}
	return exp2(-float64(dt) / e.halfLife)
}

// Score returns a lead's engagement decayed to max(atMillis, t_ref), its fit
// and whether the lead is known. A time before t_ref gives E_ref: engagement
// is never decayed backwards.
func (e *Engine) Score(lead string, atMillis int64) (engagement, fit float64, ok bool) {
	slot, ok := e.lookup(lead)
	if !ok {
		return 0, 0, false
	}
	l := &e.leads[slot]
	return l.eRef * e.decay(atMillis-l.tRef), l.fit, true
}

// Apply scores tp at wall-clock nowMillis (Unix ms, used only for the future
// check) into res. The checks run in this order: future, too_late (a new
// lead is never too late), duplicate; then a disarmed lead may be rearmed,
// the points are applied, the traits update fit, and qualification is
// checked. Apply keeps no string or slice of tp. tp is expected to be
// valid as package ingest checks it (an event id and a lead key); an
// empty lead key is simply one more lead.
func (e *Engine) Apply(tp *Touchpoint, nowMillis int64, res *Result) {
	contrib := res.MQL.Contributors[:0]
	*res = Result{}
	res.MQL.Contributors = contrib
	t := tp.OccurredAt
	key := tp.Lead()
	kh := e.index.hash(key)
	slot, known := e.index.find(kh, key, e.leads)
	// Work that needs nothing from the lead comes next, so that it runs
	// while the lead's memory is on its way.
	h := hashID(tp.EventID)
	r := e.rules.match(tp)
	if t > nowMillis && t-nowMillis > e.maxFuture {
		res.Outcome = Future
		if known {
			e.fillState(&e.leads[slot], res)
		}
		return
	}
	if known {
		l := &e.leads[slot]
		if t < subSat(l.tRef, e.maxLate) {
			res.Outcome = TooLate
			e.fillState(l, res)
			return
		}
		if l.seen(h, t, e.window) || l.flags&flagFNV != 0 && l.seen(hashIDv1(tp.EventID), t, e.window) {
			res.Outcome = Duplicate
			e.fillState(l, res)
			return
		}
		e.touch(slot)
	} else {
		slot = e.create(tp, kh, t)
	}
	l := &e.leads[slot]

	// Identity.
	if anon, account := l.anon(), l.account(); tp.AnonymousID != "" && tp.AnonymousID != anon ||
		tp.AccountID != "" && tp.AccountID != account {
		if tp.AnonymousID != "" {
			anon = tp.AnonymousID
		}
		if tp.AccountID != "" {
			account = tp.AccountID
		}
		l.strs = l.withIdentity(anon, account) // copies
	}

	// Rearm, judged on the engagement before this touchpoint.
	if l.flags&flagArmed == 0 && l.eRef*e.decay(t-l.tRef) < e.m.Thresholds.Rearm {
		l.flags |= flagArmed
	}

	// Points.
	var pts float64
	if r != nil {
		res.Rule = r.name
		pts = r.points
		if r.cap > 0 && pts > 0 {
			pts = e.capped(l, r.idx, floorDiv(t, msPerDay), pts, r.cap)
		}
	}
	w := 1.0
	if t >= l.tRef {
		if t > l.tRef {
			if l.nHot != 0 {
				// Cap usage of days no accepted touchpoint can fall on any more.
				if minDay := e.minCapDayAt(t); minDay > e.minCapDay(l) {
					l.pruneHotCaps(minDay)
				}
			}
			f := e.decay(t - l.tRef)
			l.eRef *= f
			gs := l.groups()
			for i := range gs {
				gs[i].v = math.Float64bits(gs[i].points() * f)
			}
			l.tRef = t
		}
		l.eRef += pts
	} else {
		w = e.decay(l.tRef - t)
		l.eRef += pts * w
	}
	if pts != 0 {
		e.addGroup(l, e.ruleGroup(r, tp), pts*w)
	}
	l.remember(h, t, e.idHorizon(l.tRef), e.idSlack(), e.dropIDs)

	// Fit.
	if len(tp.Traits) > 0 && len(e.fit) > 0 && e.setTraits(l, tp.Traits) {
		l.fit = e.computeFit(l)
	}

	res.Outcome = Scored
	res.Points = pts
	e.fillState(l, res)

	// Qualification.
	th := &e.m.Thresholds
	if l.flags&flagArmed != 0 && l.eRef >= th.MQL &&
		(th.FitMin == nil || l.fit >= *th.FitMin) &&
		(l.seq == 0 || e.cooldown == 0 || t-l.lastMQL >= e.cooldown) {
		l.seq++
		l.lastMQL = t
		l.flags &^= flagArmed
		res.Qualified = true
		e.fillMQL(l, tp, res)
	}
}

// idHorizon is the event time before which a lead whose t_ref is tRef no
// longer needs its remembered ids: a redelivery that only they could catch
// is too late anyway.
func (e *Engine) idHorizon(tRef int64) int64 { return subSat(tRef, e.maxLate+e.window) }

// idSlack is how far past idHorizon a lead's oldest id may be before the
// old ids are dropped: in batches, not one by one.
func (e *Engine) idSlack() int64 { return (e.maxLate + e.window) / 8 }

func (e *Engine) fillState(l *lead, res *Result) {
	res.Engagement = l.eRef
	res.RefTime = l.tRef
	res.Fit = l.fit
}

func (e *Engine) fillMQL(l *lead, tp *Touchpoint, res *Result) {
	m := &res.MQL
	th := &e.m.Thresholds
	// LeadID is the key the lead is scored under: its lead id, or its
	// anonymous id while it has none (the MQL topic is keyed by it).
	m.LeadID = l.key()
	m.AnonymousID = l.anon()
	m.AccountID = l.account()
	m.Sequence = int(l.seq)
	m.QualifiedAt = time.UnixMilli(tp.OccurredAt).UTC()
	m.TriggerEventID = strings.Clone(tp.EventID)
	m.Score = l.eRef
	m.Fit = l.fit
	m.Thresholds = MQLThresholds{
		MQL:             th.MQL,
		FitMin:          th.FitMin,
		Rearm:           th.Rearm,
		CooldownSeconds: th.Cooldown.Seconds(),
	}
	m.Model = ModelRef{Name: e.m.Name, Version: e.m.Version}
	m.MQLID = e.mqlID(m.LeadID, l.seq, tp.EventID)
	m.Contributors = e.contributors(l, m.Contributors[:0])
}

// mqlID derives the MQL id; see the package doc.
func (e *Engine) mqlID(key string, seq uint32, eventID string) string {
	b := append(e.idBuf[:0], "leadscore.mql.v1"...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(key)))
	b = append(b, key...)
	b = binary.BigEndian.AppendUint64(b, uint64(seq))
	b = binary.BigEndian.AppendUint32(b, uint32(len(eventID)))
	b = append(b, eventID...)
	e.idBuf = b
	sum := sha256.Sum256(b)
	sum[6] = sum[6]&0x0f | 0x80 // version 8
	sum[8] = sum[8]&0x3f | 0x80 // RFC 9562 variant
	var out [36]byte
	hex.Encode(out[0:8], sum[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], sum[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], sum[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], sum[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], sum[10:16])
	return string(out[:])
}

// contributors appends the lead's top positive groups, largest first; ties
// by type, channel, campaign.
func (e *Engine) contributors(l *lead, dst []Contributor) []Contributor {
	for _, g := range l.groups() {
		if g.points() <= 0 {
			continue
		}
		k := &e.groupKeys[g.groupID()]
		c := Contributor{Type: k.typ, Channel: k.channel, Campaign: k.campaign, Points: g.points()}
		// Insertion sort: at most 16 groups.
		i := len(dst)
		dst = append(dst, c)
		for i > 0 && contribLess(&c, &dst[i-1]) {
			dst[i] = dst[i-1]
			i--
		}
		dst[i] = c
	}
	if len(dst) > e.topN {
		dst = dst[:e.topN]
	}
	return dst
}

func contribLess(a, b *Contributor) bool {
	if a.Points != b.Points {
		return a.Points > b.Points
	}
	if a.Type != b.Type {
		return a.Type < b.Type
	}
	if a.Channel != b.Channel {
		return a.Channel < b.Channel
	}
	return a.Campaign < b.Campaign
}

// internGroup returns the id of a contributor group key, copying the
// strings the first time it is seen.
func (e *Engine) internGroup(typ, channel, campaign string) uint32 {
	c := &e.groupHot[groupHotSlot(typ, channel, campaign)]
	if c.k.typ == typ && c.k.channel == channel && c.k.campaign == campaign && c.k != (groupKey{}) {
		return c.id
	}
	id, ok := e.groupIndex[groupKey{typ, channel, campaign}]
	if !ok {
		k := groupKey{strings.Clone(typ), strings.Clone(channel), strings.Clone(campaign)}
		id = uint32(len(e.groupKeys))
		e.groupKeys = append(e.groupKeys, k)
		e.groupIndex[k] = id
	}
	*c = groupHot{k: e.groupKeys[id], id: id}
	return id
}

// ruleGroup returns the id of the contributor group of tp, whose rule is
// r. Each rule remembers the group of its last touchpoint: the type is the
// rule's, and most touchpoints of a rule share their channel and campaign,
// so two string comparisons usually do instead of the group cache's hash
// and three.
func (e *Engine) ruleGroup(r *rule, tp *Touchpoint) uint32 {
	c := &e.ruleGroups[r.idx]
	if c.id != 0 && c.channel == tp.Channel && c.campaign == tp.Campaign {
		return c.id - 1
	}
	id := e.internGroup(tp.Type, tp.Channel, tp.Campaign)
	k := &e.groupKeys[id]
	*c = lastGroup{channel: k.channel, campaign: k.campaign, id: id + 1}
	return id
}

// lastGroup is the group of a rule's last touchpoint (Engine.ruleGroup).
type lastGroup struct {
	channel, campaign string
	id                uint32 // group id + 1; 0: none yet
}

// addGroup adds amount (already decayed to t_ref) to contributor group
// id. A lead holds at most maxGroups groups; when a new one does not
// fit, the smallest of the named groups and the new one is folded into the
// "(other)" group (group id 0), which is made from the smallest named group
// the first time.
func (e *Engine) addGroup(l *lead, id uint32, amount float64) {
	gs := l.groups()
	for i := range gs {
		if gs[i].groupID() == id {
			gs[i] = groupEntry(id, gs[i].points()+amount)
			return
		}
	}
	if len(gs) < maxGroups {
		l.ent = slices.Insert(l.ent, l.nIDs()+len(gs), groupEntry(id, amount))
		l.nGroups++
		return
	}
	other := -1
	for i := range gs {
		if gs[i].groupID() == 0 {
			other = i
			break
		}
	}
	if other < 0 {
		other = smallestNamed(gs)
		gs[other] = groupEntry(0, gs[other].points())
	}
	s := smallestNamed(gs)
	if amount <= gs[s].points() {
		gs[other] = groupEntry(0, gs[other].points()+amount)
		return
	}
	gs[other] = groupEntry(0, gs[other].points()+gs[s].points())
	gs[s] = groupEntry(id, amount)
}

// smallestNamed returns the index of the smallest group other than
// "(other)", the first among equals.
func smallestNamed(gs []entry) int {
	best := -1
	for i := range gs {
		if gs[i].groupID() == 0 {
			continue
		}
		if best < 0 || gs[i].points() < gs[best].points() {
			best = i
		}
	}
	return best
}

// setTraits stores (copies) the traits some fit rule references and
// reports whether a stored value changed. A change packs new strings for
// the lead.
func (e *Engine) setTraits(l *lead, traits []Attr) bool {
	cur := e.traitBuf[:0] // the lead's traits, read on the first known one
	changed, read := false, false
	for i := range traits {
		ti, ok := e.traitIndex.get(traits[i].Key)
		if !ok {
			continue
		}
		if !read {
			cur, read = l.traits(cur), true
		}
		idx, v := uint16(ti), traits[i].Value
		j := slices.IndexFunc(cur, func(t traitVal) bool { return t.idx == idx })
		switch {
		case j < 0:
			cur = append(cur, traitVal{idx: idx, v: v})
		case cur[j].v != v:
			cur[j].v = v
		default:
			continue
		}
		changed = true
	}
	if changed {
		l.strs = packStrs(l.key(), l.anon(), l.account(), cur) // copies the values out of traits
	}
	clear(cur)
	e.traitBuf = cur[:0]
	return changed
}

// computeFit sums the points of the fit rules matching the lead's traits.
func (e *Engine) computeFit(l *lead) float64 {
	fit := 0.0
	for i := range e.fit {
		r := &e.fit[i]
		if v, ok := l.trait(r.trait); ok && r.matches(v) {
			fit += r.points
		}
	}
	return fit
}

const msPerDay = 24 * 60 * 60 * 1000

// floorDiv is a / b rounded towards minus infinity (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// subSat is a - b for b >= 0, saturating at math.MinInt64.
func subSat(a, b int64) int64 {
	if a < math.MinInt64+b {
		return math.MinInt64
	}
	return a - b
}
