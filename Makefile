# Development tasks for watermill-kombu. Run `make help` for the list.
#
# Tests need two local ElasticMQ brokers (started by `make up`, no Docker
# needed: Java 17+ and Maven fetch ElasticMQ from Maven Central) and a
# Python virtualenv with Celery/Kombu for the interop tests (`make venv`).
# Everything downloaded or generated lives in the ignored .cache/ folder.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

ROOT      := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
CACHE     := $(ROOT)/.cache
ELASTICMQ := $(ROOT)/internal/elasticmq/elasticmq.sh
VENV      := $(CACHE)/venv
REQS      := $(ROOT)/interop/requirements.txt

GO      ?= go
PYTHON3 ?= python3

# Extra `go test` flags, e.g. make test GOTEST_FLAGS='-run TestPublish'.
GOTEST_FLAGS ?=
FUZZ         ?= FuzzDecode
FUZZTIME     ?= 30s
# Extra flags of the bench tool in `make bench-quick`, e.g. -request-slack 0.1.
BENCH_QUICK_FLAGS ?=

ELASTICMQ_STANDARD_PORT   ?= 9324
ELASTICMQ_PERSISTENT_PORT ?= 9325
REDIS_PORT                ?= 6379
MOTO_PORT                 ?= 9400
export ELASTICMQ_STANDARD_PORT ELASTICMQ_PERSISTENT_PORT MOTO_PORT
MOTO := $(ROOT)/internal/moto/moto.sh

# What the Go tests read (see internal/testenv).
TEST_ENV := \
	KOMBU_TEST_SQS_ENDPOINT=http://127.0.0.1:$(ELASTICMQ_STANDARD_PORT) \
	KOMBU_TEST_SQS_PERSISTENT_ENDPOINT=http://127.0.0.1:$(ELASTICMQ_PERSISTENT_PORT) \
	KOMBU_TEST_RESTART_COMMAND="$(ELASTICMQ) restart persistent" \
	KOMBU_TEST_PYTHON=$(VENV)/bin/python \
	KOMBU_TEST_REDIS_URL=redis://127.0.0.1:$(REDIS_PORT)/0 \
	KOMBU_TEST_MOTO_ENDPOINT=http://127.0.0.1:$(MOTO_PORT)

# $(call timed,label,command): runs command, then prints its exit code and
# elapsed time, and exits with the command's code.
define timed
	start=$$(date +%s); rc=0; \
	$(2) || rc=$$?; \
	echo "$(1): exit $$rc after $$(( $$(date +%s) - start ))s"; \
	exit $$rc
endef

.PHONY: help
help: ## Show this help
	@echo "Usage: make <target> [GOTEST_FLAGS=...]"
	@echo
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-16s %s\n", $$1, $$2}'

# ---------------------------------------------------------------- brokers

.PHONY: elasticmq-fetch up down restart reset status logs
elasticmq-fetch: ## Download ElasticMQ from Maven Central into .cache (once)
	@$(ELASTICMQ) fetch

up: elasticmq-fetch ## Start both ElasticMQ brokers (9324 in-memory, 9325 persistent)
	@$(ELASTICMQ) start all

down: ## Stop both ElasticMQ brokers and moto
	@$(ELASTICMQ) stop all
	@$(MOTO) stop

restart: ## Restart both ElasticMQ brokers
	@$(ELASTICMQ) restart all

reset: ## Delete the brokers' stored queues and messages and restart them
	@$(ELASTICMQ) reset all

status: ## Show whether the brokers are running
	@rc=0; $(ELASTICMQ) status all || rc=$$?; $(MOTO) status || rc=$$?; exit $$rc

logs: ## Show the end of the broker logs
	@tail -n 30 $(CACHE)/logs/elasticmq-*.log

# ------------------------------------------------------------------- moto

.PHONY: moto-up moto-down
moto-up: venv ## Start moto's server (SQS + SNS) on 127.0.0.1:9400 (MOTO_PORT)
	@MOTO_SERVER=$(VENV)/bin/moto_server $(MOTO) start

moto-down: ## Stop the moto server
	@$(MOTO) stop

# ------------------------------------------------------------------ redis

REDIS      := $(ROOT)/internal/redis/redis.sh
export REDIS_PORT

.PHONY: redis-up redis-down
redis-up: ## Start redis-server on 127.0.0.1:6379 (REDIS_PORT), installing the Debian package if missing
	@$(REDIS) install
	@$(REDIS) start

redis-down: ## Stop the redis-server started by redis-up
	@$(REDIS) stop

# ----------------------------------------------------------------- python

