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
// The one in use is rebuilt from the ids when ids are dropped, on Restore
// and on Rollback; neither is encoded.

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

// idSet indexes a lead's remembered ids by hash: cells hold positions in
// seenIDs() plus one (0: empty), linear probing, at most half full.
// Positions are relative to the start of the ids, so inserting or removing
// groups and cap usage before them does not move them.
type idSet struct {
	cells []uint16
	shift uint // 64 - log2(len(cells))
}

// reset empties s and sizes it for n ids.
func (s *idSet) reset(n int) {
	size := 64
	for size < 2*n {
		size *= 2
	}
	if cap(s.cells) >= size {
		s.cells = s.cells[:size]
		clear(s.cells)
	} else {
		s.cells = make([]uint16, size)
	}
	s.shift = uint(64 - bits.TrailingZeros(uint(size)))
}

// add records that ids[pos] has hash h; the set must have room.
func (s *idSet) add(h uint64, pos int) {
	mask := uint64(len(s.cells) - 1)
	i := mixID(h) >> s.shift
	for s.cells[i] != 0 {
		i = (i + 1) & mask
	}
	s.cells[i] = uint16(pos + 1)
}

// seen reports whether an event id with hash h lies within window of t.
func (l *lead) seen(h uint64, t, window int64) bool {
	if l.ids != nil {
		ids := l.seenIDs()
		cells := l.ids.cells
		mask := uint64(len(cells) - 1)
		for i := mixID(h) >> l.ids.shift; cells[i] != 0; i = (i + 1) & mask {
			if d := ids[cells[i]-1]; d.k == h && within(d.time(), t, window) {
				return true
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

// remember adds (h, t) to the event ids. Entries with event time before
// minT are no longer needed (a redelivery only they could catch is too late
// anyway); they are dropped in batches, once the oldest is more than slack
// before minT. A full list drops its oldest eighth by event time. Both keep
// the cost per touchpoint constant on average for heavy leads. Ids are
// dropped by calling drop (Engine.dropIDs: the undo log keeps them).
func (l *lead) remember(h uint64, t, minT, slack int64, drop func(*lead, int64)) {
	n := l.nIDs()
	if l.dropDue(minT, slack) {
		drop(l, minT)
		n = l.nIDs()
	}
	if n >= maxDedupe {
		ids := l.ent[:n]
		lo, hi := ids[0].time(), ids[0].time()
		for _, d := range ids {
			lo, hi = min(lo, d.time()), max(hi, d.time())
		}
		drop(l, lo+max((hi-lo)/8, 1))
		n = l.nIDs()
	}
	if n == 0 || t < l.idMin {
		l.idMin = t
	}
	l.ent = slices.Insert(l.ent, n, seenEntry(h, t)) // moves only the groups and caps
	if l.ids == nil {
		l.bloom.add(h)
	}
	switch {
	case l.ids != nil && 2*(n+1) <= len(l.ids.cells):
		l.ids.add(h, n)
	case l.ids != nil || n+1 > heavyIDs:
		l.rebuildIDs()
	}
}

// dropDue reports whether remember, given minT and slack, drops old ids
// before adding one (Prefetcher.Step asks it too).
func (l *lead) dropDue(minT, slack int64) bool { return l.nIDs() > 0 && l.idMin < minT-slack }

// dropIDs forgets the event ids with event time before minT and rebuilds
// what is derived from them.
func (l *lead) dropIDs(minT int64) {
	ids := l.seenIDs()
	n := 0
	for _, d := range ids {
		if d.time() >= minT {
			l.ent[n] = d
			n++
		}
	}
	n += copy(l.ent[n:], l.ent[len(ids):]) // the groups and caps
	l.ent = l.ent[:n]
	l.rebuildIDs()
}

// rebuildIDs recomputes idMin and the id index or the Bloom filter from
// the ids. A lead that is no longer heavy keeps its index (emptied) only
// while it has more than heavyIDs/2 ids, so that a lead hovering around the
// threshold does not allocate again and again. A lead with an index has no
// use for the filter (seen asks the index), which is left empty until the
// lead stops being heavy: a heavy lead is rebuilt after every drop, up to
// maxDedupe ids at a time.
func (l *lead) rebuildIDs() {
	defer l.forgetFNV()
	ids := l.seenIDs()
	l.idMin = math.MaxInt64
	l.bloom = idBloom{}
	if len(ids) > heavyIDs || (l.ids != nil && len(ids) > heavyIDs/2) {
		if l.ids == nil {
			l.ids = new(idSet)
		}
		l.ids.reset(len(ids))
		for i, d := range ids {
			l.idMin = min(l.idMin, d.time())
			l.ids.add(d.k, i)
		}
		return
	}
	l.ids = nil
	for _, d := range ids {
		l.idMin = min(l.idMin, d.time())
		l.bloom.add(d.k)
	}
}

// forgetFNV clears flagFNV once every id is newer than the last version 1
// id: those have all been dropped, and redeliveries need not be looked up
// under their old hash any more.
func (l *lead) forgetFNV() {
	if l.flags&flagFNV != 0 && (l.nIDs() == 0 || l.idMin > l.fnvUntil) {
		l.flags &^= flagFNV
		l.fnvUntil = 0
	}
}
