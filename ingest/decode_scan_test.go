package ingest

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// isSpecialByte is specialMask's classification, one byte at a time.
func isSpecialByte(c byte) bool { return c == '"' || c == '\\' || c < 0x20 || c >= 0x80 }

// checkSpecialMask fails the test when the lowest set bit of specialMask(b)
// is not in b's first special byte (or the mask not zero without one).
func checkSpecialMask(t *testing.T, b [8]byte) {
	t.Helper()
	want := 8
	for i, c := range b {
		if isSpecialByte(c) {
			want = i
			break
		}
	}
	if got := bits.TrailingZeros64(specialMask(binary.LittleEndian.Uint64(b[:]))) >> 3; got != want {
		t.Fatalf("specialMask(%q): first special byte %d; want %d", b, got, want)
	}
}

// TestSpecialMask checks specialMask's lowest bit against a byte-wise
// classification, on words built to have borrows: plain bytes, then a
// special byte or none, then anything.
func TestSpecialMask(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 200000 {
		var b [8]byte
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		first := r.IntN(9)
		for i := 0; i < first; i++ {
			for isSpecialByte(b[i]) {
				b[i] = byte(0x20 + r.IntN(0x60))
			}
		}
		checkSpecialMask(t, b)
	}
}

// TestSpecialMaskPairs checks specialMask on every pair of bytes at every
// offset after plain bytes (the byte after the first special one can
// only add spurious bits above it), against the byte-wise classification.
func TestSpecialMaskPairs(t *testing.T) {
	for at := range 8 {
		for c := range 256 {
			for d := range 256 {
				b := [8]byte{'a', 'Z', '~', ' ', '!', '#', '[', ']'} // plain, around the special ranges
				b[at] = byte(c)
				if at < 7 {
					b[at+1] = byte(d)
				} else if d > 0 {
					break
				}
				checkSpecialMask(t, b)
			}
		}
	}
}

// TestScanStringBoundaries puts each kind of special byte at every offset
// of the 8-byte words the string scanner reads, in values whose end falls
// at every offset too, and checks the result against encoding/json and the
// error against the special byte's position.
func TestScanStringBoundaries(t *testing.T) {
	type special struct {
		b      string
		reason Reason // "" when the string is valid
		detail string // error detail before " at offset", the offset being the special byte's
	}
	specials := []special{
		{`","m":"`, "", ""}, // ends the string, another member follows
		{`\"`, "", ""},
		{`\\`, "", ""},
		{`\u00e9`, "", ""},
		{`\ud83d\ude00`, "", ""},
		{"é", "", ""},
		{"\u2013", "", ""},
		{"\x01", ReasonInvalidJSON, "control character in string"},
		{"\n", ReasonInvalidJSON, "control character in string"},
		{"\xff", ReasonInvalidUTF8, "invalid UTF-8 in string"},
		{"\xe2\x80", ReasonInvalidUTF8, "invalid UTF-8 in string"},
		{`\x`, ReasonInvalidJSON, "bad escape"},
		{`\u12`, ReasonInvalidJSON, `bad \u escape`},
	}
	var sc scanner
	sc.maxDepth = 8
	for _, sp := range specials {
		for pre := 0; pre <= 17; pre++ {
			for post := 0; post <= 9; post++ {
				content := strings.Repeat("a", pre) + sp.b + strings.Repeat("z", post)
				doc := `{"k` + strconv.Itoa(pre) + `":"` + content + `"}`
				sc.reset([]byte(doc))
				v, _, err := sc.value(0, 2) // at depth 2, the members are recorded in sc.tab
				var want map[string]string
				jerr := json.Unmarshal([]byte(doc), &want)
				if sp.reason != "" {
					wantErr := errAt(sp.reason, sp.detail, strings.Index(doc, sp.b))
					if de := (*DecodeError)(nil); !errors.As(err, &de) || de.Reason != wantErr.Reason || de.Detail != wantErr.Detail {
						t.Errorf("%q: error %v; want %v", doc, err, wantErr)
					}
					continue
				}
				if err != nil || jerr != nil || !utf8.ValidString(doc) {
					t.Errorf("%q: error %v; encoding/json: %v", doc, err, jerr)
					continue
				}
				got := map[string]string{}
				for _, m := range sc.members(v) {
					got[string(unescape(nil, sc.data[m.key.start:m.key.end]))] = string(unescape(nil, sc.data[m.val.start:m.val.end]))
				}
				if len(got) != len(want) {
					t.Errorf("%q: members %q; want %q", doc, got, want)
				}
				for k, w := range want {
					if got[k] != w {
						t.Errorf("%q: member %q = %q; want %q", doc, k, got[k], w)
					}
				}
			}
		}
	}
}

// TestScanStringUnterminated cuts a string at every length.
func TestScanStringUnterminated(t *testing.T) {
	var sc scanner
	sc.maxDepth = 8
	for n := 0; n <= 20; n++ {
		doc := `{"k":"` + strings.Repeat("a", n)
		sc.reset([]byte(doc))
		_, _, err := sc.value(0, 1)
		want := errAt(ReasonInvalidJSON, "unterminated string", 5)
		if de := (*DecodeError)(nil); !errors.As(err, &de) || de.Reason != want.Reason || de.Detail != want.Detail {
			t.Errorf("%q: error %v; want %v", doc, err, want)
		}
	}
}
