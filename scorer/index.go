package scorer

import (
	"hash/maphash"
	"math/bits"
	"unsafe"
)

// leadIndex maps a lead key to its slot in Engine.leads. It is an
// open-addressing table with linear probing and backward-shift deletion (no
// tombstones). Each cell is one uint64: the top 32 bits of the key's hash
// and, below them, the slot plus one (0 marks an empty cell). A key's home
// cell is given by the top bits of its hash, so the table grows without
// hashing the keys again, and a lookup compares a key's bytes only on a
// 32-bit tag match: for a known lead one cache line of the table, then the
// lead, which holds the key.
//
// The hash is seeded per engine, so crafted keys cannot force long probe
// sequences across processes.
type leadIndex struct {
	seed  maphash.Seed
	cells []uint64 // power-of-two length, or empty
	shift uint     // 64 - log2(len(cells))
	n     int
}

const (
	indexMinCells = 8
	// The table grows past 3/4 full: linear probing stays short (about 2.5
	// cells per miss, 1.5 per hit).
	indexLoadNum, indexLoadDen = 3, 4
)

func newLeadIndex() leadIndex { return leadIndex{seed: maphash.MakeSeed()} }

func (x *leadIndex) hash(key string) uint64 { return maphash.String(x.seed, key) }

// find returns the slot of key (hash h) in leads and true, or -1 and false.
func (x *leadIndex) find(h uint64, key string, leads []lead) (int32, bool) {
	cells := x.cells
	if len(cells) == 0 {
		return -1, false
	}
	mask := uint64(len(cells) - 1)
	tag := h >> 32
	for i := h >> x.shift; ; i = (i + 1) & mask {
		c := cells[i]
		if c == 0 {
			return -1, false
		}
		if c>>32 == tag {
			slot := int32(uint32(c)) - 1
			if leads[slot].key() == key {
				return slot, true
			}
		}
	}
}

// insert adds slot under hash h; the key must not be present.
func (x *leadIndex) insert(h uint64, slot int32) {
	if (x.n+1)*indexLoadDen > len(x.cells)*indexLoadNum {
		x.grow()
	}
	mask := uint64(len(x.cells) - 1)
	i := h >> x.shift
	for x.cells[i] != 0 {
		i = (i + 1) & mask
	}
	x.cells[i] = h&^(1<<32-1) | uint64(uint32(slot+1))
	x.n++
}

