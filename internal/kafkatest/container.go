package kafkatest

// The container path. NOT RUN on the development machine (no Docker there):
// it compiles and follows the apache/kafka image's documented environment
// variables, but only a machine with a Docker engine exercises it.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// defaultImage is the apache/kafka image used for the container broker; the
// same Kafka version as deploy/kafka/pom.xml. LEADSCORE_KAFKA_IMAGE
// overrides it.
const defaultImage = "apache/kafka:4.4.0"

// EnvImage overrides the container image.
const EnvImage = "LEADSCORE_KAFKA_IMAGE"

const (
	// healthTimeout bounds the Docker engine health check.
	healthTimeout = 5 * time.Second
	// containerTimeout bounds image pull plus broker start.
	containerTimeout = 4 * time.Minute
	// startScript is written into the container once the mapped port is
	// known; the entrypoint waits for it.
	startScript = "/tmp/leadscore-kafka-start.sh"
	clientPort  = "9092/tcp"
)

// dockerSocketHint reports where a Docker engine might be, without talking
// to it: DOCKER_HOST, a testcontainers config file, or a socket at one of
// the usual paths. A machine without any of these is skipped in
// microseconds instead of waiting on a client time-out.
func dockerSocketHint() (string, bool) {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return "DOCKER_HOST=" + h, true
	}
	home, _ := os.UserHomeDir()
	if home != "" {
		if _, err := os.Stat(filepath.Join(home, ".testcontainers.properties")); err == nil {
			return "~/.testcontainers.properties", true
		}
	}
	candidates := []string{"/var/run/docker.sock", "/run/docker.sock"}
	if xdg := os.Getenv("XDG_RUNTIME_DIR"); xdg != "" {
		candidates = append(candidates, filepath.Join(xdg, "docker.sock"), filepath.Join(xdg, "podman", "podman.sock"))
	}
	if home != "" {
		candidates = append(candidates,
			filepath.Join(home, ".docker", "run", "docker.sock"),
			filepath.Join(home, ".docker", "desktop", "docker.sock"),
			filepath.Join(home, ".colima", "default", "docker.sock"))
	}
	for _, p := range candidates {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&fs.ModeSocket != 0 {
			return p, true
		}
	}
	return "", false
}

