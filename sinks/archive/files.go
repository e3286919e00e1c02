package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// Table names, the first directory level under Config.Dir.
const (
	TableTouchpoints = "touchpoints"
	TableMQL         = "mql"
	TableDeadLetters = "dead_letters"
)

var tables = [...]string{TableTouchpoints, TableMQL, TableDeadLetters}

// FileName returns the name of the archive file holding the rows of the
// segment of topic/partition that begins at offset first.
func FileName(topic string, partition int32, first int64) string {
	return fmt.Sprintf("%s+%d+%020d.parquet", topic, partition, first)
}

// parseFileName is the inverse of FileName. A hidden temporary name
// (".<name>.tmp") is accepted too and reported with tmp set.
func parseFileName(name string) (topic string, partition int32, first int64, tmp, ok bool) {
	if strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp") {
		name = name[1 : len(name)-len(".tmp")]
		tmp = true
	}
	rest, found := strings.CutSuffix(name, ".parquet")
	if !found {
		return "", 0, 0, false, false
	}
	i := strings.LastIndexByte(rest, '+')
	if i < 0 || len(rest)-i-1 != 20 {
		return "", 0, 0, false, false
	}
	first, err := strconv.ParseInt(rest[i+1:], 10, 64)
	if err != nil {
		return "", 0, 0, false, false
	}
	rest = rest[:i]
	j := strings.LastIndexByte(rest, '+')
	if j <= 0 {
		return "", 0, 0, false, false
	}
	p, err := strconv.ParseInt(rest[j+1:], 10, 32)
	if err != nil {
		return "", 0, 0, false, false
	}
	return rest[:j], int32(p), first, tmp, true
}

// rowFile is one Parquet file of a segment being written under its
// temporary name.
type rowFile interface {
	// finish writes the footer, fsyncs and closes the file and returns its
	// size; the file keeps its temporary name.
	finish() (int64, error)
	// abort closes and removes the temporary file.
	abort()
	// paths returns the temporary and the final path.
	paths() (tmp, final string)
	table() string
	rows() int64
}

// bufferRows is how many rows a parquetFile buffers before handing them
// to the Parquet writer.
const bufferRows = 256

// parquetFile writes rows of type T to one temporary file.
type parquetFile[T any] struct {
	tbl        string
	tmp, final string
	f          *os.File
	w          *parquet.GenericWriter[T]
	buf        []T
	n          int64
}

func createParquetFile[T any](tbl, dir, name string, maxRows int) (*parquetFile[T], error) {
	tmp := filepath.Join(dir, "."+name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("archive: create %s: %w", tmp, err)
	}
	w := parquet.NewGenericWriter[T](f,
		parquet.Compression(&parquet.Zstd),
		parquet.CreatedBy("leadscore", "", ""),
		parquet.MaxRowsPerRowGroup(int64(max(maxRows, 1))),
		// No min/max for the raw blobs: they mean nothing to a query,
		// and a value of a few MiB in a page header and in the footer
		// makes the file unreadable by pyarrow (a page header over its
		// limit). A path a table does not have is ignored.
		parquet.SkipPageBounds("properties"), parquet.SkipPageStatistics("properties"),
		parquet.SkipPageBounds("traits"), parquet.SkipPageStatistics("traits"),
		parquet.SkipPageBounds("key"), parquet.SkipPageStatistics("key"),
		parquet.SkipPageBounds("key_base64"), parquet.SkipPageStatistics("key_base64"),
		parquet.SkipPageBounds("value"), parquet.SkipPageStatistics("value"),
		parquet.SkipPageBounds("detail"), parquet.SkipPageStatistics("detail"),
		parquet.SkipPageBounds("headers"), parquet.SkipPageStatistics("headers"),
	)
	return &parquetFile[T]{
		tbl:   tbl,
		tmp:   tmp,
		final: filepath.Join(dir, name),
		f:     f,
		w:     w,
		buf:   make([]T, 0, bufferRows),
	}, nil
}

func (p *parquetFile[T]) add(row T) error {
	p.buf = append(p.buf, row)
	p.n++
	if len(p.buf) == cap(p.buf) {
		return p.flushBuf()
	}
	return nil
}

func (p *parquetFile[T]) flushBuf() error {
	if len(p.buf) == 0 {
		return nil
	}
	if _, err := p.w.Write(p.buf); err != nil {
		return fmt.Errorf("archive: write %s: %w", p.tmp, err)
	}
	clear(p.buf)
	p.buf = p.buf[:0]
	return nil
}

