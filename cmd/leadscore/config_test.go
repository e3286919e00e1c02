package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func newTestFlags() (*flag.FlagSet, *pipelineFlags) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var f pipelineFlags
	f.register(fs, "", "", ":9464")
	return fs, &f
}

// TestSettingsPrecedence: flag defaults < config file < environment <
// command line, and every source names what it got wrong.
func TestSettingsPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "leadscore.yaml")
	if err := os.WriteFile(file, []byte("brokers: [a:1, b:2]\ngroup: from-file\ncommit-interval: 250ms\nmodel: m.yaml\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LEADSCORE_GROUP", "from-env")
	t.Setenv("LEADSCORE_MODEL", "env.yaml")
	fs, f := newTestFlags()
	if err := parseFlags(fs, []string{"--config", file, "--model", "flag.yaml"}); err != nil {
		t.Fatal(err)
	}
	if f.kafka.brokers != "a:1,b:2" || f.group != "from-env" || f.commitInterval != 250*time.Millisecond ||
		f.model != "flag.yaml" || f.partitions != 12 {
		t.Errorf("got brokers %q group %q commit %v model %q partitions %d", f.kafka.brokers, f.group, f.commitInterval, f.model, f.partitions)
	}
}

func TestSettingsErrors(t *testing.T) {
	dir := t.TempDir()
	n := 0
	write := func(body string) string {
		n++
		p := filepath.Join(dir, strings.Repeat("c", n)+".yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"unknown file key", nil, []string{"--config", write("grop: x\n")}, `unknown setting "grop"`},
		{"bad file value", nil, []string{"--config", write("commit-interval: soon\n")}, "commit-interval"},
		{"bad env value", map[string]string{"LEADSCORE_PARTITIONS": "many"}, nil, "LEADSCORE_PARTITIONS"},
		{"bad flag", nil, []string{"--commit-interval", "x"}, "commit-interval"},
		{"stray argument", nil, []string{"extra"}, `unexpected argument "extra"`},
		{"missing file", nil, []string{"--config", filepath.Join(dir, "none.yaml")}, "none.yaml"},
		{"unknown file key, line", nil, []string{"--config", write("group: g\ngrop: x\n")}, `:2: unknown setting "grop"`},
		{"brokers a mapping", nil, []string{"--config", write("group: g\nbrokers: {host: x}\n")},
			":2: brokers: must be a list of host:port strings or one comma-separated string, got a mapping"},
		{"brokers a list of mappings", nil, []string{"--config", write("brokers:\n  - a:1\n  - {host: x}\n")},
			":1: brokers: must be a list of host:port strings or one comma-separated string, got a list with a mapping in it"},
		{"group a list", nil, []string{"--config", write("group: [a, b]\n")}, ":1: group: must be a single value, got a list"},
		{"group a mapping", nil, []string{"--config", write("group:\n  name: a\n")}, ":1: group: must be a single value, got a mapping"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			fs, _ := newTestFlags()
			err := parseFlags(fs, c.args)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("parseFlags(%q) = %v, want an error mentioning %q", c.args, err, c.want)
			}
		})
	}
}

func TestKafkaOptsErrors(t *testing.T) {
	cases := []struct {
		k    kafkaFlags
		want string
	}{
		{kafkaFlags{}, "--brokers"},
		{kafkaFlags{brokers: "nohostport"}, "not host:port"},
		{kafkaFlags{brokers: "a:1", saslMechanism: "KERBEROS"}, "--sasl-mechanism"},
		{kafkaFlags{brokers: "a:1", saslMechanism: "SCRAM-SHA-512"}, "--sasl-username"},
		{kafkaFlags{brokers: "a:1", tlsCert: "c.pem"}, "--tls-cert and --tls-key"},
		{kafkaFlags{brokers: "a:1", tlsCA: "/nonexistent/ca.pem"}, "--tls-ca"},
	}
	for _, c := range cases {
		if _, err := c.k.opts(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("opts(%+v) = %v, want an error mentioning %q", c.k, err, c.want)
		}
	}
	k := kafkaFlags{brokers: "a:1, b:2", saslMechanism: "scram-sha-256", saslUser: "u", saslPassword: "p", tls: true}
	if opts, err := k.opts(); err != nil || len(opts) != 4 {
		t.Errorf("valid settings: %d options, %v", len(opts), err)
	}
}

