package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leadscore/leadscore/internal/flock"
)

// TestDevDataDirLocked: a second dev on the data directory of a running
// one is refused at once with exit 2 and a message naming the directory
// and the first one's pid, and the first goes on; once the first has
// stopped, the lock is free and a new dev starts on the directory.
func TestDevDataDirLocked(t *testing.T) {
	if !flock.Available {
		t.Skip("no flock(2) on this platform: dev's data directory is not fenced")
	}
	e := newE2E(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "kafka")
	devArgs := func(listen, metricsAddr string) []string {
		return []string{"dev", "--generate=false", "--summary-every", "0", "--listen", listen,
			"--metrics-addr", metricsAddr, "--data-dir", data, "--archive-dir", filepath.Join(dir, "archive")}
	}

	listenA, metricsA := freeAddr(t), freeAddr(t)
	a := e.startLeadscore(devArgs(listenA, metricsA)...)
	e.waitReady(a, "http://"+metricsA+"/readyz", 60*time.Second)
	e.phase("start first")

	start := time.Now()
	// The same command line again, ports included: the data directory
	// is what it is told about, not a port in use.
	_, stderr, err := e.runErr(30*time.Second, nil, e.bin, devArgs(listenA, metricsA)...)
	took := time.Since(start)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("second dev on %s: %v, want exit 2\nstderr:\n%s", data, err, tail(stderr, 4000))
	}
	msg := string(stderr)
	for _, want := range []string{"--data-dir " + data + " is in use", fmt.Sprintf("pid %d ", a.cmd.Process.Pid)} {
		if !strings.Contains(msg, want) {
			t.Errorf("second dev's message does not say %q:\n%s", want, msg)
		}
	}
	if took > 10*time.Second {
		t.Errorf("second dev took %v to be refused, want at once", took)
	}
	e.phase("second refused")

	if a.exited() {
		t.Fatalf("the first dev exited when the second was refused: %v", a.waitErr)
	}
	resp, err := http.Get("http://" + metricsA + "/readyz")
	if err != nil {
		t.Fatalf("the first dev stopped answering after the second was refused: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the first dev's /readyz: %s after the second was refused", resp.Status)
	}
	if code, took := a.terminate(30 * time.Second); code != 0 {
		t.Fatalf("first dev exited with %d, %v after SIGTERM (want 0)", code, took)
	}
	if h := flock.Holder(filepath.Join(data, devLockFile)); h != "unknown" {
		t.Errorf("lock file still names a holder after the stop: %q", h)
	}
	e.phase("stop first")

	metricsC := freeAddr(t)
	c := e.startLeadscore(devArgs(freeAddr(t), metricsC)...)
	e.waitReady(c, "http://"+metricsC+"/readyz", 60*time.Second)
	if h := flock.Holder(filepath.Join(data, devLockFile)); !strings.HasPrefix(h, fmt.Sprintf("pid %d ", c.cmd.Process.Pid)) {
		t.Errorf("lock file holder %q, want the new dev's pid %d", h, c.cmd.Process.Pid)
	}
	if code, took := c.terminate(30 * time.Second); code != 0 {
		t.Errorf("new dev exited with %d, %v after SIGTERM (want 0)", code, took)
	}
	e.phase("restart")
}

// TestDevRefusedStartLeavesNoDataDir: a dev refused at start (a bad model,
// the broker's or the metrics port in use, a bad generator setting)
// creates neither its data directory nor its archive directory.
func TestDevRefusedStartLeavesNoDataDir(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	bad := filepath.Join("..", "..", "models", "testdata", "bad.yaml")
	cases := []struct {
		name string
		args []string
		want int
	}{
		{"bad model", []string{"--model", bad}, 2},
		{"broker port in use", []string{"--listen", busy.Addr().String()}, 1},
		{"metrics port in use", []string{"--metrics-addr", busy.Addr().String()}, 1},
		{"bad generator setting", []string{"--bad-fraction", "2"}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			data, archiveDir := filepath.Join(dir, "kafka"), filepath.Join(dir, "archive")
			// The flags of the case come last and win.
			args := append([]string{"dev", "--summary-every", "0", "--listen", freeAddr(t), "--metrics-addr", freeAddr(t),
				"--data-dir", data, "--archive-dir", archiveDir}, c.args...)
			if got := run(args); got != c.want {
				t.Errorf("dev with %s: exit %d, want %d", c.name, got, c.want)
			}
			for _, d := range []string{data, archiveDir} {
				if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("dev with %s left %s behind (stat: %v)", c.name, d, err)
				}
			}
		})
	}
}
