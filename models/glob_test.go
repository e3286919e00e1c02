package models

import (
	"regexp"
	"strings"
	"testing"
)

func TestMatchGlob(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "https://x.io/a/b", true},
		{"*/pricing*", "https://acme.io/pricing", true},
		{"*/pricing*", "https://acme.io/en/pricing?plan=pro", true},
		{"*/pricing*", "https://acme.io/Pricing", false},
		{"*/pricing*", "pricing", false},
		{"/pricing", "/pricing", true},
		{"/pricing", "/pricing/", false},
		{"?", "a", true},
		{"?", "", false},
		{"?", "ab", false},
		{"a?c", "abc", true},
		{"a?c", "a/c", true},
		{"*a*b*c*", "xxaxxbxxcxx", true},
		{"*a*b*c*", "xxcxxbxxaxx", false},
		{"a*a*a*a*b", strings.Repeat("a", 100), false},
		{"*.pdf", "report.pdf", true},
		{"*.pdf", "report.pdf.exe", false},
		{"**", "x", true},
		{"*?", "", false},
		{"*?", "é", true}, // two bytes: '*' takes one, '?' the other
		{"?", "é", false},
	}
	for _, tt := range tests {
		if got := MatchGlob(tt.pattern, tt.s); got != tt.want {
			t.Errorf("MatchGlob(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

// globRegexp is an obviously correct (and slow) version of MatchGlob.
func globRegexp(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`(?s)\A`)
	for i := 0; i < len(pattern); i++ {
		switch pattern[i] {
		case '*':
			b.WriteString(`[\x00-\xff]*`)
		case '?':
			b.WriteString(`[\x00-\xff]`)
		default:
			b.WriteString(regexp.QuoteMeta(string([]byte{pattern[i]})))
		}
	}
	b.WriteString(`\z`)
	return regexp.MustCompile(b.String())
}

func FuzzMatchGlob(f *testing.F) {
	f.Add("*/pricing*", "https://a.io/pricing")
	f.Add("a?c*", "abcd")
	f.Add("*a*b", "aab")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		// The regexp works on bytes only for Latin-1 escapes of valid
		// ASCII; restrict the cross-check to ASCII.
		for _, c := range []byte(pattern + s) {
			if c >= 0x80 {
				return
			}
		}
		if len(pattern) > 64 {
			return
		}
		want := globRegexp(pattern).MatchString(s)
		if got := MatchGlob(pattern, s); got != want {
			t.Fatalf("MatchGlob(%q, %q) = %v, regexp says %v", pattern, s, got, want)
		}
	})
}