.PHONY: venv interop-smoke
venv: ## Create .cache/venv from interop/requirements.txt (once per change)
	@stamp=$(VENV)/.requirements.txt; \
	if [ -x $(VENV)/bin/python ] && cmp -s $$stamp $(REQS); then exit 0; fi; \
	echo "venv: creating $(VENV) from interop/requirements.txt"; \
	start=$$(date +%s); \
	rm -rf $(VENV); \
	$(PYTHON3) -m venv $(VENV); \
	$(VENV)/bin/python -m pip install --disable-pip-version-check -q -r $(REQS); \
	$(VENV)/bin/python -c 'import celery, kombu, boto3, pycurl, moto; from kombu.transport import SQS'; \
	cp $(REQS) $$stamp; \
	echo "venv: ready after $$(( $$(date +%s) - start ))s"

interop-smoke: up venv ## Round-trip a message through Kombu's SQS transport
	@$(TEST_ENV) $(VENV)/bin/python $(ROOT)/interop/smoke_kombu.py

# --------------------------------------------------------------------- go

.PHONY: build vet fmt tidy-check api-count test test-short test-harness test-stress test-long test-fuzz bench demo
build: ## go build ./...
	$(GO) build ./...

vet: ## go vet ./...
	$(GO) vet ./...

fmt: ## gofmt the Go sources
	$(GO) fmt ./...

tidy-check: ## Fail when go.mod/go.sum are not tidy (go mod tidy -diff)
	@$(GO) mod tidy -diff || { echo "go.mod is not tidy: run go mod tidy"; exit 1; }

# The root package is the Watermill plugin: keep its exported API to about one screen.
API_MAX ?= 70
api-count: ## Count the exported identifiers per package; fail when the root package has more than API_MAX (70)
	@$(GO) run ./internal/apicount -max $(API_MAX) . ./celery ./celery/redisbackend ./kombumetrics

test-short: ## The unit tests only: no broker, Redis or Python needed (go test -short), in seconds
	@$(call timed,make test-short,$(GO) test -short -count=1 ./...)

# $(call step,name,command): one step of `make test`. The command runs in a subshell; when
# it fails, name is added to $$failed and the next step runs anyway. No commas in command.
define step
	echo "==== make test: $(1)"; step_start=$$(date +%s); \
	if ( $(2) ); then \
		echo "==== make test: $(1) passed after $$(( $$(date +%s) - step_start ))s"; \
	else \
		echo "==== make test: $(1) FAILED (exit $$?) after $$(( $$(date +%s) - step_start ))s"; \
		failed="$$failed $(1)"; \
	fi;
endef

test: up venv redis-up moto-up ## gofmt, vet, tidy, API size, examples, go test -race, fuzz, bench tests and quick run, docs-check: all run, failures listed
	@start=$$(date +%s); failed=""; \
	$(call step,gofmt,test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }) \
	$(call step,vet,$(GO) vet ./...) \
	$(call step,tidy-check,$(MAKE) tidy-check) \
	$(call step,api-count,$(MAKE) api-count) \
	$(call step,reset-persistent,$(ELASTICMQ) reset persistent) \
	$(call step,examples,$(MAKE) examples) \
	$(call step,go-test,$(TEST_ENV) $(GO) test -race -count=1 -v -timeout 25m $(GOTEST_FLAGS) ./...) \
	$(call step,fuzz,$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=10s .) \
	$(call step,fuzz-celery,$(GO) test -run='^$$' -fuzz='^FuzzTaskFromMessage$$' -fuzztime=10s ./celery) \
	$(call step,bench-test,cd $(ROOT)/bench && GOFLAGS=-mod=mod $(GO) vet . && GOFLAGS=-mod=mod $(GO) test -race -count=1 .) \
	$(call step,bench-quick,$(MAKE) bench-quick BENCH_QUICK_FLAGS='-request-slack 0.1') \
	$(call step,docs-check,$(MAKE) docs-check) \
	took=$$(( $$(date +%s) - start )); \
	if [ -n "$$failed" ]; then \
		echo "make test: FAILED after $${took}s; failed steps:$$failed"; exit 1; \
	fi; \
	echo "make test: every step passed after $${took}s"

test-harness: up ## Test internal/testenv against the brokers, including a broker restart
	@$(TEST_ENV) $(GO) test -race -count=1 -v -tags harness $(GOTEST_FLAGS) ./internal/...

test-stress: up venv redis-up moto-up ## Run the stress tests (-tags=stress)
	@$(call timed,make test-stress,\
		STRESS_TEST_COUNT=$${STRESS_TEST_COUNT:-3} $(TEST_ENV) $(GO) test -race -count=1 -v -timeout 45m -tags=stress \
			-run 'TestPubSubStress' $(GOTEST_FLAGS) .)

