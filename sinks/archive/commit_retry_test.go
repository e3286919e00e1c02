package archive

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCommitAgainWhenPartitionKept: the commit of a partition's last
// segment fails as it does for an archiver the group dropped while it
// stalled (UNKNOWN_MEMBER_ID); the client rejoins and, cooperative, keeps
// the partition without a revoke, so no other archiver rewrites the
// segment and the client's position is past it. The archiver must commit
// after it again, or the committed offset stays behind until the
// partition's next segment (TestArchiverStalledOwnerFenced/rename hit this
// about once in 40 runs). The archive holds every record once.
func TestCommitAgainWhenPartitionKept(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, scoredTopic, mqlTopic, dlqTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addrs := c.ListenAddrs()
	at := time.Date(2026, 10, 5, 9, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs, scoredRecord(0, fmt.Sprintf("c%02d", i), at.Add(time.Duration(i)*time.Second)))
	}
	if err := producer(t, addrs, "").ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The commit of offset 10 (the second and last segment) is refused once.
	var refused atomic.Int32
	c.ControlKey(int16(kmsg.OffsetCommit), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		req := kr.(*kmsg.OffsetCommitRequest)
		last := false
		for _, tt := range req.Topics {
			for _, p := range tt.Partitions {
				// Only the scored topic's partition 0 has records; newer
				// requests name topics by id only.
				last = last || p.Partition == 0 && p.Offset == 10
			}
		}
		if !last || refused.Load() > 0 {
			c.KeepControl()
			return nil, nil, false
		}
		refused.Add(1)
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, tt := range req.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic, rt.TopicID = tt.Topic, tt.TopicID
			for _, p := range tt.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, kerr.UnknownMemberID.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})

	dir := t.TempDir()
	cfg := testConfig(addrs, dir)
	cfg.RollRecords = 5
	cfg.FlushIdle = time.Hour
	a := newArchiver(t, cfg)
	stop := start(t, a)
	waitCommitted(t, addrs, lastOffsets(recs))
	if refused.Load() != 1 {
		t.Errorf("%d commits of offset 10 refused, want 1: the test proves nothing", refused.Load())
	}
	if got := testutil.ToFloat64(a.m.commitErrors); got != 1 {
		t.Errorf("commit errors counted: %v, want 1", got)
	}
	if err := stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	got := readArchive(t, dir)
	if ids := eventIDs(t, got.touchpoints); len(got.touchpoints) != len(recs) || len(ids) != len(recs) {
		t.Errorf("archive has %d rows, %d distinct, want %d each; files %v", len(got.touchpoints), len(ids), len(recs), got.files)
	}
}
