package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscore/leadscore/models"
	"github.com/leadscore/leadscore/scorer"
	"github.com/leadscore/leadscore/sinks/archive"
	"github.com/leadscore/leadscore/sinks/mqlout"
)

// tables are the archive's tables, in report order.
var tables = []string{archive.TableTouchpoints, archive.TableMQL, archive.TableDeadLetters}

// mqlItem is what must be equal in two runs' MQL events: every field but
// emitted_at follows from the input (SCORING.md 6, 7); the brief's set is
// (mql_id, lead_id, sequence, trigger_event_id, score), mql_id the key.
type mqlItem struct {
	LeadID   string
	Sequence int64
	Trigger  string
	Score    float64
}

func (a mqlItem) equal(b mqlItem) bool {
	return a.LeadID == b.LeadID && a.Sequence == b.Sequence && a.Trigger == b.Trigger && near(a.Score, b.Score)
}

// sourceKey locates an input record: both runs' inputs hold the same
// records at the same partitions and offsets.
type sourceKey struct {
	Partition int32
	Offset    int64
}

func (k sourceKey) String() string { return fmt.Sprintf("input %d/%d", k.Partition, k.Offset) }

// tpItem is what must be equal in two runs' archived touchpoints.
type tpItem struct {
	EventID, LeadID, MQLID  string
	Points, Engagement, Fit float64
}

func (a tpItem) equal(b tpItem) bool {
	return a.EventID == b.EventID && a.LeadID == b.LeadID && a.MQLID == b.MQLID &&
		near(a.Points, b.Points) && near(a.Engagement, b.Engagement) && near(a.Fit, b.Fit)
}

// dlItem is what must be equal in two runs' archived dead letters: the
// reason and the original record (its value by hash).
type dlItem struct {
	Reason string
	Key    string
	Value  uint64
}

// outputs is everything one run left behind.
type outputs struct {
	// From the topics (read_committed).
	mql           *multiset[string, mqlItem]
	topicRecords  map[string]int64 // per table: records of the topic it archives
	lastOffsets   map[string]offsets
	state         map[string][]byte // latest changelog value per lead
	stateRecords  int64
	archiveRows   map[string]int64
	archiveFiles  map[string]int
	archiveTP     *multiset[sourceKey, tpItem]
	archiveMQL    *multiset[string, mqlItem]
	archiveDL     *multiset[sourceKey, dlItem]
	undecodableMQ int64
}

func newOutputs() *outputs {
	return &outputs{
		mql:          newMultiset[string, mqlItem](),
		topicRecords: map[string]int64{},
		lastOffsets:  map[string]offsets{},
		state:        map[string][]byte{},
		archiveRows:  map[string]int64{},
		archiveFiles: map[string]int{},
		archiveTP:    newMultiset[sourceKey, tpItem](),
		archiveMQL:   newMultiset[string, mqlItem](),
		archiveDL:    newMultiset[sourceKey, dlItem](),
	}
}

// readEventTopics reads the MQL, dead-letter and scored topics of a run
// that is done (no transaction open): the MQL events, and the count and
// last offsets the archive must reach.
func (o *outputs) readEventTopics(ctx context.Context, brokers []string, s runSpec) error {
	res, err := readTopic(ctx, brokers, s.mql, func(r *kgo.Record) {
		m, err := mqlout.Decode(r.Value)
		if err != nil {
			o.undecodableMQ++
			o.mql.add(fmt.Sprintf("undecodable %s/%d/%d", r.Topic, r.Partition, r.Offset), mqlItem{})
			return
		}
		o.mql.add(m.MQLID, mqlItem{LeadID: m.LeadID, Sequence: int64(m.Sequence), Trigger: m.TriggerEventID, Score: m.Score})
	})
	if err != nil {
		return err
	}
	o.topicRecords[archive.TableMQL], o.lastOffsets[s.mql] = res.records, res.last
	for table, topic := range map[string]string{archive.TableDeadLetters: s.dlq, archive.TableTouchpoints: s.scored} {
		res, err := readTopic(ctx, brokers, topic, func(*kgo.Record) {})
		if err != nil {
			return err
		}
		o.topicRecords[table], o.lastOffsets[topic] = res.records, res.last
	}
	return nil
}

// readState reads the changelog: the latest value of every lead.
func (o *outputs) readState(ctx context.Context, brokers []string, s runSpec) error {
	res, err := readTopic(ctx, brokers, s.state, func(r *kgo.Record) {
		if len(r.Value) == 0 {
			delete(o.state, string(r.Key))
			return
		}
		o.state[string(r.Key)] = slices.Clone(r.Value)
	})
	o.stateRecords = res.records
	return err
}

// Projections of the archive's row types: only the compared columns are
// read.
type (
	tpRow struct {
		EventID         string  `parquet:"event_id"`
		LeadID          string  `parquet:"lead_id"`
		Points          float64 `parquet:"points"`
		Engagement      float64 `parquet:"engagement"`
		Fit             float64 `parquet:"fit"`
		MQLID           string  `parquet:"mql_id,optional"`
		SourcePartition int32   `parquet:"source_partition"`
		SourceOffset    int64   `parquet:"source_offset"`
	}
	mqlRow struct {
		MQLID          string  `parquet:"mql_id"`
		LeadID         string  `parquet:"lead_id"`
		Sequence       int64   `parquet:"sequence"`
		TriggerEventID string  `parquet:"trigger_event_id"`
		Score          float64 `parquet:"score"`
	}
	dlRow struct {
		Key             string `parquet:"key,optional"`
		Value           []byte `parquet:"value,optional"`
		Reason          string `parquet:"reason"`
		SourcePartition *int32 `parquet:"source_partition,optional"`
		SourceOffset    *int64 `parquet:"source_offset,optional"`
	}
)

