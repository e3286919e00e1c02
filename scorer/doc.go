// Package scorer is the pure scoring engine: it turns touchpoints into
// per-lead engagement, fit and MQL events following SCORING.md sections 2
// to 6. It does no I/O and starts no goroutines. The pipeline runs one
// Engine per Kafka partition on a single goroutine; an Engine has no locks
// and must not be shared.
//
// Apply scores one touchpoint. In steady state (a known lead, no new
// contributor group, no identity or trait change, no MQL) it does not
// allocate.
//
// # Rules
//
// The model's rules are compiled at NewEngine into a table indexed by
// touchpoint type, each type's rules ordered by number of conditions (most
// first, file order among equals), so the first rule that matches is the
// winner SCORING.md 2 asks for. Property conditions are globs: '*' matches
// any run of bytes including '/', '?' exactly one byte, every other byte
// itself (no escapes, no classes, case-sensitive). A touchpoint that matches
// no rule is still applied with 0 points: its time moves the lead's
// reference time, its event id is remembered, its traits count.
//
// The globs on one property key (the default model has four on url) are
// matched together, once per touchpoint, into a bit mask, and the masks of
// recent values are cached per engine (a 4-way cache of 1024 values of up
// to 128 bytes, each stored whole and compared whole before it is served):
// a site has far fewer pages than page views. Where values do not repeat,
// the cache notices it (fewer than 1 hit in 16 over 1024 lookups) and
// steps aside for the next 262144 touchpoints.
//
// # Decay
//
// Engagement is E(t) = sum_i p_i * 2^(-(t-t_i)/H) over applied touchpoints
// with t_i <= t, kept as the pair (E_ref, t_ref) where t_ref is the latest
// event time applied; H is the half-life: after H a touchpoint counts half,
// after 2H a quarter. A touchpoint (p, t) updates the pair exactly, whatever
// the arrival order:
//
//	t >= t_ref:  E_ref = E_ref * 2^(-(t - t_ref)/H) + p;  t_ref = t
//	t <  t_ref:  E_ref = E_ref + p * 2^(-(t_ref - t)/H)   (late)
//
// Every factor is at most 1 and E_ref stays bounded by the sum of |p|; the
// decay method's comment says why this form is numerically stable. The
// factors come from exp2 (exp2.go), a table of 2^(j/64) and a fifth-degree
// polynomial, within 2 ulps of math.Exp2 at a third of its cost. A new
// lead starts at t_ref = the event time of its first touchpoint. Score reports E_ref decayed to max(at, t_ref): a question about
// a time before t_ref is answered with E_ref, never with a value decayed
// backwards (which would grow and could overflow).
//
// # Time checks
//
// A touchpoint with event time t is "future" when t > now + MaxFutureSkew
// (checked first, for every lead), and "too_late" when t < t_ref -
// MaxLateness for a known lead (a new lead is never too late). Exactly at
// either bound is accepted.
//
// # Caps
//
// A rule with Cap > 0 gives a lead at most Cap positive points per UTC day
// of event time (day = floor(t / 86 400 000 ms)). The touchpoint that would
// pass the cap gets what is left, possibly 0; negative points are never
// capped and do not give room back. Usage is kept per (rule, day) in the
// lead's state and dropped once the day ends before t_ref - MaxLateness,
// when no accepted touchpoint can fall on it any more. Caps make the points
// of a touchpoint depend on which touchpoints of the same rule and day came
// before it, so with caps the result is deterministic in the partition order
// but not independent of it.
//
// # Fit
//
// Fit rules read the lead's traits. A touchpoint's traits replace the
// stored value of each trait some fit rule references (the most recently
// processed value counts, whatever its event time; traits of a duplicate,
// too_late or future touchpoint are ignored). Fit is the sum of the points
// of every fit rule whose trait is present and matches: Equals is
// case-insensitive any-of, Glob as for rules, otherwise a numeric range
// [Min, Max) on the value parsed as a float (surrounding spaces allowed; an
// unparseable value or NaN does not match; a nil bound is open). Fit does
// not decay.
//
// # Dedupe window
//
// Each applied touchpoint leaves (h, t): a 64-bit hash of its event id
// (hashID, eight bytes at a time; state version 1 used FNV-1a, see "State
// encoding") and its event time. A later touchpoint of the same lead with
// the same hash and an event time t' with |t' - t| <= DedupeWindow is a
// Duplicate: nothing changes, it is not even marked dirty. Entries are kept
// at least while t >= t_ref - MaxLateness - DedupeWindow; older ones could
// only match touchpoints that are too late anyway. Entries are kept in
// arrival order and dropped from the front, in batches: once the first is
// (MaxLateness + DedupeWindow) / 8 past that bound, the first ones before
// it go. An entry that arrived late, older than some that arrived before
// it, stays until they have gone.
// The guarantee therefore is:
//
//   - a redelivery whose event time is within DedupeWindow of the first
//     delivery's and which is not too_late is always reported Duplicate;
//   - in particular a redelivery with the same event time is never applied
//     twice: it is either Duplicate or too_late;
//   - the same event id with an event time more than DedupeWindow away from
//     every remembered delivery is a new touchpoint.
//
// The guarantee holds for leads with fewer than 2048 applied touchpoints
// within MaxLateness + DedupeWindow of event time (about 250 a day with the
// defaults). A lead that reaches 2048 remembered ids forgets the first
// eighth to arrive. The bound keeps a heavy lead's
// changelog record (about 20 KiB of ids) small. Two different ids collide
// with probability 2^-64 per pair of the same lead.
//
// Lookups rarely read the ids: each lead keeps a 128-bit Bloom filter of
// them (two bits an id), which rules out about 99 in 100 new ids of a lead
// with a handful remembered, and a lead with more than 48 ids gets an
// open-addressing index of them instead, so that even a heavy lead costs a
// probe or two. Both are derived, never encoded: the filter is rebuilt
// when ids are dropped, the index when it has filled up (a drop only marks
// the dropped ids' cells stale, for inserts to reuse), and both on Restore
// and on Rollback. A heavy lead has no use for the filter and does not
// keep it up to date.
//
// # Qualification
//
// Leads start armed. Before a touchpoint at t is applied, a disarmed lead
// whose engagement at max(t, t_ref) is below Rearm is armed again. After it
// is applied, the lead qualifies when it is armed, E_ref >= MQL, fit >=
// FitMin (when set) and, for a lead that qualified before and a Cooldown >
// 0, t - (event time of the last MQL) >= Cooldown. A qualifying touchpoint
// yields exactly one MQL (Result.Qualified) with Sequence one more than the
// last and disarms the lead. A touchpoint carrying only traits can qualify a
// lead that was held back by FitMin.
//
// The MQL's Score is E_ref after applying and its contributors are the
// lead's largest positive (type, channel, campaign) groups, decayed to
// t_ref, which is QualifiedAt unless the trigger was late. Each lead keeps
// at most 16 groups; when a 17th appears the smallest group is folded into
// a group of type "(other)", which is listed like any other. Groups sum to
// E_ref up to rounding.
//
// MQLID is a UUID-shaped string: the first 16 bytes of SHA-256 over
// "leadscore.mql.v1", then the lead key, the sequence and the trigger event
// id (strings prefixed by their 4-byte big-endian length, the sequence as 8
// bytes big-endian), with the version nibble set to 8 and the RFC 9562
// variant bits, in lowercase hex 8-4-4-4-12. The same lead, sequence and
// trigger always give the same id.
//
// # Transactions
//
// The pipeline commits MQL events, changelog records and offsets in one
// Kafka transaction. The engine keeps an undo log from the last Commit or
// Rollback: a copy of every lead as it was before its first change (its
// struct and entries, no encoding, in arenas reused from one transaction to
// the next; its strings are not copied: they are never changed in place,
// a new identity or trait value replaces them whole). A lead is dirty
// when it carries the number of the current transaction, so Commit does
// not visit the leads. Dirty and AppendDirty list the changed leads in
// order of first change, AppendDirty with their encoded state; Commit
// forgets the undo log; Rollback puts every changed lead back and removes
// the leads created since. A touchpoint that is not applied (duplicate,
// too_late, future) changes nothing and dirties nothing. Restore loads
// changelog records on partition assignment and is refused while leads are
// dirty.
//
// # State encoding
//
// A lead's state encodes to a compact, deterministic binary record (the
// changelog value; the lead key is the record key):
//
//	byte     format version, 2
//	uvarint  flags: 1 armed, 2 the key is a lead id (not an anonymous id),
//	         4 some dedupe entries are version 1 hashes
//	varint   with flag 4 only: the latest event time of those entries
//	string   anonymous id (latest non-empty)
//	string   account id (latest non-empty)
//	float64  E_ref
//	varint   t_ref, Unix ms
//	varint   event time of the last MQL (0 before the first)
//	uvarint  MQL sequence
//	uvarint  n, then n cap entries: string rule name, varint day, float64 used
//	         (in order of day; Restore reads them in any order)
//	uvarint  n, then n dedupe entries: uint64 hash, varint event time
//	uvarint  n, then n groups: string type, channel, campaign, float64 points
//	uvarint  n, then n traits: string name, string value
//
// A string is a uvarint length and the bytes; float64 and uint64 are 8
// bytes little-endian (floats bit-exact). Version 1 is the same without
// flag 4 and its field, with the dedupe entries hashed with 64-bit FNV-1a,
// one multiply per byte. Restore reads both, for good: a compacted
// changelog keeps the version 1 record of a lead with no touchpoint since.
// A lead restored from version 1 looks a redelivery up under both hashes,
// and is encoded with flag 4, until its version 1 entries have left the
// window. A record of a newer version than StateVersion is refused with
// ErrNewerState. Cap usage and traits are stored by name so that state
// survives a model change: names the engine's model does not know are
// dropped on Restore, and fit is recomputed. Restore rejects anything else
// malformed (unknown version or flag, truncation, trailing bytes,
// non-finite numbers, implausible counts, duplicate groups or cap entries)
// with an error wrapping ErrBadState.
//
// # Memory
//
// Leads live in one slice of structs, with no per-lead map, indexed by an
// open-addressing table of 8-byte cells (32 bits of a seeded hash of the
// key and the slot), so that finding a known lead reads one cell, then the
// lead, and compares the key's bytes only on a tag match. A lead is a
// 128-byte struct (two cache lines in the page-aligned table) plus two
// allocations: a slice of 16-byte entries holding its remembered event
// ids, then its contributor groups and the cap usage of its latest days
// (few cache lines per touchpoint; the ids first, so that adding an id, a
// group or a day's cap moves only the few groups and caps), and one string
// packing its key, anonymous id, account id and fit traits (strs.go),
// replaced whole when one of them changes: what a touchpoint compares is in
// one or two cache lines instead of up to five allocations. A busy lead,
// charging a few capped rules every day, holds a few dozen cap entries
// over MaxLateness; past 12 of them, the days before the latest move to a
// third allocation (the cold caps), which only a touchpoint a day or more
// late reads, so that the others move and fetch one to three lines of cap
// usage instead of six or more (hotCapsMax).
//
// Applying a touchpoint to a lead that is not in the CPU caches waits on a
// chain of dependent misses: index cell, lead, strings, entries (and for
// a heavy lead its id index; for a light lead about to drop old ids, all
// of them). Engine.Prefetch walks those chains for a
// batch of touchpoints level by level, so that the misses of a batch
// overlap, with prefetch instructions (assembly on amd64 and arm64), which
// do not stall the CPU. With 100k leads picked at
// random this more than halves the time per event (BenchmarkApply against
// BenchmarkApplyPrefetch). The pipeline goes further with a Prefetcher:
// it decodes a group of PrefetchBatch (32) records while the previous
// group's chains are walked, one level per record, then applies that
// group.
//
// The undo log of a transaction copies a lead's struct and its groups and
// hot caps at its first change, its cold caps at their first change, not
// its ids: those only grow at the end until some are dropped, and the
// first drop journals just the old ids it removes (see undoRec). A heavy lead (more than 48 remembered ids)
// also has an index of its ids (2 bytes a cell, at most half full).
// Contributor group keys (type, channel, campaign) are interned per engine
// and never freed, on the assumption that there are few of them; a small
// direct-mapped cache in front of the intern map serves the groups in use,
// and in front of it each rule remembers the group of its last touchpoint
// (the type is the rule's; the channel and campaign are compared).
package scorer
