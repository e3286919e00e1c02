#!/usr/bin/env bash
# The whole test suite, as `make test` runs it on a fresh machine:
#   1. installs what the tests need: kcat (Debian package), the Python
#      packages of deploy/requirements-test.txt (pip), the Kafka jars (Maven,
#      through deploy/kafka.sh);
#   2. finds a real Kafka broker: KAFKA_BROKERS if set; else a testcontainers
#      Kafka when a Docker engine answers (the Go harness starts it); else the
#      local broker of deploy/kafka.sh, started here and stopped at the end;
#   3. checks gofmt, runs go vet (also for Windows and arm64), the scorer's tests
#      on 386 (its plain-Go prefetch), the Go tests with -race and the invariants build tag
#      (unit, integration and interop), and the Python tests;
#   4. says which broker it used.
# With CI=true a missing real broker fails the run instead of skipping the
# integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS=-mod=mod

log() { printf '\n== %s: %s\n' "$(date +%H:%M:%S)" "$*"; }
stage_start=$(date +%s)
stage() { # name: print how long the previous stage took
  local now; now=$(date +%s)
  printf '   (%ss)\n' "$((now - stage_start))"
  stage_start=$now
  log "$1"
}

install_deps() {
  log "dependencies"
  if ! command -v kcat >/dev/null 2>&1; then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing kcat (Debian package)"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq kcat >/dev/null
  fi
  kcat -V 2>&1 | head -1
  if ! python3 -c 'import pyarrow, duckdb, pandas, confluent_kafka, jsonschema, yaml, pytest' 2>/dev/null; then
    echo "installing Python packages (deploy/requirements-test.txt)"
    python3 -m pip install -q --disable-pip-version-check -r deploy/requirements-test.txt
  fi
  python3 -c 'import pyarrow, duckdb, confluent_kafka; print("pyarrow", pyarrow.__version__, "duckdb", duckdb.__version__, "confluent-kafka", confluent_kafka.version())'
}

if [ "${1:-}" = "--deps-only" ]; then
  install_deps
  bash deploy/kafka.sh fetch
  exit 0
fi

install_deps

started_broker=""
broker_desc=""
if [ -n "${KAFKA_BROKERS:-}" ]; then
  broker_desc="KAFKA_BROKERS=${KAFKA_BROKERS} (from the environment)"
elif docker info >/dev/null 2>&1; then
  broker_desc="a Kafka container started by testcontainers-go"
else
  stage "real Apache Kafka broker (deploy/kafka.sh)"
  if ! bash deploy/kafka.sh status >/dev/null 2>&1; then
    started_broker=yes
  fi
  bash deploy/kafka.sh up
  KAFKA_BROKERS=$(bash deploy/kafka.sh bootstrap)
  export KAFKA_BROKERS
  # Its SASL_SSL and mutual TLS listeners, CA and client certificate, for
  # the tests of the TLS and SASL settings.
  while IFS='=' read -r name value; do
    case "$name" in
    KAFKA_SASL_SSL_BROKERS | KAFKA_TLS_CA_FILE | KAFKA_MTLS_BROKERS | KAFKA_TLS_CLIENT_CERT | KAFKA_TLS_CLIENT_KEY)
      export "$name=$value"
      ;;
    esac
  done < <(bash deploy/kafka.sh sasl-env)
  broker_desc="real Apache Kafka $(bash deploy/kafka.sh version 2>/dev/null || true) at ${KAFKA_BROKERS} (deploy/kafka.sh, KRaft, single node)"
fi
cleanup() {
  if [ -n "$started_broker" ]; then
    bash deploy/kafka.sh down || true
  fi
}
trap cleanup EXIT

stage "gofmt, go vet"
unformatted="$("$(go env GOROOT)/bin/gofmt" -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))"
if [ -n "${unformatted}" ]; then
  echo "not gofmt-formatted (run gofmt -w):"
  echo "${unformatted}"
  exit 1
