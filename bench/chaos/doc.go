// Command chaos checks leadscore's exactly-once guarantee (SCORING.md 7 and
// 8) end to end, against a real Kafka broker and the real binary, while
// instances crash, the group rebalances and the broker restarts.
//
//	go run ./bench/chaos -events 1000000 -leads 100000 -kills 20 [-partitions 6] [-brokers 127.0.0.1:19092]
//
// It exits 0 when the chaos run's output equals the reference run's, 1 when
// anything differs, 2 on a usage error.
//
// # Input
//
// A deterministic synthetic stream (package bench/synth in simulated time,
// seeded, with its deliberately bad records and duplicates) is produced
// twice: at full speed to the reference input topic, and at Config.Rate
// records per second to the chaos input topic while the chaos run consumes
// it. Partitions are chosen by the harness (a hash of the key, round robin
// for records without one) and one idempotent producer writes each copy, so
// both topics hold the same records at the same partitions and offsets;
// the harness checks the end offsets agree.
//
// # Runs
//
// The reference run is one `leadscore run` process, never interrupted, on
// its own consumer groups, output topics and archive directory. It is
// stopped with SIGTERM once it is done: the scorer group has committed the
// input's end offsets, no transaction is open on the output topics, and
// the archiver group has committed past the last record of every output
// partition.
//
// The chaos run starts one instance and, at seeded moments spread over the
// time its input takes to produce, does what operations sees:
//
//   - kill -9 of a running instance, restarted after a short pause, at
//     least Config.Kills times; the restart reuses the instance id, so its
//     transactional id fences the dead process and static membership takes
//     its partitions back at once;
//   - instance loss: a second instance joins, one of the two is killed and
//     left dead for two session timeouts, so that the group expires it and
//     the survivor restores and takes over its partitions (waiting out the
//     dead member's open transaction), then it comes back and the group
//     rebalances again;
//   - one broker restart (deploy/kafka.sh down, then up) while instances
//     run, when Config.BrokerRestart is set; an instance that exits on its
//     own (for instance because the broker was away) is restarted and
//     counted as an unexpected exit.
//
// When the input is consumed and the archive is complete, every instance
// gets SIGTERM and must exit 0.
//
// # Comparison
//
//   - MQL events, read read_committed from both MQL topics: the sets of
//     (mql_id, lead_id, sequence, trigger_event_id, score) must be equal,
//     with no mql_id twice.
//   - Lead state: the latest changelog record of every lead (read_committed)
//     must be byte for byte the same, and restoring both into a
//     scorer.Engine must give the same engagement and fit at a common time
//     to a relative 1e-9.
//   - Archive: the Parquet touchpoints, mql and dead_letters tables of both
//     runs must hold the same rows, each once: touchpoints and dead letters
//     keyed by source partition and offset, MQL rows by mql_id, with their
//     event id, points, engagement, fit and MQL id (or reason and record)
//     equal. Each archive must also hold as many rows as its topics hold
//     records.
//
// A summary table gives the events, the chaos done, wall times and, per
// output, expected / seen / duplicated / missing / unexpected / mismatched.
//
// # Reuse
//
// The harness is in the non-main files of this package (Config, Run,
// Report) so that TestChaosShort runs the same code, smaller and without a
// broker restart, in `go test`.
package main