// remove deletes slot, held under hash h, and shifts back the cells after
// it that may move closer to their home.
func (x *leadIndex) remove(h uint64, slot int32) {
	mask := uint64(len(x.cells) - 1)
	want := uint64(uint32(slot + 1))
	i := h >> x.shift
	for x.cells[i]&(1<<32-1) != want {
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; ; j = (j + 1) & mask {
		c := x.cells[j]
		if c == 0 {
			break
		}
		// c may fill the hole at i if i lies on its probe path: no further
		// from its home than j is.
		if (j-i)&mask <= (j-c>>x.shift)&mask {
			x.cells[i] = c
			i = j
		}
	}
	x.cells[i] = 0
	x.n--
}

// grow doubles the table (or makes the first one).
func (x *leadIndex) grow() { x.growTo(max(2*len(x.cells), indexMinCells)) }

// reserve grows the table once so that it holds n keys below the load
// limit.
func (x *leadIndex) reserve(n int) {
	size := max(len(x.cells), indexMinCells)
	for n*indexLoadDen > size*indexLoadNum {
		size *= 2
	}
	if size > len(x.cells) {
		x.growTo(size)
	}
}

// growTo rehashes into a table of size cells (a power of two).
func (x *leadIndex) growTo(size int) {
	old := x.cells
	x.cells = make([]uint64, size)
	x.shift = uint(64 - bits.TrailingZeros(uint(size)))
	mask := uint64(size - 1)
	for _, c := range old {
		if c == 0 {
			continue
		}
		i := c >> x.shift
		for x.cells[i] != 0 {
			i = (i + 1) & mask
		}
		x.cells[i] = c
	}
}

// lookup returns the slot of key.
func (e *Engine) lookup(key string) (int32, bool) {
	return e.index.find(e.index.hash(key), key, e.leads)
}

// nameTable maps the few names a model defines (touchpoint types with
// rules, traits with fit rules) to small integers. It is built once, never
// changes, and is at most half full, so a lookup is a cheap hash of a few
// bytes, one or two cells and one string comparison: cheaper than a map
// for the handful of keys it holds.
type nameTable struct {
	cells []nameCell // power-of-two length
}

type nameCell struct {
	name string
	val  uint32 // value + 1; 0 marks an empty cell
}

func (t *nameTable) slot(name string) uint {
	h := uint(len(name)) * 0x9e3779b1
	if n := len(name); n > 0 {
		h ^= uint(name[0])*0x85eb + uint(name[n-1])*0xc2b3 + uint(name[n/2])*0x27d5
	}
	return (h ^ h>>11) & uint(len(t.cells)-1)
}

// get returns the value of name.
func (t *nameTable) get(name string) (uint32, bool) {
	if len(t.cells) == 0 {
		return 0, false
	}
	mask := uint(len(t.cells) - 1)
	for i := t.slot(name); ; i = (i + 1) & mask {
		c := &t.cells[i]
		if c.val == 0 {
			return 0, false
		}
		if c.name == name {
			return c.val - 1, true
		}
	}
}

// put sets the value of name.
func (t *nameTable) put(name string, val uint32) {
	if n := t.count() + 1; 2*n > len(t.cells) {
		old := t.cells
		size := 8
		for size < 4*n {
			size *= 2
		}
		t.cells = make([]nameCell, size)
		for _, c := range old {
			if c.val != 0 {
				t.put(c.name, c.val-1)
			}
		}
	}
	mask := uint(len(t.cells) - 1)
	for i := t.slot(name); ; i = (i + 1) & mask {
		c := &t.cells[i]
		if c.val == 0 || c.name == name {
			*c = nameCell{name: name, val: val + 1}
			return
		}
	}
}

func (t *nameTable) count() int {
	n := 0
	for _, c := range t.cells {
		if c.val != 0 {
			n++
		}
	}
	return n
}

// PrefetchBatch is the number of touchpoints Prefetch works on at once:
// enough loads in flight to hide most of the memory latency, few enough
// that what they bring in stays in the second-level cache (where the
// prefetch instructions put it on amd64) until Apply uses it. The
// pipeline's worker decodes and applies groups of this many records, and
// switches between the decoder's code and the engine's less often with
// larger groups: 32 made BenchmarkDecodeApply 3-5 % faster than 16 on an
// Intel Xeon host and no slower on an AMD EPYC one, where 64 was slower
// (bench/RESULTS.md, sessions 14 and 18); the engine alone does not care.
const PrefetchBatch = 32

// Prefetch brings the memory that applying tps will read into the CPU
// caches, for the Apply calls that follow. It changes nothing: a
// touchpoint that is not applied next only costs a few wasted loads.
//
// Why: with more leads than the caches hold, applying a touchpoint waits
// on a chain of dependent cache misses (the index cell, then the lead, then
// its key and its entries, then for a heavy lead its id index and the id
// it points to), each about a memory latency. Apply cannot overlap them,
// but for a batch of touchpoints they are independent: Prefetch walks the
// chains of PrefetchBatch touchpoints at once, one level at a time, so
// that each level's loads are in flight together. Each level's targets
// are prefetched with prefetch instructions (prefetch), which do not hold
// up the instructions after them; the next level loads from those lines
// only the pointers it needs.
//
// Prefetch runs the levels back to back; a Prefetcher lets the caller do
// other work between them, which hides more of the latency.
func (e *Engine) Prefetch(tps []Touchpoint) {
	var p Prefetcher
	for len(tps) > 0 {
		n := min(len(tps), PrefetchBatch)
		p.Start(e, tps[:n])
		p.Finish()
		tps = tps[n:]
	}
}

// Prefetcher is Prefetch one level at a time, for a caller that has other
// work to do while each level's loads are in flight: the pipeline decodes
// the next batch of records between the levels of this one, so that the
// decoding hides the memory latency instead of waiting on it. A zero
// Prefetcher is ready for Start; it keeps the engine and the touchpoints
// until the last level has run.
type Prefetcher struct {
	e     *Engine
	tps   []Touchpoint
	level int
	hs    [PrefetchBatch]uint64
	ls    [PrefetchBatch]*lead
}

// prefetchLevels is the number of levels a Prefetcher walks.
const prefetchLevels = 5

// Start runs the first level for tps (at most PrefetchBatch of them,
// which must not change until the last level).
func (p *Prefetcher) Start(e *Engine, tps []Touchpoint) {
	p.e, p.tps, p.level = e, tps[:min(len(tps), PrefetchBatch)], 0
	if len(e.index.cells) == 0 {
		p.e, p.tps = nil, nil
		return
	}
	p.Step()
}

// Step runs the next level and reports whether one is left.
func (p *Prefetcher) Step() bool {
	e := p.e
	if e == nil {
		return false
	}
	x := &e.index
	tps := p.tps
	n := len(tps)
	hs, ls := &p.hs, &p.ls
	var acc uint64
	switch p.level {
	case 0:
		// Level 1: the home cells.
		for i := range tps {
			h := x.hash(tps[i].Lead())
			hs[i] = h
			acc += prefetch(unsafe.Pointer(&x.cells[h>>x.shift]))
		}
	case 1:
		// Level 2: the lead of the first cell with a matching tag: every
		// line of its struct (Apply reads most fields, the undo record
		// copies all).
		mask := uint64(len(x.cells) - 1)
		for i := range n {
			ls[i] = nil
			h := hs[i]
			for j := h >> x.shift; ; j = (j + 1) & mask {
				c := x.cells[j]
				if c == 0 {
					break
				}
				if c>>32 == h>>32 {
					l := &e.leads[int32(uint32(c))-1]
					ls[i] = l
					acc += prefetchLines(unsafe.Pointer(l), unsafe.Sizeof(*l))
					break
				}
			}
		}
	case 2:
		// Level 3: the strings (the key, compared by find, and the
		// identity and traits compared with the touchpoint's, when it has
		// them); the last id, where the next one goes, and the groups and
		// hot caps after it, and for a light lead about to drop old ids all
		// of its ids; for a heavy lead, the header of its id index.
		for i, l := range ls[:n] {
			if l == nil {
				continue
			}
			if s := l.strs; len(s) > 0 {
				// Not reading the lengths, which would wait for the line:
				// two lines hold the identity of almost every lead, four
				// its traits too.
				m := min(len(s), 2*64)
				if len(tps[i].Traits) > 0 {
					m = min(len(s), 4*64)
				}
				acc += prefetchLines(unsafe.Pointer(unsafe.StringData(s)), uintptr(m))
			}
			from := max(len(l.ent)-int(l.nGroups)-int(l.nHot)-1, 0)
			if from > 0 && l.ids == nil && e.dropsIDs(l, tps[i].OccurredAt) {
				// Apply will drop old ids, moving the others and reading
				// them all: a light lead's, at most heavyIDs (12 lines),
				// are prefetched too. A heavy lead's, up to maxDedupe,
				// are moved in order, which the CPU's own prefetcher
				// follows.
				from = 0
			}
			if from < len(l.ent) {
				acc += prefetchLines(unsafe.Pointer(&l.ent[from]), uintptr(len(l.ent)-from)*unsafe.Sizeof(entry{}))
			}
			if l.ids != nil {
				acc += prefetch(unsafe.Pointer(l.ids))
			}
		}
	case 3:
		// Level 4: for a heavy lead, the cell of its id index this event id
		// probes first.
		for i, l := range ls[:n] {
			if l == nil {
				continue
			}
			hs[i] = 0
			if l.ids != nil {
				hs[i] = hashID(tps[i].EventID)
				acc += prefetch(unsafe.Pointer(&l.ids.cells[mixID(hs[i])>>l.ids.shift]))
			}
		}
	case 4:
		// Level 5: for a heavy lead, the id that cell points to.
		for i, l := range ls[:n] {
			if l != nil && l.ids != nil {
				if c := l.ids.cells[mixID(hs[i])>>l.ids.shift]; c != 0 {
					if p := uint(l.ids.pos(c)); p < uint(len(l.ent)) {
						acc += prefetch(unsafe.Pointer(&l.ent[p]))
					}
				}
			}
		}
	}
	e.sink += acc
	p.level++
	if p.level == prefetchLevels {
		p.e, p.tps = nil, nil
		clear(ls[:n])
		return false
	}
	return true
}

// Finish runs the levels left.
func (p *Prefetcher) Finish() {
	for p.Step() {
	}
}

// dropsIDs reports whether applying a touchpoint at event time t to l
// drops old ids (remember), as Apply computes it: t_ref is then max(t_ref,
// t).
func (e *Engine) dropsIDs(l *lead, t int64) bool {
	return l.dropDue(e.idHorizon(max(l.tRef, t)), e.idSlack())
}

// prefetchSlots brings into the caches all that encoding the leads in slots
// reads (at most PrefetchBatch of them), level by level as Prefetch does:
// the leads; their entries, strings and the headers of their cold caps;
// the cold caps.
func (e *Engine) prefetchSlots(slots []int32) {
	var acc uint64
	for _, slot := range slots {
		l := &e.leads[slot]
		acc += prefetchLines(unsafe.Pointer(l), unsafe.Sizeof(*l))
	}
	for _, slot := range slots {
		l := &e.leads[slot]
		if len(l.ent) > 0 {
			acc += prefetchLines(unsafe.Pointer(&l.ent[0]), uintptr(len(l.ent))*unsafe.Sizeof(entry{}))
		}
		if len(l.strs) > 0 {
			acc += prefetchLines(unsafe.Pointer(unsafe.StringData(l.strs)), uintptr(len(l.strs)))
		}
		if l.cold != 0 {
			acc += prefetch(unsafe.Pointer(&e.colds[l.cold-1]))
		}
	}
	for _, slot := range slots {
		if l := &e.leads[slot]; l.cold != 0 {
			if c := e.colds[l.cold-1]; len(c) > 0 {
				acc += prefetchLines(unsafe.Pointer(&c[0]), uintptr(len(c))*unsafe.Sizeof(entry{}))
			}
		}
	}
	e.sink += acc
}