// dockerHealthy asks the engine for its info, bounded by healthTimeout.
func dockerHealthy() (err error) {
	defer func() {
		// testcontainers can panic while resolving a broken configuration.
		if r := recover(); r != nil {
			err = fmt.Errorf("docker provider panicked: %v", r)
		}
	}()
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return fmt.Errorf("docker provider: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), healthTimeout)
	defer cancel()
	if err := p.Health(ctx); err != nil { // Health closes the provider.
		return fmt.Errorf("docker engine health: %w", err)
	}
	return nil
}

// startContainer runs a single-node KRaft broker in a container and returns
// it. The container is reaped by testcontainers' Ryuk when the process ends.
func startContainer(progress io.Writer) (*Cluster, error) {
	where, ok := dockerSocketHint()
	if !ok {
		return nil, fmt.Errorf("no Docker engine (no DOCKER_HOST, no docker socket)")
	}
	if err := dockerHealthy(); err != nil {
		return nil, fmt.Errorf("docker at %s: %w", where, err)
	}
	image := os.Getenv(EnvImage)
	if image == "" {
		image = defaultImage
	}
	fmt.Fprintf(progress, "kafkatest: starting %s with testcontainers (docker at %s)\n", image, where)

	ctx, cancel := context.WithTimeout(context.Background(), containerTimeout)
	defer cancel()
	ctr, err := testcontainers.Run(ctx, image,
		testcontainers.WithExposedPorts(clientPort),
		testcontainers.WithEnv(containerEnv(randomClusterID())),
		// Hold the broker until the start script, which carries the
		// advertised address with the host's mapped port, is copied in.
		// The image's CMD (its launcher path) only becomes sh's $0.
		testcontainers.WithEntrypoint("sh", "-c",
			"while [ ! -f "+startScript+" ]; do sleep 0.1; done; exec sh "+startScript),
		testcontainers.WithLifecycleHooks(testcontainers.ContainerLifecycleHooks{
			PostStarts: []testcontainers.ContainerHook{writeStartScript},
		}),
		testcontainers.WithWaitStrategy(
			wait.ForLog("Kafka Server started").WithStartupTimeout(containerTimeout)),
	)
	if err != nil {
		if ctr != nil {
			_ = testcontainers.TerminateContainer(ctr)
		}
		return nil, fmt.Errorf("run %s: %w", image, err)
	}
	host, err := ctr.Host(ctx)
	if err != nil {
		_ = testcontainers.TerminateContainer(ctr)
		return nil, fmt.Errorf("container host: %w", err)
	}
	port, err := ctr.MappedPort(ctx, clientPort)
	if err != nil {
		_ = testcontainers.TerminateContainer(ctr)
		return nil, fmt.Errorf("mapped port: %w", err)
	}
	c := &Cluster{
		Brokers: []string{net.JoinHostPort(host, strconv.Itoa(int(port.Num())))},
		Kind:    KindTestcontainers,
	}
	if err := ping(c); err != nil {
		_ = testcontainers.TerminateContainer(ctr)
		return nil, err
	}
	return c, nil
}

// writeStartScript is the PostStarts hook: it learns the host-side address
// of the client port and copies in a script that advertises it and then
// runs the image's own launcher.
func writeStartScript(ctx context.Context, ctr testcontainers.Container) error {
	host, err := ctr.Host(ctx)
	if err != nil {
		return fmt.Errorf("kafkatest: container host: %w", err)
	}
	port, err := ctr.MappedPort(ctx, clientPort)
	if err != nil {
		return fmt.Errorf("kafkatest: mapped port: %w", err)
	}
	advertised := fmt.Sprintf("PLAINTEXT://%s,BROKER://localhost:9093",
		net.JoinHostPort(host, strconv.Itoa(int(port.Num()))))
	script := "#!/bin/sh\n" +
		"export KAFKA_ADVERTISED_LISTENERS='" + advertised + "'\n" +
		"exec /etc/kafka/docker/run\n"
	if err := ctr.CopyToContainer(ctx, []byte(script), startScript, 0o755); err != nil {
		return fmt.Errorf("kafkatest: copy start script: %w", err)
	}
	return nil
}

// containerEnv configures the apache/kafka image (its launcher turns
// KAFKA_FOO_BAR into foo.bar) like deploy/kafka.sh's broker: KRaft combined
// mode, one replica, no topic auto-creation, short group and transaction
// timeouts. Clients use PLAINTEXT (9092, advertised with the mapped port);
// BROKER (9093) is the inter-broker listener; CONTROLLER (9094) the quorum.
func containerEnv(clusterID string) map[string]string {
	return map[string]string{
		"CLUSTER_ID":                           clusterID,
		"KAFKA_NODE_ID":                        "1",
		"KAFKA_PROCESS_ROLES":                  "broker,controller",
		"KAFKA_LISTENERS":                      "PLAINTEXT://0.0.0.0:9092,BROKER://0.0.0.0:9093,CONTROLLER://0.0.0.0:9094",
		"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"KAFKA_INTER_BROKER_LISTENER_NAME":     "BROKER",
		"KAFKA_CONTROLLER_LISTENER_NAMES":      "CONTROLLER",
		"KAFKA_CONTROLLER_QUORUM_VOTERS":       "1@localhost:9094",

		"KAFKA_DEFAULT_REPLICATION_FACTOR":                       "1",
		"KAFKA_MIN_INSYNC_REPLICAS":                              "1",
		"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":                 "1",
		"KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS":                     "5",
		"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR":         "1",
		"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":                    "1",
		"KAFKA_TRANSACTION_STATE_LOG_NUM_PARTITIONS":             "5",
		"KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
		"KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR":            "1",
		"KAFKA_AUTO_CREATE_TOPICS_ENABLE":                        "false",
		"KAFKA_NUM_PARTITIONS":                                   "3",
		"KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS":                 "0",
		"KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS":                     "1000",
		"KAFKA_GROUP_CONSUMER_MIN_SESSION_TIMEOUT_MS":            "1000",
		"KAFKA_GROUP_CONSUMER_MIN_HEARTBEAT_INTERVAL_MS":         "500",
		"KAFKA_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS":             "1000",
		"KAFKA_TRANSACTION_MAX_TIMEOUT_MS":                       "300000",
		"KAFKA_TRANSACTIONAL_ID_EXPIRATION_MS":                   "3600000",
		"KAFKA_LOG_SEGMENT_BYTES":                                "16777216",
		"KAFKA_HEAP_OPTS":                                        "-Xms256m -Xmx1g",
	}
}

// randomClusterID returns a KRaft cluster id: 16 random bytes, base64url
// without padding (what `kafka-storage random-uuid` prints).
func randomClusterID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	return strings.TrimRight(base64.URLEncoding.EncodeToString(b[:]), "=")
}
