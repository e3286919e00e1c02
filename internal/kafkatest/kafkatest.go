package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Kinds of [Cluster].
const (
	KindEnv            = "env"
	KindTestcontainers = "testcontainers"
	KindLocalScript    = "local-script"
	KindFake           = "kfake"
)

// Environment variables read by [Broker].
const (
	// EnvBrokers names brokers to use as they are (comma-separated host:port).
	EnvBrokers = "KAFKA_BROKERS"
	// EnvMode selects the source: "skip", "local", "testcontainers", or
	// "auto" (the default when unset).
	EnvMode = "LEADSCORE_KAFKA"
	// EnvSASLSSLBrokers names the cluster's SASL_SSL listener (host:port,
	// comma-separated), which deploy/kafka.sh prints; with EnvTLSCAFile.
	EnvSASLSSLBrokers = "KAFKA_SASL_SSL_BROKERS"
	// EnvTLSCAFile is the PEM file of the CA that signed the SASL_SSL
	// listener's certificate.
	EnvTLSCAFile = "KAFKA_TLS_CA_FILE"
	// EnvMTLSBrokers names the cluster's listener that requires a client
	// certificate (TLS, CA EnvTLSCAFile); EnvTLSClientCert and
	// EnvTLSClientKey are PEM files of a certificate and key it accepts.
	EnvMTLSBrokers   = "KAFKA_MTLS_BROKERS"
	EnvTLSClientCert = "KAFKA_TLS_CLIENT_CERT"
	EnvTLSClientKey  = "KAFKA_TLS_CLIENT_KEY"
)

// PlainUser and PlainPassword are the SASL PLAIN user of deploy/kafka.sh's
// SASL_SSL listener (its JAAS entry; a loopback test broker's).
const (
	PlainUser     = "leadscore"
	PlainPassword = "leadscore-plain"
)

// pingTimeout bounds the first request to a broker that was found.
const pingTimeout = 20 * time.Second

// topicTimeout bounds topic creation (including waiting for leaders) and
// deletion.
const topicTimeout = 30 * time.Second

// Cluster is a Kafka cluster a test can talk to.
type Cluster struct {
	// Brokers are the seed addresses (host:port).
	Brokers []string
	// Kind says where the cluster came from: "env", "testcontainers",
	// "local-script" or "kfake".
	Kind string
	// KFake is the in-process cluster when Kind is "kfake" (for its
	// Control hooks), nil otherwise.
	KFake *kfake.Cluster
	// SASLSSL is the cluster's SASL_SSL listener when it is known to have
	// one (deploy/kafka.sh's, or the environment's EnvSASLSSLBrokers), and
	// TLSCAFile the CA file to trust for it.
	SASLSSL   []string
	TLSCAFile string
	// MTLS is the cluster's listener that requires a client certificate,
	// when known, and TLSClientCert and TLSClientKey a certificate and key
	// it accepts (PEM files).
	MTLS                        []string
	TLSClientCert, TLSClientKey string
}

// RequireSASLSSL returns when the cluster has a known SASL_SSL listener
// whose CA file exists. Otherwise it fails the test when the listener
// should be there: the cluster is deploy/kafka.sh's (which always has
// one), or CI=true (CI runs against that script's broker) and the cluster
// is not a testcontainers one (whose image has none); and skips it in
// the other cases.
func (c *Cluster) RequireSASLSSL(t testing.TB) {
	t.Helper()
	why := ""
	if len(c.SASLSSL) == 0 || c.TLSCAFile == "" {
		why = fmt.Sprintf("no SASL_SSL listener known (%s and %s)", EnvSASLSSLBrokers, EnvTLSCAFile)
	} else {
		why = missingFiles(EnvTLSCAFile, c.TLSCAFile)
	}
	c.require(t, why, EnvSASLSSLBrokers, EnvTLSCAFile)
}

// RequireMTLS is RequireSASLSSL for the listener that requires a client
// certificate (made by deploy/kafka.sh when a JDK is there to export the
// client's key: without one the script's broker has no such listener, and
// the test is skipped outside CI).
func (c *Cluster) RequireMTLS(t testing.TB) {
	t.Helper()
	why := ""
	if len(c.MTLS) == 0 || c.TLSCAFile == "" || c.TLSClientCert == "" || c.TLSClientKey == "" {
		why = fmt.Sprintf("no mutual TLS listener known (%s, %s, %s and %s)", EnvMTLSBrokers, EnvTLSCAFile, EnvTLSClientCert, EnvTLSClientKey)
		if c.Kind == KindLocalScript && os.Getenv("CI") != "true" {
			t.Skipf("kafkatest: %s: %s: deploy/kafka.sh makes one only with a JDK; skipped", c, why)
		}
	} else {
		why = missingFiles(EnvTLSCAFile, c.TLSCAFile, EnvTLSClientCert, c.TLSClientCert, EnvTLSClientKey, c.TLSClientKey)
	}
	c.require(t, why, EnvMTLSBrokers, EnvTLSCAFile, EnvTLSClientCert, EnvTLSClientKey)
}

