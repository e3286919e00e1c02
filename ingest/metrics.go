package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	consumed        prometheus.Counter
	scored          prometheus.Counter
	duplicates      prometheus.Counter
	mqls            prometheus.Counter
	deadLetters     *prometheus.CounterVec
	transactions    *prometheus.CounterVec
	changelog       prometheus.Counter
	fetchErrors     prometheus.Counter
	commitSeconds   prometheus.Histogram
	latency         prometheus.Histogram
	lag             *prometheus.GaugeVec
	restoredRecords prometheus.Counter
	restoredLeads   prometheus.Counter
	restoreErrors   prometheus.Counter
}

// newMetrics builds the scorer's metrics and registers them with reg (when
// not nil). Counters of touchpoints move only when the transaction that
// processed them commits, so a touchpoint re-read after an abort is counted
// once.
func newMetrics(reg prometheus.Registerer, p *Pipeline) *metrics {
	m := &metrics{
		consumed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscore_touchpoints_consumed_total",
			Help: "Touchpoint records read from the input topic and committed.",
		}),
		scored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscore_touchpoints_scored_total",
			Help: "Touchpoints applied to a lead's score (including those worth 0 points).",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscore_touchpoints_duplicate_total",
			Help: "Touchpoints not applied because their event_id was seen for the lead within the dedupe window.",
		}),
		mqls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscore_mql_emitted_total",
			Help: "MQL events emitted (committed).",
		}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadscore_touchpoints_dead_lettered_total",
			Help: "Touchpoint records sent to the dead-letter topic, by reason.",
		}, []string{"reason"}),
		transactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadscore_transactions_total",
			Help: "Kafka transactions ended by the scorer, by outcome (committed, aborted).",
		}, []string{"outcome"}),
		changelog: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscore_changelog_records_total",
			Help: "Lead state records committed to the changelog topic.",
		}),
		fetchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscore_fetch_errors_total",
			Help: "Errors fetching the input topic (retried by the client).",
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "leadscore_transaction_commit_seconds",
			Help:    "Time to flush and end one transaction.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "leadscore_processing_latency_seconds",
			Help:    "Time from a touchpoint's Kafka record timestamp to its scoring (sampled per batch; 0 for a timestamp after the scoring).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18),
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "leadscore_consumer_lag_records",
			Help: "Records in an assigned input partition after the last one fetched.",
		}, []string{"partition"}),
		restoredRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscore_state_restore_records_total",
			Help: "Changelog records read while restoring state on partition assignment.",
		}),
		restoredLeads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscore_state_restore_leads_total",
			Help: "Leads restored from the changelog on partition assignment.",
		}),
		restoreErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscore_state_restore_errors_total",
			Help: "Changelog records that could not be decoded during restore.",
		}),
	}
	for _, r := range Reasons() {
		m.deadLetters.WithLabelValues(string(r))
	}
	m.transactions.WithLabelValues("committed")
	m.transactions.WithLabelValues("aborted")
	if reg != nil {
		reg.MustRegister(m.consumed, m.scored, m.duplicates, m.mqls, m.deadLetters,
			m.transactions, m.changelog, m.fetchErrors, m.commitSeconds, m.latency, m.lag,
			m.restoredRecords, m.restoredLeads, m.restoreErrors,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "leadscore_leads",
				Help: "Leads held in memory by this instance's partition workers.",
			}, func() float64 { return float64(p.leads.Load()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "leadscore_partitions_assigned",
				Help: "Input partitions this instance owns.",
			}, func() float64 {
				p.mu.Lock()
				defer p.mu.Unlock()
				return float64(len(p.workers))
			}),
		)
	}
	return m
}
