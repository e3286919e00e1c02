package ingest

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/leadscore/leadscore/internal/kafkatest"
)

// TestProducerBatchLimitFreshTopics is the regression test for truncated
// dead letters: right after EnsureTopics created the output topics, the
// broker answered DescribeConfigs with UNKNOWN_TOPIC_OR_PARTITION, the
// pipeline fell back to Kafka's default 1 MiB limit and cut a 1 MiB input
// value short in the dead-letter topic. A retriable error is now retried,
// and the created topics' own limit is used.
func TestProducerBatchLimitFreshTopics(t *testing.T) {
	for _, tc := range []struct {
		name    string
		code    int16
		refuse  int32 // requests answered with code before the cluster answers
		want    int32
		warning bool
	}{
		{"answered", 0, 0, maxRecordBytes, false},
		{"not yet known", kerr.UnknownTopicOrPartition.Code, 3, maxRecordBytes, false},
		{"not authorized", kerr.TopicAuthorizationFailed.Code, 1 << 30, 1048588, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := kafkatest.Fake(t)
			in := c.Topic(t, 2, nil)
			topics := Topics{Touchpoints: in, State: in + ".state", Scored: in + ".scored", MQL: in + ".mql", DLQ: in + ".dlq"}
			if err := EnsureTopics(context.Background(), c.Admin(t), topics, TopicPlan{Create: true}); err != nil {
				t.Fatal(err)
			}
			refused := refuseDescribeConfigs(c.KFake, tc.code, tc.refuse)
			var logs bytes.Buffer
			got, err := producerBatchLimit(context.Background(), c.Opts(), topics, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("batch limit %d after %d refused requests, want %d; log:\n%s", got, refused.Load(), tc.want, logs.String())
			}
			if tc.code != 0 && refused.Load() == 0 {
				t.Errorf("no DescribeConfigs request was refused: the test proves nothing")
			}
			if tc.code == kerr.TopicAuthorizationFailed.Code && refused.Load() != 1 {
				t.Errorf("%d requests refused for authorization, want 1: it does not go away by asking again", refused.Load())
			}
			if warned := strings.Contains(logs.String(), "assuming Kafka's default"); warned != tc.warning {
				t.Errorf("warning logged: %v, want %v; log:\n%s", warned, tc.warning, logs.String())
			}
		})
	}
}

// TestProducerBatchLimitStops: while the retries last, a stop (the context
// done) ends them at once, without an error, as Run ends on a stop.
func TestProducerBatchLimitStops(t *testing.T) {
	c := kafkatest.Fake(t)
	in := c.Topic(t, 1, nil)
	topics := Topics{Touchpoints: in, State: in + ".state", Scored: in + ".scored", MQL: in + ".mql", DLQ: in + ".dlq"}
	refuseDescribeConfigs(c.KFake, kerr.UnknownTopicOrPartition.Code, math.MaxInt32)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := producerBatchLimit(ctx, c.Opts(), topics, slog.New(slog.DiscardHandler)); err != nil {
		t.Errorf("stopped while retrying: %v, want no error", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("returned %v after the start, %v after the stop: the retries did not stop", took, took-500*time.Millisecond)
	}
}

// refuseDescribeConfigs makes fc answer its next n DescribeConfigs requests
// with code for every resource (0 for n: none), and returns the count of
// those answered so.
func refuseDescribeConfigs(fc *kfake.Cluster, code int16, n int32) *atomic.Int32 {
	var refused atomic.Int32
	fc.ControlKey(int16(kmsg.DescribeConfigs), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		if refused.Load() >= n {
			return nil, nil, false
		}
		fc.KeepControl()
		refused.Add(1)
		req := kr.(*kmsg.DescribeConfigsRequest)
		resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
		for _, r := range req.Resources {
			rr := kmsg.NewDescribeConfigsResponseResource()
			rr.ResourceType, rr.ResourceName, rr.ErrorCode = r.ResourceType, r.ResourceName, code
			resp.Resources = append(resp.Resources, rr)
		}
		return resp, nil, true
	})
	return &refused
}
