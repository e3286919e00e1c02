package archive

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
)

// A partition's files are named by topic, partition and first offset, and
// the cleanup on assignment trusts those names. A topic deleted and created
// again under the same name (or a development broker started afresh)
// starts its offsets over: without a check, the old files would look
// written after the last commit and be deleted, though their records are
// gone from Kafka. So each partition's lock directory entry has a sidecar,
// <Dir>/_locks/<topic>-<partition>.topic-id, holding the id of the topic
// (KIP-516) its files were written from; a partition whose topic now has
// another id has its files moved to SupersededDir instead.

// topicIDPath is the sidecar of tp.
func topicIDPath(root string, tp topicPartition) string {
	return filepath.Join(root, LockDir, fmt.Sprintf("%s-%d.topic-id", tp.topic, tp.partition))
}

// topicIDs returns the current id of each topic of tps, "" where the
// cluster gives none (a broker before topic ids).
func topicIDs(ctx context.Context, adm *kadm.Client, tps []topicPartition) (map[string]string, error) {
	var topics []string
	for _, tp := range tps {
		if !slices.Contains(topics, tp.topic) {
			topics = append(topics, tp.topic)
		}
	}
	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("archive: list topics: %w", err)
	}
	ids := make(map[string]string, len(topics))
	for _, t := range topics {
		d, ok := details[t]
		switch {
		case !ok:
			return nil, fmt.Errorf("archive: list topics: %s: not in the cluster's metadata", t)
		case d.Err != nil:
			return nil, fmt.Errorf("archive: list topics: %s: %w", t, d.Err)
		}
		if d.ID != (kadm.TopicID{}) {
			ids[t] = topicIDString(d.ID)
		}
	}
	return ids, nil
}

// topicIDString spells id as Kafka's tools do (kafka-topics.sh
// --describe): URL-safe base64 without padding, a valid file name.
func topicIDString(id kadm.TopicID) string {
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// recreatedPartitions returns the partitions of tps whose sidecar names
// another topic id than ids gives, with that old id, among those with no
// committed offset (uncommitted): deleting a topic deletes the group's
// offsets for it, so a partition whose committed offset survived was not
// recreated (a topic mirrored to another cluster with its offsets
// translated has a new id, and its files stay where they are).
func recreatedPartitions(root string, tps []topicPartition, ids map[string]string, uncommitted map[topicPartition]bool) (map[topicPartition]string, error) {
	var gone map[topicPartition]string
	for _, tp := range tps {
		now := ids[tp.topic]
		if now == "" || !uncommitted[tp] {
			continue
		}
		b, err := os.ReadFile(topicIDPath(root, tp))
		if errors.Is(err, fs.ErrNotExist) {
			continue // first assignment, or an archive older than the sidecars
		}
		if err != nil {
			return nil, fmt.Errorf("archive: read %s: %w", topicIDPath(root, tp), err)
		}
		if was := strings.TrimSpace(string(b)); was != "" && was != now {
			if gone == nil {
				gone = make(map[topicPartition]string)
			}
			gone[tp] = was
		}
	}
	return gone, nil
}

// recordTopicIDs writes each partition's sidecar, whole (temporary file,
// fsync, rename), where it does not already hold the current id.
func recordTopicIDs(root string, tps []topicPartition, ids map[string]string) error {
	// LockDir exists already where flock is available (lockPartitions),
	// not elsewhere.
	if err := ensureDir(root, filepath.Join(root, LockDir)); err != nil {
		return err
	}
	for _, tp := range tps {
		now := ids[tp.topic]
		if now == "" {
			continue
		}
		path := topicIDPath(root, tp)
		if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == now {
			continue
		}
		tmp := path + ".tmp"
		if err := writeSynced(tmp, []byte(now+"\n")); err != nil {
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("archive: rename %s: %w", tmp, err)
		}
		if err := syncDir(filepath.Dir(path)); err != nil {
			return err
		}
	}
	return nil
}

// writeSynced writes data to a new file at path and fsyncs it.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("archive: create %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("archive: write %s: %w", path, err)
	}
	return nil
}
