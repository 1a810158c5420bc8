# The two commands a newcomer needs: `make run` and `make test`.
GO ?= go
# The race detector needs cgo and a C compiler; `make test RACE=` runs
# without it where there is none (.ci/run does so by itself).
RACE ?= -race

.PHONY: build run test bench lint fuzz

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

test:
	$(GO) vet ./... && $(GO) test $(RACE) -count=1 ./...

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

lint:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt -l lists unformatted files:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

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
