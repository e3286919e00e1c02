package models

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	const d = 24 * time.Hour
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"0", 0},
		{"-0", 0},
		{"14d", 14 * d},
		{"1d", d},
		{"1.5d", 36 * time.Hour},
		{"0.5d", 12 * time.Hour},
		{"1d12h", 36 * time.Hour},
		{"2d3h4m5s", 2*d + 3*time.Hour + 4*time.Minute + 5*time.Second},
		{"36h", 36 * time.Hour},
		{"90m", 90 * time.Minute},
		{"1h30m", 90 * time.Minute},
		{"250ms", 250 * time.Millisecond},
		{"1us", time.Microsecond},
		{"1µs", time.Microsecond},
		{"3ns", 3},
		{"-2d", -2 * d},
		{"+5m", 5 * time.Minute},
		{"3h1d", 27 * time.Hour},
		{"106751d", 106751 * d},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "-", "d", "14", "1.d5", "14 d", "1w", "1dd", "1d-2h", "..5d", "1e3d", "999999999999d", "106752d", "106751d24h", "x1d"} {
		if got, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", bad, got)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0"},
		{14 * 24 * time.Hour, "14d"},
		{36 * time.Hour, "1d12h0m0s"},
		{5 * time.Minute, "5m0s"},
		{-2 * 24 * time.Hour, "-2d"},
	}
	for _, tt := range tests {
		got := FormatDuration(tt.in)
		if got != tt.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tt.in, got, tt.want)
		}
		back, err := ParseDuration(got)
		if err != nil || back != tt.in {
			t.Errorf("ParseDuration(FormatDuration(%v)) = %v, %v", tt.in, back, err)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"14d", "1d12h", "1.5d", "-3h", "0", "1µs"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		// Anything accepted formats and parses back to itself.
		back, err := ParseDuration(FormatDuration(d))
		if err != nil || back != d {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, d, FormatDuration(d), back, err)
		}
	})
}
