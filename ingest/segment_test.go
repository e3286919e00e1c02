package ingest

import "testing"

func TestSnakeCase(t *testing.T) {
	d, err := NewDecoder(DecoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"Form Submitted":      "form_submitted",
		"Demo Requested":      "demo_requested",
		"page_view":           "page_view",
		"demoRequested":       "demo_requested",
		"DemoRequested":       "demo_requested",
		"PDF Downloaded":      "pdf_downloaded",
		"APIKeyCreated":       "api_key_created",
		"webinar-registered":  "webinar_registered",
		"  Email  Opened!! ":  "email_opened",
		"Step 2 Completed":    "step_2_completed",
		"v2Signup":            "v2_signup",
		"__x__":               "x",
		"Café Visité":         "café_visité",
		"Order.Completed/Now": "order_completed_now",
		"!!":                  "",
		"A":                   "a",
	} {
		d.buf = d.buf[:0]
		if got := d.snakeCase(in); got != want {
			t.Errorf("snakeCase(%q) = %q, want %q", in, got, want)
		}
	}
}