// TestBadModelRefused: a model file with errors stops the command before it
// connects anywhere, with exit status 2.
func TestBadModelRefused(t *testing.T) {
	bad := filepath.Join("..", "..", "models", "testdata", "bad.yaml")
	if got := run([]string{"run", "--brokers", "127.0.0.1:1", "--model", bad, "--metrics-addr", ""}); got != 2 {
		t.Errorf("run with a bad model: exit %d, want 2", got)
	}
	if got := run([]string{"model", "validate", bad}); got != 1 {
		t.Errorf("model validate on a bad model: exit %d, want 1", got)
	}
	if got := run([]string{"model", "validate", filepath.Join("..", "..", "models", "default.yaml")}); got != 0 {
		t.Errorf("model validate on the default model: exit %d, want 0", got)
	}
}

// TestHugePagesSetting: --huge-pages is off unless the file, the
// environment or the command line turns it on.
func TestHugePagesSetting(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "leadscore.yaml")
	if err := os.WriteFile(file, []byte("huge-pages: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		env  string
		args []string
		want bool
	}{
		{"default", "", nil, false},
		{"file", "", []string{"--config", file}, true},
		{"environment", "true", nil, true},
		{"environment over file", "false", []string{"--config", file}, false},
		{"flag", "", []string{"--huge-pages"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.env != "" {
				t.Setenv("LEADSCORE_HUGE_PAGES", c.env)
			}
			fs, f := newTestFlags()
			if err := parseFlags(fs, c.args); err != nil {
				t.Fatal(err)
			}
			if f.hugePages != c.want {
				t.Errorf("huge-pages = %v, want %v", f.hugePages, c.want)
			}
		})
	}
	t.Setenv("LEADSCORE_HUGE_PAGES", "sometimes")
	fs, _ := newTestFlags()
	if err := parseFlags(fs, nil); err == nil || !strings.Contains(err.Error(), "LEADSCORE_HUGE_PAGES") {
		t.Errorf("LEADSCORE_HUGE_PAGES=sometimes: %v, want an error naming it", err)
	}
}

// TestConfigFromEnvironment: LEADSCORE_CONFIG names run's file as --config
// does, --config on the command line wins over it, and other commands
// ignore it.
func TestConfigFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	envFile, flagFile := filepath.Join(dir, "env.yaml"), filepath.Join(dir, "flag.yaml")
	for p, body := range map[string]string{envFile: "group: env-file\npartitions: 3\n", flagFile: "group: flag-file\n"} {
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("LEADSCORE_CONFIG", envFile)
	fs, f := newTestFlags()
	if err := parseFlags(fs, nil); err != nil {
		t.Fatal(err)
	}
	if f.group != "env-file" || f.partitions != 3 {
		t.Errorf("LEADSCORE_CONFIG: group %q partitions %d, want env-file 3", f.group, f.partitions)
	}
	fs, f = newTestFlags()
	if err := parseFlags(fs, []string{"--config=" + flagFile}); err != nil {
		t.Fatal(err)
	}
	if f.group != "flag-file" || f.partitions != 12 {
		t.Errorf("--config over LEADSCORE_CONFIG: group %q partitions %d, want flag-file 12", f.group, f.partitions)
	}
	// Only run reads it: gen's flags are not run's.
	gen := flag.NewFlagSet("gen", flag.ContinueOnError)
	count := gen.Int("count", 10, "")
	if err := parseFlags(gen, []string{"--count", "5"}); err != nil || *count != 5 {
		t.Errorf("gen with LEADSCORE_CONFIG set: %v (count %d)", err, *count)
	}
	t.Setenv("LEADSCORE_CONFIG", filepath.Join(dir, "none.yaml"))
	fs, _ = newTestFlags()
	if err := parseFlags(fs, nil); err == nil || !strings.Contains(err.Error(), "none.yaml") {
		t.Errorf("a missing LEADSCORE_CONFIG file: %v", err)
	}
}

// TestSetDefault: a command's own default is the value and what -h prints
// (dev's partitions and archive timings).
func TestSetDefault(t *testing.T) {
	fs, f := newTestFlags()
	setDefault(fs, "partitions", "6")
	setDefault(fs, "archive-roll-interval", "1m")
	if f.partitions != 6 || f.archiveRollInterval != time.Minute {
		t.Errorf("partitions %d roll interval %v", f.partitions, f.archiveRollInterval)
	}
	var help strings.Builder
	fs.SetOutput(&help)
	fs.PrintDefaults()
	for _, want := range []string{"partitions of a created input topic (default 6)", "(default 1m0s)"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("-h does not say %q:\n%s", want, help.String())
		}
	}
}