fi
go vet ./...
# The archiver and the benchmarks have per-OS files: keep the other side
# building.
GOOS=windows go vet ./...

stage "the scorer on other architectures"
# The scorer's prefetch is assembly on amd64 and arm64 and plain Go
# elsewhere: assemble and vet the arm64 side (vet checks the frames, the
# build the instructions), and run the scorer's tests on the plain-Go side
# (386 binaries run on amd64 Linux).
GOARCH=arm64 go vet ./scorer
GOARCH=arm64 go test -c -o /dev/null ./scorer
if [ "$(go env GOHOSTARCH)" = amd64 ] && [ "$(go env GOHOSTOS)" = linux ]; then
  scorer386="${TMPDIR:-/tmp}/leadscore-scorer-386.test" # one fixed name: nothing piles up
  GOARCH=386 go test -c -o "${scorer386}" ./scorer
  if "${scorer386}" -test.run '^$' >/dev/null 2>&1; then
    (cd scorer && "${scorer386}" -test.count=1)
  else
    echo "this kernel does not run 386 binaries: the scorer's plain-Go prefetch is not tested here"
  fi
fi

# rerun_failed LOG: runs each test that failed in LOG once more (top-level
# names, package by package) and succeeds only when every one passes and LOG
# shows no failure outside a test (a build error, a timeout, a crash of the
# test binary). A test that fails and then passes is reported as flaky in
# the output, with the first run's log kept: a regression fails both times.
rerun_failed() {
  local log=$1 plan pkg names
  plan=$(awk '
    /^--- FAIL: / { names = names (names == "" ? "" : "|") $3; next }
    /^(ok|FAIL)[ \t]/ && /\[(build|setup) failed\]/ { print "-"; exit }
    /^FAIL\t/ { if (names == "") { print "-"; exit } print $2, names; names = "" }
  ' "${log}")
  if [ -z "${plan}" ] || grep -qx -- - <<<"${plan}"; then
    echo "a failure outside a test: not run again"
    return 1
  fi
  while read -r pkg names; do
    echo "running again, once: ${pkg} ${names}"
    go test -race -tags invariants -count=1 -timeout 10m -run "^(${names})\$" "${pkg}" || return 1
    echo "FLAKY: ${pkg} ${names} failed, then passed when run again (first run's log: ${log})"
  done <<<"${plan}"
}

stage "go test (race detector, invariants, integration and interop)"
if ! go test -race -tags invariants -count=1 -timeout 20m ./... 2>&1 | tee /tmp/leadscore-gotest.log | grep -v '^=== \(RUN\|PAUSE\|CONT\)'; then
  cp /tmp/leadscore-gotest.log /tmp/leadscore-gotest-first.log
  rerun_failed /tmp/leadscore-gotest-first.log || {
    echo "go test failed; full log in /tmp/leadscore-gotest-first.log"
    exit 1
  }
fi

stage "python tests (independent reference implementation of SCORING.md)"
python3 -m pytest -q bench/reference bench/interop

stage "done"
echo "broker used: ${broker_desc}"
if [ -n "${KAFKA_SASL_SSL_BROKERS:-}" ] && [ -f "${KAFKA_TLS_CA_FILE:-}" ]; then
  echo "TLS and SASL tests: against its SASL_SSL listener at ${KAFKA_SASL_SSL_BROKERS}"
  if [ -n "${KAFKA_MTLS_BROKERS:-}" ]; then
    echo "mutual TLS test: against its listener at ${KAFKA_MTLS_BROKERS}"
  else
    echo "mutual TLS test: no such listener (deploy/kafka.sh makes it only with a JDK): skipped, or failed with CI=true"
  fi
else
  echo "TLS and SASL tests: skipped, no SASL_SSL listener known (KAFKA_SASL_SSL_BROKERS, KAFKA_TLS_CA_FILE)"
fi
