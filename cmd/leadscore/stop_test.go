package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// stopRig is a stopper fed by a test's channel, whose exits are recorded
// instead of ending the process.
type stopRig struct {
	s     *stopper
	sigs  chan os.Signal
	exits chan int
	out   *syncBuffer
}

func newStopRig(t *testing.T) *stopRig {
	r := &stopRig{sigs: make(chan os.Signal, 2), exits: make(chan int, 4), out: &syncBuffer{}}
	r.s = newStopperWith(r.sigs, func(code int) { r.exits <- code }, r.out)
	go r.s.watch()
	t.Cleanup(r.s.close)
	return r
}

// exited returns the exit code recorded by now, or -1.
func (r *stopRig) exited() int {
	synctest.Wait()
	select {
	case c := <-r.exits:
		return c
	default:
		return -1
	}
}

func TestStopperFirstSignalCancels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newStopRig(t)
		r.s.bound(30 * time.Second)
		if r.s.ctx.Err() != nil || r.s.stopping() {
			t.Fatal("stopping before any signal")
		}
		r.sigs <- syscall.SIGTERM
		synctest.Wait()
		if r.s.ctx.Err() == nil || !r.s.stopping() {
			t.Fatal("the first signal did not cancel the context")
		}
		if c := r.exited(); c != -1 {
			t.Fatalf("exit %d on the first signal", c)
		}
		if !strings.Contains(string(r.out.Bytes()), "stopping gracefully; a second signal forces exit") {
			t.Fatalf("output %q", r.out.Bytes())
		}
	})
}

func TestStopperWatchdog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newStopRig(t)
		r.s.bound(10 * time.Second)
		r.sigs <- syscall.SIGINT
		time.Sleep(10*time.Second + shutdownGrace - time.Millisecond)
		if c := r.exited(); c != -1 {
			t.Fatalf("exit %d before --shutdown-timeout + grace", c)
		}
		time.Sleep(2 * time.Millisecond)
		if c := r.exited(); c != exitFailed {
			t.Fatalf("exit %d at --shutdown-timeout + grace, want %d", c, exitFailed)
		}
		if !strings.Contains(string(r.out.Bytes()), "did not finish within --shutdown-timeout (10s) + 5s: forced exit") {
			t.Fatalf("output %q", r.out.Bytes())
		}
	})
}

// A signal before the command set its bound (still reading flags) starts
// the clock when the bound is set.
func TestStopperSignalBeforeBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newStopRig(t)
		r.sigs <- syscall.SIGINT
		time.Sleep(time.Minute)
		if c := r.exited(); c != -1 {
			t.Fatalf("exit %d without a bound", c)
		}
		r.s.bound(time.Second)
		time.Sleep(time.Second + shutdownGrace - time.Millisecond)
		if c := r.exited(); c != -1 {
			t.Fatalf("exit %d before the bound ran out", c)
		}
		time.Sleep(2 * time.Millisecond)
		if c := r.exited(); c != exitFailed {
			t.Fatalf("exit %d, want %d", c, exitFailed)
		}
	})
}

func TestStopperDisarm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newStopRig(t)
		r.s.bound(time.Second)
		r.sigs <- syscall.SIGTERM
		time.Sleep(3 * time.Second)
		r.s.disarm()
		time.Sleep(time.Hour)
		if c := r.exited(); c != -1 {
			t.Fatalf("exit %d after disarm", c)
		}
		// The second signal still forces the exit.
		r.sigs <- syscall.SIGTERM
		if c := r.exited(); c != 128+int(syscall.SIGTERM) {
			t.Fatalf("exit %d on the second signal, want %d", c, 128+int(syscall.SIGTERM))
		}
	})
}

func TestStopperSecondSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newStopRig(t)
				r.s.bound(30 * time.Second)
				ran := false
				r.s.beforeForcedExit(func() { ran = true })
				r.sigs <- syscall.SIGINT
				synctest.Wait()
				if sig == syscall.SIGINT {
					time.Sleep(repeatWindow)
				}
				r.sigs <- sig
				if c := r.exited(); c != 128+int(sig) {
					t.Fatalf("exit %d, want %d", c, 128+int(sig))
				}
				if !ran {
					t.Fatal("the function set with beforeForcedExit did not run")
				}
				if !strings.Contains(string(r.out.Bytes()), "second signal ("+sig.String()+"): forced exit") {
					t.Fatalf("output %q", r.out.Bytes())
				}
			})
		})
	}
}

// A function set with beforeForcedExit that hangs delays the exit by
// lastGrace, no more.
func TestStopperLastFunctionBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newStopRig(t)
		release := make(chan struct{})
		defer close(release)
		r.s.beforeForcedExit(func() { <-release })
		r.sigs <- syscall.SIGINT
		synctest.Wait()
		r.sigs <- syscall.SIGTERM
		time.Sleep(lastGrace - time.Millisecond)
		if c := r.exited(); c != -1 {
			t.Fatalf("exit %d before lastGrace", c)
		}
		time.Sleep(2 * time.Millisecond)
		if c := r.exited(); c != 143 {
			t.Fatalf("exit %d after lastGrace, want 143", c)
		}
	})
}

// The same signal twice at once (coreutils' timeout sends it to the
// process and to its group) is one request; again after repeatWindow it
// forces the exit.
func TestStopperRepeatedSignal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newStopRig(t)
		r.s.bound(30 * time.Second)
		r.sigs <- syscall.SIGTERM
		r.sigs <- syscall.SIGTERM
		synctest.Wait()
		if c := r.exited(); c != -1 {
			t.Fatalf("exit %d on a repeated signal", c)
		}
		if !strings.Contains(string(r.out.Bytes()), "terminated again within 500ms: the same request") {
			t.Fatalf("output %q", r.out.Bytes())
		}
		time.Sleep(repeatWindow - 2*time.Millisecond)
		r.sigs <- syscall.SIGTERM
		if c := r.exited(); c != -1 {
			t.Fatalf("exit %d on a repeat within repeatWindow", c)
		}
		time.Sleep(2 * time.Millisecond)
		r.sigs <- syscall.SIGTERM
		if c := r.exited(); c != 143 {
			t.Fatalf("exit %d on a signal after repeatWindow, want 143", c)
		}
	})
}
