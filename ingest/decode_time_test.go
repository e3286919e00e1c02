package ingest

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestParseRFC3339Millis(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64 // -1: rejected
	}{
		{"1970-01-01T00:00:00Z", 0},
		{"1970-01-01T00:00:00.001Z", 1},
		{"1970-01-01T00:00:00.0019999Z", 1},
		{"1970-01-01T01:00:00+01:00", 0},
		{"1969-12-31T23:00:00-01:00", 0},
		{"2024-02-29T12:00:00Z", 1709208000000},
		{"2000-02-29T00:00:00Z", 951782400000},
		{"9999-12-31T23:59:59.999Z", maxEventMillis},
		{"2023-02-29T00:00:00Z", -1},
		{"1900-02-29T00:00:00Z", -1},
		{"2024-04-31T00:00:00Z", -1},
		{"2024-00-10T00:00:00Z", -1},
		{"2024-01-00T00:00:00Z", -1},
		{"2024-01-01T24:00:00Z", -1},
		{"2024-01-01T00:60:00Z", -1},
		{"2024-01-01T00:00:60Z", -1},
		{"2024-01-01t00:00:00Z", 1704067200000}, // RFC 3339 5.6: T and Z in either case
		{"2024-01-01T00:00:00z", 1704067200000},
		{"2024-01-01t00:00:00.5+01:00", 1704063600500},
		{"2024-01-01x00:00:00Z", -1},
		{"2024-01-01T00:00:00y", -1},
		{"2024-01-01 00:00:00Z", -1},
		{"2024-01-01T00:00:00.Z", -1},
		{"2024-01-01T00:00:00,5Z", -1},
		{"2024-01-01T00:00:00+0100", -1},
		{"2024-01-01T00:00:00+24:00", -1},
		{"2024-01-01T00:00:00+01:60", -1},
		{"2024-01-01T00:00:00Z ", -1},
		{"+2024-01-01T00:00:00Z", -1},
		{"2024-1-01T00:00:00Z", -1},
		{"1969-12-31T23:59:59.999Z", -1},
		{"0000-01-01T00:00:00Z", -1},
		{"9999-12-31T23:59:59Z", 253402300799000},
		{"9999-12-31T23:59:59-00:01", -1},
		{"", -1},
		{"yesterday", -1},
	} {
		got, ok := parseRFC3339Millis(tc.in)
		if !ok {
			got = -1
		}
		if got != tc.want {
			t.Errorf("parseRFC3339Millis(%q) = %d, %v; want %d", tc.in, got, ok, tc.want)
		}
	}
}

// TestParseRFC3339MillisAgainstTime compares random valid times with the
// standard library.
func TestParseRFC3339MillisAgainstTime(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	layouts := []string{time.RFC3339, time.RFC3339Nano, "2006-01-02T15:04:05.000Z07:00", "2006-01-02T15:04:05.000000000Z07:00"}
	for range 20000 {
		sec := r.Int64N(maxEventMillis/1000+2*86400) - 86400 // a day either side of the range
		if r.IntN(2) == 0 {
			sec = r.Int64N(4e9) // 1970-2096, the common case
		}
		zone := time.FixedZone("", (r.IntN(47)-23)*3600+r.IntN(4)*15*60)
		tm := time.Unix(sec, r.Int64N(1e9)).In(zone)
		if tm.Year() > 9999 || tm.Year() < 0 {
			continue
		}
		s := tm.Format(layouts[r.IntN(len(layouts))])
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := parseRFC3339Millis(s)
		wantMs := want.Unix()*1000 + int64(want.Nanosecond()/1e6)
		if wantMs < 0 || wantMs > maxEventMillis {
			if ok {
				t.Errorf("%s: accepted out of range", s)
			}
			continue
		}
		if !ok || got != wantMs {
			t.Fatalf("%s: got %d %v, want %d", s, got, ok, wantMs)
		}
	}
}

func TestParseEpochMillis(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"0", 0}, {"1700000000123", 1700000000123}, {"253402300799999", maxEventMillis},
		{"253402300800000", -1}, {"-1", -1}, {"1.5", -1}, {"1e3", -1}, {"1000000000000000", -1}, {"", -1},
		{"99999999999999999999999999", -1},
	} {
		got, ok := parseEpochMillis([]byte(tc.in))
		if !ok {
			got = -1
		}
		if got != tc.want {
			t.Errorf("parseEpochMillis(%q) = %d; want %d", tc.in, got, tc.want)
		}
	}
}