func (p *parquetFile[T]) finish() (int64, error) {
	if err := p.flushBuf(); err != nil {
		return 0, err
	}
	if err := p.w.Close(); err != nil {
		return 0, fmt.Errorf("archive: close writer %s: %w", p.tmp, err)
	}
	if err := p.f.Sync(); err != nil {
		return 0, fmt.Errorf("archive: fsync %s: %w", p.tmp, err)
	}
	st, err := p.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("archive: stat %s: %w", p.tmp, err)
	}
	if err := p.f.Close(); err != nil {
		return 0, fmt.Errorf("archive: close %s: %w", p.tmp, err)
	}
	p.f = nil
	return st.Size(), nil
}

func (p *parquetFile[T]) abort() {
	if p.f != nil {
		_ = p.f.Close()
		p.f = nil
	}
	_ = os.Remove(p.tmp)
}

func (p *parquetFile[T]) paths() (string, string) { return p.tmp, p.final }
func (p *parquetFile[T]) table() string           { return p.tbl }
func (p *parquetFile[T]) rows() int64             { return p.n }

// syncDir fsyncs directory dir so that entries created, renamed or removed
// in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("archive: open dir %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("archive: fsync dir %s: %w", dir, err)
	}
	return nil
}

// ensureDir creates dir and any missing parents below root, fsyncing each
// parent whose entries changed.
func ensureDir(root, dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if dir != root && parent != dir {
		if err := ensureDir(root, parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("archive: mkdir %s: %w", dir, err)
	}
	if dir == root {
		return nil
	}
	return syncDir(parent)
}

// topicPartition names one partition.
type topicPartition struct {
	topic     string
	partition int32
}

// SupersededDir is the directory under Config.Dir where the files of a
// deleted and recreated topic are moved (SupersededDir/<old topic
// id>/<table>/dt=.../<name>), out of the tables' directories: their
// records are no longer in Kafka, so they cannot be archived again, and
// the new topic's files take the same names. Readers of the tables never
// look there (its name starts with _); an operator decides what to keep.
const SupersededDir = "_superseded"

// removeUncommitted deletes, in every table directory under root, the
// files of each partition in from whose first offset is at least
// from[partition] (written after the last commit, so their records will be
// consumed again) and every temporary file of those partitions. The
// files of a partition in recreated (its topic was deleted and created
// again since they were written; the value is the old topic id) are all
// moved to SupersededDir instead, whatever their offsets. It returns the
// paths removed and the paths moved.
func removeUncommitted(root string, from map[topicPartition]int64, recreated map[topicPartition]string) (removed, moved []string, err error) {
	for _, tbl := range tables {
		tdir := filepath.Join(root, tbl)
		dts, err := os.ReadDir(tdir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return removed, moved, fmt.Errorf("archive: read dir %s: %w", tdir, err)
		}
		for _, dt := range dts {
			if !dt.IsDir() || !strings.HasPrefix(dt.Name(), "dt=") {
				continue
			}
			dir := filepath.Join(tdir, dt.Name())
			entries, err := os.ReadDir(dir)
			if err != nil {
				return removed, moved, fmt.Errorf("archive: read dir %s: %w", dir, err)
			}
			changed := false
			for _, e := range entries {
				topic, part, first, tmp, ok := parseFileName(e.Name())
				if !ok {
					continue
				}
				tp := topicPartition{topic, part}
				c, mine := from[tp]
				oldID, gone := recreated[tp]
				if !mine || (!tmp && !gone && first < c) {
					continue
				}
				path := filepath.Join(dir, e.Name())
				if !tmp && gone {
					to := filepath.Join(root, SupersededDir, oldID, tbl, dt.Name())
					if err := ensureDir(root, to); err != nil {
						return removed, moved, err
					}
					if err := os.Rename(path, filepath.Join(to, e.Name())); err != nil {
						return removed, moved, fmt.Errorf("archive: move %s aside: %w", path, err)
					}
					if err := syncDir(to); err != nil {
						return removed, moved, err
					}
					moved = append(moved, path)
				} else if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return removed, moved, fmt.Errorf("archive: remove %s: %w", path, err)
				} else {
					removed = append(removed, path)
				}
				changed = true
			}
			if changed {
				if err := syncDir(dir); err != nil {
					return removed, moved, err
				}
			}
		}
	}
	return removed, moved, nil
}
