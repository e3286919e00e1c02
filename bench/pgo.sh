#!/usr/bin/env bash
# Regenerates cmd/leadscore/default.pgo, the profile-guided optimisation
# profile the leadscore binary is built with (DESIGN.md, "Profile-guided
# optimisation"): CPU profiles of what a scorer process runs, merged (the
# benchmarks' include the synthetic generator rendering their records,
# code the binary runs in dev and gen).
#
#   - the e2e harness (bench/e2e): the whole pipeline on a real broker,
#     1M touchpoints, the Kafka client, transactions and outputs included;
#   - BenchmarkDecodeApply: decoding and scoring, the generator's traffic;
#   - BenchmarkApplyTxn: scoring with the changelog's records.
#
# The profiles are taken from builds without a profile, so that the result
# does not depend on the profile it replaces. Needs a broker: KAFKA_BROKERS,
# or the local one (make kafka-up). Run from the repository root:
#
#   bash bench/pgo.sh        (or: make pgo)
set -euo pipefail

cd "$(dirname "$0")/.."
out=cmd/leadscore/default.pgo
tmp=$(mktemp -d)
trap 'rm -rf "$tmp" "$out.tmp"' EXIT

echo "pgo: e2e harness (1M touchpoints)" >&2
go run -pgo=off ./bench/e2e -events 1000000 -cpuprofile "$tmp/e2e.prof" >&2
echo "pgo: BenchmarkDecodeApply" >&2
go test -pgo=off -o "$tmp/ingest.test" -run '^$' -bench 'DecodeApply$' -benchtime 6000000x \
	-cpuprofile "$tmp/decodeapply.prof" ./ingest >&2
echo "pgo: BenchmarkApplyTxn" >&2
go test -pgo=off -o "$tmp/scorer.test" -run '^$' -bench 'ApplyTxn$' -benchtime 3000000x \
	-cpuprofile "$tmp/applytxn.prof" ./scorer >&2
go tool pprof -proto "$tmp/e2e.prof" "$tmp/decodeapply.prof" "$tmp/applytxn.prof" >"$out.tmp"
mv "$out.tmp" "$out"
echo "pgo: wrote $out ($(wc -c <"$out") bytes); rebuild and compare: make bench-compare" >&2