// missingFiles says which of the files (pairs of variable and path)
// cannot be read.
func missingFiles(pairs ...string) string {
	var why []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if _, err := os.Stat(pairs[i+1]); err != nil {
			why = append(why, fmt.Sprintf("%s: %v", pairs[i], err))
		}
	}
	return strings.Join(why, "; ")
}

// require returns when why is empty, else fails or skips the test as
// RequireSASLSSL says; vars are the variables that name the listener.
func (c *Cluster) require(t testing.TB, why string, vars ...string) {
	t.Helper()
	switch {
	case why == "":
		return
	case c.Kind == KindLocalScript || os.Getenv("CI") == "true" && c.Kind != KindTestcontainers:
		t.Fatalf("kafkatest: %s: %s (deploy/kafka.sh up prints %s; set them with %s)",
			c, why, strings.Join(vars, ", "), EnvBrokers)
	default:
		t.Skipf("kafkatest: %s: %s; skipped", c, why)
	}
}

// Opts returns the client options that point a kgo client at the cluster.
func (c *Cluster) Opts() []kgo.Opt {
	return []kgo.Opt{kgo.SeedBrokers(c.Brokers...)}
}

// String describes the cluster for logs.
func (c *Cluster) String() string {
	what := "real Apache Kafka"
	if c.Kind == KindFake {
		what = "in-process kfake"
	}
	return fmt.Sprintf("%s at %s (%s)", what, strings.Join(c.Brokers, ","), c.Kind)
}

// Admin returns an admin client for the cluster, closed when the test ends.
func (c *Cluster) Admin(t testing.TB) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(c.Opts()...)
	if err != nil {
		t.Fatalf("kafkatest: admin client: %v", err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// Topic creates a topic unique to this test (the sanitised test name plus
// a random suffix) with the given partition count and topic configs (nil
// for the broker's defaults), waits until every partition has a leader, and
// deletes the topic when the test ends. Replication is the broker default.
func (c *Cluster) Topic(t testing.TB, partitions int32, configs map[string]*string) string {
	t.Helper()
	if partitions < 1 {
		t.Fatalf("kafkatest: Topic: partitions must be >= 1, got %d", partitions)
	}
	name := uniqueName(t.Name())
	adm := c.Admin(t)

	ctx, cancel := context.WithTimeout(context.Background(), topicTimeout)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, partitions, -1, configs, name); err != nil {
		t.Fatalf("kafkatest: create topic %s on %s: %v", name, c, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), topicTimeout)
		defer cancel()
		if _, err := adm.DeleteTopic(ctx, name); err != nil {
			t.Logf("kafkatest: warning: delete topic %s: %v", name, err)
		}
	})
	if err := waitLeaders(ctx, adm, name, partitions); err != nil {
		t.Fatalf("kafkatest: topic %s: %v", name, err)
	}
	return name
}

