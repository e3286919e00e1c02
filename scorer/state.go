package scorer

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"unsafe"
)

// ErrBadState is wrapped by the error Restore returns for a state record
// it cannot decode.
var ErrBadState = errors.New("scorer: bad lead state")

// ErrNewerState is wrapped (with ErrBadState) by the error Restore returns
// for a state record in a newer format version than StateVersion: written
// by a newer release, which must not be overwritten by starting the lead
// afresh.
var ErrNewerState = errors.New("scorer: lead state written by a newer release")

// ErrDirty is returned by Restore while the engine has uncommitted
// changes: state is restored on partition assignment, before any Apply.
var ErrDirty = errors.New("scorer: restore with uncommitted changes")

const (
	// StateVersion is the format version of the state records this
	// release writes (the record's first byte); Restore reads it and the
	// versions before it. Version 1: the same, event ids hashed with
	// hashIDv1, no flag 4.
	StateVersion = 2

	maxGroups = 16             // contributor groups per lead
	maxDedupe = 2048           // remembered event ids per lead
	maxCaps   = math.MaxUint16 // cap entries per lead
	maxTraits = 4096           // traits accepted by Restore
)

// Lead flags, all encoded.
const (
	flagArmed  = 1 << 0
	flagLeadID = 1 << 1 // the key is a lead id, not an anonymous id
	// flagFNV: some remembered ids, none with an event time after
	// fnvUntil, are version 1 (hashIDv1) hashes.
	flagFNV    = 1 << 2
	flagsState = flagArmed | flagLeadID | flagFNV
)

// lead is the state of one lead: 128 bytes, so that in the engine's table
// (a large allocation, page-aligned) each lead is exactly two cache lines.
// Its variable parts live in two owned allocations, and for a busy lead a
// third:
//
//   - ent holds the remembered event ids, then the contributor groups,
//     then the cap usage of its latest days (the hot caps), all 16-byte
//     entries in one allocation so that applying a touchpoint touches few
//     cache lines. The ids come first because they are many and only grow
//     at their end: adding an id, a group or a cap usage moves at most the
//     few groups and hot caps after it, never the ids.
//   - strs packs the key, the anonymous id, the account id and the traits
//     (see strs.go), and is replaced, never changed in place.
//   - the cold caps: past hotCapsMax hot caps, those of the days before
//     the latest move to Engine.colds, where only touchpoints late by a day
//     or more read them. A lead charging a few capped rules every day holds
//     a few dozen cap entries over MaxLateness, which in ent would be moved
//     by every id added and fetched for every touchpoint.
type lead struct {
	ent      []entry
	bloom    idBloom // of the event ids (derived, not encoded)
	eRef     float64
	tRef     int64
	flags    uint8
	nGroups  uint8  // ent[nIDs():nIDs()+nGroups] are groups
	nHot     uint16 // the last nHot of ent are the hot caps
	undo     int32  // dirty: 1 + index of its record in Engine.undoRec; 0: clean
	idFirst  int64  // event time of the first event id (derived, not encoded; read by the walk)
	fit      float64
	ids      *idSet // index of the event ids of a heavy lead (derived), or nil
	lastMQL  int64  // event time of the last MQL
	seq      uint32 // MQLs emitted
	cold     uint32 // 1 + index of the cold caps in Engine.colds; 0: none
	strs     string // key, anonymous id, account id, traits (strs.go)
	fnvUntil int64  // with flagFNV: the latest event time of a version 1 id
}

// entry is a contributor group (k: group key id; v: points bits, decayed to
// t_ref), a cap usage (k: rule << 32 | uint32(day); v: points used bits) or
// a remembered event id (k: hash; v: event time).
type entry struct {
	k, v uint64
}

func groupEntry(id uint32, points float64) entry { return entry{uint64(id), math.Float64bits(points)} }
func capEntry(rule uint16, day int64, used float64) entry {
	return entry{uint64(rule)<<32 | uint64(uint32(int32(day))), math.Float64bits(used)}
}
func seenEntry(h uint64, t int64) entry { return entry{h, uint64(t)} }

func (x entry) points() float64 { return math.Float64frombits(x.v) }
func (x entry) groupID() uint32 { return uint32(x.k) }
func (x entry) rule() uint16    { return uint16(x.k >> 32) }
func (x entry) day() int64      { return int64(int32(uint32(x.k))) }
func (x entry) time() int64     { return int64(x.v) }

