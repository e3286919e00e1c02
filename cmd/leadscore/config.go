package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/plugin/kprom"
	"go.yaml.in/yaml/v3"

	"github.com/leadscore/leadscore/models"
)

// settingSources says where the value of each flag that did not come from
// the command line was set ("config FILE:LINE", "environment NAME"), for
// the messages of the checks that run after parseFlags: a process runs one
// command, and parseFlags fills it afresh.
var settingSources map[string]string

// withSource adds where the flag a usage error names was set, when not on
// the command line: "--commit-interval: 0s must be positive (set by
// environment LEADSCORE_COMMIT_INTERVAL)".
func withSource(msg string) string {
	name, ok := strings.CutPrefix(msg, "--")
	if !ok {
		return msg
	}
	if i := strings.IndexAny(name, ": ="); i > 0 {
		name = name[:i]
	}
	if src, ok := settingSources[name]; ok {
		return msg + " (set by " + src + ")"
	}
	return msg
}

// parseFlags applies, in order of increasing precedence: the flag defaults,
// the YAML file named by --config, LEADSCORE_* environment variables, and
// the command line. Every key of the file must be a flag name.
func parseFlags(fs *flag.FlagSet, args []string) error {
	settingSources = map[string]string{}
	var configPath string
	fs.StringVar(&configPath, "config", "", "YAML `file` of settings; keys are flag names")
	fs.SetOutput(io.Discard)
	// --config must be known before the other flags are applied: from the
	// command line or, for run only (a deployment's settings: gen and dev
	// have other flags), LEADSCORE_CONFIG. -h prints the defaults, so it
	// applies neither the file nor the environment.
	if fs.Name() == "run" {
		configPath = os.Getenv("LEADSCORE_CONFIG")
	}
	help := false
	for i := 0; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		if a == args[i] || args[i] == "--" {
			continue
		}
		if v, ok := strings.CutPrefix(a, "config="); ok {
			configPath = v
		} else if a == "config" && i+1 < len(args) {
			configPath = args[i+1]
		} else if isHelp(args[i]) {
			help = true
		}
	}
	if help {
		fs.SetOutput(os.Stderr)
		_ = fs.Parse([]string{"-h"})
		os.Exit(0)
	}
	if configPath != "" {
		if err := applyConfigFile(fs, configPath); err != nil {
			return usageError{err}
		}
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		if v, ok := os.LookupEnv(name); ok && f.Name != "config" {
			if err := fs.Set(f.Name, v); err != nil && envErr == nil {
				envErr = fmt.Errorf("environment %s=%q: not a valid --%s: %w", name, v, f.Name, err)
			}
			settingSources[f.Name] = "environment " + name
		}
	})
	if envErr != nil {
		return usageError{envErr}
	}
	// The config file refuses unknown keys; an unknown variable only gets
	// a warning, since the environment is shared with whatever else runs
	// there, but a misspelt one is then not lost in silence.
	for _, name := range unknownEnv(fs, os.Environ()) {
		fmt.Fprintf(os.Stderr, "leadscore: warning: environment %s is not a setting of 'leadscore %s' (settings are LEADSCORE_ and a flag name of 'leadscore %s -h'); ignored\n", name, fs.Name(), fs.Name())
	}
	for _, a := range args {
		if a == "--" || !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		delete(settingSources, name) // the command line's value wins
	}
	fs.SetOutput(os.Stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}