test-long: up venv redis-up moto-up ## Soak: every test three times, the stress run, and 5 minutes of fuzzing
	@$(call timed,make test-long,\
		$(TEST_ENV) $(GO) test -race -count=3 -timeout 60m -tags=long $(GOTEST_FLAGS) ./... && \
		$(MAKE) test-stress && \
		$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=5m .)

test-fuzz: ## Fuzz FUZZ (FuzzDecode) for FUZZTIME (30s)
	@$(call timed,make test-fuzz,\
		$(GO) test -run='^$$' -fuzz='^$(FUZZ)$$' -fuzztime=$(FUZZTIME) .)

# The benchmarks are their own module (bench/go.mod); -mod=mod keeps its go.sum in step with the
# library's dependencies.
.PHONY: bench-quick
bench: up venv ## Benchmarks vs the AWS SDK, Kombu and Celery: rewrites BENCHMARKS.md and bench/throughput.svg (~10 min)
	@$(call timed,make bench,\
		cd $(ROOT)/bench && GOFLAGS=-mod=mod $(GO) run . -root $(ROOT) -python $(VENV)/bin/python \
			-out $(ROOT)/BENCHMARKS.md -svg $(ROOT)/bench/throughput.svg)

bench-quick: up venv ## Benchmark smoke run (~3000 messages per Go client) into a temporary directory (~4 min); fails when a request-count goal is missed
	@$(call timed,make bench-quick,\
		out=$$(mktemp -d) && trap 'rm -rf "$$out"' EXIT && \
		cd $(ROOT)/bench && GOFLAGS=-mod=mod $(GO) run . -quick -root $(ROOT) -python $(VENV)/bin/python \
			-out "$$out/BENCHMARKS.md" -svg "$$out/throughput.svg" $(BENCH_QUICK_FLAGS))

demo: up venv ## Go and a Celery worker exchange tasks over the local ElasticMQ
	@$(call timed,make demo,( \
		mkdir -p $(CACHE)/logs; \
		log=$(CACHE)/logs/demo-worker.log; \
		cd $(ROOT); \
		export DEMO_SQS_ENDPOINT=http://127.0.0.1:$(ELASTICMQ_STANDARD_PORT); \
		echo "demo: starting a Celery worker on demo-celery (log: $$log)"; \
		setsid $(VENV)/bin/python -m celery -A interop.demo_app worker -Q demo-celery \
			--pool solo -c 1 --without-gossip --without-mingle --without-heartbeat \
			-l info >$$log 2>&1 & worker=$$!; \
		trap 'kill -TERM -- -'$$worker' 2>/dev/null; wait '$$worker' 2>/dev/null || true' EXIT; \
		demo=0; \
		{ $(VENV)/bin/python -m interop.demo_app produce && \
		  $(GO) run ./examples/demo -tasks 3 -timeout 60s; } || demo=$$?; \
		kill -TERM -- -$$worker 2>/dev/null; wait $$worker 2>/dev/null || true; trap - EXIT; \
		echo "demo: the Celery worker printed:"; \
		grep -F '[go → celery]' $$log | sed 's/^.*\(\[go → celery\]\)/  worker: \1/' || true; \
		exit $$demo ))

# ------------------------------------------------------------------- docs

.PHONY: docs-check
docs-check: up venv ## Compile every Go block of README.md and docs/*.md, run the README's quick start and their Celery broker URLs against ElasticMQ
	@$(call timed,make docs-check,\
		$(TEST_ENV) $(GO) test -count=1 -v -run '^TestDocs' ./internal/docscheck)

# --------------------------------------------------------------- examples

# The examples `make examples` runs: each needs only the local ElasticMQ, and
# the virtualenv for those that start Celery or moto. Each exits by itself.
EXAMPLES     := celery-to-go go-to-celery backoff-predefined sts fifo fanout
EXAMPLES_BIN := $(CACHE)/examples

.PHONY: build-examples examples
build-examples: ## Build every program under examples/ into .cache/examples
	@mkdir -p $(EXAMPLES_BIN)
	$(GO) build -o $(EXAMPLES_BIN)/ ./examples/...

examples: up venv build-examples ## Build the examples and run them against the local ElasticMQ (each exits by itself)
	@$(call timed,make examples,( \
		failed=""; \
		for ex in $(EXAMPLES); do \
			echo "== examples/$$ex"; \
			PYTHON=$(VENV)/bin/python timeout 90 $(EXAMPLES_BIN)/$$ex \
				-endpoint http://127.0.0.1:$(ELASTICMQ_STANDARD_PORT) || failed="$$failed $$ex"; \
		done; \
		if [ -n "$$failed" ]; then echo "examples failed:$$failed"; exit 1; fi ))

# ------------------------------------------------------------------ clean

.PHONY: clean
clean: down redis-down ## Stop the brokers and delete .cache (downloads, venv, data, logs)
	rm -rf $(CACHE)
