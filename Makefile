# MXP mesh — build, test and measure every module of the Go workspace (go.work).
#
#   make run     build bin/mxp (only it) and run the whole mesh in one process (mxp dev)
#   make test    go test -race over every module (unit + integration), then a summary that
#                names every skipped test and why
#   make lint    gofmt, go vet, staticcheck, the dependency rules (scripts/check-deps.sh)
#   make fuzz    a short run of every fuzz target (FUZZTIME per target)
#   make bench   run the benchmarks and write docs/BENCHMARKS.md
#   make e2e     Docker-based end-to-end tests (build tag e2e)

GO        ?= go
export GOFLAGS ?= -buildvcs=false
MODULES   := $(shell $(GO) list -m -f '{{.Dir}}')
PKGS      := $(addsuffix /...,$(MODULES))
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/mxp-mesh/mesh/pkg/mxp.Version=$(VERSION)
FUZZTIME  ?= 10s
TESTFLAGS ?=
STATICCHECK_VERSION ?= v0.8.2

# Binaries: the CLI plus one mxp-<name> per service that has a cmd/ folder.
SERVICE_MAINS := $(wildcard services/*/cmd/mxp-*)

.PHONY: all build mxp run test lint fuzz bench e2e clean tidy images compose-up compose-down

all: build

# mxp is the one binary `make run` needs. The first build compiles every dependency (the
# NATS server, OpenTelemetry, the Prometheus client: about 500 packages) into Go's build
# cache, which takes minutes on a small machine; later builds reuse the cache.
mxp:
	@mkdir -p $(BIN)
	@echo "building $(BIN)/mxp (the first build compiles ~500 packages into Go's build cache: about 2 minutes on 2 idle cores, longer on a busy machine; later builds take seconds)"
	@CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/mxp ./cmd/mxp

build: mxp
	@for m in $(SERVICE_MAINS); do \
		echo "$(GO) build -o $(BIN)/$$(basename $$m) ./$$m"; \
		CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/$$(basename $$m) ./$$m || exit 1; \
	done

run: mxp
	@./$(BIN)/mxp dev

# RACE= (empty) tests without the race detector, which needs cgo and so a C compiler.
RACE ?= -race
test:
	@if [ -n "$(RACE)" ] && ! command -v "$$($(GO) env CC)" >/dev/null 2>&1; then \
		echo "make test: the race detector (-race) needs a C compiler and $$($(GO) env CC) is not installed."; \
		echo "Install one (apt-get install gcc; bash .ci/run does), or run 'make test RACE=' to test without -race."; exit 1; fi
	$(GO) run scripts/testsummary.go $(GO) test $(RACE) -json -count=1 -timeout 20m $(TESTFLAGS) $(PKGS)

lint:
	@unformatted=$$(gofmt -l $(MODULES)); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)
	GO=$(GO) ./scripts/check-deps.sh

fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

bench:
	./scripts/bench.sh docs/BENCHMARKS.md

e2e:
	$(GO) test -race -count=1 -tags e2e -run E2E -timeout 30m $(PKGS)

tidy:
	@for m in $(MODULES); do (cd $$m && $(GO) mod tidy) || exit 1; done

clean:
	rm -rf $(BIN)

# Docker images FROM scratch (nothing pulled): static binaries built here into their own
# folder (so a concurrent `go build` into bin/ cannot slip a cgo binary in), the host's CA
# certificates, and Redis from the host's redis-server. Tags mxp-mesh/<name>:$(IMAGE_TAG).
IMAGE_TAG ?= dev
IMAGE_BIN := $(BIN)/image-bin
COMPOSE   ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

images:
	$(MAKE) --no-print-directory build BIN=$(IMAGE_BIN)
	BIN=$(IMAGE_BIN) TAG=$(IMAGE_TAG) ./deploy/docker/build-images.sh

# compose-up checks the published ports before building, builds the images, starts the
# project (stopping it again if that fails) and prints the MXP_EDGE, MXP_EDGE_KEY and
# MXP_INFERENCE_URL export lines for the client commands (deploy/docker/compose-up.sh).
compose-up:
	GO=$(GO) MAKE=$(MAKE) COMPOSE="$(COMPOSE)" ./deploy/docker/compose-up.sh

compose-down:
	$(COMPOSE) down -v
