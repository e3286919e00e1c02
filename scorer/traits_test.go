package scorer

import (
	"testing"
	"unsafe"
)

// TestTraitChangesCopyAndRollBack changes traits one at a time from a
// buffer the caller then overwrites, across commits and a rollback: the
// engine must keep its own copies (packed), the undo record must see the
// traits as they were, and fit must follow.
func TestTraitChangesCopyAndRollBack(t *testing.T) {
	e := NewEngine(mustParse(t, fitModel))
	buf := make([]byte, 64)
	traits := func(kv ...string) []Attr {
		var out []Attr
		off := 0
		for i := 0; i < len(kv); i += 2 {
			n := copy(buf[off:], kv[i+1])
			out = append(out, Attr{kv[i], unsafe.String(&buf[off], n)})
			off += n
		}
		return out
	}
	scribble := func() {
		for i := range buf {
			buf[i] = '#'
		}
	}
	step := func(id string, at int64, tr []Attr, wantFit float64) {
		t.Helper()
		r := apply(e, &Touchpoint{LeadID: "l", EventID: id, Type: "page_view", OccurredAt: at, Traits: tr})
		scribble()
		if r.Fit != wantFit {
			t.Fatalf("%s: fit %v, want %v", id, r.Fit, wantFit)
		}
	}
	value := func(name string) string {
		ti, _ := e.traitIndex.get(name)
		v, _ := e.leads[e.slotOf("l")].trait(uint16(ti))
		return v
	}
	step("1", t0, traits("title", "VP", "company_size", "300"), 25)
	step("2", t0+1, traits("country", "us"), 24)
	e.Commit()
	step("3", t0+2, traits("title", "Chief Of Staff", "company_size", "300"), 29)
	step("4", t0+3, traits("company_size", "9000"), 23)
	if value("title") != "Chief Of Staff" || value("company_size") != "9000" || value("country") != "us" {
		t.Fatalf("traits %q %q %q", value("title"), value("company_size"), value("country"))
	}
	e.Rollback()
	if value("title") != "VP" || value("company_size") != "300" || value("country") != "us" {
		t.Fatalf("after rollback: traits %q %q %q", value("title"), value("company_size"), value("country"))
	}
	if _, fit, _ := e.Score("l", t0); fit != 24 {
		t.Fatalf("fit after rollback %v, want 24", fit)
	}
	step("3", t0+2, traits("title", "Director"), 24)
	checkInvariants(t, e)
}