// envName is the environment variable of flag name.
func envName(flag string) string {
	return "LEADSCORE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// otherEnv are the LEADSCORE_* variables that are not flags: read by run
// (LEADSCORE_CONFIG), or by the tests, benchmarks and scripts of the
// repository, which may share a shell with the commands. The commands do
// not warn about them. TestOtherEnvComplete checks the list against the
// repository.
var otherEnv = []string{
	"LEADSCORE_CONFIG",                  // run's --config
	"LEADSCORE_KAFKA",                   // internal/kafkatest: which broker the tests use
	"LEADSCORE_KAFKA_IMAGE",             // internal/kafkatest: its container image
	"LEADSCORE_KAFKA_HOME",              // deploy/kafka.sh: jar cache and broker state
	"LEADSCORE_BENCH_LEADS",             // ingest benchmarks
	"LEADSCORE_BENCH_HUGE_PAGES",        // ingest and scorer benchmarks
	"LEADSCORE_RESTORE_LEADS",           // ingest restore benchmark
	"LEADSCORE_RESTORE_PROFILE",         // ingest restore benchmark
	"LEADSCORE_ARCHIVE_LOCK_HELPER_DIR", // sinks/archive lock test
}

// unknownEnv returns, sorted, the LEADSCORE_* names in environ (KEY=VALUE
// entries) that are neither a flag of fs nor in otherEnv.
func unknownEnv(fs *flag.FlagSet, environ []string) []string {
	known := make(map[string]bool)
	fs.VisitAll(func(f *flag.Flag) {
		known[envName(f.Name)] = f.Name != "config"
	})
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "LEADSCORE_") && !known[name] && !slices.Contains(otherEnv, name) {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(unknown)
	return unknown
}

// setDefault changes the default of a registered flag, in its value and in
// what -h prints.
func setDefault(fs *flag.FlagSet, name, value string) {
	f := fs.Lookup(name)
	if f == nil {
		panic("setDefault: no flag --" + name)
	}
	if err := f.Value.Set(value); err != nil {
		panic(fmt.Sprintf("default of --%s: %v", name, err))
	}
	f.DefValue = f.Value.String()
}

func applyConfigFile(fs *flag.FlagSet, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var kv map[string]any
	if err := yaml.Unmarshal(data, &kv); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	lines := keyLines(data)
	where := func(k string) string {
		if l, ok := lines[k]; ok {
			return fmt.Sprintf("%s:%d", path, l)
		}
		return path
	}
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if fs.Lookup(k) == nil || k == "config" {
			return fmt.Errorf("config %s: unknown setting %q (settings are the flag names of 'leadscore %s -h')", where(k), k, fs.Name())
		}
		v, err := configValue(k, kv[k])
		if err != nil {
			return fmt.Errorf("config %s: %s: %w", where(k), k, err)
		}
		if err := fs.Set(k, v); err != nil {
			return fmt.Errorf("config %s: %s: %q is not a valid value: %w", where(k), k, v, err)
		}
		settingSources[k] = "config " + where(k)
	}
	return nil
}

// keyLines maps the top-level keys of a YAML mapping to their lines, for
// the error messages; nil if data is not a mapping.
func keyLines(data []byte) map[string]int {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	m := doc.Content[0]
	lines := make(map[string]int, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		lines[m.Content[i].Value] = m.Content[i].Line
	}
	return lines
}

// configValue is the flag value of a config file setting: a scalar as
// written, null as empty, and for brokers (the one list setting) a list
// joined with commas. A mapping, or a list elsewhere, is an error that
// says what was expected rather than a flag value in Go's map syntax.
func configValue(key string, x any) (string, error) {
	want := "must be a single value"
	if key == "brokers" {
		want = "must be a list of host:port strings or one comma-separated string"
	}
	switch x := x.(type) {
	case nil:
		return "", nil
	case map[string]any, map[any]any:
		return "", fmt.Errorf("%s, got a mapping", want)
	case []any:
		if key != "brokers" {
			return "", fmt.Errorf("%s, got a list", want)
		}
		parts := make([]string, len(x))
		for i, e := range x {
			switch e.(type) {
			case nil, map[string]any, map[any]any, []any:
				return "", fmt.Errorf("%s, got a list with %s", want, yamlKind(e))
			}
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, ","), nil
	}
	return fmt.Sprint(x), nil
}

// yamlKind names the kind of a decoded YAML value that is not a scalar.
func yamlKind(x any) string {
	switch x.(type) {
	case nil:
		return "an empty item"
	case []any:
		return "a list in it"
	}
	return "a mapping in it"
}

// kafkaFlags are the connection settings shared by every command.
type kafkaFlags struct {
	brokers       string
	clientID      string
	tls           bool
	tlsCA         string
	tlsCert       string
	tlsKey        string
	tlsServerName string
	tlsInsecure   bool
	saslMechanism string
	saslUser      string
	saslPassword  string
}