// TestConfigFileValues: what each kind of YAML value sets: a scalar as
// written, a list of brokers joined with commas, null as empty.
func TestConfigFileValues(t *testing.T) {
	file := filepath.Join(t.TempDir(), "leadscore.yaml")
	body := "brokers: a:1\narchive-dir:\nmetrics-addr: ~\nmax-value-bytes: 2048\nhuge-pages: true\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	fs, f := newTestFlags()
	f.archiveDir, f.metricsAddr = "x", "y"
	if err := parseFlags(fs, []string{"--config", file}); err != nil {
		t.Fatal(err)
	}
	if f.kafka.brokers != "a:1" || f.archiveDir != "" || f.metricsAddr != "" || f.maxValueBytes != 2048 || !f.hugePages {
		t.Errorf("got brokers %q archive-dir %q metrics-addr %q max-value-bytes %d huge-pages %v",
			f.kafka.brokers, f.archiveDir, f.metricsAddr, f.maxValueBytes, f.hugePages)
	}
}

// TestUnknownEnv: a LEADSCORE_* variable that is neither a flag of the
// command nor one the repository's other parts read is reported; --config
// is not a variable of its own (LEADSCORE_CONFIG is read by run only).
func TestUnknownEnv(t *testing.T) {
	cases := []struct {
		name    string
		environ []string
		want    []string
	}{
		{"none", []string{"HOME=/root", "PATH=/bin"}, nil},
		{"flags", []string{"LEADSCORE_BROKERS=a:1", "LEADSCORE_SASL_PASSWORD=p", "LEADSCORE_ARCHIVE_ROLL_BYTES=1"}, nil},
		{"other parts", []string{"LEADSCORE_CONFIG=c.yaml", "LEADSCORE_KAFKA=skip", "LEADSCORE_BENCH_LEADS=1000", "LEADSCORE_RESTORE_LEADS=10"}, nil},
		{"misspelt", []string{"LEADSCORE_BROKRES=a:1", "LEADSCORE_GROUP=g", "LEADSCORE_COMMIT_INTERVALL=1s"},
			[]string{"LEADSCORE_BROKRES", "LEADSCORE_COMMIT_INTERVALL"}},
		{"lower case flag spelling", []string{"LEADSCORE_commit-interval=1s"}, []string{"LEADSCORE_commit-interval"}},
		{"not a prefix match", []string{"LEADSCORE=1", "XLEADSCORE_FOO=1"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs, _ := newTestFlags()
			fs.String("config", "", "")
			if got := unknownEnv(fs, c.environ); !slices.Equal(got, c.want) {
				t.Errorf("unknownEnv(%q) = %q, want %q", c.environ, got, c.want)
			}
		})
	}
	// gen has no --group: run's settings in a shared shell are named.
	gen := flag.NewFlagSet("gen", flag.ContinueOnError)
	gen.String("topic", "", "")
	if got := unknownEnv(gen, []string{"LEADSCORE_TOPIC=t", "LEADSCORE_GROUP=g"}); !slices.Equal(got, []string{"LEADSCORE_GROUP"}) {
		t.Errorf("gen: unknownEnv = %q, want LEADSCORE_GROUP", got)
	}
}

// TestUnknownEnvWarning: run warns on stderr about a misspelt variable and
// goes on (here to refuse a bad flag, exit 2, before any broker).
func TestUnknownEnvWarning(t *testing.T) {
	t.Setenv("LEADSCORE_BROKRES", "a:1")
	code, stderr := runStderr(t, "run", "--brokers", "127.0.0.1:1", "--partitions", "0")
	if code != 2 || !strings.Contains(stderr, "warning: environment LEADSCORE_BROKRES is not a setting of 'leadscore run'") ||
		!strings.Contains(stderr, "--partitions") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
}

