package synth

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Limiter is a token bucket: tokens accrue at Rate per second up to Burst,
// and each Wait takes one. Wait reserves its token before sleeping (the
// balance may go negative), so the long-run rate is exact even though
// timers are coarse: oversleeping yields tokens that the next calls spend
// without sleeping. It reads time with time.Now and sleeps with timers, so
// tests run it in a testing/synctest bubble. It is not safe for concurrent
// use.
type Limiter struct {
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

// NewLimiter returns a Limiter allowing rate events per second (> 0) with
// bursts of up to burst events; burst <= 0 means rate/100 (10 ms worth),
// at least 1. The bucket starts full.
func NewLimiter(rate float64, burst int) (*Limiter, error) {
	if !(rate > 0) || math.IsInf(rate, 0) {
		return nil, fmt.Errorf("synth: limiter rate %v: must be positive and finite", rate)
	}
	b := float64(burst)
	if burst <= 0 {
		b = max(1, math.Ceil(rate/100))
	}
	return &Limiter{rate: rate, burst: b, tokens: b, last: time.Now()}, nil
}

// Wait takes one token, sleeping until it is due. It returns ctx.Err()
// without taking the token if ctx is done first.
func (l *Limiter) Wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now()
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	l.tokens--
	if l.tokens >= 0 {
		return nil
	}
	d := time.Duration(-l.tokens / l.rate * float64(time.Second))
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		l.tokens++ // give the token back
		return ctx.Err()
	}
}
