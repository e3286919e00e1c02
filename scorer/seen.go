package scorer

import (
	"math"
	"math/bits"
	"slices"
)

// The remembered event ids of a lead (seenIDs) are kept in arrival order,
// with two derived summaries that spare most touchpoints a scan of them:
//
//   - a 128-bit Bloom filter (two bits per id) in the lead itself: with the
//     handful of ids a typical lead remembers, a new event id misses it
//     about 99 times in 100 and the ids are not read at all (kept only
//     while the lead has no idSet);
//   - for a lead with more than heavyIDs ids, an open-addressing index of
//     their positions (idSet), so that a heavy lead (up to maxDedupe ids)
//     costs a probe or two instead of a scan of up to 32 KiB.
//
// Neither is encoded. The filter is rebuilt from the ids when ids are
// dropped; the index is not (see idSet), only when it fills up; both are
// rebuilt on Restore and on Rollback.

// heavyIDs is the number of remembered ids above which a lead gets an
// idSet: past it the Bloom filter is mostly ones.
const heavyIDs = 48

// mixID spreads the bits of an event id hash over the word (a version 1
// FNV-1a hash's low bits depend only on the low bits of the input).
func mixID(h uint64) uint64 { return (h ^ h>>29) * 0x9e3779b97f4a7c15 }

// idBloom is a 128-bit Bloom filter of event id hashes, k = 2.
type idBloom [2]uint64

func (b *idBloom) add(h uint64) {
	m := mixID(h)
	b[m>>63] |= 1 << (m >> 57 & 63)
	b[m>>56&1] |= 1 << (m >> 50 & 63)
}

func (b *idBloom) mayHave(h uint64) bool {
	m := mixID(h)
	return b[m>>63]&(1<<(m>>57&63)) != 0 && b[m>>56&1]&(1<<(m>>50&63)) != 0
}

// idSet indexes a lead's remembered ids by hash: linear probing, each
// cell 0 (empty) or base + 1 + the position of an id in seenIDs().
// Positions are relative to the start of the ids, so inserting or removing
// groups and cap usage after them does not move them. Ids are dropped from
// the front (remember): a drop of the first k adds k to base instead of
// rebuilding the set, and their cells, now at most base, are stale,
// skipped by lookups and reused by inserts. used counts the cells not
// empty, stale ones included, and stays at most half of them; the set is
// rebuilt when an insert would pass that, and sized then with room for
// half as many ids again, so that even a lead whose ids grow in number
// rebuilds at most about once per half as many inserts as it holds ids.
type idSet struct {
	cells []uint16
	shift uint // 64 - log2(len(cells))
	base  int  // at most idBaseMax
	used  int  // cells not 0
}

// idBaseMax bounds idSet.base so that base + 1 + a position (below
// maxDedupe) fits in a cell; a drop that would pass it rebuilds the set.
const idBaseMax = math.MaxUint16 - maxDedupe

// reset empties s and sizes it for n ids and n/2 more.
func (s *idSet) reset(n int) {
	size := 64
	for size < 3*n {
		size *= 2
	}
	if cap(s.cells) >= size {
		s.cells = s.cells[:size]
		clear(s.cells)
	} else {
		s.cells = make([]uint16, size)
	}
	s.shift = uint(64 - bits.TrailingZeros(uint(size)))
	s.base, s.used = 0, 0
}

// pos returns the position in seenIDs() that cell value c (not 0) holds,
// negative for a stale cell.
func (s *idSet) pos(c uint16) int { return int(c) - 1 - s.base }

// add records that ids[pos] has hash h, in the first empty or stale cell
// of its probe sequence; the set must have room (2*(used+1) <= cells).
func (s *idSet) add(h uint64, pos int) {
	mask := uint64(len(s.cells) - 1)
	i := mixID(h) >> s.shift
	for c := s.cells[i]; c != 0; c = s.cells[i] {
		if int(c) <= s.base { // stale: pos(c) < 0, in the form that compiles shorter
			s.cells[i] = uint16(s.base + pos + 1)
			return
		}
		i = (i + 1) & mask
	}
	s.cells[i] = uint16(s.base + pos + 1)
	s.used++
}

// seen reports whether an event id with hash h lies within window of t.
func (l *lead) seen(h uint64, t, window int64) bool {
	if l.ids != nil {
		ids := l.seenIDs()
		cells, base := l.ids.cells, l.ids.base
		mask := uint64(len(cells) - 1)
		for i := mixID(h) >> l.ids.shift; cells[i] != 0; i = (i + 1) & mask {
			if p := uint(int(cells[i]) - 1 - base); p < uint(len(ids)) { // not stale
				if d := ids[p]; d.k == h && within(d.time(), t, window) {
					return true
				}
			}
		}
		return false
	}
	if !l.bloom.mayHave(h) {
		return false
	}
	for _, d := range l.seenIDs() {
		if d.k == h && within(d.time(), t, window) {
			return true
		}
	}
	return false
}

