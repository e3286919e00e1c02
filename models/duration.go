package models

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// day is the 'd' unit of model durations: always 24 hours. Model times are
// UTC event times, so there is no daylight-saving ambiguity.
const day = 24 * time.Hour

// ParseDuration parses a model duration: Go's time.ParseDuration syntax
// ("36h", "90m", "1h30m", "0") extended with a 'd' unit of 24 hours that
// may be combined with the others ("14d", "1.5d", "1d12h"). A sign is only
// allowed at the start.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	if s == "" {
		return 0, errors.New("empty duration")
	}
	neg := false
	if s[0] == '-' || s[0] == '+' {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "0" {
		return 0, nil
	}
	if s == "" {
		return 0, fmt.Errorf("invalid duration %q", orig)
	}
	var total time.Duration
	for s != "" {
		// One component: a decimal number and a unit.
		i := 0
		for i < len(s) && (s[i] == '.' || '0' <= s[i] && s[i] <= '9') {
			i++
		}
		j := i
		for j < len(s) && s[j] != '.' && (s[j] < '0' || s[j] > '9') {
			j++
		}
		num, unit := s[:i], s[i:j]
		if num == "" || num == "." || unit == "" {
			return 0, fmt.Errorf("invalid duration %q (write e.g. 14d, 36h, 90m, 1d12h)", orig)
		}
		var part time.Duration
		if unit == "d" {
			// Parse as hours, then scale: exact for every value that a
			// whole number of nanoseconds can hold.
			h, err := time.ParseDuration(num + "h")
			if err != nil {
				return 0, fmt.Errorf("invalid duration %q", orig)
			}
			if h > math.MaxInt64/24 {
				return 0, fmt.Errorf("invalid duration %q: too large", orig)
			}
			part = h * 24
		} else {
			d, err := time.ParseDuration(num + unit)
			if err != nil {
				return 0, fmt.Errorf("invalid duration %q: unknown unit %q (use d, h, m, s, ms, us or ns)", orig, unit)
			}
			part = d
		}
		if total > math.MaxInt64-part {
			return 0, fmt.Errorf("invalid duration %q: too large", orig)
		}
		total += part
		s = s[j:]
	}
	if neg {
		total = -total
	}
	return total, nil
}

// FormatDuration is the inverse of ParseDuration for display: whole days
// are written with the 'd' unit ("14d", "1d12h0m0s"), anything else as
// time.Duration.String does.
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	sign := ""
	if d < 0 {
		if d == math.MinInt64 {
			return d.String()
		}
		sign, d = "-", -d
	}
	days := d / day
	rest := d % day
	switch {
	case days == 0:
		return sign + rest.String()
	case rest == 0:
		return sign + strconv.FormatInt(int64(days), 10) + "d"
	default:
		return sign + strconv.FormatInt(int64(days), 10) + "d" + strings.TrimPrefix(rest.String(), "0d")
	}
}