func (l *lead) nIDs() int        { return len(l.ent) - int(l.nGroups) - int(l.nHot) }
func (l *lead) seenIDs() []entry { return l.ent[:l.nIDs()] }
func (l *lead) groups() []entry  { b := l.nIDs(); return l.ent[b : b+int(l.nGroups)] }
func (l *lead) hotCaps() []entry { return l.ent[len(l.ent)-int(l.nHot):] }
func (l *lead) head() []entry    { return l.ent[l.nIDs():] } // groups and hot caps

// hotCapsMax is the number of hot caps above which the cap usage of days
// before the latest is moved to the cold caps. A lead touched once or
// twice a day keeps most or all of its usage hot and rarely reads the cold
// caps; a busy one, charging a few capped rules a day, moves its older
// days out every few days and keeps one to three cache lines of them.
// Measured against 8 (RESULTS.md, session 15): 8 slowed the uniform
// benchmarks, where most leads passed it once in a while and then had cold
// caps to encode with every change.
const hotCapsMax = 12

// capped charges pts (> 0) against rule's cap for day and returns the part
// that fits. A lead's cap usage is kept in order of day (then of first
// charge): the cold caps, in Engine.colds, then the hot ones, at the end
// of ent. The cold caps may still hold days no accepted touchpoint can
// fall on any more (stale: before t_ref - MaxLateness); they are dropped
// when more are moved there, and never encoded. A touchpoint on a day
// before every hot cap's, late by a day or more in a busy lead, is the
// only one that reads the cold caps.
func (e *Engine) capped(l *lead, rule uint16, day int64, pts, limit float64) float64 {
	hot := l.hotCaps()
	n := len(hot)
	if n > 0 && day < hot[0].day() && l.cold != 0 {
		return e.cappedCold(l, rule, day, pts, limit)
	}
	i, found := findCap(hot, rule, day)
	if found {
		give, c := charge(hot[i], pts, limit)
		hot[i] = c
		return give
	}
	if !e.capsBounded && n+len(e.coldCaps(l)) >= maxCaps { // thousands of capped rules: treat as exhausted
		return 0
	}
	give := min(pts, limit)
	l.ent = slices.Insert(l.ent, len(l.ent)-n+i, capEntry(rule, day, give))
	l.nHot++
	if l.nHot > hotCapsMax {
		e.spillCaps(l)
	}
	return give
}

// cappedCold is capped for a day before every hot cap's, when there are
// cold caps.
func (e *Engine) cappedCold(l *lead, rule uint16, day int64, pts, limit float64) float64 {
	cold := e.coldCaps(l)
	i, found := findCap(cold, rule, day)
	if found {
		give, c := charge(cold[i], pts, limit)
		e.journalCold(l)
		cold[i] = c
		return give
	}
	if !e.capsBounded && int(l.nHot)+len(cold) >= maxCaps {
		return 0
	}
	give := min(pts, limit)
	e.journalCold(l)
	c := e.coldRef(l)
	*c = slices.Insert(*c, i, capEntry(rule, day, give))
	return give
}

// findCap returns the index of rule's usage for day in caps (in order of
// day) and true, or where it would go (after the last of a day <= day) and
// false.
func findCap(caps []entry, rule uint16, day int64) (int, bool) {
	i := len(caps)
	for i > 0 && caps[i-1].day() > day {
		i--
	}
	for j := i - 1; j >= 0 && caps[j].day() == day; j-- {
		if caps[j].rule() == rule {
			return j, true
		}
	}
	return i, false
}

// charge charges pts against cap usage c of limit points: the part that
// fits, and c with it added.
func charge(c entry, pts, limit float64) (float64, entry) {
	used := c.points()
	give := min(pts, max(limit-used, 0))
	return give, capEntry(c.rule(), c.day(), used+give)
}

// spillCaps moves the hot caps of days before the latest to the cold ones,
// dropping the stale ones of both.
func (e *Engine) spillCaps(l *lead) {
	hot := l.hotCaps()
	k := capsBefore(hot, hot[len(hot)-1].day())
	if k == 0 { // all of one day
		return
	}
	minDay := e.minCapDay(l)
	e.journalCold(l)
	c := e.coldRef(l)
	cold := *c
	cold = cold[:copy(cold, cold[capsBefore(cold, minDay):])]
	for _, x := range hot[:k] {
		if x.day() >= minDay {
			cold = append(cold, x)
		}
	}
	*c = cold
	l.dropHotCaps(k)
}

