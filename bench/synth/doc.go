// Package synth makes synthetic touchpoint traffic and produces it, or a
// recorded JSONL file, to Kafka. `leadscore dev` feeds its embedded broker
// with it; `leadscore gen` sends it to any cluster at a rate or count; tests
// and benchmarks use it as a reproducible input.
//
// # Generator
//
// A Generator yields one kgo.Record per Next call, keyed by the person's id,
// the value a touchpoint in leadscore's canonical JSON (SCORING.md 1), a
// Segment page/track call or a structured CloudEvent, as configured. The
// traffic is meant to look like a B2B marketing funnel and to exercise every
// rule type of the default model:
//
//   - Ordinary leads ("lead-000123"), chosen with a Zipf-like skew: most
//     have a few page views and e-mail opens; some click, download,
//     register for webinars, unsubscribe or bounce. Their popularity rank
//     is scattered over the ids, so lead-000000 is not the busiest.
//   - Hot leads (GenConfig.HotFraction of the leads, ids indistinguishable
//     from the others) walk a buying journey: blog post, e-mail click to
//     pricing, pricing page, download, webinar, customer stories,
//     comparison, pricing again, demo request; then keep coming back. They
//     have senior titles at mid-market companies in target industries and
//     qualify as MQLs under the default model. HotLeads lists them.
//   - Anonymous visitors ("anon-" and 16 hex digits, keyed by that id)
//     viewing pages; a fifth of known leads' page views also carry the
//     lead's anonymous id.
//   - account_id is the domain of the lead's e-mail address; forms, demo
//     requests, webinar registrations and some downloads and event scans
//     carry traits (title, company_size, industry, country, e-mail, name).
//   - Channels web, paid, social, email, event and sales; campaigns for
//     paid, social, e-mail, webinars and events.
//   - occurred_at as RFC 3339 in UTC (mostly), with an offset, or epoch
//     milliseconds (canonical JSON only).
//   - A few deliberately bad records, each marked with the HeaderExpect
//     header naming the dead-letter reason it should get, and a few exact
//     re-sends of recent records (duplicates).
//
// All randomness comes from GenConfig.Seed; people and companies are
// derived by hashing, so a population of millions costs no memory.
//
// # Time
//
// Live mode (GenConfig.Step zero) follows the wall clock: each record
// happened a second or so ago, a few minutes or hours ago (attendance
// lists are uploaded late), never more than 3 days. Simulated mode
// (Step > 0) starts at GenConfig.Start and advances by Step on average per
// record, so the whole stream is a function of the config: use it for
// tests, benchmarks and replays.
//
// # Producing
//
// Produce sends a Source (Generator.Source, or ReplayJSONL for a file) with
// a franz-go client at a given rate, stops after a count or when the
// context is done, waits for acknowledgements, and can draw a progress
// line. Limiter is the token bucket behind the rate.
//
// # Formats
//
// Segment: page_view is a "page" call, every other type a "track" call
// whose event name snake-cases back to the type ("Demo Request");
// channel and campaign are context.campaign.medium and .name, the account
// context.groupId. CloudEvents: type "com.example.marketing.touchpoint.<type>",
// id, time, the extension attributes leadid, anonymousid, accountid,
// channel and campaign, properties and traits in data, and the Kafka
// header content-type: application/cloudevents+json. Both map onto the
// canonical touchpoint as package ingest decodes them.
package synth
