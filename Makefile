# The two commands a newcomer needs: `make run` and `make test`.
GO ?= go

.PHONY: build run test bench lint

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
	$(GO) vet ./... && $(GO) test -race -count=1 ./...

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

lint:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt -l lists unformatted files:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
