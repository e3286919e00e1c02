package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscore/leadscore/internal/kafkatest"
)

// TestTLSSASLRealKafka runs the binary against a real broker's SASL_SSL
// listener (deploy/kafka.sh's: TLS with its own CA, SASL PLAIN and
// SCRAM-SHA-256/512): gen with each mechanism, then run over SCRAM-SHA-512
// with the password from LEADSCORE_SASL_PASSWORD, scoring what gen
// produced over TLS; and the errors a misconfigured client gets, which
// must name the cause and come at once, not after a hang.
func TestTLSSASLRealKafka(t *testing.T) {
	cluster := kafkatest.Broker(t)
	cluster.RequireSASLSSL(t)
	e := newE2E(t)
	adm := cluster.Admin(t)

	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	prefix := "leadscore-sasl-" + hex.EncodeToString(suffix[:])
	var pw [12]byte
	_, _ = rand.Read(pw[:])
	scramUser, scramPass := prefix, hex.EncodeToString(pw[:])

	// SCRAM users are kept by the controller; create them through the
	// PLAINTEXT listener, as an operator would with kafka-configs.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// One request per mechanism: the broker refuses a request that names
	// a user twice.
	for _, mech := range []kadm.ScramMechanism{kadm.ScramSha256, kadm.ScramSha512} {
		res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
			{User: scramUser, Mechanism: mech, Iterations: 4096, Password: scramPass}})
		if err == nil {
			err = res.Error()
		}
		if err != nil {
			t.Fatalf("create SCRAM user %s (%v): %v", scramUser, mech, err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: scramUser, Mechanism: mech}}, nil)
			if err == nil {
				err = res.Error()
			}
			if err != nil {
				t.Logf("warning: delete SCRAM user %s (%v): %v", scramUser, mech, err)
			}
		})
	}

	// The broker applies a new credential a moment after it answers, and
	// gen stops at the first refused login: log in once with each first.
	// The client options are the binary's own (kafkaFlags.opts).
	for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512"} {
		k := kafkaFlags{brokers: strings.Join(cluster.SASLSSL, ","), tlsCA: cluster.TLSCAFile,
			saslMechanism: mech, saslUser: scramUser, saslPassword: scramPass}
		opts, err := k.opts()
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			cl, err := kgo.NewClient(opts...)
			if err != nil {
				t.Fatal(err)
			}
			pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
			err = cl.Ping(pctx)
			pcancel()
			cl.Close()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("log in as %s with %s over %v: %v", scramUser, mech, cluster.SASLSSL, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	secure := []string{"--brokers", strings.Join(cluster.SASLSSL, ","), "--tls-ca", cluster.TLSCAFile}
	creds := []struct{ mech, user, pass string }{
		{"PLAIN", kafkatest.PlainUser, kafkatest.PlainPassword},
		{"SCRAM-SHA-256", scramUser, scramPass},
		{"SCRAM-SHA-512", scramUser, scramPass},
	}
	login := func(mech, user, pass string) []string {
		return append(append([]string(nil), secure...), "--sasl-mechanism", mech, "--sasl-username", user, "--sasl-password", pass)
	}

	// gen with each mechanism, to a topic made over PLAINTEXT; its end
	// offsets, read over PLAINTEXT, count what arrived.
	topic := cluster.Topic(t, 3, nil)
	const perMech = 200
	for _, c := range creds {
		args := append(login(c.mech, c.user, c.pass), "--topic", topic, "--count", strconv.Itoa(perMech), "--quiet")
		e.run(60*time.Second, nil, e.bin, append([]string{"gen"}, args...)...)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	var produced int64
	ends.Each(func(o kadm.ListedOffset) { produced += o.Offset })
	if produced != perMech*int64(len(creds)) {
		t.Errorf("%s holds %d records after gen with %d mechanisms, want %d", topic, produced, len(creds), perMech*len(creds))
	}
	e.phase("gen PLAIN, SCRAM-SHA-256, SCRAM-SHA-512")

	// Misconfigured clients: each fails at once, naming the cause.
	bad := []struct {
		name, want string
		args       []string
	}{
		{"wrong password", "SASL_AUTHENTICATION_FAILED", login("SCRAM-SHA-512", scramUser, "not-"+scramPass)},
		{"unknown user", "SASL_AUTHENTICATION_FAILED", login("PLAIN", "nobody", kafkatest.PlainPassword)},
		{"untrusted certificate", "certificate signed by unknown authority",
			[]string{"--brokers", strings.Join(cluster.SASLSSL, ","), "--tls", "--sasl-mechanism", "PLAIN",
				"--sasl-username", kafkatest.PlainUser, "--sasl-password", kafkatest.PlainPassword}},
		{"no TLS", "tls", []string{"--brokers", strings.Join(cluster.SASLSSL, ","), "--sasl-mechanism", "PLAIN",
			"--sasl-username", kafkatest.PlainUser, "--sasl-password", kafkatest.PlainPassword}},
		{"no SASL", "SASL", []string{"--brokers", strings.Join(cluster.SASLSSL, ","), "--tls-ca", cluster.TLSCAFile}},
	}
	for _, b := range bad {
		for _, cmd := range [][]string{
			append([]string{"gen", "--topic", topic, "--count", "10", "--quiet"}, b.args...),
			append([]string{"run", "--archive-dir", filepath.Join(t.TempDir(), "archive"), "--metrics-addr", "127.0.0.1:0",
				"--topic-touchpoints", topic, "--topic-mql", prefix + ".bad.mql", "--topic-dlq", prefix + ".bad.dlq",
				"--topic-state", prefix + ".bad.state", "--topic-scored", prefix + ".bad.scored", "--create-topics=false"}, b.args...),
		} {
			start := time.Now()
			_, stderr, err := e.runErr(60*time.Second, nil, e.bin, cmd...)
			took := time.Since(start)
			switch {
			case err == nil:
				t.Errorf("%s: leadscore %s succeeded, want an error", b.name, cmd[0])
			case !strings.Contains(string(stderr), b.want):
				t.Errorf("%s: leadscore %s: stderr does not name %q:\n%s", b.name, cmd[0], b.want, tail(stderr, 2000))
			case took > 30*time.Second:
				t.Errorf("%s: leadscore %s took %v to fail, want well under the 30 s bound", b.name, cmd[0], took)
			}
		}
	}
	e.phase("misconfigured clients")

	// run over SCRAM-SHA-512, its password from the environment as the
	// docs advise, scoring touchpoints gen sends over TLS with PLAIN.
	t.Setenv("LEADSCORE_SASL_PASSWORD", scramPass)
	pl := newPipeline(t, adm, "leadscore-sasl-run-")
	maddr := freeAddr(t)
	runArgs := append(append([]string{"run"}, secure...), "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", scramUser)
	p := e.startLeadscore(append(runArgs, pl.runArgs(filepath.Join(t.TempDir(), "archive"), maddr)...)...)
	e.waitReady(p, "http://"+maddr+"/readyz", 45*time.Second)
	e.phase("run over SCRAM-SHA-512: ready")

	const genCount = 2000
	e.run(60*time.Second, nil, e.bin, append([]string{"gen"}, append(login("PLAIN", kafkatest.PlainUser, kafkatest.PlainPassword),
		"--topic", pl.topics["touchpoints"], "--count", strconv.Itoa(genCount), "--live=false", "--quiet")...)...)
	e.waitAllScored(p, "http://"+maddr+"/metrics", genCount)
	e.phase("score over TLS and SASL")
	if code, took := p.terminate(30 * time.Second); code != 0 {
		t.Errorf("leadscore run exited with %d, %v after SIGTERM (want 0 within 30s)", code, took)
	}
}

// TestGenFailsFastOnRefusedLogin: gen against a cluster that refuses its
// login returns the metadata request's error at once. Without the check
// the producer kept its records buffered, retrying them without end, and
// gen showed nothing (seen before the check, with kfake and with Kafka).
func TestGenFailsFastOnRefusedLogin(t *testing.T) {
	c := kafkatest.Fake(t, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "admin", "right"),
		kfake.SeedTopics(1, "tp"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*clusterCheckTimeout)
	defer cancel()
	start := time.Now()
	err := cmdGen(ctx, []string{"--brokers", strings.Join(c.Brokers, ","), "--topic", "tp", "--count", "10", "--quiet",
		"--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "admin", "--sasl-password", "wrong"})
	if err == nil || !strings.HasPrefix(err.Error(), "gen: cluster metadata: ") {
		t.Fatalf("gen with a refused login: err = %v, want the cluster metadata error", err)
	}
	if took := time.Since(start); took > clusterCheckTimeout/2 {
		t.Errorf("gen took %v to fail, want far less than its %v bound", took, clusterCheckTimeout)
	}
	if err := cmdGen(ctx, []string{"--brokers", strings.Join(c.Brokers, ","), "--topic", "tp", "--count", "10", "--quiet",
		"--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "admin", "--sasl-password", "right"}); err != nil {
		t.Errorf("gen with the right login: %v", err)
	}
}

// TestGenWaitsForCluster: a cluster that cannot be reached yet (a broker
// still starting) is asked again, and gen produces once it answers.
func TestGenWaitsForCluster(t *testing.T) {
	addr := freeAddr(t)
	_, portStr, _ := strings.Cut(addr, ":")
	port, err := strconv.Atoi(portStr)
	if err != nil {
		t.Fatal(err)
	}
	type up struct {
		c   *kfake.Cluster
		err error
	}
	started := make(chan up, 1)
	go func() {
		time.Sleep(2 * time.Second)
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(1, "tp"))
		started <- up{c, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*clusterCheckTimeout)
	defer cancel()
	start := time.Now()
	err = cmdGen(ctx, []string{"--brokers", addr, "--topic", "tp", "--count", "10", "--quiet"})
	u := <-started
	if u.err != nil {
		t.Fatalf("start kfake on %s: %v", addr, u.err)
	}
	defer u.c.Close()
	if err != nil {
		t.Fatalf("gen with a cluster up after 2 s: %v", err)
	}
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("gen returned after %v, before the cluster was up", took)
	}
}

// TestMutualTLSRealKafka runs the binary against a real broker's listener
// that requires a client certificate (deploy/kafka.sh's MTLS listener):
// run and gen with --tls-cert and --tls-key score touchpoints end to end;
// gen without a certificate, or with one the broker does not trust, fails
// at once with the broker's TLS alert.
func TestMutualTLSRealKafka(t *testing.T) {
	cluster := kafkatest.Broker(t)
	cluster.RequireMTLS(t)
	e := newE2E(t)
	adm := cluster.Admin(t)

	brokers := strings.Join(cluster.MTLS, ",")
	withCert := []string{"--brokers", brokers, "--tls-ca", cluster.TLSCAFile,
		"--tls-cert", cluster.TLSClientCert, "--tls-key", cluster.TLSClientKey}

	// A certificate the broker has never seen, made here. It bears the
	// trusted certificate's name: a Go client sends only a certificate
	// whose issuer is among those the broker asks for, and the broker
	// must be the one to refuse it (its key does not match).
	stranger := filepath.Join(t.TempDir(), "stranger")
	writeSelfSigned(t, stranger, cluster.TLSClientCert)
	topic := cluster.Topic(t, 1, nil)
	for _, b := range []struct {
		name, want string
		args       []string
	}{
		{"no client certificate", "tls: bad certificate", []string{"--brokers", brokers, "--tls-ca", cluster.TLSCAFile}},
		{"untrusted client certificate", "tls: unknown certificate", []string{"--brokers", brokers, "--tls-ca", cluster.TLSCAFile,
			"--tls-cert", stranger + ".pem", "--tls-key", stranger + "-key.pem"}},
	} {
		start := time.Now()
		_, stderr, err := e.runErr(60*time.Second, nil, e.bin, append([]string{"gen", "--topic", topic, "--count", "10", "--quiet"}, b.args...)...)
		switch took := time.Since(start); {
		case err == nil:
			t.Errorf("%s: gen succeeded, want an error", b.name)
		case !strings.Contains(string(stderr), b.want):
			t.Errorf("%s: gen: stderr does not name the TLS alert %q:\n%s", b.name, b.want, tail(stderr, 2000))
		case took > 30*time.Second:
			t.Errorf("%s: gen took %v to fail", b.name, took)
		}
	}
	e.phase("refused certificates")

	pl := newPipeline(t, adm, "leadscore-mtls-")
	maddr := freeAddr(t)
	p := e.startLeadscore(append(append([]string{"run"}, withCert...), pl.runArgs(filepath.Join(t.TempDir(), "archive"), maddr)...)...)
	e.waitReady(p, "http://"+maddr+"/readyz", 45*time.Second)
	e.phase("run over mutual TLS: ready")

	const genCount = 1000
	e.run(60*time.Second, nil, e.bin, append(append([]string{"gen"}, withCert...),
		"--topic", pl.topics["touchpoints"], "--count", strconv.Itoa(genCount), "--live=false", "--quiet")...)
	e.waitAllScored(p, "http://"+maddr+"/metrics", genCount)
	e.phase("score over mutual TLS")
	if code, took := p.terminate(30 * time.Second); code != 0 {
		t.Errorf("leadscore run exited with %d, %v after SIGTERM (want 0 within 30s)", code, took)
	}
}

// writeSelfSigned writes a new key and a self-signed client certificate
// with the subject of the certificate in the PEM file like to
// base+"-key.pem" and base+".pem".
func writeSelfSigned(t *testing.T, base, like string) {
	t.Helper()
	b, err := os.ReadFile(like)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM block", like)
	}
	model, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", like, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), RawSubject: model.RawSubject, Subject: pkix.Name{CommonName: "stranger"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base+"-key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}