// TestOtherEnvComplete: every LEADSCORE_* variable read by the rest of the
// repository (Go code, scripts, the Makefile) is in otherEnv, so that run
// does not warn about it, and every entry of otherEnv is still read.
func TestOtherEnvComplete(t *testing.T) {
	root := filepath.Join("..", "..")
	re := regexp.MustCompile(`LEADSCORE_[A-Z0-9_]*[A-Z0-9]`)
	found := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			// This package's variables are its flags', and LEADSCORE_CONFIG.
			if d.Name() == ".git" || p == filepath.Join(root, "cmd", "leadscore") {
				return filepath.SkipDir
			}
			return nil
		}
		if ext := filepath.Ext(p); ext != ".go" && ext != ".sh" && d.Name() != "Makefile" {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, name := range re.FindAllString(string(data), -1) {
			found[name] = p
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range found {
		if !slices.Contains(otherEnv, name) {
			t.Errorf("%s reads %s, which is not in otherEnv: run would warn about it", p, name)
		}
	}
	for _, name := range otherEnv {
		if _, ok := found[name]; !ok && name != "LEADSCORE_CONFIG" {
			t.Errorf("otherEnv lists %s, which nothing reads any more", name)
		}
	}
}

// TestPipelineFlagErrors: run and dev refuse, naming the flag, what the
// scorer or the archiver would refuse only after asking the broker, or
// would silently take as "the default".
func TestPipelineFlagErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--session-timeout", "-1s"}, "--session-timeout: -1s must be positive"},
		{[]string{"--session-timeout", "0s"}, "--session-timeout: 0s must be positive"},
		{[]string{"--commit-interval", "0s"}, "--commit-interval: 0s must be positive"},
		{[]string{"--commit-interval", "100us"}, "--commit-interval: 100µs is below 1ms"},
		{[]string{"--commit-interval", "6s"}, "--commit-interval: 6s must be at most half of --transaction-timeout (10s)"},
		{[]string{"--transaction-timeout", "0s"}, "--transaction-timeout: 0s must be positive"},
		{[]string{"--transaction-timeout", "500ms"}, "--transaction-timeout: 500ms is below 1s"},
		{[]string{"--shutdown-timeout", "-5s"}, "--shutdown-timeout: -5s must be positive"},
		{[]string{"--archive-roll-interval", "0s"}, "--archive-roll-interval"},
		{[]string{"--archive-flush-idle", "-1s"}, "--archive-flush-idle"},
		{[]string{"--archive-roll-records", "0"}, "--archive-roll-records: 0 must be positive"},
		{[]string{"--archive-roll-bytes", "-1"}, "--archive-roll-bytes: -1 must be positive"},
		{[]string{"--max-value-bytes", "0"}, "--max-value-bytes: 0 not in [1, 268435456]"},
		{[]string{"--max-value-bytes", "-5"}, "--max-value-bytes: -5 not in [1, 268435456]"},
		{[]string{"--max-value-bytes", "268435457"}, "--max-value-bytes"},
		{[]string{"--partitions", "0"}, "--partitions: 0 not in"},
		{[]string{"--replication-factor", "0"}, "--replication-factor: 0 is neither -1"},
		{[]string{"--replication-factor", "40000"}, "--replication-factor"},
		{[]string{"--metrics-addr", "notanaddr"}, `--metrics-addr: "notanaddr" is not host:port`},
		{[]string{"--metrics-addr", "localhost:http"}, `port "http" is not a number`},
		{[]string{"--metrics-addr", ":65536"}, `port "65536" is not a number from 0 to 65535`},
		{[]string{"--group", ""}, "--group: empty"},
		{[]string{"--archive-group", ""}, "--archive-group: empty"},
		{[]string{"--topic-touchpoints", ""}, "--topic-touchpoints: empty"},
		{[]string{"--topic-scored", ""}, "--topic-scored: empty"},
		{[]string{"--topic-dlq", "x", "--topic-state", "x"}, `--topic-dlq and --topic-state: both are "x"`},
	}
	for _, c := range cases {
		fs, f := newTestFlags()
		if err := parseFlags(fs, c.args); err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		err := f.validate()
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want a usage error mentioning %q", c.args, err, c.want)
		}
	}
	for _, args := range [][]string{nil, {"--metrics-addr", ""}, {"--metrics-addr", "127.0.0.1:0"}, {"--metrics-addr", "[::1]:9464"},
		{"--replication-factor", "3"}, {"--commit-interval", "5s"}, {"--max-value-bytes", "268435456"}} {
		fs, f := newTestFlags()
		if err := parseFlags(fs, args); err != nil {
			t.Fatal(err)
		}
		if err := f.validate(); err != nil {
			t.Errorf("%q: %v, want no error", args, err)
		}
	}
}