// minCapDay is the first day an accepted touchpoint can fall on, given
// l's t_ref: cap usage of earlier days is stale.
func (e *Engine) minCapDay(l *lead) int64 { return e.minCapDayAt(l.tRef) }

// minCapDayAt is minCapDay for a lead whose t_ref is tRef.
func (e *Engine) minCapDayAt(tRef int64) int64 { return floorDiv(subSat(tRef, e.maxLate), msPerDay) }

// capsBefore returns the number of caps, in order of day, of days before
// day: with the first day a touchpoint can fall on, the stale ones.
func capsBefore(caps []entry, day int64) int {
	k := 0
	for k < len(caps) && caps[k].day() < day {
		k++
	}
	return k
}

// coldCaps returns l's cold caps.
func (e *Engine) coldCaps(l *lead) []entry {
	if l.cold == 0 {
		return nil
	}
	return e.colds[l.cold-1]
}

// coldRef returns where l's cold caps are kept, taking a place for them
// if it has none.
func (e *Engine) coldRef(l *lead) *[]entry {
	if l.cold == 0 {
		if n := len(e.coldFree); n > 0 {
			l.cold = e.coldFree[n-1]
			e.coldFree = e.coldFree[:n-1]
		} else {
			if uint64(len(e.colds)) >= math.MaxUint32-1 {
				panic("scorer: too many leads with cold caps")
			}
			e.colds = append(e.colds, nil)
			l.cold = uint32(len(e.colds))
		}
	}
	return &e.colds[l.cold-1]
}

// releaseCold gives back the place of l's cold caps: l is being removed,
// or rolled back to a state without them.
func (e *Engine) releaseCold(l *lead) {
	if l.cold != 0 {
		e.colds[l.cold-1] = nil
		e.coldFree = append(e.coldFree, l.cold)
		l.cold = 0
	}
}

// pruneHotCaps drops the hot caps of days before minDay. Apply calls it
// when minDay moves on; the cold ones are older and so stale too.
func (l *lead) pruneHotCaps(minDay int64) {
	if k := capsBefore(l.hotCaps(), minDay); k > 0 {
		l.dropHotCaps(k)
	}
}

// dropHotCaps drops the first k hot caps.
func (l *lead) dropHotCaps(k int) {
	hot := l.hotCaps()
	copy(hot, hot[k:])
	l.ent = l.ent[:len(l.ent)-k]
	l.nHot -= uint16(k)
}

// create adds a new lead for tp at event time t, marks it dirty as created
// and returns its slot.
func (e *Engine) create(tp *Touchpoint, kh uint64, t int64) int32 {
	// The identity now, not in a second copy when Apply sets it.
	slot := e.alloc(packStrs(tp.Lead(), tp.AnonymousID, tp.AccountID, nil), kh)
	l := &e.leads[slot]
	l.tRef = t
	// Room for the first touchpoint's id, group and cap usage and one
	// more: one allocation where appending one by one makes three.
	l.ent = make([]entry, 0, 4)
	l.flags = flagArmed
	if tp.LeadID != "" {
		l.flags |= flagLeadID
	}
	e.txn = append(e.txn, slot)
	e.undoRec = append(e.undoRec, undoRec{slot: slot, created: true})
	l.undo = int32(len(e.undoRec))
	return slot
}

// Grow makes room for n more leads: creating or restoring that many does
// not grow the lead table or the index again. A table without that room
// is reallocated once, to exactly the room asked for; the caller chooses
// how much (restore: at least the table's size again, so that a table
// growing to N leads copies about N leads in all, where append, growing a
// large slice by a quarter at a time, copies about 4N).
func (e *Engine) Grow(n int) {
	if n <= 0 {
		return
	}
	if more := n - len(e.free); more > 0 && cap(e.leads)-len(e.leads) < more {
		t := make([]lead, len(e.leads), len(e.leads)+more)
		copy(t, e.leads)
		e.leads = t
	}
	e.index.reserve(e.index.n + n)
}

