package synth

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics counts what Produce sends. Every Produce call with the same
// Registerer shares one set of counters.
type metrics struct {
	produced prometheus.Counter
	failed   prometheus.Counter
	bytes    prometheus.Counter
}

// newMetrics registers the counters with reg (nil: unregistered). A counter
// already registered by an earlier call is reused, so Produce may be called
// any number of times with the same Registerer.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		produced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscore_synth_records_produced_total",
			Help: "Synthetic or replayed touchpoint records acknowledged by the broker.",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscore_synth_records_failed_total",
			Help: "Synthetic or replayed touchpoint records the broker did not accept.",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscore_synth_produced_bytes_total",
			Help: "Key and value bytes of the acknowledged synthetic or replayed records.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []*prometheus.Counter{&m.produced, &m.failed, &m.bytes} {
		if err := reg.Register(*c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("synth: register metrics: %w", err)
			}
			existing, ok := are.ExistingCollector.(prometheus.Counter)
			if !ok {
				return nil, fmt.Errorf("synth: register metrics: %w", err)
			}
			*c = existing
		}
	}
	return m, nil
}
