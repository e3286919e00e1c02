package synth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ProduceConfig configures Produce. The zero value produces as fast as
// possible until the source ends or the context is done, silently.
type ProduceConfig struct {
	// Rate is the most records per second to send. Default 0: as fast as
	// the client accepts them.
	Rate float64
	// Burst is how many records may be sent at once after an idle spell,
	// when Rate is set. Default Rate/100 (10 ms worth), at least 1.
	Burst int
	// Count stops after this many records have been sent. Default 0: until
	// the source ends or the context is done.
	Count int64
	// Progress, when not nil, receives a progress line every ProgressEvery:
	// records produced (acknowledged), the recent rate, errors, and with
	// Count set a bar and an ETA. On a terminal the line is rewritten in
	// place with '\r'; otherwise one plain line is written each time. A
	// final line with the totals ends it. Default nil: no output.
	Progress io.Writer
	// ProgressEvery is the refresh interval of Progress. Default 500ms.
	ProgressEvery time.Duration
	// DrainTimeout bounds the wait for acknowledgements once ctx is done.
	// (When the source ends or Count is reached, Produce waits for every
	// acknowledgement for as long as ctx allows, then this long.)
	// Default 30s.
	DrainTimeout time.Duration
	// Registerer, when not nil, gets the leadscore_synth_* counters. Calls
	// sharing a Registerer share the counters. Default nil.
	Registerer prometheus.Registerer
}

// Validate reports the first invalid field, by name.
func (c *ProduceConfig) Validate() error {
	switch {
	case math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) || c.Rate < 0:
		return fmt.Errorf("synth: ProduceConfig.Rate: %v must be a finite number >= 0", c.Rate)
	case c.Burst < 0:
		return fmt.Errorf("synth: ProduceConfig.Burst: %d is negative", c.Burst)
	case c.Count < 0:
		return fmt.Errorf("synth: ProduceConfig.Count: %d is negative", c.Count)
	case c.ProgressEvery < 0:
		return fmt.Errorf("synth: ProduceConfig.ProgressEvery: %v is negative", c.ProgressEvery)
	case c.DrainTimeout < 0:
		return fmt.Errorf("synth: ProduceConfig.DrainTimeout: %v is negative", c.DrainTimeout)
	}
	return nil
}

// Stats says what Produce did.
type Stats struct {
	// Sent is the number of records handed to the client.
	Sent int64
	// Produced is the number acknowledged by the broker, Bytes their key
	// and value bytes.
	Produced int64
	Bytes    int64
	// Failed is the number the client gave up on with an error.
	Failed int64
	// Canceled is the number abandoned unsent because ctx was done.
	Canceled int64
	// Elapsed runs from the call to the last acknowledgement.
	Elapsed time.Duration
}

// Source yields the records to produce, one per call; it returns io.EOF
// after the last one. Any other error stops Produce.
type Source func() (*kgo.Record, error)

// Source returns g as a Source that never ends.
func (g *Generator) Source() Source {
	return func() (*kgo.Record, error) { return g.Next(), nil }
}

// recordProducer is the part of *kgo.Client that Produce uses: asynchronous
// produce, blocking while the client's buffer is full (MaxBufferedRecords),
// the promise called once per record, possibly from another goroutine.
type recordProducer interface {
	Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error))
}

// Produce sends the records of next with cl until next returns io.EOF,
// Count records have been sent, or ctx is done, at most Rate per second,
// and waits for their acknowledgements. Records are produced
// asynchronously; the client's MaxBufferedRecords bounds how many are in
// flight. Records still unsent when ctx is done are abandoned (Canceled).
//
// Stopping because ctx is done is not an error. The error is next's (as
// is) when it failed, a summary naming the first produce error when any
// record failed, or a timeout when acknowledgements were still missing
// DrainTimeout after ctx was done; several are joined.
func Produce(ctx context.Context, cl *kgo.Client, next Source, cfg ProduceConfig) (Stats, error) {
	return produce(ctx, cl, next, cfg)
}