// within reports |t - dt| <= window without overflow for event times in
// range.
func within(dt, t, window int64) bool { return dt-window <= t && t <= dt+window }

// remember adds (h, t) to the event ids, after the ids it holds, which
// stay in arrival order. Ids are only ever dropped from the front, the
// first ones to arrive, in batches that keep the cost per touchpoint
// constant on average for heavy leads:
//
//   - once the first id's event time is more than slack before minT, the
//     first ids with event time before minT (a redelivery only they could
//     catch is too late anyway). An id that arrived late, with an older
//     event time than some before it, stays until those have gone, so the
//     drop never has to look past the first id it keeps;
//   - a full list (maxDedupe) drops its first eighth.
//
// Ids are dropped by calling drop (Engine.dropIDs: the undo log keeps
// them).
func (l *lead) remember(h uint64, t, minT, slack int64, drop func(l *lead, k int)) {
	n := l.nIDs()
	if l.dropDue(minT, slack) {
		ids := l.ent[:n]
		k := 1 // the first is due
		for k < n && ids[k].time() < minT {
			k++
		}
		drop(l, k)
		n = l.nIDs()
	}
	if n >= maxDedupe {
		drop(l, maxDedupe/8)
		n = l.nIDs()
	}
	if n == 0 {
		l.idFirst = t
	}
	l.ent = slices.Insert(l.ent, n, seenEntry(h, t)) // moves only the groups and caps
	if l.ids == nil {
		l.bloom.add(h)
	}
	switch {
	case l.ids != nil && 2*(l.ids.used+1) <= len(l.ids.cells):
		l.ids.add(h, n)
	case l.ids != nil || n+1 > heavyIDs:
		l.rebuildIDs()
	}
}

// dropDue reports whether remember, given minT and slack, drops old ids
// before adding one (Prefetcher.Step asks it too).
func (l *lead) dropDue(minT, slack int64) bool {
	return l.nIDs() > 0 && l.idFirst < subSat(minT, slack)
}

// dropIDs forgets the first k event ids (0 < k <= nIDs) and updates what
// is derived from them. A lead that keeps its id index only moves the
// index's base; the index is rebuilt only when the base would overflow.
func (l *lead) dropIDs(k int) {
	n := l.nIDs() - k
	l.ent = l.ent[:copy(l.ent, l.ent[k:])] // the kept ids, the groups and caps
	if s := l.ids; s != nil && n > heavyIDs/2 && s.base+k <= idBaseMax {
		s.base += k
		l.idFirst = l.ent[0].time()
		l.forgetFNV()
		return
	}
	l.rebuildIDs()
}

// rebuildIDs recomputes idFirst and the id index or the Bloom filter from
// the ids. A lead that is no longer heavy keeps its index (emptied) only
// while it has more than heavyIDs/2 ids, so that a lead hovering around the
// threshold does not allocate again and again. A lead with an index has no
// use for the filter (seen asks the index), which is left empty until the
// lead stops being heavy.
func (l *lead) rebuildIDs() {
	defer l.forgetFNV()
	ids := l.seenIDs()
	l.idFirst = 0
	if len(ids) > 0 {
		l.idFirst = ids[0].time()
	}
	l.bloom = idBloom{}
	if len(ids) > heavyIDs || (l.ids != nil && len(ids) > heavyIDs/2) {
		if l.ids == nil {
			l.ids = new(idSet)
		}
		s := l.ids
		s.reset(len(ids))
		// add, without stale cells to reuse: a loop the compiler keeps
		// tight, where a call per id costs as much again.
		cells, shift := s.cells, s.shift
		mask := uint64(len(cells) - 1)
		for i, d := range ids {
			j := mixID(d.k) >> shift
			for cells[j] != 0 {
				j = (j + 1) & mask
			}
			cells[j] = uint16(i + 1)
		}
		s.used = len(ids)
		return
	}
	l.ids = nil
	for _, d := range ids {
		l.bloom.add(d.k)
	}
}

// forgetFNV clears flagFNV once the version 1 ids have all been dropped:
// redeliveries need not be looked up under their old hash any more. Those
// ids, restored from a version 1 state, came before any added since, and
// ids are dropped from the front: while one is left, the first id is one,
// with an event time of at most fnvUntil.
func (l *lead) forgetFNV() {
	if l.flags&flagFNV != 0 && (l.nIDs() == 0 || l.idFirst > l.fnvUntil) {
		l.flags &^= flagFNV
		l.fnvUntil = 0
	}
}