// Room returns how many leads can be added before the lead table grows.
func (e *Engine) Room() int { return cap(e.leads) - len(e.leads) + len(e.free) }

// Trim gives back the lead table's spare room when it exceeds a quarter of
// the leads (as after a Grow that asked for more than came): one copy of
// the table.
func (e *Engine) Trim() {
	if cap(e.leads)-len(e.leads) <= len(e.leads)/4 {
		return
	}
	t := make([]lead, len(e.leads))
	copy(t, e.leads)
	e.leads = t
}

// alloc takes a slot for a new lead with the given strs (see strs.go),
// whose key's index hash is kh.
func (e *Engine) alloc(strs string, kh uint64) int32 {
	var slot int32
	if n := len(e.free); n > 0 {
		slot = e.free[n-1]
		e.free = e.free[:n-1]
	} else {
		if len(e.leads) >= math.MaxInt32 {
			panic("scorer: too many leads")
		}
		slot = int32(len(e.leads))
		e.leads = append(e.leads, lead{})
	}
	e.leads[slot] = lead{strs: strs}
	e.index.insert(kh, slot)
	e.n++
	return slot
}

// remove forgets the lead in slot.
func (e *Engine) remove(slot int32) {
	e.index.remove(e.index.hash(e.leads[slot].key()), slot)
	e.releaseCold(&e.leads[slot])
	e.leads[slot] = lead{}
	e.free = append(e.free, slot)
	e.n--
}

// touch records the state of an existing lead before its first change in
// the transaction: a copy of the struct and of its contributor groups and
// hot caps. The remembered event ids are not copied (see undoRec), nor the
// cold caps until they change (journalCold), nor the strings: they are
// replaced, never changed in place.
func (e *Engine) touch(slot int32) {
	l := &e.leads[slot]
	if l.undo != 0 {
		return
	}
	off := int32(len(e.undoEnt))
	e.undoEnt = append(e.undoEnt, l.head()...)
	// Grow first and fill in place: one copy of the lead, not two.
	e.undoRec = append(e.undoRec, undoRec{})
	r := &e.undoRec[len(e.undoRec)-1]
	r.slot, r.entOff, r.entEnd = slot, off, int32(len(e.undoEnt))
	r.seenLen, r.dropOff, r.dropEnd, r.seenOff, r.coldOff = int32(l.nIDs()), -1, -1, -1, -1
	r.old = *l
	l.undo = int32(len(e.undoRec))
	e.txn = append(e.txn, slot)
}

// journalCold keeps in the undo log a copy of l's cold caps before their
// first change in the transaction. l is dirty: Apply touched it.
func (e *Engine) journalCold(l *lead) {
	if r := &e.undoRec[l.undo-1]; !r.created && r.coldOff < 0 {
		r.coldOff = int32(len(e.undoEnt))
		e.undoEnt = append(e.undoEnt, e.coldCaps(l)...)
		r.coldEnd = int32(len(e.undoEnt))
	}
}

// dropIDs drops l's first k ids (lead.dropIDs), keeping in the undo log
// what a rollback needs to put them back.
func (e *Engine) dropIDs(l *lead, k int) {
	if l.undo != 0 {
		switch r := &e.undoRec[l.undo-1]; {
		case r.created || r.seenOff >= 0:
		case r.dropOff < 0: // the first drop: journal the old ids it removes
			r.dropOff = int32(len(e.undoEnt))
			e.undoEnt = append(e.undoEnt, l.seenIDs()[:min(k, int(r.seenLen))]...)
			r.dropEnd = int32(len(e.undoEnt))
		default: // a second one: copy the old ids whole
			off := len(e.undoEnt)
			e.undoEnt = e.oldIDs(r, l, e.undoEnt)
			r.seenOff = int32(off)
		}
	}
	l.dropIDs(k)
}

// oldIDs appends to dst the ids the lead l of undo record r had at its
// first change in the transaction.
func (e *Engine) oldIDs(r *undoRec, l *lead, dst []entry) []entry {
	if r.seenOff >= 0 {
		return append(dst, e.undoEnt[r.seenOff:r.seenOff+r.seenLen]...)
	}
	cur := l.seenIDs()
	if r.dropOff < 0 {
		return append(dst, cur[:r.seenLen]...)
	}
	// The dropped old ids, then the kept ones, now the first of the current.
	dropped := e.undoEnt[r.dropOff:r.dropEnd]
	dst = append(dst, dropped...)
	return append(dst, cur[:int(r.seenLen)-len(dropped)]...)
}