func produce(ctx context.Context, cl recordProducer, next Source, cfg ProduceConfig) (Stats, error) {
	if err := cfg.Validate(); err != nil {
		return Stats{}, err
	}
	if cfg.ProgressEvery == 0 {
		cfg.ProgressEvery = 500 * time.Millisecond
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return Stats{}, err
	}
	var lim *Limiter
	if cfg.Rate > 0 {
		if lim, err = NewLimiter(cfg.Rate, cfg.Burst); err != nil {
			return Stats{}, err
		}
	}

	start := time.Now()
	var (
		sent, produced, bytes, failed, canceled atomic.Int64
		firstErr                                atomic.Pointer[error]
		wg                                      sync.WaitGroup
	)
	promise := func(r *kgo.Record, err error) {
		defer wg.Done()
		switch {
		case err == nil:
			produced.Add(1)
			n := len(r.Key) + len(r.Value)
			bytes.Add(int64(n))
			m.produced.Inc()
			m.bytes.Add(float64(n))
		case ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
			canceled.Add(1)
		default:
			failed.Add(1)
			m.failed.Inc()
			firstErr.CompareAndSwap(nil, &err)
		}
	}

	var prog *progress
	stopProg := func() {}
	if cfg.Progress != nil {
		prog = &progress{w: cfg.Progress, tty: isTerminal(cfg.Progress), count: cfg.Count, start: start, lastT: start}
		read := func() (int64, int64) { return produced.Load(), failed.Load() }
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			tick := time.NewTicker(cfg.ProgressEvery)
			defer tick.Stop()
			for {
				select {
				case now := <-tick.C:
					p, f := read()
					prog.print(p, f, now, false)
				case <-stop:
					return
				}
			}
		}()
		stopProg = func() { close(stop); <-done }
	}

	var srcErr error
	for cfg.Count == 0 || sent.Load() < cfg.Count {
		if ctx.Err() != nil {
			break
		}
		if lim != nil {
			if lim.Wait(ctx) != nil {
				break
			}
		}
		r, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			srcErr = err
			break
		}
		if r == nil {
			srcErr = errors.New("synth: source returned a nil record")
			break
		}
		wg.Add(1)
		sent.Add(1)
		cl.Produce(ctx, r, promise)
	}

	acked := make(chan struct{})
	go func() { wg.Wait(); close(acked) }()
	var drainErr error
	select {
	case <-acked:
	case <-ctx.Done():
		t := time.NewTimer(cfg.DrainTimeout)
		select {
		case <-acked:
		case <-t.C:
			drainErr = fmt.Errorf("synth: %d records still unacknowledged %v after the context was done",
				sent.Load()-produced.Load()-failed.Load()-canceled.Load(), cfg.DrainTimeout)
		}
		t.Stop()
	}
	st := Stats{
		Sent:     sent.Load(),
		Produced: produced.Load(),
		Bytes:    bytes.Load(),
		Failed:   failed.Load(),
		Canceled: canceled.Load(),
		Elapsed:  time.Since(start),
	}
	stopProg()
	if prog != nil {
		prog.print(st.Produced, st.Failed, start.Add(st.Elapsed), true)
	}
	var failErr error
	if p := firstErr.Load(); p != nil {
		failErr = fmt.Errorf("synth: %d of %d records failed, the first with: %w", st.Failed, st.Sent, *p)
	}
	return st, join(srcErr, failErr, drainErr)
}

// join is errors.Join, except that a single error is returned as is.
func join(errs ...error) error {
	var only error
	n := 0
	for _, err := range errs {
		if err != nil {
			only = err
			n++
		}
	}
	if n > 1 {
		return errors.Join(errs...)
	}
	return only
}

// progress renders the progress line.
type progress struct {
	w       io.Writer
	tty     bool
	count   int64
	start   time.Time
	lastT   time.Time
	lastN   int64
	lastLen int
	buf     []byte
}

// print writes one progress line for n produced and f failed records at
// now; final writes the totals and ends the line.
func (p *progress) print(n, f int64, now time.Time, final bool) {
	elapsed := now.Sub(p.start)
	var rate float64
	if final {
		if s := elapsed.Seconds(); s > 0 {
			rate = float64(n) / s
		}
	} else if dt := now.Sub(p.lastT).Seconds(); dt > 0 {
		rate = float64(n-p.lastN) / dt
	}
	p.lastT, p.lastN = now, n

	b := p.buf[:0]
	if p.tty {
		b = append(b, '\r')
	}
	b = append(b, "produced "...)
	b = appendThousands(b, n)
	b = append(b, "  "...)
	b = appendThousands(b, int64(math.Round(rate)))
	if final {
		b = append(b, " rec/s avg  errors "...)
	} else {
		b = append(b, " rec/s  errors "...)
	}
	b = appendThousands(b, f)
	if p.count > 0 {
		frac := min(1, float64(n+f)/float64(p.count))
		const width = 24
		filled := int(frac * width)
		b = append(b, "  ["...)
		for i := range width {
			if i < filled {
				b = append(b, '#')
			} else {
				b = append(b, '.')
			}
		}
		b = append(b, "] "...)
		b = strconv.AppendFloat(b, 100*frac, 'f', 1, 64)
		b = append(b, '%')
		if !final && n > 0 && frac < 1 {
			avg := float64(n+f) / elapsed.Seconds()
			eta := time.Duration(float64(p.count-n-f) / avg * float64(time.Second))
			b = append(b, "  ETA "...)
			b = append(b, eta.Round(time.Second).String()...)
		}
	}
	if final {
		b = append(b, "  in "...)
		b = append(b, elapsed.Round(time.Millisecond).String()...)
	}
	if p.tty {
		// Blank out what is left of a longer previous line.
		n := len(b)
		for i := n; i < p.lastLen; i++ {
			b = append(b, ' ')
		}
		p.lastLen = n
		if final {
			b = append(b, '\n')
		}
	} else {
		b = append(b, '\n')
	}
	p.buf = b
	_, _ = p.w.Write(b) // progress output is best effort
}

// appendThousands appends n with ',' between groups of three digits.
func appendThousands(dst []byte, n int64) []byte {
	if n < 0 {
		dst = append(dst, '-')
		n = -n
	}
	var d [20]byte
	s := strconv.AppendInt(d[:0], n, 10)
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, c)
	}
	return dst
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
