package scorer

// hashID is the hash under which a lead remembers an event id (state
// format version 2): the id's length, then its bytes eight at a time
// (little endian, the last word zero-padded), each word mixed in by an
// xor, a multiply and a shift. A UUID costs a chain of six dependent
// multiplies where FNV-1a (hashIDv1) costs 36. Each step is a bijection
// of the state for a given word, so two ids of the same length that
// differ in a single word never collide. It is stored in the changelog and
// compared across processes: it must never change (a new function needs a
// new state version, as this one did).
func hashID(s string) uint64 {
	const m = 0x9e3779b97f4a7c15
	h := uint64(len(s)) * m
	for ; len(s) >= 8; s = s[8:] {
		h = (h ^ le64(s)) * m
		h ^= h >> 32
	}
	if len(s) > 0 {
		var w uint64
		for i := len(s) - 1; i >= 0; i-- {
			w = w<<8 | uint64(s[i])
		}
		h = (h ^ w) * m
		h ^= h >> 32
	}
	return h
}

// le64 reads the first 8 bytes of s little endian (the compiler makes it
// one load).
func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// hashIDv1 is the event id hash of state format version 1, 64-bit FNV-1a.
// A lead restored from version 1 state still holds ids hashed with it
// until they leave the dedupe window (lead.fnvUntil), and a redelivery
// is looked up under both hashes meanwhile. It stays: a compacted
// changelog keeps the version 1 record of a lead that has had no
// touchpoint since the upgrade.
func hashIDv1(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
