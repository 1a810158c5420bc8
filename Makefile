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

# Arbitrary bodies against POST /api/holds for FUZZTIME.
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzHoldBody -fuzztime=$(FUZZTIME) ./transport
