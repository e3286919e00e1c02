package ingest

// Event times. Two forms are accepted, both giving Unix milliseconds UTC:
//
//   - an RFC 3339 string, "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)",
//     T and Z in either case (RFC 3339 5.6 allows lower case, which Go's
//     time.RFC3339 does not), any number of fraction digits (truncated, not
//     rounded, to milliseconds), day checked against the month (leap years
//     included), seconds 00-59 (no leap second), offset hours 00-23;
//   - a JSON integer of milliseconds since the Unix epoch: digits only, no
//     fraction or exponent (1.7e12 and 1700000000000.0 are rejected, so a
//     value in seconds or a float is not silently misread).
//
// Both must fall in [1970-01-01T00:00:00Z, 9999-12-31T23:59:59.999Z]:
// negative epochs are rejected.

// maxEventMillis is 9999-12-31T23:59:59.999Z.
const maxEventMillis = 253402300799999

// parseRFC3339Millis parses s as described above. It is straight-line
// code on the fixed-width prefix: this runs once per record.
func parseRFC3339Millis(s string) (int64, bool) {
	if len(s) < len("2006-01-02T15:04:05Z") ||
		s[4] != '-' || s[7] != '-' || s[10]|0x20 != 't' || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	y1, ok1 := digits2(s[0], s[1])
	y2, ok2 := digits2(s[2], s[3])
	month, ok3 := digits2(s[5], s[6])
	day, ok4 := digits2(s[8], s[9])
	hour, ok5 := digits2(s[11], s[12])
	minute, ok6 := digits2(s[14], s[15])
	sec, ok7 := digits2(s[17], s[18])
	year := y1*100 + y2
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) ||
		month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return 0, false
	}
	s = s[19:]
	var ms int64
	if len(s) >= 2 && s[0] == '.' && isDigit(s[1]) {
		n := 2
		for n < len(s) && isDigit(s[n]) {
			n++
		}
		ms = int64(s[1]-'0') * 100 // fewer than 3 digits: scaled up
		if n > 2 {
			ms += int64(s[2]-'0') * 10
		}
		if n > 3 {
			ms += int64(s[3] - '0')
		}
		s = s[n:]
	}
	var offset int64
	switch {
	case len(s) == 1 && s[0]|0x20 == 'z':
	case len(s) == 6 && (s[0] == '+' || s[0] == '-') && s[3] == ':':
		oh, okh := digits2(s[1], s[2])
		om, okm := digits2(s[4], s[5])
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

// parseEpochMillis parses a JSON number token as integral epoch millis.
func parseEpochMillis(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 { // 15 digits hold maxEventMillis
		return 0, false
	}
	var t int64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false // sign, fraction or exponent
		}
		t = t*10 + int64(c-'0')
	}
	if t > maxEventMillis {
		return 0, false
	}
	return t, true
}

// digits2 parses two decimal digits.
func digits2(a, b byte) (int, bool) {
	a, b = a-'0', b-'0' // wraps around for bytes below '0'
	return int(a)*10 + int(b), a <= 9 && b <= 9
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

func daysIn(month, year int) int {
	switch month {
	case 2:
		if isLeap(year) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the number of days from 1970-01-01 to the given
// proleptic Gregorian date (Howard Hinnant's days_from_civil algorithm).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400 // y >= -1 here, and -1/400 == 0 is what we want for y in [0, 9999]
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}