func (k *kafkaFlags) register(fs *flag.FlagSet, defBrokers string) {
	fs.StringVar(&k.brokers, "brokers", defBrokers, "comma-separated Kafka bootstrap `host:port` list")
	fs.StringVar(&k.clientID, "client-id", "leadscore", "Kafka client id")
	fs.BoolVar(&k.tls, "tls", false, "connect with TLS")
	fs.StringVar(&k.tlsCA, "tls-ca", "", "PEM `file` of CA certificates to trust (default: the system's)")
	fs.StringVar(&k.tlsCert, "tls-cert", "", "PEM client certificate `file` (mutual TLS)")
	fs.StringVar(&k.tlsKey, "tls-key", "", "PEM client key `file` (mutual TLS)")
	fs.StringVar(&k.tlsServerName, "tls-server-name", "", "server name to verify (default: the broker host)")
	fs.BoolVar(&k.tlsInsecure, "tls-insecure-skip-verify", false, "do not verify the broker certificate (testing only)")
	fs.StringVar(&k.saslMechanism, "sasl-mechanism", "", "SASL `mechanism`: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: no SASL)")
	fs.StringVar(&k.saslUser, "sasl-username", "", "SASL user name")
	fs.StringVar(&k.saslPassword, "sasl-password", "", "SASL password (prefer LEADSCORE_SASL_PASSWORD)")
}

// opts builds the franz-go client options, naming the bad setting on error.
func (k *kafkaFlags) opts() ([]kgo.Opt, error) {
	var seeds []string
	for _, b := range strings.Split(k.brokers, ",") {
		if b = strings.TrimSpace(b); b == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(b); err != nil {
			return nil, usageError{fmt.Errorf("--brokers: %q is not host:port: %w", b, err)}
		}
		seeds = append(seeds, b)
	}
	if len(seeds) == 0 {
		return nil, usageError{errors.New("--brokers: no broker given (e.g. --brokers 127.0.0.1:9092)")}
	}
	opts := []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ClientID(k.clientID)}
	if k.tls || k.tlsCA != "" || k.tlsCert != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: k.tlsServerName, InsecureSkipVerify: k.tlsInsecure} //nolint:gosec // opt-in flag for testing
		if k.tlsCA != "" {
			pem, err := os.ReadFile(k.tlsCA)
			if err != nil {
				return nil, usageError{fmt.Errorf("--tls-ca: %w", err)}
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, usageError{fmt.Errorf("--tls-ca: %s holds no PEM certificate", k.tlsCA)}
			}
			tc.RootCAs = pool
		}
		if (k.tlsCert == "") != (k.tlsKey == "") {
			return nil, usageError{errors.New("--tls-cert and --tls-key go together")}
		}
		if k.tlsCert != "" {
			cert, err := tls.LoadX509KeyPair(k.tlsCert, k.tlsKey)
			if err != nil {
				return nil, usageError{fmt.Errorf("--tls-cert/--tls-key: %w", err)}
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	switch m := strings.ToUpper(k.saslMechanism); m {
	case "":
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: k.saslUser, Pass: k.saslPassword}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: k.saslUser, Pass: k.saslPassword}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: k.saslUser, Pass: k.saslPassword}.AsSha512Mechanism()))
	default:
		return nil, usageError{fmt.Errorf("--sasl-mechanism: %q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", k.saslMechanism)}
	}
	if k.saslMechanism != "" && k.saslUser == "" {
		return nil, usageError{errors.New("--sasl-username: required with --sasl-mechanism")}
	}
	return opts, nil
}

// clientMetrics returns franz-go's client metrics (kprom) for one client,
// labelled component=name.
func clientMetrics(reg prometheus.Registerer, name string) *kprom.Metrics {
	return kprom.NewMetrics("leadscore_kafka", kprom.Registerer(reg),
		kprom.WithStaticLabel(prometheus.Labels{"component": name}))
}

type logFlags struct {
	level  string
	format string
}

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.level, "log-level", "info", "log `level`: debug, info, warn, error")
	fs.StringVar(&l.format, "log-format", "text", "log `format`: text or json")
}

func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(l.level)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level: %w", err)}
	}
	o := &slog.HandlerOptions{Level: lvl}
	switch l.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, usageError{fmt.Errorf("--log-format: %q is not text or json", l.format)}
}

func loadModel(path string) (*models.Model, error) {
	if path == "" {
		return models.Default(), nil
	}
	m, err := models.Load(path)
	if err != nil {
		return nil, usageError{err}
	}
	return m, nil
}
