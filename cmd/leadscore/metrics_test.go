package main

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/leadscore/leadscore/internal/hugepages"
)

// TestHugePageMetric: where the system reports huge pages (Linux), the
// registry of run and dev has leadscore_process_huge_page_bytes, a gauge
// whose name lints clean.
func TestHugePageMetric(t *testing.T) {
	if _, err := hugepages.AnonHugeBytes(); err != nil {
		t.Skipf("no huge page figure here: %v", err)
	}
	const name = "leadscore_process_huge_page_bytes"
	reg := newRegistry()
	if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 1 {
		t.Fatalf("%s: %d series, %v; want 1", name, n, err)
	}
	if probs, err := testutil.GatherAndLint(reg, name); err != nil || len(probs) > 0 {
		t.Errorf("lint %s: %v %v", name, probs, err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			if v := mf.GetMetric()[0].GetGauge().GetValue(); v < 0 {
				t.Errorf("%s = %v", name, v)
			}
			return
		}
	}
	t.Errorf("%s not gathered", name)
}
