package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestModelHelp: 'model -h' and 'model validate -h' print the usage
// instead of failing on an unknown subcommand or a file named -h.
func TestModelHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"validate", "-h"}, {"show", "--help"}} {
		var out strings.Builder
		if err := cmdModel(args, &out); err != nil || out.String() != modelUsage {
			t.Errorf("model %s: %v, printed %q", strings.Join(args, " "), err, out.String())
		}
	}
	if err := cmdModel([]string{"validat"}, io.Discard); err == nil || !strings.Contains(err.Error(), "want validate or show") {
		t.Errorf("model validat: %v", err)
	}
}

// TestBuildVersion: the linker's version comes first; without it, what
// the toolchain recorded (a test binary has no VCS stamp: "devel").
func TestBuildVersion(t *testing.T) {
	defer func(v string) { version = v }(version)
	version = ""
	if v := buildVersion(); !strings.HasPrefix(v, "devel") || !strings.Contains(v, "go1.") {
		t.Errorf("buildVersion() = %q, want devel ... go1.N", v)
	}
	version = "v1.2.3"
	if v := buildVersion(); !strings.HasPrefix(v, "v1.2.3 go1.") {
		t.Errorf("buildVersion() = %q, want v1.2.3 go1.N", v)
	}
}

// runStderr runs a command line as main does and returns its exit status
// and what it wrote to stderr.
func runStderr(t *testing.T, args ...string) (int, string) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	defer func(old *os.File) { os.Stderr = old }(os.Stderr)
	os.Stderr = f
	code := run(args)
	out, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return code, string(out)
}

// TestFlagMistakesExit2: a bad flag of run, gen or dev exits 2 with a
// message naming the flag, before any broker is asked (127.0.0.1:1
// refuses connections: asking it would exit 1, or for gen wait 30 s) and
// before anything is produced.
func TestFlagMistakesExit2(t *testing.T) {
	const noBroker = "127.0.0.1:1"
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--brokers", noBroker, "--session-timeout", "-1s"}, "--session-timeout"},
		{[]string{"run", "--brokers", noBroker, "--commit-interval", "0s"}, "--commit-interval"},
		{[]string{"run", "--brokers", noBroker, "--transaction-timeout", "0s"}, "--transaction-timeout"},
		{[]string{"run", "--brokers", noBroker, "--max-value-bytes", "-5"}, "--max-value-bytes: -5"},
		{[]string{"run", "--brokers", noBroker, "--metrics-addr", "notanaddr"}, "--metrics-addr"},
		{[]string{"run", "--brokers", noBroker, "--score=false", "--archive-dir", "a", "--archive-roll-records", "-1"}, "--archive-roll-records"},
		{[]string{"run", "--brokers", noBroker, "--topic-touchpoints="}, "--topic-touchpoints: empty"},
		{[]string{"run", "--brokers", noBroker, "--group="}, "--group: empty"},
		{[]string{"run", "--brokers="}, "--brokers: no broker given"},
		{[]string{"gen", "--brokers", noBroker, "--count", "-1"}, "--count: -1 is negative"},
		{[]string{"gen", "--brokers", noBroker, "--rate", "-5"}, "--rate: -5"},
		{[]string{"gen", "--brokers", noBroker, "--rate", "NaN"}, "--rate: NaN"},
		{[]string{"gen", "--brokers", noBroker, "--rate", "Inf"}, "--rate: +Inf"},
		{[]string{"gen", "--brokers", noBroker, "--leads", "-3"}, "--leads: -3"},
		{[]string{"gen", "--brokers", noBroker, "--leads", "0"}, "--leads: 0"},
		{[]string{"gen", "--brokers", noBroker, "--live=false", "--step", "-1s"}, "--step: -1s is negative"},
		{[]string{"gen", "--brokers", noBroker, "--live=false", "--step", "0s"}, "--step: 0s with --live=false"},
		{[]string{"gen", "--brokers", noBroker, "--bad-fraction", "2"}, "--bad-fraction: 2 not in [0, 1]"},
		{[]string{"gen", "--brokers", noBroker, "--bad-fraction", "-0.5"}, "--bad-fraction"},
		{[]string{"gen", "--brokers", noBroker, "--topic", ""}, "--topic: empty"},
		{[]string{"gen", "--brokers", noBroker, "--live=false", "--start", "yesterday"}, "--start"},
		{[]string{"gen", "--brokers", noBroker, "--file", "/nonexistent/touchpoints.jsonl"}, "--file"},
		{[]string{"dev", "--rate", "-1"}, "--rate: -1"},
		{[]string{"dev", "--leads", "-1"}, "--leads: -1"},
		{[]string{"dev", "--summary-every", "-1s"}, "--summary-every"},
		{[]string{"dev", "--commit-interval", "-1s"}, "--commit-interval"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			start := time.Now()
			code, stderr := runStderr(t, c.args...)
			if code != exitUsage || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, want %d with a message naming %q; stderr:\n%s", code, exitUsage, c.want, stderr)
			}
			for _, internal := range []string{"Config.", "produced"} {
				if strings.Contains(stderr, internal) {
					t.Errorf("stderr says %q:\n%s", internal, stderr)
				}
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %v: it waited for a broker", took)
			}
		})
	}
}

// TestFlagMistakeSource: a bad value that came from the environment or the
// config file is reported with where it was set; the command line's value
// wins over both and is reported plainly.
func TestFlagMistakeSource(t *testing.T) {
	const noBroker = "127.0.0.1:1"
	cfg := filepath.Join(t.TempDir(), "leadscore.yaml")
	if err := os.WriteFile(cfg, []byte("group: g\ncommit-interval: 0s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		env  string
		args []string
		want string
	}{
		{"LEADSCORE_COMMIT_INTERVAL=0s", []string{"run", "--brokers", noBroker},
			"--commit-interval: 0s must be positive (set by environment LEADSCORE_COMMIT_INTERVAL)"},
		{"", []string{"run", "--brokers", noBroker, "--config", cfg},
			"--commit-interval: 0s must be positive (set by config " + cfg + ":2)"},
		{"LEADSCORE_COMMIT_INTERVAL=0s", []string{"run", "--brokers", noBroker, "--commit-interval=-1s"},
			"--commit-interval: -1s must be positive\n"},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			if name, v, ok := strings.Cut(c.env, "="); ok {
				t.Setenv(name, v)
			}
			code, stderr := runStderr(t, c.args...)
			if code != exitUsage || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, want %d with %q; stderr:\n%s", code, exitUsage, c.want, stderr)
			}
		})
	}
}
