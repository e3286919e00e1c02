package flock

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Two opens of one file exclude each other, the holder line names this
// process, and the lock is free again once its holder unlocks.
func TestTryLockExcludesAndHolder(t *testing.T) {
	if !Available {
		t.Skip("no flock(2) on this platform: locks are not exclusive")
	}
	path := filepath.Join(t.TempDir(), "x.lock")
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	a, b := open(), open()
	if h := Holder(path); h != "unknown" {
		t.Errorf("holder of an empty lock file: %q, want unknown", h)
	}
	if ok, err := TryLock(a); !ok || err != nil {
		t.Fatalf("first lock: %v %v", ok, err)
	}
	if err := WriteHolder(a); err != nil {
		t.Fatal(err)
	}
	if h := Holder(path); !strings.HasPrefix(h, fmt.Sprintf("pid %d host ", os.Getpid())) {
		t.Errorf("holder line %q", h)
	}
	if ok, err := TryLock(b); ok || err != nil {
		t.Fatalf("second open locked while the first holds it: %v %v", ok, err)
	}
	if err := Unlock(a); err != nil {
		t.Fatal(err)
	}
	if ok, err := TryLock(b); !ok || err != nil {
		t.Fatalf("lock after the first unlocked: %v %v", ok, err)
	}
}
