package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// shutdownGrace is how long a stop may outlast --shutdown-timeout (which
// bounds the final commit) for the rest: leaving the groups, closing the
// archive files, the metrics endpoint.
const shutdownGrace = 5 * time.Second

// lastGrace bounds what a command asked to run before a forced exit.
const lastGrace = 5 * time.Second

// repeatWindow is how soon after the first signal the same signal again
// is taken as the same request, not a second one: coreutils' timeout (as
// other supervisors) sends its signal to the process and then to its
// process group, which the process is in, so that it arrives twice at
// once. A second Ctrl-C meant to force the exit comes later than this.
const repeatWindow = 500 * time.Millisecond

// Exit statuses (README, "Stopping").
const (
	exitOK     = 0
	exitFailed = 1 // an error, or a stop that did not finish in time
	exitUsage  = 2 // a mistake in the command line, the configuration or the model
	// A second signal exits with 128 + the signal's number, as a process
	// killed by it would be reported by a shell: 130 for SIGINT, 143 for
	// SIGTERM.
)

// stopper turns signals into a stop. The first SIGINT or SIGTERM cancels
// ctx: a graceful stop (the open transaction commits, archive files close,
// the groups are left). A second one exits at once, unless it is the same
// signal within repeatWindow of the first. Once a command has set a bound,
// a stop that outlasts it exits too.
//
// One channel stays subscribed to both signals from start to exit, so
// that no second signal can fall between two subscriptions and kill the
// process with the default action.
type stopper struct {
	ctx    context.Context
	cancel context.CancelFunc
	sigs   chan os.Signal
	quit   chan struct{}
	exitFn func(int) // os.Exit
	errOut io.Writer // where it speaks before a command set a logger
	closed sync.Once

	mu        sync.Mutex
	timeout   time.Duration // --shutdown-timeout; 0: no bound
	watchdog  *time.Timer
	signalled bool
	last      func()       // run, bounded by lastGrace, before a forced exit
	log       *slog.Logger // the command's, once it has one
}

// newStopper subscribes to SIGINT and SIGTERM and starts watching.
func newStopper() *stopper {
	s := newStopperWith(make(chan os.Signal, 2), os.Exit, os.Stderr)
	signal.Notify(s.sigs, os.Interrupt, syscall.SIGTERM)
	go s.watch()
	return s
}

// newStopperWith returns a stopper fed by sigs that exits through exit;
// the caller starts watch.
func newStopperWith(sigs chan os.Signal, exit func(int), errOut io.Writer) *stopper {
	ctx, cancel := context.WithCancel(context.Background())
	return &stopper{ctx: ctx, cancel: cancel, sigs: sigs, quit: make(chan struct{}), exitFn: exit, errOut: errOut}
}

// close unsubscribes and stops the watch; the process is about to exit.
func (s *stopper) close() {
	s.closed.Do(func() {
		signal.Stop(s.sigs)
		close(s.quit)
	})
	s.disarm()
	s.cancel()
}

// setLogger makes the stopper speak through the command's logger (its
// format and level) instead of plain lines on standard error.
func (s *stopper) setLogger(log *slog.Logger) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = log
}

func (s *stopper) say(level slog.Level, msg string) {
	s.mu.Lock()
	log := s.log
	s.mu.Unlock()
	if log != nil {
		log.Log(context.Background(), level, msg)
		return
	}
	fmt.Fprintln(s.errOut, "leadscore: "+msg)
}

func (s *stopper) watch() {
	var sig os.Signal
	select {
	case sig = <-s.sigs:
	case <-s.quit:
		return
	}
	s.say(slog.LevelInfo, fmt.Sprintf("%v: stopping gracefully; a second signal forces exit", sig))
	s.mu.Lock()
	s.signalled = true
	s.armLocked()
	s.mu.Unlock()
	s.cancel()

	first, at := sig, time.Now()
	for {
		select {
		case sig = <-s.sigs:
		case <-s.quit:
			return
		}
		if sig != first || time.Since(at) >= repeatWindow {
			break
		}
		s.say(slog.LevelInfo, fmt.Sprintf("%v again within %v: the same request, still stopping gracefully", sig, repeatWindow))
	}
	code := exitFailed
	if n, ok := sig.(syscall.Signal); ok {
		code = 128 + int(n)
	}
	s.say(slog.LevelWarn, fmt.Sprintf("second signal (%v): forced exit before the shutdown finished (exit %d)", sig, code))
	s.exit(code)
}

// bound makes a stop that lasts longer than timeout + shutdownGrace exit
// with exitFailed. Commands call it once their flags are read; a signal
// that came earlier starts the clock now.
func (s *stopper) bound(timeout time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timeout = timeout
	s.armLocked()
}

// disarm removes the bound (the second signal still forces exit).
func (s *stopper) disarm() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timeout = 0
	if s.watchdog != nil {
		s.watchdog.Stop()
	}
}

func (s *stopper) armLocked() {
	if !s.signalled || s.timeout <= 0 || s.watchdog != nil {
		return
	}
	timeout := s.timeout
	s.watchdog = time.AfterFunc(timeout+shutdownGrace, func() {
		s.mu.Lock()
		armed := s.timeout > 0
		s.mu.Unlock()
		if !armed {
			return
		}
		s.say(slog.LevelError, fmt.Sprintf("the shutdown did not finish within --shutdown-timeout (%v) + %v: forced exit (exit %d)",
			timeout, shutdownGrace, exitFailed))
		s.exit(exitFailed)
	})
}

// beforeForcedExit sets f to run before a forced exit (a second signal or
// the watchdog), for at most lastGrace: dev saves its embedded broker's
// state there, which a plain os.Exit would skip.
func (s *stopper) beforeForcedExit(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = f
}

// exit runs the last function, if any, within lastGrace, then exits.
func (s *stopper) exit(code int) {
	s.mu.Lock()
	f := s.last
	s.mu.Unlock()
	if f != nil {
		done := make(chan struct{})
		go func() {
			defer close(done)
			f()
		}()
		t := time.NewTimer(lastGrace)
		select {
		case <-done:
		case <-t.C:
		}
		t.Stop()
	}
	s.exitFn(code)
}

// stopping reports whether a signal asked the process to stop.
func (s *stopper) stopping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signalled
}