// Dirty returns the number of leads changed since the last Commit or
// Rollback.
func (e *Engine) Dirty() int { return len(e.txn) }

// AppendDirty calls fn for every dirty lead, in order of first change, with
// its key and encoded current state. The state buffer is reused after fn
// returns; fn must not call the engine.
func (e *Engine) AppendDirty(fn func(lead string, state []byte)) {
	for i, slot := range e.txn {
		if i%PrefetchBatch == 0 { // see Prefetch: the leads changed long ago
			e.prefetchSlots(e.txn[i:min(i+PrefetchBatch, len(e.txn))])
		}
		l := &e.leads[slot]
		e.enc = e.appendState(l, e.enc[:0])
		fn(l.key(), e.enc)
	}
}

// Commit tells the engine the transaction holding the dirty leads'
// changelog records committed: it forgets the undo log.
func (e *Engine) Commit() {
	e.resetUndo()
}

// Rollback tells the engine the transaction aborted: every dirty lead goes
// back to its state at the last Commit, and leads created since are
// removed.
func (e *Engine) Rollback() {
	for i := len(e.undoRec) - 1; i >= 0; i-- {
		r := &e.undoRec[i]
		if r.created {
			e.remove(r.slot)
			continue
		}
		cur := &e.leads[r.slot]
		head := e.undoEnt[r.entOff:r.entEnd]
		old := r.old
		old.ent = e.oldIDs(r, cur, make([]entry, 0, int(r.seenLen)+len(head)))
		old.ent = append(old.ent, head...)
		// The id index was changed in place since; the strings were not.
		old.rebuildIDs()
		if r.coldOff >= 0 {
			if old.cold == 0 { // taken in the transaction
				e.releaseCold(cur)
			} else {
				c := &e.colds[old.cold-1]
				*c = append((*c)[:0], e.undoEnt[r.coldOff:r.coldEnd]...)
			}
		}
		e.leads[r.slot] = old
	}
	e.resetUndo()
}

// resetUndo forgets the undo log and starts a new transaction: the leads
// changed in the last one are no longer dirty.
func (e *Engine) resetUndo() {
	for _, slot := range e.txn {
		e.leads[slot].undo = 0 // a removed lead's slot is already zero
	}
	e.txn = e.txn[:0]
	clear(e.undoRec) // drop the references to strings and slices
	e.undoRec = e.undoRec[:0]
	e.undoEnt = e.undoEnt[:0]
}

// Restore loads one changelog record: the encoded state of lead, or an
// empty state to remove it. It does not mark the lead dirty and is refused
// (ErrDirty) while leads are dirty. Undecodable input gives an error
// wrapping ErrBadState and leaves the engine unchanged.
func (e *Engine) Restore(key string, state []byte) error {
	if len(e.txn) > 0 {
		return ErrDirty
	}
	kh := e.index.hash(key)
	slot, known := e.index.find(kh, key, e.leads)
	if len(state) == 0 {
		if known {
			e.remove(slot)
		}
		return nil
	}
	var l lead
	cold, err := e.decodeState(key, state, &l)
	if err != nil {
		return fmt.Errorf("scorer: restore %q: %w", key, err)
	}
	if !known {
		slot = e.alloc(l.strs, kh)
	}
	l.cold = e.leads[slot].cold // reused (a fresh slot has none)
	if len(cold) > 0 {
		*e.coldRef(&l) = cold
	} else {
		e.releaseCold(&l)
	}
	e.leads[slot] = l
	return nil
}

// EncodeLead appends the encoded state of lead to dst; false when the lead
// is unknown.
func (e *Engine) EncodeLead(key string, dst []byte) ([]byte, bool) {
	slot, ok := e.lookup(key)
	if !ok {
		return dst, false
	}
	return e.appendState(&e.leads[slot], dst), true
}

