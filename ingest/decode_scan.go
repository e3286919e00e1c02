package ingest

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// This file holds the JSON scanner: a validating single pass over a value
// that records where values are (spans) instead of building a tree. Strings
// are decoded later, and only those the mapping needs.

// kind is the JSON type of a span.
type kind uint8

const (
	kNone kind = iota // absent
	kString
	kNumber
	kTrue
	kFalse
	kNull
	kObject
	kArray
)

func (k kind) String() string {
	switch k {
	case kString:
		return "string"
	case kNumber:
		return "number"
	case kTrue, kFalse:
		return "boolean"
	case kNull:
		return "null"
	case kObject:
		return "object"
	case kArray:
		return "array"
	}
	return "absent"
}

// span locates one JSON value in scanner.data. For a string, start and end
// bound the content between the quotes and esc says whether it holds
// escapes; for any other kind they bound the value's bytes. For an object
// nested 2 to recordDepth deep, first and n locate its members in
// scanner.tab (the top level's members are mapped into scanner.top
// instead, and its first and n are zero).
//
// A span has four 32-bit fields so that the compiler keeps spans (and
// members, two spans) in registers and copies them field by field: with
// more fields they go through memory, and the wide copies right after
// narrow stores stall the CPU. kind, esc and n are packed in info.
type span struct {
	start, end int32
	first      int32  // objects: index of the first member in scanner.tab
	info       uint32 // kind (bits 0-3), esc (bit 4), member count (bits 5-31)
}

func mkSpan(start, end int, k kind, esc bool) span {
	info := uint32(k)
	if esc {
		info |= 16
	}
	return span{start: int32(start), end: int32(end), info: info}
}

func (s span) kind() kind { return kind(s.info & 15) }
func (s span) esc() bool  { return s.info&16 != 0 }
func (s span) n() int32   { return int32(s.info >> 5) }

// plainString reports whether s is a string without escapes: its content
// is its bytes.
func (s span) plainString() bool { return s.info&31 == uint32(kString) }

// plainWithin reports whether s is a string without escapes of at most
// maxLen bytes: one the mapping can alias as it is.
func (s span) plainWithin(maxLen int) bool { return s.plainString() && int(s.end-s.start) <= maxLen }

// member is one key/value pair of an object.
type member struct {
	key, val span
}

// recordDepth is the deepest level whose objects' members are recorded
// during validation, so that the mapping reads them without a second
// scan: the top level (1, in scanner.top), then in scanner.tab properties,
// traits, context, data (2), context.campaign, data.properties,
// data.traits (3).
const recordDepth = 3

// present reports whether the value is there and not null.
func (s span) present() bool { k := s.kind(); return k != kNone && k != kNull }

// charClass classifies bytes inside a JSON string: 0 plain ASCII, 1 quote
// or backslash, 2 control character (invalid), 3 non-ASCII (UTF-8 check).
var charClass = func() (t [256]uint8) {
	for c := 0; c < 0x20; c++ {
		t[c] = 2
	}
	t['"'], t['\\'] = 1, 1
	for c := 0x80; c < 0x100; c++ {
		t[c] = 3
	}
	return t
}()

// scanner validates JSON in data. maxDepth bounds object/array nesting;
// the top-level object is depth 1.
type scanner struct {
	data     []byte
	maxDepth int
	tab      []member // members of recorded objects below the top level, grouped by object
	stack    []member // members of the objects being scanned
	// top holds the values of the top-level object's members with known
	// keys, the last one winning: mapped as they are scanned, they need
	// not be kept as members and read back.
	top  slots
	kbuf []byte // decoded escaped keys, scratch
}

// maxKeptMembers bounds the member buffers kept between records, so that
// huge records do not pin megabytes per partition worker (2 buffers of 32
// bytes a member in each of its 2*scorer.PrefetchBatch decoders: at most
// 4 MiB with these bounds). Usual records have tens of members.
const maxKeptMembers = 1 << 10