// waitLeaders polls metadata until topic has n partitions, each with a leader.
func waitLeaders(ctx context.Context, adm *kadm.Client, topic string, n int32) error {
	for {
		err := topicReady(ctx, adm, topic, n)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("partitions not led in time: %w (last: %w)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func topicReady(ctx context.Context, adm *kadm.Client, topic string, n int32) error {
	tds, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	td, ok := tds[topic]
	if !ok {
		return errors.New("topic missing from metadata")
	}
	if td.Err != nil {
		return td.Err
	}
	if int32(len(td.Partitions)) != n {
		return fmt.Errorf("%d of %d partitions in metadata", len(td.Partitions), n)
	}
	for _, p := range td.Partitions {
		if p.Err != nil {
			return fmt.Errorf("partition %d: %w", p.Partition, p.Err)
		}
		if p.Leader < 0 {
			return fmt.Errorf("partition %d has no leader", p.Partition)
		}
	}
	return nil
}

// Group returns a consumer group name unique to this test.
func (c *Cluster) Group(t testing.TB) string {
	t.Helper()
	return "group-" + uniqueName(t.Name())
}

// maxNameBase leaves room for the suffix within Kafka's 249-byte topic limit.
const maxNameBase = 180

// uniqueName turns a test name into a legal Kafka resource name
// ([a-zA-Z0-9._-]) and appends a random suffix. Every other byte becomes
// '-' (not '_' or '.': Kafka warns that those two collide in metric names).
func uniqueName(testName string) string {
	var b strings.Builder
	for i := 0; i < len(testName) && b.Len() < maxNameBase; i++ {
		ch := testName[i]
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9', ch == '-':
			b.WriteByte(ch)
		default:
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		b.WriteString("test")
	}
	var suffix [6]byte
	_, _ = rand.Read(suffix[:]) // crypto/rand.Read never fails (Go 1.24+).
	return b.String() + "-" + hex.EncodeToString(suffix[:])
}

// Fake starts an in-process kfake cluster (one broker unless opts say
// otherwise) and closes it when the test ends.
func Fake(t testing.TB, opts ...kfake.Opt) *Cluster {
	t.Helper()
	all := append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)
	fc, err := kfake.NewCluster(all...)
	if err != nil {
		t.Fatalf("kafkatest: start kfake: %v", err)
	}
	t.Cleanup(fc.Close)
	c := &Cluster{Brokers: fc.ListenAddrs(), Kind: KindFake, KFake: fc}
	t.Logf("kafkatest: using %s", c)
	return c
}

// found is the memoised outcome of the search for a real broker.
type found struct {
	cluster *Cluster
	skip    string // why no broker could be had (skip, or fail under CI)
	err     error  // a misconfiguration that fails the test everywhere
}

var (
	searchOnce sync.Once
	searched   found
)

// Broker returns a real Kafka broker for an integration test; see the
// package documentation for where it looks. The search runs once per test
// binary; every caller gets the same *Cluster. It skips the test (or fails
// it when CI=true) when no broker can be had, and skips it when
// LEADSCORE_KAFKA=skip.
func Broker(t testing.TB) *Cluster {
	t.Helper()
	if os.Getenv(EnvMode) == "skip" {
		t.Skipf("kafkatest: %s=skip: integration test skipped", EnvMode)
	}
	searchOnce.Do(func() {
		searched = search(os.Stderr)
		if searched.cluster != nil {
			fmt.Fprintf(os.Stderr, "kafkatest: using %s\n", searched.cluster)
		}
	})
	switch {
	case searched.err != nil:
		t.Fatalf("kafkatest: %v", searched.err)
	case searched.cluster == nil && os.Getenv("CI") == "true":
		t.Fatalf("kafkatest: CI=true needs a real Kafka broker, none found: %s", searched.skip)
	case searched.cluster == nil:
		t.Skipf("kafkatest: no Kafka broker: %s (set %s, start Docker, or run deploy/kafka.sh up)", searched.skip, EnvBrokers)
	}
	t.Logf("kafkatest: using %s", searched.cluster)
	return searched.cluster
}

// search looks for a broker in the documented order. progress receives
// human-readable notes (the local script's start-up output).
func search(progress *os.File) found {
	if env := os.Getenv(EnvBrokers); strings.TrimSpace(env) != "" {
		c := &Cluster{Brokers: splitBrokers(env), Kind: KindEnv,
			SASLSSL: splitBrokers(os.Getenv(EnvSASLSSLBrokers)), TLSCAFile: os.Getenv(EnvTLSCAFile),
			MTLS:          splitBrokers(os.Getenv(EnvMTLSBrokers)),
			TLSClientCert: os.Getenv(EnvTLSClientCert), TLSClientKey: os.Getenv(EnvTLSClientKey)}
		if err := ping(c); err != nil {
			return found{err: fmt.Errorf("%s=%s: %w", EnvBrokers, env, err)}
		}
		return found{cluster: c}
	}

	mode := os.Getenv(EnvMode)
	switch mode {
	case "", "auto", "local", "testcontainers":
	default:
		return found{err: fmt.Errorf("%s=%q: want skip, auto, local or testcontainers", EnvMode, mode)}
	}

	var reasons []string
	if mode != "local" {
		c, err := startContainer(progress)
		if err == nil {
			return found{cluster: c}
		}
		reasons = append(reasons, "testcontainers: "+err.Error())
		if mode == "testcontainers" {
			return found{skip: strings.Join(reasons, "; ")}
		}
	}

	c, err := startLocal(progress)
	if err == nil {
		return found{cluster: c}
	}
	reasons = append(reasons, "local script: "+err.Error())
	return found{skip: strings.Join(reasons, "; ")}
}

func splitBrokers(s string) []string {
	var out []string
	for b := range strings.SplitSeq(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// ping checks that the cluster answers a metadata request.
func ping(c *Cluster) error {
	cl, err := kgo.NewClient(c.Opts()...)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", strings.Join(c.Brokers, ","), err)
	}
	return nil
}
