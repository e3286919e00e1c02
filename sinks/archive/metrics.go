package archive

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	filesWritten *prometheus.CounterVec
	rowsWritten  *prometheus.CounterVec
	bytesWritten *prometheus.CounterVec
	undecodable  *prometheus.CounterVec
	writeSeconds prometheus.Histogram
	commitErrors prometheus.Counter
	// lockWaitSeconds and lockWaiting: partitions assigned to this
	// archiver whose lock another archiver still holds.
	lockWaitSeconds prometheus.Counter
	lockWaiting     prometheus.Gauge
}

// newMetrics creates the package's metrics and registers them with reg
// (nil: not registered). Collectors already registered by another
// Archiver on the same registry are shared.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		filesWritten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadscore_archive_files_written_total",
			Help: "Parquet files the archive made visible, by table.",
		}, []string{"table"}),
		rowsWritten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadscore_archive_rows_written_total",
			Help: "Rows in Parquet files the archive made visible, by table.",
		}, []string{"table"}),
		bytesWritten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadscore_archive_bytes_written_total",
			Help: "Size of Parquet files the archive made visible, by table.",
		}, []string{"table"}),
		undecodable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadscore_archive_undecodable_records_total",
			Help: "Records that could not be decoded for their table and were archived as dead letters, by intended table.",
		}, []string{"table"}),
		writeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "leadscore_archive_write_seconds",
			Help:    "Time to close a segment: finish, fsync and rename its files and fsync their directories.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscore_archive_commit_errors_total",
			Help: "Offset commits that failed after a segment's files were in place (the segment is replayed and rewritten).",
		}),
		lockWaitSeconds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadscore_archive_lock_wait_seconds_total",
			Help: "Time assigned partitions spent waiting for their archive lock, held by another archiver, summed over partitions.",
		}),
		lockWaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "leadscore_archive_lock_waiting_partitions",
			Help: "Assigned partitions waiting for their archive lock, held by another archiver.",
		}),
	}
	for _, t := range tables {
		m.filesWritten.WithLabelValues(t)
		m.rowsWritten.WithLabelValues(t)
		m.bytesWritten.WithLabelValues(t)
	}
	m.undecodable.WithLabelValues(TableTouchpoints)
	m.undecodable.WithLabelValues(TableMQL)
	if reg == nil {
		return m
	}
	m.filesWritten = register(reg, m.filesWritten)
	m.rowsWritten = register(reg, m.rowsWritten)
	m.bytesWritten = register(reg, m.bytesWritten)
	m.undecodable = register(reg, m.undecodable)
	m.writeSeconds = register(reg, m.writeSeconds)
	m.commitErrors = register(reg, m.commitErrors)
	m.lockWaitSeconds = register(reg, m.lockWaitSeconds)
	m.lockWaiting = register(reg, m.lockWaiting)
	return m
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}
