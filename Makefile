# leadscore: `make` lists the targets.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/leadscore
PKGS  := ./...
export GOFLAGS := -mod=mod

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z_-]+:.*## /{printf "  make %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/leadscore
	$(GO) build -o $(BIN) ./cmd/leadscore

.PHONY: run
run: build ## the embedded default: broker, synthetic traffic, scorer, archive, metrics
	./$(BIN) dev

.PHONY: test
test: ## everything: unit, integration on a real Kafka broker, interop (installs what it needs)
	bash deploy/test.sh

.PHONY: test-unit
test-unit: ## fast tests only (in-process broker), no installs
	LEADSCORE_KAFKA=skip $(GO) test -count=1 $(PKGS)

.PHONY: deps
deps: ## install test dependencies: kcat (apt), pyarrow/duckdb/pandas/confluent-kafka (pip), Kafka jars (Maven)
	bash deploy/test.sh --deps-only

.PHONY: kafka-up
kafka-up: ## start the local Apache Kafka broker (KRaft, 127.0.0.1:19092)
	bash deploy/kafka.sh up

.PHONY: kafka-down
kafka-down: ## stop the local Apache Kafka broker
	bash deploy/kafka.sh down

# The profile-guided optimisation profile: go build applies it to the
# leadscore binary by itself; the benchmarks are built with it too, so that
# they measure the code that ships (DESIGN.md, "Profile-guided optimisation").
PGO := $(CURDIR)/cmd/leadscore/default.pgo

.PHONY: bench
# BenchmarkRestore reads a changelog from Kafka: it runs last, on its own,
# so that no other benchmark shares the two cores with a broker. Its
# broker is KAFKA_BROKERS, else deploy/kafka.sh's (the benchmarks' broker),
# started here when it is down and then stopped on the way out, Ctrl-C
# included, so that it does not slow later runs either.
bench: ## Go benchmarks of the hot paths (scorer, decoders, archive rows, restore), built with the PGO profile
	$(GO) test -pgo='$(PGO)' -run '^$$' -bench . -skip '^BenchmarkRestore$$' -benchmem -cpu 1 ./scorer ./ingest ./sinks/archive
	@set -e; \
	if [[ -z "$${KAFKA_BROKERS:-}" ]]; then \
	  if ! bash deploy/kafka.sh status >/dev/null 2>&1; then \
	    trap 'echo "make bench: stopping the broker it started"; bash deploy/kafka.sh down' EXIT; \
	    bash deploy/kafka.sh up >/dev/null; \
	  fi; \
	  export KAFKA_BROKERS="$$(bash deploy/kafka.sh bootstrap)"; \
	fi; \
	echo "BenchmarkRestore on the broker at $$KAFKA_BROKERS"; \
	$(GO) test -pgo='$(PGO)' -run '^$$' -bench '^BenchmarkRestore$$' -benchmem -cpu 1 ./ingest

.PHONY: pgo
pgo: ## regenerate cmd/leadscore/default.pgo (benchmarks + e2e harness; needs a broker: make kafka-up)
	bash bench/pgo.sh

.PHONY: bench-compare
# bench-compare's settings, from make's command line only (not the environment);
# BENCH is passed unexpanded, so a regexp's $ needs no doubling.
BASE   := HEAD
PKG    := ./ingest
BENCH  := .
ROUNDS := 6
PGOMODE := auto
bench-compare: ## working tree vs BASE=HEAD: PKG=./ingest BENCH=. ROUNDS=6 PGOMODE=auto|off, alternated, benchstat
	$(GO) run ./bench/compare -base '$(BASE)' -pkg '$(PKG)' -bench '$(value BENCH)' -rounds '$(ROUNDS)' -pgo '$(PGOMODE)'

.PHONY: fuzz
fuzz: ## fuzz every decoder for FUZZTIME each (default 60s)
	for f in FuzzDecodeJSON FuzzDecodeSegment FuzzDecodeCloudEvents FuzzParseRFC3339Millis; do \
	  $(GO) test ./ingest -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-60s} || exit 1; done
	$(GO) test ./scorer -run '^$$' -fuzz '^FuzzRestore$$' -fuzztime $${FUZZTIME:-60s}
	$(GO) test ./models -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $${FUZZTIME:-60s}

GOLANGCI_VERSION := v2.15.0
.PHONY: lint
lint: ## golangci-lint (pinned) with .golangci.yml, and go vet
	$(GO) vet $(PKGS)
	$(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION) run

.PHONY: tidy-check
tidy-check: ## fail if go.mod/go.sum are not tidy
	$(GO) mod tidy && git diff --exit-code go.mod go.sum

.PHONY: clean
clean: ## remove build output and the dev data directory
	rm -rf bin data