// appendState encodes l in the format of the package doc.
func (e *Engine) appendState(l *lead, b []byte) []byte {
	b = append(b, StateVersion)
	b = binary.AppendUvarint(b, uint64(l.flags&flagsState))
	if l.flags&flagFNV != 0 {
		b = binary.AppendVarint(b, l.fnvUntil)
	}
	b = appendString(b, l.anon())
	b = appendString(b, l.account())
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(l.eRef))
	b = binary.AppendVarint(b, l.tRef)
	b = binary.AppendVarint(b, l.lastMQL)
	b = binary.AppendUvarint(b, uint64(l.seq))
	cold, hot := e.coldCaps(l), l.hotCaps()
	cold = cold[capsBefore(cold, e.minCapDay(l)):]
	b = binary.AppendUvarint(b, uint64(len(cold)+len(hot)))
	for _, caps := range [2][]entry{cold, hot} {
		for _, c := range caps {
			b = appendString(b, e.capKeys[c.rule()])
			b = binary.AppendVarint(b, c.day())
			b = binary.LittleEndian.AppendUint64(b, c.v)
		}
	}
	seen := l.seenIDs()
	b = binary.AppendUvarint(b, uint64(len(seen)))
	for _, d := range seen {
		b = binary.LittleEndian.AppendUint64(b, d.k)
		b = binary.AppendVarint(b, d.time())
	}
	groups := l.groups()
	b = binary.AppendUvarint(b, uint64(len(groups)))
	for _, g := range groups {
		k := &e.groupKeys[g.groupID()]
		b = appendString(b, k.typ)
		b = appendString(b, k.channel)
		b = appendString(b, k.campaign)
		b = binary.LittleEndian.AppendUint64(b, g.v)
	}
	traits := l.traits(e.traitBuf[:0])
	b = binary.AppendUvarint(b, uint64(len(traits)))
	for _, t := range traits {
		b = appendString(b, e.traitNames[t.idx])
		b = appendString(b, t.v)
	}
	clear(traits)
	e.traitBuf = traits[:0]
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeState decodes b, the state of the lead with the given key, into l,
// dropping cap usage of rules and traits the model does not know, and
// recomputes fit. It returns l's cold caps, which l does not reference
// yet (l.cold is left 0).
func (e *Engine) decodeState(key string, b []byte, l *lead) ([]entry, error) {
	r := reader{b: b}
	if len(b) > 0 && b[0] > StateVersion {
		return nil, fmt.Errorf("%w: %w: format version %d, this release reads up to %d", ErrBadState, ErrNewerState, b[0], StateVersion)
	}
	if len(b) == 0 || b[0] != StateVersion && b[0] != 1 {
		return nil, fmt.Errorf("%w: unknown format version", ErrBadState)
	}
	v1 := b[0] == 1
	r.b = r.b[1:]
	flags := r.uvarint("flags")
	known := uint64(flagsState)
	if v1 {
		known = flagArmed | flagLeadID
	}
	if flags&^known != 0 {
		r.fail("unknown flags")
	}
	l.flags = uint8(flags & known)
	l.fnvUntil = 0
	if l.flags&flagFNV != 0 {
		l.fnvUntil = r.varint("version 1 ids until")
	}
	anon := r.bytes("anonymous id")
	account := r.bytes("account id")
	l.eRef = r.f64("engagement")
	l.tRef = r.varint("reference time")
	l.lastMQL = r.varint("last MQL time")
	seq := r.uvarint("sequence")
	if seq > math.MaxUint32 {
		r.fail("sequence out of range")
	}
	l.seq = uint32(seq)

	n := r.count("caps", maxCaps, 10)
	var caps []entry
	for range n {
		name := r.bytes("cap rule")
		day := r.varint("cap day")
		used := r.f64("cap usage")
		if day < math.MinInt32 || day > math.MaxInt32 {
			r.fail("cap day out of range")
		}
		if rule, ok := e.capIndex[string(name)]; ok && r.err == nil {
			caps = append(caps, capEntry(rule, day, used))
		}
	}
	if r.err == nil && hasDuplicateKeys(caps) {
		r.fail("duplicate cap usage")
	}
	// Only the days a touchpoint can still fall on: others are stale (a
	// model with a shorter max_lateness) or impossible (after t_ref), and
	// capsBounded holds for what is left.
	minDay, maxDay := e.minCapDay(l), floorDiv(l.tRef, msPerDay)
	caps = slices.DeleteFunc(caps, func(c entry) bool { return c.day() < minDay || c.day() > maxDay })

	n = r.count("event ids", maxDedupe, 9)
	var seen []entry
	if n > 0 {
		seen = make([]entry, 0, n)
	}
	for range n {
		h := r.u64("event id hash")
		t := r.varint("event id time")
		seen = append(seen, seenEntry(h, t))
		if v1 && r.err == nil && (l.flags&flagFNV == 0 || t > l.fnvUntil) {
			l.flags |= flagFNV
			l.fnvUntil = t
		}
	}

	n = r.count("groups", maxGroups, 11)
	var groups []entry
	for range n {
		typ, ch, camp := r.bytes("group type"), r.bytes("group channel"), r.bytes("group campaign")
		v := r.f64("group points")
		if r.err != nil {
			break
		}
		groups = append(groups, groupEntry(e.internGroup(string(typ), string(ch), string(camp)), v))
	}
	if r.err == nil && hasDuplicateKeys(groups) {
		r.fail("duplicate group")
	}
	// In order of day (as this release writes them; earlier ones wrote
	// them in order of first charge): all hot, or when more than
	// hotCapsMax, the latest day's hot and the others cold.
	slices.SortStableFunc(caps, func(a, b entry) int { return cmp.Compare(a.day(), b.day()) })
	nCold := 0
	if len(caps) > hotCapsMax {
		nCold = capsBefore(caps, caps[len(caps)-1].day())
	}
	var cold []entry
	if nCold > 0 {
		cold = slices.Clone(caps[:nCold])
	}
	l.ent = slices.Concat(seen, groups, caps[nCold:])
	l.nGroups, l.nHot = uint8(len(groups)), uint16(len(caps)-nCold)
	l.cold = 0
	l.rebuildIDs()

	n = r.count("traits", maxTraits, 2)
	traits := e.traitBuf[:0]
	for range n {
		name, v := r.bytes("trait name"), r.bytes("trait value")
		if r.err != nil {
			break
		}
		if ti, ok := e.traitIndex.get(string(name)); ok {
			idx := uint16(ti)
			if slices.ContainsFunc(traits, func(t traitVal) bool { return t.idx == idx }) {
				r.fail("duplicate trait")
				break
			}
			// Aliases b: packStrs copies it.
			traits = append(traits, traitVal{idx: idx, v: unsafe.String(unsafe.SliceData(v), len(v))})
		}
	}
	l.strs = packStrs(key, unsafe.String(unsafe.SliceData(anon), len(anon)),
		unsafe.String(unsafe.SliceData(account), len(account)), traits)
	clear(traits)
	e.traitBuf = traits[:0]
	if r.err == nil && len(r.b) > 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, r.err
	}
	l.fit = e.computeFit(l)
	return cold, nil
}

