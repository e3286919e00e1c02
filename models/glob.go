package models

// MatchGlob reports whether s matches the glob pattern used by rule
// properties and fit rules: '*' matches any run of bytes, '/' included, and
// '?' exactly one byte; every other byte matches itself, case-sensitively.
// There is no escape character and no character class.
//
// It runs in O(len(pattern) * len(s)) time in the worst case and allocates
// nothing: on a mismatch it backtracks only to the last '*', which is
// enough because a later star can absorb anything an earlier one could.
func MatchGlob(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case star >= 0:
			// Let the last star absorb one more byte and retry.
			mark++
			p, i = star+1, mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
