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
# BenchmarkRestore reads a changelog from Kafka (deploy/kafka.sh's broker when
# KAFKA_BROKERS is unset): it runs last, on its own, so that no other
# benchmark shares the two cores with a broker, and a broker it started is
# stopped afterwards, so that it does not slow later runs either.
bench: ## Go benchmarks of the hot paths (scorer, decoders, archive rows, restore), built with the PGO profile
	@up=0; [[ -n "$${KAFKA_BROKERS:-}" ]] || ! bash deploy/kafka.sh status >/dev/null 2>&1 || up=1; \
	set -x; \
	$(GO) test -pgo='$(PGO)' -run '^$$' -bench . -skip '^BenchmarkRestore$$' -benchmem -cpu 1 ./scorer ./ingest ./sinks/archive && \
	$(GO) test -pgo='$(PGO)' -run '^$$' -bench '^BenchmarkRestore$$' -benchmem -cpu 1 ./ingest; rc=$$?; \
	{ set +x; } 2>/dev/null; \
	if [[ $$up == 0 && -z "$${KAFKA_BROKERS:-}" ]] && bash deploy/kafka.sh status >/dev/null 2>&1; then \
	  echo "make bench: stopping the broker BenchmarkRestore started"; bash deploy/kafka.sh down; fi; \
	exit $$rc

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
