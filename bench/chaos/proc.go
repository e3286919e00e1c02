package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// runSpec names what one run (reference or chaos) consumes and writes.
type runSpec struct {
	name         string
	input        string
	mql, dlq     string
	scored       string
	state        string
	group        string
	archiveGroup string
	archiveDir   string
}

func (s runSpec) outputs() []string { return []string{s.mql, s.dlq, s.scored, s.state} }

// instance is one leadscore process slot: a fixed instance id, restarted
// any number of times.
type instance struct {
	h    *harness
	spec runSpec
	id   string // --instance-id, also the transactional id's suffix
	log  string // path of the output file, appended by every start

	starts  int
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	addr    string // metrics address of the current process
}

// start starts a new process for the slot; the previous one must have
// exited.
func (in *instance) start() error {
	if in.running() {
		return fmt.Errorf("chaos: instance %s: already running", in.id)
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(in.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("chaos: log file: %w", err)
	}
	in.starts++
	fmt.Fprintf(f, "\n===== chaos harness: start %d of %s at %s =====\n", in.starts, in.id, time.Now().Format(time.RFC3339Nano))
	h := in.h
	args := []string{"run",
		"--brokers", strings.Join(h.cfg.Brokers, ","),
		"--instance-id", in.id,
		"--group", in.spec.group,
		"--archive-group", in.spec.archiveGroup,
		"--session-timeout", h.cfg.SessionTimeout.String(),
		"--topic-touchpoints", in.spec.input,
		"--topic-mql", in.spec.mql,
		"--topic-dlq", in.spec.dlq,
		"--topic-scored", in.spec.scored,
		"--topic-state", in.spec.state,
		"--partitions", fmt.Sprint(h.cfg.Partitions),
		"--archive-dir", in.spec.archiveDir,
		"--archive-flush-idle", "1s",
		"--archive-roll-records", fmt.Sprint(h.cfg.RollRecords),
		"--metrics-addr", addr,
		"--log-level", "info",
	}
	cmd := exec.Command(h.bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("chaos: start %s: %w", in.id, err)
	}
	in.cmd, in.addr, in.waitErr = cmd, addr, nil
	done := make(chan struct{})
	in.done = done
	go func() {
		err := cmd.Wait()
		f.Close()
		in.waitErr = err
		close(done)
	}()
	return nil
}

// running reports whether the slot's process is alive.
func (in *instance) running() bool {
	if in.done == nil {
		return false
	}
	select {
	case <-in.done:
		return false
	default:
		return true
	}
}

// exitedOnItsOwn reports whether the current process ended without the
// harness stopping it, and how.
func (in *instance) exitedOnItsOwn() (string, bool) {
	if in.done == nil || in.running() || in.cmd == nil {
		return "", false
	}
	return exitString(in.waitErr), true
}

// kill sends SIGKILL and waits for the process to be gone.
func (in *instance) kill() {
	if !in.running() {
		return
	}
	_ = in.cmd.Process.Signal(syscall.SIGKILL)
	<-in.done
	in.cmd = nil
}

// terminate sends SIGTERM and waits up to limit, then kills; it returns
// the exit description ("exit 0" is success).
func (in *instance) terminate(limit time.Duration) string {
	if !in.running() {
		if in.cmd == nil {
			return "not running"
		}
		return exitString(in.waitErr)
	}
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.done:
	case <-time.After(limit):
		_ = in.cmd.Process.Signal(syscall.SIGKILL)
		<-in.done
		return fmt.Sprintf("no exit within %v of SIGTERM (killed)", limit)
	}
	in.cmd = nil
	return exitString(in.waitErr)
}

// waitReady polls /readyz until it answers 200 (the instance joined and
// restored its partitions), the process exits or ctx is done.
func (in *instance) waitReady(ctx context.Context) error {
	url := "http://" + in.addr + "/readyz"
	for {
		if !in.running() {
			return fmt.Errorf("chaos: %s exited before ready: %s", in.id, exitString(in.waitErr))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("chaos: readyz: %w", err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("chaos: %s not ready: %w", in.id, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// logTail returns the last n bytes of the instance's output file.
func (in *instance) logTail(n int) string {
	b, err := os.ReadFile(in.log)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func exitString(err error) string {
	if err == nil {
		return "exit 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "signal " + ws.Signal().String()
		}
		return fmt.Sprintf("exit %d", ee.ExitCode())
	}
	return err.Error()
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("chaos: free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// moduleRoot finds the directory of leadscore's go.mod from the working
// directory upwards.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("chaos: working directory: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/leadscore/leadscore\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("chaos: leadscore's go.mod not found above the working directory")
		}
		dir = parent
	}
}

// buildBinary builds ./cmd/leadscore of root into dir.
func buildBinary(ctx context.Context, root, dir string) (string, error) {
	out := filepath.Join(dir, "leadscore")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/leadscore")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("chaos: go build ./cmd/leadscore: %w\n%s", err, b)
	}
	return out, nil
}