// reset prepares s to scan data, keeping buffer capacity.
func (s *scanner) reset(data []byte) {
	s.data, s.tab, s.stack = data, s.tab[:0], s.stack[:0]
	if cap(s.tab) > maxKeptMembers {
		s.tab = nil
	}
	if cap(s.stack) > maxKeptMembers {
		s.stack = nil
	}
	if cap(s.kbuf) > maxKeptBuf {
		s.kbuf = nil
	}
}

// members returns the recorded members of an object span, in document
// order, duplicates included.
func (s *scanner) members(obj span) []member {
	return s.tab[obj.first : obj.first+obj.n()]
}

// ws returns the index of the first byte at or after i that is not JSON
// whitespace. Compact JSON, the common case, has none: any byte above ' '
// returns at once, after one comparison instead of a switch over four.
func (s *scanner) ws(i int) int {
	if i < len(s.data) && s.data[i] > ' ' {
		return i
	}
	return s.wsSlow(i)
}

//go:noinline
func (s *scanner) wsSlow(i int) int {
	for i < len(s.data) {
		switch s.data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// str scans the string whose opening quote is at i and returns its span
// and the index after the closing quote.
func (s *scanner) str(i int) (span, int, error) {
	d := s.data
	start := i + 1
	// Most strings have no special byte but the closing quote.
	if i = skipPlain(d, start); i < len(d) && d[i] == '"' {
		return mkSpan(start, i, kString, false), i + 1, nil
	}
	return s.strSlow(start, i)
}

// strSlow scans the rest of the string whose content starts at start,
// from i, where the bytes in [start, i) are plain.
func (s *scanner) strSlow(start, i int) (span, int, error) {
	d := s.data
	esc := false
	for i < len(d) {
		if i = skipPlain(d, i); i >= len(d) {
			break
		}
		switch charClass[d[i]] {
		case 0:
			i++
		case 1:
			if d[i] == '"' {
				return mkSpan(start, i, kString, esc), i + 1, nil
			}
			esc = true
			if i+1 >= len(d) {
				return span{}, 0, errAt(ReasonInvalidJSON, "unterminated string", start-1)
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) || !isHex4(d[i+2:i+6]) {
					return span{}, 0, errAt(ReasonInvalidJSON, `bad \u escape`, i)
				}
				i += 6
			default:
				return span{}, 0, errAt(ReasonInvalidJSON, "bad escape", i)
			}
		case 2:
			return span{}, 0, errAt(ReasonInvalidJSON, "control character in string", i)
		default:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size == 1 {
				return span{}, 0, errAt(ReasonInvalidUTF8, "invalid UTF-8 in string", i)
			}
			i += size
		}
	}
	return span{}, 0, errAt(ReasonInvalidJSON, "unterminated string", start-1)
}

// skipPlain returns the index of the first quote, backslash, control
// character or non-ASCII byte at or after i, or an index before which all
// bytes are plain and after which fewer than 8 bytes remain.
func skipPlain(d []byte, i int) int {
	for ; i <= len(d)-8; i += 8 {
		if m := specialMask(binary.LittleEndian.Uint64(d[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	return i
}

// SWAR constants for specialMask.
const (
	lsb   = 0x0101010101010101
	msb   = 0x8080808080808080
	bslsh = '\\' * lsb
	two   = 0x02 * lsb
	below = 0x21 * lsb
)

// specialMask has the high bit set in the lowest byte of w (little
// endian) that is a quote, a backslash, a control character or non-ASCII;
// bits above it may be spurious (borrows), bits below it are all clear.
// Zero means the 8 bytes are plain. With no borrow from below, a byte x <
// 0x80, XORed to y, sets its high bit in y-c exactly when y < c: x^2 <
// 0x21 holds for the control characters (x^2 swaps them among
// themselves) and for the quote (0x22^2 = 0x20) and no other byte, so one
// subtraction finds both; x^'\\' < 1 only for the backslash. The bytes >=
// 0x80 that may set it too are special anyway (the last term). No term
// needs masking with ^x.
func specialMask(w uint64) uint64 {
	return (((w ^ two) - below) | ((w ^ bslsh) - lsb) | w) & msb
}

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if hexVal(c) < 0 {
			return false
		}
	}
	return true
}

func hexVal(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// number scans the number starting at i (RFC 8259 grammar).
func (s *scanner) number(i int) (span, int, error) {
	d := s.data
	start := i
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		i++
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	default:
		return span{}, 0, errAt(ReasonInvalidJSON, "bad number", start)
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || !isDigit(d[i]) {
			return span{}, 0, errAt(ReasonInvalidJSON, "bad number", start)
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || !isDigit(d[i]) {
			return span{}, 0, errAt(ReasonInvalidJSON, "bad number", start)
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	return mkSpan(start, i, kNumber, false), i, nil
}

// literal checks that lit (true, false or null) is at i.
func (s *scanner) literal(i int, lit string, k kind) (span, int, error) {
	if len(s.data)-i < len(lit) || string(s.data[i:i+len(lit)]) != lit {
		return span{}, 0, errAt(ReasonInvalidJSON, "invalid literal", i)
	}
	return mkSpan(i, i+len(lit), k, false), i + len(lit), nil
}

// value scans the value at i (after whitespace). depth is the depth an
// object or array at i would have.
func (s *scanner) value(i, depth int) (span, int, error) {
	if i >= len(s.data) {
		return span{}, 0, errAt(ReasonInvalidJSON, "unexpected end of input", i)
	}
	switch c := s.data[i]; c {
	case '"':
		return s.str(i)
	case '{':
		return s.object(i, depth)
	case '[':
		end, err := s.array(i, depth)
		if err != nil {
			return span{}, 0, err
		}
		return mkSpan(i, end, kArray, false), end, nil
	case 't':
		return s.literal(i, "true", kTrue)
	case 'f':
		return s.literal(i, "false", kFalse)
	case 'n':
		return s.literal(i, "null", kNull)
	default:
		if c == '-' || isDigit(c) {
			return s.number(i)
		}
		return span{}, 0, errAt(ReasonInvalidJSON, "unexpected character", i)
	}
}

// array validates the array at i, at the given depth, and returns the
// index after it.
func (s *scanner) array(i, depth int) (int, error) {
	if depth > s.maxDepth {
		return 0, errAt(ReasonTooDeep, "nesting deeper than the limit", i)
	}
	d := s.data
	i = s.ws(i + 1)
	if i < len(d) && d[i] == ']' {
		return i + 1, nil
	}
	for {
		_, j, err := s.value(i, depth+1)
		if err != nil {
			return 0, err
		}
		i = s.ws(j)
		if i >= len(d) {
			return 0, errAt(ReasonInvalidJSON, "unterminated array", i)
		}
		switch d[i] {
		case ',':
			i = s.ws(i + 1)
		case ']':
			return i + 1, nil
		default:
			return 0, errAt(ReasonInvalidJSON, "expected ',' or ']'", i)
		}
	}
}

// object validates the object at i, at the given depth, mapping its
// members to s.top at depth 1 and recording them in s.tab at depths 2 to
// recordDepth.
func (s *scanner) object(i, depth int) (span, int, error) {
	if depth > s.maxDepth {
		return span{}, 0, errAt(ReasonTooDeep, "nesting deeper than the limit", i)
	}
	d := s.data
	start := i
	top := depth == 1
	record := 1 < depth && depth <= recordDepth
	base := len(s.stack)
	i = s.ws(i + 1)
	if i < len(d) && d[i] == '}' {
		i++
	} else {
		for {
			if i >= len(d) || d[i] != '"' {
				return span{}, 0, errAt(ReasonInvalidJSON, "expected a string key", i)
			}
			// str, inlined by hand for keys: calling it, with object's live
			// registers saved around the call, costs more than scanning a
			// short key.
			var k span
			var err error
			j := skipPlain(d, i+1)
			if j < len(d) && d[j] == '"' {
				k, j = mkSpan(i+1, j, kString, false), j+1
			} else if k, j, err = s.strSlow(i+1, j); err != nil {
				return span{}, 0, err
			}
			// Compact JSON, the common case, has the colon right after the
			// key, a string value right after the colon and the comma or
			// brace right after the value: one comparison each instead of a
			// whitespace check and then the comparison (a value that is not
			// a string takes the whitespace check as before).
			if j < len(d) && d[j] == ':' {
				i = j + 1
			} else if i = s.ws(j); i < len(d) && d[i] == ':' {
				i++
			} else {
				return span{}, 0, errAt(ReasonInvalidJSON, "expected ':'", i)
			}
			var v span
			if i >= len(d) || d[i] != '"' {
				i = s.ws(i)
			}
			if i < len(d) && d[i] == '"' {
				v, j, err = s.str(i) // the common case, without the dispatch
			} else {
				v, j, err = s.value(i, depth+1)
			}
			if err != nil {
				//nolint:errorlint // our own unwrapped error, on the hot path
				if de, ok := err.(*DecodeError); ok && depth == 1 && de.Field == "" {
					de.Field = s.keyString(k)
				}
				return span{}, 0, err
			}
			if top {
				kb := d[k.start:k.end] // keyBytes without the call, for most keys
				if k.esc() {
					kb = s.keyBytes(k)
				}
				if f := fieldOf(kb); f != fNone {
					s.top[f] = v
				}
			} else if record {
				s.stack = append(s.stack, member{key: k, val: v})
			}
			if i = j; i >= len(d) || d[i] != ',' && d[i] != '}' {
				if i = s.ws(j); i >= len(d) {
					return span{}, 0, errAt(ReasonInvalidJSON, "unterminated object", i)
				}
			}
			if d[i] == '}' {
				i++
				break
			}
			if d[i] != ',' {
				return span{}, 0, errAt(ReasonInvalidJSON, "expected ',' or '}'", i)
			}
			if i++; i >= len(d) || d[i] != '"' {
				i = s.ws(i)
			}
		}
	}
	obj := mkSpan(start, i, kObject, false)
	if record {
		obj.first = int32(len(s.tab))
		obj.info |= uint32(len(s.stack)-base) << 5
		s.tab = append(s.tab, s.stack[base:]...)
		s.stack = s.stack[:base]
	}
	return obj, i, nil
}

// plain returns the content of a span of s.data as a string, without a
// copy or a bounds check: a span is within s.data by construction.
func (s *scanner) plain(x span) string {
	return unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(s.data)), x.start)), x.end-x.start)
}

// keyBytes returns the decoded bytes of a key span (scratch, valid until
// the next call).
func (s *scanner) keyBytes(k span) []byte {
	b := s.data[k.start:k.end]
	if !k.esc() {
		return b
	}
	s.kbuf = unescape(s.kbuf[:0], b)
	return s.kbuf
}

// keyString returns a copy of a decoded key, for error messages.
func (s *scanner) keyString(k span) string {
	b := s.data[k.start:k.end]
	if k.esc() {
		return string(unescape(nil, b))
	}
	return string(b)
}

// aliasString returns b as a string without copying. The caller guarantees
// b is not modified while the string is in use (Decode's contract).
func aliasString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// unescape appends the decoded form of the valid JSON string content b to
// buf. A lone UTF-16 surrogate becomes U+FFFD, as encoding/json does.
func unescape(buf, b []byte) []byte {
	for i := 0; i < len(b); {
		c := b[i]
		if c != '\\' {
			// Copy the run up to the next backslash.
			j := i + 1
			for j < len(b) && b[j] != '\\' {
				j++
			}
			buf = append(buf, b[i:j]...)
			i = j
			continue
		}
		switch b[i+1] {
		case '"', '\\', '/':
			buf = append(buf, b[i+1])
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r := hex4(b[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if i+6 <= len(b) && b[i] == '\\' && b[i+1] == 'u' {
					r2 = utf16.DecodeRune(r, hex4(b[i+2:i+6]))
				}
				if r2 != utf8.RuneError {
					r = r2
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			buf = utf8.AppendRune(buf, r)
			continue
		}
		i += 2
	}
	return buf
}

func hex4(b []byte) rune {
	return rune(hexVal(b[0])<<12 | hexVal(b[1])<<8 | hexVal(b[2])<<4 | hexVal(b[3]))
}
