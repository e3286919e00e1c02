// Package kafkatest gives tests a Kafka broker that speaks the real protocol:
// a real Apache Kafka for integration tests, or franz-go's in-process kfake
// for fast unit tests, behind one [Cluster] type.
//
// It is a test helper: import it only from _test.go files.
//
// # Finding a real broker
//
// [Broker] looks, once per test binary, in this order:
//
//  1. KAFKA_BROKERS (comma-separated host:port list), used as given
//     (Kind "env"). An unreachable broker named there fails the test.
//  2. A testcontainers-go container of the apache/kafka image in KRaft mode
//     (Kind "testcontainers"), when a Docker engine answers. The socket is
//     looked for first (DOCKER_HOST, /var/run/docker.sock and the usual
//     rootless and desktop paths), so a machine without Docker pays no
//     more than a few stat calls. The container is reaped by testcontainers'
//     Ryuk when the test binary exits. This path has not been run on the
//     development machine, which has no Docker.
//  3. The local broker of deploy/kafka.sh (Kind "local-script"), found
//     relative to the module root; `deploy/kafka.sh up` is run when it is not
//     up yet (the first run fetches the jars with Maven, about 25 s; later
//     starts take about 11 s). The harness leaves it running for the next
//     test binary: `make kafka-down` or `deploy/kafka.sh down` stops it.
//
// A cluster may also have a SASL_SSL listener and one that requires a
// client certificate, for tests of the clients' TLS and SASL settings:
// deploy/kafka.sh's has both (it prints KAFKA_SASL_SSL_BROKERS,
// KAFKA_TLS_CA_FILE, KAFKA_MTLS_BROKERS, KAFKA_TLS_CLIENT_CERT and
// KAFKA_TLS_CLIENT_KEY; the second only where a JDK is installed), and an
// "env" cluster has those the variables name. [Cluster.RequireSASLSSL] and
// [Cluster.RequireMTLS] skip a test when there is none, or fail it under
// CI=true; RequireSASLSSL also fails it when the cluster is the script's
// (a broker started by an older script: restart it).
//
// The broker used is logged with t.Logf and printed once to stderr, e.g.
// "kafkatest: using real Apache Kafka at 127.0.0.1:19092 (local-script)".
//
// # Skipping and failing
//
// LEADSCORE_KAFKA selects the source: "skip" skips every test that asks for
// a broker, "local" uses only deploy/kafka.sh, "testcontainers" only a
// container; unset or "auto" tries them in the order above.
// When no broker can be had the test is skipped with the reason, except
// when CI=true: CI must test against a real broker, so the test fails.
//
// # Isolation
//
// Tests share the broker, so each one takes its own names: [Cluster.Topic]
// creates a topic named after the test plus a random suffix and deletes it
// when the test ends; [Cluster.Group] returns a fresh consumer group name.
// The local broker's settings (one replica, short timeouts, no topic
// auto-creation) are documented in deploy/README.md.
package kafkatest
