package synth

import (
	"context"
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"
)

func TestLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := NewLimiter(1000, 10)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		start := time.Now()
		for range 10 {
			if err := l.Wait(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("the burst of 10 took %v", d)
		}
		for range 1000 {
			if err := l.Wait(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("1010 events at 1000/s with a burst of 10 took %v, want 1s", d)
		}
		// An idle spell refills the bucket only up to the burst.
		time.Sleep(time.Hour)
		start = time.Now()
		for range 30 {
			_ = l.Wait(ctx)
		}
		if d := time.Since(start); d != 20*time.Millisecond {
			t.Errorf("30 events after idling took %v, want 20ms", d)
		}
	})
}

func TestLimiterCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, _ := NewLimiter(1, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if err := l.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := l.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want the deadline", err)
		}
		if d := time.Since(start); d != 500*time.Millisecond {
			t.Errorf("gave up after %v", d)
		}
		// The token given back is due 1s after the first Wait.
		start = time.Now()
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 500*time.Millisecond {
			t.Errorf("next token after %v, want 500ms", d)
		}
		if err := l.Wait(ctx); err == nil {
			t.Error("Wait with a done context succeeded")
		}
	})
}

func TestLimiterDefaults(t *testing.T) {
	for _, rate := range []float64{0, -1, math.Inf(1), math.NaN()} {
		if _, err := NewLimiter(rate, 0); err == nil {
			t.Errorf("rate %v accepted", rate)
		}
	}
	l, _ := NewLimiter(50000, 0)
	if l.burst != 500 {
		t.Errorf("default burst %v, want 500", l.burst)
	}
	l, _ = NewLimiter(0.5, 0)
	if l.burst != 1 {
		t.Errorf("default burst %v, want 1", l.burst)
	}
}
