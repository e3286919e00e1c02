package kafkatest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// scriptTimeout bounds `deploy/kafka.sh up`: a cold start downloads ~45 MB
// of jars with Maven before the broker's own start-up (bounded by the script
// at 90 s).
const scriptTimeout = 5 * time.Minute

// scriptPath is the broker script relative to the module root.
const scriptPath = "deploy/kafka.sh"

// moduleRoot walks up from the working directory (go test runs in the
// package's directory) to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("getwd: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// startLocal runs `deploy/kafka.sh up` (a no-op when the broker is up) and
// returns the broker it prints. The script's stderr is copied to progress
// so a slow first start (Maven download) is visible.
func startLocal(progress io.Writer) (*Cluster, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	script := filepath.Join(root, scriptPath)
	if _, err := os.Stat(script); err != nil {
		return nil, fmt.Errorf("broker script: %w", err)
	}
	if _, err := exec.LookPath("bash"); err != nil {
		return nil, fmt.Errorf("bash: %w", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", script, "up")
	cmd.Dir = root
	cmd.Stdout = &stdout
	cmd.Stderr = io.MultiWriter(&stderr, progress)
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s up: %w: %s", scriptPath, err, lastLines(stderr.String(), 15))
	}
	brokers, err := parseBrokersLine(stdout.String())
	if err != nil {
		return nil, fmt.Errorf("%s up: %w", scriptPath, err)
	}
	out := stdout.String()
	c := &Cluster{Brokers: brokers, Kind: KindLocalScript,
		SASLSSL: splitBrokers(scriptVar(out, EnvSASLSSLBrokers)), TLSCAFile: scriptVar(out, EnvTLSCAFile),
		MTLS:          splitBrokers(scriptVar(out, EnvMTLSBrokers)),
		TLSClientCert: scriptVar(out, EnvTLSClientCert), TLSClientKey: scriptVar(out, EnvTLSClientKey)}
	if err := ping(c); err != nil {
		return nil, err
	}
	return c, nil
}

// parseBrokersLine finds the KAFKA_BROKERS=host:port[,host:port] line that
// `kafka.sh up` prints on stdout.
func parseBrokersLine(out string) ([]string, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), EnvBrokers+"="); ok {
			if bs := splitBrokers(v); len(bs) > 0 {
				return bs, nil
			}
		}
	}
	return nil, fmt.Errorf("no %s= line in output %q", EnvBrokers, out)
}

// scriptVar returns the value of the NAME=value line that `kafka.sh up`
// prints for name, or "".
func scriptVar(out, name string) string {
	for line := range strings.SplitSeq(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+"="); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// lastLines returns the last n lines of s, for error messages.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
