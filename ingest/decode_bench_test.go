package ingest

import (
	"runtime"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/leadscore/leadscore/scorer"
)

// Typical records, 300-500 bytes with a few properties.
const (
	typicalJSON = `{"event_id":"0b9f6c1e-6c2a-4c9e-9a51-3f2d7e8a1b42","lead_id":"crm-0012345","anonymous_id":"ajs-7f3c2a91-55d1","account_id":"acme.com","type":"page_view","channel":"web","campaign":"spring-launch-2024","occurred_at":"2024-03-10T14:05:06.789Z","properties":{"url":"https://acme.com/pricing?plan=pro","path":"/pricing","title":"Pricing \u2013 Acme","referrer":"https://www.google.com/","time_on_page":42},"traits":{"title":"Head of Marketing","employees":250}}`

	typicalSegment = `{"type":"track","event":"Form Submitted","messageId":"ajs-next-1710079506789-5c1d","userId":"crm-0012345","anonymousId":"ajs-7f3c2a91-55d1","timestamp":"2024-03-10T14:05:06.789Z","sentAt":"2024-03-10T14:05:07.001Z","properties":{"form_id":"demo-request","url":"https://acme.com/demo","plan":"pro"},"context":{"groupId":"acme.com","campaign":{"name":"spring-launch-2024","medium":"email","source":"newsletter"},"ip":"203.0.113.9","userAgent":"Mozilla/5.0"}}`

	typicalCloudEvent = `{"specversion":"1.0","id":"0b9f6c1e-6c2a-4c9e-9a51-3f2d7e8a1b42","source":"/web/tracker","type":"com.acme.lead.page_view","time":"2024-03-10T14:05:06.789Z","datacontenttype":"application/json","leadid":"crm-0012345","channel":"web","data":{"account_id":"acme.com","campaign":"spring-launch-2024","properties":{"url":"https://acme.com/pricing?plan=pro","path":"/pricing","title":"Pricing","time_on_page":42}}}`
)

func benchDecode(b *testing.B, key, value string, headers []kgo.RecordHeader) {
	d, err := NewDecoder(DecoderConfig{})
	if err != nil {
		b.Fatal(err)
	}
	k, v := []byte(key), []byte(value)
	var tp scorer.Touchpoint
	if err := d.Decode(k, v, headers, &tp); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(v)))
	b.ReportAllocs()
	// The machine may be shared: besides wall-clock records/s, report
	// records per second of this thread's CPU time (one core).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()
	b.ResetTimer()
	for b.Loop() {
		if err := d.Decode(k, v, headers, &tp); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	if cpu := threadCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "records/cpu-s")
	}
}

func BenchmarkDecodeJSON(b *testing.B) { benchDecode(b, "crm-0012345", typicalJSON, nil) }

func BenchmarkDecodeSegment(b *testing.B) { benchDecode(b, "crm-0012345", typicalSegment, nil) }

func BenchmarkDecodeCloudEvents(b *testing.B) {
	b.Run("structured", func(b *testing.B) { benchDecode(b, "crm-0012345", typicalCloudEvent, nil) })
	b.Run("binary", func(b *testing.B) {
		hs := []kgo.RecordHeader{
			{Key: "ce_specversion", Value: []byte("1.0")},
			{Key: "ce_id", Value: []byte("0b9f6c1e-6c2a-4c9e-9a51-3f2d7e8a1b42")},
			{Key: "ce_source", Value: []byte("/web/tracker")},
			{Key: "ce_type", Value: []byte("com.acme.lead.page_view")},
			{Key: "ce_time", Value: []byte("2024-03-10T14:05:06.789Z")},
			{Key: "ce_leadid", Value: []byte("crm-0012345")},
			{Key: "content-type", Value: []byte("application/json")},
		}
		data := `{"account_id":"acme.com","channel":"web","campaign":"spring-launch-2024","properties":{"url":"https://acme.com/pricing?plan=pro","path":"/pricing","title":"Pricing","time_on_page":42}}`
		benchDecode(b, "crm-0012345", data, hs)
	})
}
