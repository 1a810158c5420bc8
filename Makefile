# The two commands a newcomer needs: `make run` and `make test`.
GO ?= go
# The race detector needs cgo and a C compiler; `make test RACE=` runs
# without it where there is none (.ci/run does so by itself).
RACE ?= -race

.PHONY: build run cluster test bench bench-cluster bench-go bench-http bench-restart bench-wrk verify lint fuzz openapi-client

build:
	@mkdir -p bin
	$(GO) build -o bin/flashsale ./cmd/flashsale
	@if ls cmd/flashbench/*.go >/dev/null 2>&1; then \
		echo "$(GO) build -o bin/flashbench ./cmd/flashbench"; \
		$(GO) build -o bin/flashbench ./cmd/flashbench; \
	fi

# Serves the demo catalog on 127.0.0.1:8080 with its log in ./data.
run: build
	./bin/flashsale --data-dir ./data

# A 3-node cluster on 127.0.0.1 (HTTP 8081-8083, Raft 9081-9083, the file
# docs/cluster-local.json) with the demo catalog, data in ./data/node1..3.
# Ctrl-C stops all three.
cluster: build
	@trap 'kill $$(jobs -p) 2>/dev/null; wait' INT TERM EXIT; \
	for i in 1 2 3; do \
		./bin/flashsale --cluster docs/cluster-local.json --node-id $$i --data-dir ./data/node$$i --log-format console & \
	done; \
	wait

# The zero-allocation tests (TestSubmitDoesNotAllocate,
# TestHotPathsAllocateNothing, TestSteadyStateRequestsDoNotAllocate,
# TestFreshKeysAllocateNothing) skip
# under -race, whose instrumentation allocates: the second line runs them
# without it, so they run in CI too. ALLOC_TESTS names them; ALLOC_PKGS holds
# every package with a testing.AllocsPerRun assertion.
ALLOC_TESTS ?= Alloc|Allocate
ALLOC_PKGS ?= ./engine/ ./wal/ ./transport/ ./bench/

test:
	$(GO) vet ./... && $(GO) test $(RACE) -count=1 ./...
	$(GO) test -count=1 -run '$(ALLOC_TESTS)' $(ALLOC_PKGS)

# The performance tables of the README: Go benchmarks (-benchmem, the
# restart benchmark left out: it builds 16 M records of history first), then
# flashbench's suite — ceiling, browse, hot and checkout in interleaved
# rounds against a server it starts — as a table of medians.
bench: bench-go bench-http

bench-go:
	$(GO) test -run='^$$' -bench=. -skip=Restart -benchmem ./...

bench-http: build
	./bin/flashbench --start-server ./bin/flashsale --server-args "--log-level=warn" --suite --rounds $(ROUNDS) --duration 10s --conns 64

ROUNDS ?= 5

# A single node and a 3-node cluster side by side, on this machine: granted
# holds through the leader and through a follower, product reads through a
# follower (at 64 and at 1,024 connections, with the reads that share a
# ReadIndex round), fsyncs and Raft messages per 1,000 holds
# (bench/clusterbench).
bench-cluster: build
	bench/clusterbench/run.sh $(ROUNDS) 10s 64

# The same figures from wrk, a client that is not ours (apt-get install wrk):
# granted holds (every answer a 201) at 64 and 256 connections and the crowd
# of 10,000 connections on a sold-out product (every answer a 409), each
# side by side with the ceiling at the same connections, in ROUNDS
# interleaved rounds of 8 s; medians, and the worst p99 and max
# (bench/wrk/run.sh, which says what else the environment can set).
bench-wrk: build
	ROUNDS=$(ROUNDS) bench/wrk/run.sh

# Restart time after 1, 5 and 10 million logged records, with and without a
# snapshot (several minutes: most of it builds the histories).
bench-restart:
	$(GO) test -run='^$$' -bench=Restart -benchtime=3x -timeout=60m ./cmd/flashsale/

# Longer linearizability runs than `make test` does, and 30 leader kills
# (instead of 10) in the cluster's kill, failover and porcupine tests.
verify:
	LINEARIZE_LONG=1 $(GO) test -count=1 -timeout=30m -run=Linearizable ./bench/linearize/
	FLASHSALE_CLUSTER_CYCLES=30 $(GO) test -race -count=1 -timeout=30m -run='Kill9|FailoverTime|Linearizable' ./bench/cluster/

# A Go client generated from docs/openapi.yaml by oapi-codegen (pinned here
# and in docs/openapi_test.go; run with `go run`, so it stays out of go.mod)
# into bin/openapi-client/flashclient, and the small checkout program over it
# (docs/testdata/openapi-client) built as bin/openapi-client/check: run it
# as `bin/openapi-client/check http://127.0.0.1:8080` against a fresh
# `make run`. `make test` does the same in docs/openapi_test.go, against a
# server it starts.
OAPI_CODEGEN ?= github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@v2.8.2
openapi-client:
	@rm -rf bin/openapi-client && mkdir -p bin/openapi-client/flashclient
	cp docs/testdata/openapi-client/go.mod docs/testdata/openapi-client/go.sum docs/testdata/openapi-client/main.go bin/openapi-client/
	$(GO) run $(OAPI_CODEGEN) -generate types,client -package flashclient -o bin/openapi-client/flashclient/client.go docs/openapi.yaml
	cd bin/openapi-client && GOWORK=off GOFLAGS=-mod=readonly $(GO) build -o check .

lint:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt -l lists unformatted files:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -count=1 -run 'DeadReferences' ./bench/doclinks/

# Runs every fuzz target (each func FuzzXxx in a _test.go file) for FUZZTIME,
# one after another; FUZZ=regexp picks targets by name, e.g.
# `make fuzz FUZZ=Webhook FUZZTIME=2m`. `make test` runs only their seed
# corpora (testdata/fuzz/<FuzzName>/ and f.Add). A failing input is saved in
# the package's testdata/fuzz/<FuzzName>/: commit it with the fix. Inputs
# that found new coverage stay in $(go env GOCACHE)/fuzz.
FUZZTIME ?= 20s
FUZZ ?= .
fuzz:
	@failed=""; \
	for t in $$(grep -rHoE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' . | \
		sed -E 's|^(.*)/[^/]*_test\.go:func (Fuzz.*)$$|\1:\2|' | sort -u | grep -E ":.*($(FUZZ))"); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "$(GO) test -run='^\$$' -fuzz='^$$name\$$' -fuzztime=$(FUZZTIME) $$pkg/"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) $$pkg/ || failed="$$failed $$pkg:$$name"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz targets failed:$$failed"; exit 1; fi