// reader decodes a state record; the first error sticks and later reads
// return zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrBadState, what)
	}
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) u64(what string) uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.fail(what)
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

// f64 reads a finite float64.
func (r *reader) f64(what string) float64 {
	v := math.Float64frombits(r.u64(what))
	if math.IsNaN(v) || math.IsInf(v, 0) {
		r.fail(what + " not finite")
		return 0
	}
	return v
}

// bytes reads a length-prefixed string; the result aliases the input.
func (r *reader) bytes(what string) []byte {
	n := r.uvarint(what)
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail(what)
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

// count reads an item count, at most limit and at most what the remaining
// bytes can hold at minSize bytes an item.
func (r *reader) count(what string, limit, minSize int) int {
	n := r.uvarint(what)
	if r.err != nil {
		return 0
	}
	if n > uint64(limit) || n*uint64(minSize) > uint64(len(r.b)) {
		r.fail(what + " count")
		return 0
	}
	return int(n)
}

// hasDuplicateKeys reports whether two entries have the same key: a group
// id for groups, a rule and day for cap usage (Engine.capped charges one
// entry per pair).
func hasDuplicateKeys(es []entry) bool {
	if len(es) <= 16 {
		for i := range es {
			for j := range i {
				if es[i].k == es[j].k {
					return true
				}
			}
		}
		return false
	}
	ks := make([]uint64, len(es))
	for i, x := range es {
		ks[i] = x.k
	}
	slices.Sort(ks)
	for i := 1; i < len(ks); i++ {
		if ks[i] == ks[i-1] {
			return true
		}
	}
	return false
}