// readArchive reads the three tables under dir.
func (o *outputs) readArchive(dir string) error {
	var err error
	o.archiveFiles[archive.TableTouchpoints], err = readTable(filepath.Join(dir, archive.TableTouchpoints), func(r *tpRow) {
		o.archiveRows[archive.TableTouchpoints]++
		o.archiveTP.add(sourceKey{r.SourcePartition, r.SourceOffset}, tpItem{
			EventID: strings.Clone(r.EventID), LeadID: strings.Clone(r.LeadID), MQLID: strings.Clone(r.MQLID),
			Points: r.Points, Engagement: r.Engagement, Fit: r.Fit,
		})
	})
	if err != nil {
		return err
	}
	o.archiveFiles[archive.TableMQL], err = readTable(filepath.Join(dir, archive.TableMQL), func(r *mqlRow) {
		o.archiveRows[archive.TableMQL]++
		o.archiveMQL.add(strings.Clone(r.MQLID), mqlItem{
			LeadID: strings.Clone(r.LeadID), Sequence: r.Sequence, Trigger: strings.Clone(r.TriggerEventID), Score: r.Score,
		})
	})
	if err != nil {
		return err
	}
	o.archiveFiles[archive.TableDeadLetters], err = readTable(filepath.Join(dir, archive.TableDeadLetters), func(r *dlRow) {
		o.archiveRows[archive.TableDeadLetters]++
		k := sourceKey{-1, -1}
		if r.SourcePartition != nil && r.SourceOffset != nil {
			k = sourceKey{*r.SourcePartition, *r.SourceOffset}
		}
		h := fnv.New64a()
		h.Write(r.Value)
		o.archiveDL.add(k, dlItem{Reason: strings.Clone(r.Reason), Key: strings.Clone(r.Key), Value: h.Sum64()})
	})
	return err
}

// readTable calls fn for every row of every Parquet file under dir (none
// when dir does not exist) and returns the number of files. Hidden
// temporary files are not archive files and are skipped.
func readTable[T any](dir string, fn func(*T)) (files int, err error) {
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path == dir {
				return filepath.SkipDir
			}
			return err
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), ".parquet") || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		files++
		return readFile(path, fn)
	})
	if err != nil {
		return files, fmt.Errorf("chaos: read archive %s: %w", dir, err)
	}
	return files, nil
}

func readFile[T any](path string, fn func(*T)) (err error) {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer func() {
		// The generic reader panics on a schema it cannot convert.
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: %v", path, p)
		}
	}()
	r := parquet.NewGenericReader[T](pf)
	defer r.Close()
	buf := make([]T, 1024)
	for {
		n, err := r.Read(buf)
		for i := range n {
			fn(&buf[i])
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
}

// compareOutputs fills the comparisons of rep: want is the reference run,
// got the chaos run; atMillis is the common time of the score comparison.
func compareOutputs(rep *Report, want, got *outputs, atMillis int64) error {
	rep.MQL = compare(want.mql, got.mql, mqlItem.equal)

	// Lead state, byte for byte, and scores through the engine.
	wantState, gotState := newMultiset[string, []byte](), newMultiset[string, []byte]()
	for k, v := range want.state {
		wantState.add(k, v)
	}
	for k, v := range got.state {
		gotState.add(k, v)
	}
	rep.LeadState = compare(wantState, gotState, bytes.Equal)
	type score struct{ Engagement, Fit float64 }
	scores := func(state map[string][]byte) (*multiset[string, score], error) {
		eng := scorer.NewEngine(models.Default())
		out := newMultiset[string, score]()
		for k, v := range state {
			if err := eng.Restore(k, v); err != nil {
				return nil, fmt.Errorf("chaos: restore lead %q: %w", k, err)
			}
			e, f, _ := eng.Score(k, atMillis)
			out.add(k, score{e, f})
		}
		return out, nil
	}
	ws, err := scores(want.state)
	if err != nil {
		return fmt.Errorf("reference state: %w", err)
	}
	gs, err := scores(got.state)
	if err != nil {
		return fmt.Errorf("chaos state: %w", err)
	}
	rep.Scores = compare(ws, gs, func(a, b score) bool { return near(a.Engagement, b.Engagement) && near(a.Fit, b.Fit) })

	rep.Archive = map[string]Tally{
		archive.TableTouchpoints: compare(want.archiveTP, got.archiveTP, tpItem.equal),
		archive.TableMQL:         compare(want.archiveMQL, got.archiveMQL, mqlItem.equal),
		archive.TableDeadLetters: compare(want.archiveDL, got.archiveDL, func(a, b dlItem) bool { return a == b }),
	}
	for _, run := range []struct {
		name string
		o    *outputs
	}{{"reference", want}, {"chaos", got}} {
		for _, table := range tables {
			if rows, recs := run.o.archiveRows[table], run.o.topicRecords[table]; rows != recs {
				rep.Coverage = append(rep.Coverage, fmt.Sprintf("%s run: archive %s has %d rows, its topic %d records",
					run.name, table, rows, recs))
			}
		}
		if run.o.undecodableMQ > 0 {
			rep.Coverage = append(rep.Coverage, fmt.Sprintf("%s run: %d undecodable MQL records", run.name, run.o.undecodableMQ))
		}
	}
	return nil
}
