package scorer

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// A lead's strings (its key, anonymous id, account id and the values of
// its traits) live in one string, lead.strs, laid out as
//
//	[0:16)  four little-endian uint32: len(key), len(anon), len(account)
//	        and the number of traits n
//	key, anon, account
//	n 8-byte trait cells: the trait's index (uint16), two zero bytes and
//	        the value's length (uint32)
//	the n values, in the cells' order
//
// Why one string: applying a touchpoint compares the key (index lookup),
// usually the account id and sometimes the anonymous id and traits. As
// separate allocations they were up to five cache lines and as many pages,
// each a cache and often a TLB miss; packed, a typical lead's are one or
// two lines. It also keeps the lead struct at two cache lines.
//
// strs is never changed in place: a new identity or trait value packs a new
// string (rare next to touchpoints that change neither), so the copy of the
// struct an undo record keeps holds the old strings as they were.
const strsHeader = 16

// strsCell is the size of a trait cell.
const strsCell = 8

// u32At reads the little-endian uint32 at s[i:].
func u32At(s string, i int) int {
	_ = s[i+3]
	return int(uint32(s[i]) | uint32(s[i+1])<<8 | uint32(s[i+2])<<16 | uint32(s[i+3])<<24)
}

// key returns the lead's index key: its lead id, or its anonymous id while
// it has none.
func (l *lead) key() string {
	s := l.strs
	if len(s) < strsHeader {
		return ""
	}
	return s[strsHeader : strsHeader+u32At(s, 0)]
}

// anon returns the lead's anonymous id ("" if none).
func (l *lead) anon() string {
	s := l.strs
	if len(s) < strsHeader {
		return ""
	}
	off := strsHeader + u32At(s, 0)
	return s[off : off+u32At(s, 4)]
}

// account returns the lead's account id ("" if none).
func (l *lead) account() string {
	s := l.strs
	if len(s) < strsHeader {
		return ""
	}
	off := strsHeader + u32At(s, 0) + u32At(s, 4)
	return s[off : off+u32At(s, 8)]
}

// traitSection returns the trait cells and values, and the number of
// traits.
func (l *lead) traitSection() (string, int) {
	s := l.strs
	if len(s) < strsHeader {
		return "", 0
	}
	return s[strsHeader+u32At(s, 0)+u32At(s, 4)+u32At(s, 8):], u32At(s, 12)
}

// nTraits returns the number of traits the lead holds.
func (l *lead) nTraits() int {
	if len(l.strs) < strsHeader {
		return 0
	}
	return u32At(l.strs, 12)
}

// traitCell returns the index and the value's length of trait cell i of a
// trait section.
func traitCell(sec string, i int) (uint16, int) {
	c := i * strsCell
	return uint16(sec[c]) | uint16(sec[c+1])<<8, u32At(sec, c+4)
}

// trait returns the value of the trait with index idx.
func (l *lead) trait(idx uint16) (string, bool) {
	sec, n := l.traitSection()
	off := n * strsCell
	for i := range n {
		ti, m := traitCell(sec, i)
		if ti == idx {
			return sec[off : off+m], true
		}
		off += m
	}
	return "", false
}

// traits appends the lead's traits to dst (the values alias strs).
func (l *lead) traits(dst []traitVal) []traitVal {
	sec, n := l.traitSection()
	off := n * strsCell
	for i := range n {
		ti, m := traitCell(sec, i)
		dst = append(dst, traitVal{idx: ti, v: sec[off : off+m]})
		off += m
	}
	return dst
}

// traitVal is a trait of a lead: index into Engine.traitNames, value.
type traitVal struct {
	idx uint16
	v   string
}

// packStrs returns the strs of a lead with these strings and traits.
func packStrs(key, anon, account string, traits []traitVal) string {
	n := len(traits) * strsCell
	for _, t := range traits {
		n += len(t.v)
	}
	b := strsPrefix(n, key, anon, account, len(traits))
	for _, t := range traits {
		b = binary.LittleEndian.AppendUint16(b, t.idx)
		b = append(b, 0, 0)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(t.v)))
	}
	for _, t := range traits {
		b = append(b, t.v...)
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// withIdentity returns the lead's strs with anon and account replaced,
// the key and traits kept.
func (l *lead) withIdentity(anon, account string) string {
	sec, nt := l.traitSection()
	b := strsPrefix(len(sec), l.key(), anon, account, nt)
	b = append(b, sec...) // cells and values are relative to the section
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// strsPrefix returns the header and the ids of a lead's strs, in a buffer
// with room for a trait section of tail bytes after them. Lengths must fit
// in uint32 (a Touchpoint's strings come from one Kafka record, a state's
// from one changelog record: both far smaller).
func strsPrefix(tail int, key, anon, account string, nTraits int) []byte {
	n := strsHeader + len(key) + len(anon) + len(account) + tail
	if uint64(n) > math.MaxUint32 {
		panic("scorer: lead strings over 4 GiB")
	}
	b := make([]byte, 0, n)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(key)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(anon)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(account)))
	b = binary.LittleEndian.AppendUint32(b, uint32(nTraits))
	b = append(b, key...)
	b = append(b, anon...)
	return append(b, account...)
}
