package ingest

import "testing"

// FuzzParseRFC3339Millis compares parseRFC3339Millis with
// refParseRFC3339Millis, the plain loop-based parser it replaced.
func FuzzParseRFC3339Millis(f *testing.F) {
	for _, s := range []string{
		"2024-03-10T14:05:06.789Z", "2024-03-10T14:05:06Z", "2024-03-10T14:05:06.7+01:30",
		"2024-02-29T23:59:59.123456789-23:59", "9999-12-31T23:59:59.999Z", "1970-01-01T00:00:00.0001-00:01",
		"2023-02-29T00:00:00Z", "2024-01-01T00:00:00.Z", "2024-01-01T00:00:00,5Z", "2024-01-01T0/:00:00Z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseRFC3339Millis(s)
		want, wok := refParseRFC3339Millis(s)
		if ok != wok || got != want {
			t.Fatalf("parseRFC3339Millis(%q) = %d, %v; reference %d, %v", s, got, ok, want, wok)
		}
	})
}

// refParseRFC3339Millis is the earlier parseRFC3339Millis, a loop per
// field, kept as the fuzz target's reference.
func refParseRFC3339Millis(s string) (int64, bool) {
	if len(s) < len("2006-01-02T15:04:05Z") {
		return 0, false
	}
	if s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	year, ok1 := refAtoiN(s[0:4])
	month, ok2 := refAtoiN(s[5:7])
	day, ok3 := refAtoiN(s[8:10])
	hour, ok4 := refAtoiN(s[11:13])
	minute, ok5 := refAtoiN(s[14:16])
	sec, ok6 := refAtoiN(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return 0, false
	}
	s = s[19:]
	var ms int64
	if len(s) >= 2 && s[0] == '.' && isDigit(s[1]) {
		n := 1
		for n < len(s) && isDigit(s[n]) {
			if n <= 3 {
				ms = ms*10 + int64(s[n]-'0')
			}
			n++
		}
		for k := n; k <= 3; k++ { // fewer than 3 digits: scale up
			ms *= 10
		}
		s = s[n:]
	}
	var offset int64
	switch {
	case len(s) == 1 && (s[0] == 'Z' || s[0] == 'z'):
	case len(s) == 6 && (s[0] == '+' || s[0] == '-') && s[3] == ':':
		oh, okh := refAtoiN(s[1:3])
		om, okm := refAtoiN(s[4:6])
		if !okh || !okm || oh > 23 || om > 59 {
			return 0, false
		}
		offset = int64(oh*60+om) * 60
		if s[0] == '-' {
			offset = -offset
		}
	default:
		return 0, false
	}
	secs := daysFromCivil(year, month, day)*86400 + int64(hour*3600+minute*60+sec) - offset
	t := secs*1000 + ms
	if t < 0 || t > maxEventMillis {
		return 0, false
	}
	return t, true
}

func refAtoiN(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
