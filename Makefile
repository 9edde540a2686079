# otelcol-kestrel: build, test and run the distribution. `make` lists the targets.

# Pinned tool versions. ocb must match the collector core release in go.mod.
OCB_VERSION                ?= v0.160.0
PROTOC_GEN_GO_VERSION      ?= v1.36.12
PROTOC_GEN_GO_GRPC_VERSION ?= v1.6.2
MDATAGEN_VERSION           ?= v0.159.0

SHELL     := /bin/bash
GO        ?= go
TOOLS_DIR := $(CURDIR)/.tools
TOOLS_BIN := $(TOOLS_DIR)/bin
# One stamp per tool@version, so changing a version above reinstalls that tool.
STAMPS    := $(TOOLS_DIR)/stamps

OCB                := $(TOOLS_BIN)/builder
PROTOC_GEN_GO      := $(TOOLS_BIN)/protoc-gen-go
PROTOC_GEN_GO_GRPC := $(TOOLS_BIN)/protoc-gen-go-grpc
MDATAGEN           := $(TOOLS_BIN)/mdatagen
PROTOC             ?= protoc

# CGO off and -trimpath are ocb's build flags; using them everywhere lets tests and the
# distro build share one build cache instead of compiling the collector twice.
export CGO_ENABLED := 0
GOFLAGS_BUILD      := -trimpath

BENCH      ?= .
BENCHTIME  ?= 1s
BENCHCOUNT ?= 1
BENCH_DIR  := .run/bench

PROTOS := $(wildcard api/*/v1/*.proto)

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this list
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-zA-Z_-]*:.*## / {printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: tools
tools: $(STAMPS)/builder@$(OCB_VERSION) $(STAMPS)/protoc-gen-go@$(PROTOC_GEN_GO_VERSION) \
	$(STAMPS)/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION) $(STAMPS)/mdatagen@$(MDATAGEN_VERSION) ## Install pinned ocb, protoc plugins and mdatagen into .tools/bin

$(STAMPS)/builder@$(OCB_VERSION):
	GOBIN=$(TOOLS_BIN) $(GO) install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/protoc-gen-go@$(PROTOC_GEN_GO_VERSION):
	GOBIN=$(TOOLS_BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION):
	GOBIN=$(TOOLS_BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@mkdir -p $(STAMPS) && touch $@

# `go install mdatagen@version` is refused (its go.mod has replace directives), so build
# it from a throwaway module that requires it.
$(STAMPS)/mdatagen@$(MDATAGEN_VERSION):
	@mkdir -p $(TOOLS_BIN)
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && cd "$$tmp" && \
	printf 'module tools\n\ngo 1.26\n\nrequire go.opentelemetry.io/collector/cmd/mdatagen %s\n' $(MDATAGEN_VERSION) > go.mod && \
	GOWORK=off GOFLAGS="-mod=mod -buildvcs=false" $(GO) build -o $(MDATAGEN) go.opentelemetry.io/collector/cmd/mdatagen
	@mkdir -p $(STAMPS) && touch $@

.PHONY: build
build: $(STAMPS)/builder@$(OCB_VERSION) ## Build bin/otelcol-kestrel (ocb) and bin/kestrel-devcloud
	GOWORK=off $(OCB) --config builder-config.yaml
	@mkdir -p bin
	cp _build/otelcol-kestrel bin/otelcol-kestrel
	$(GO) build $(GOFLAGS_BUILD) -o bin/kestrel-devcloud ./cmd/kestrel-devcloud

.PHONY: test
test: ## Run all tests
	$(GO) test $(GOFLAGS_BUILD) -timeout 15m ./...

.PHONY: bench
bench: ## Run Go benchmarks; results go to .run/bench/ (see docs/benchmarks.md)
	@mkdir -p $(BENCH_DIR)
	@set -eo pipefail; out=$(BENCH_DIR)/bench-$$(date -u +%Y%m%dT%H%M%SZ).txt; \
	{ echo "# $$(date -u +%FT%TZ) commit $$(git rev-parse --short HEAD 2>/dev/null) $$($(GO) version)"; \
	  echo "# $$(nproc) CPUs: $$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"; \
	  $(GO) test $(GOFLAGS_BUILD) -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) ./...; \
	} 2>&1 | tee "$$out"; \
	ln -sf "$$(basename "$$out")" $(BENCH_DIR)/latest.txt; echo "saved $$out"

.PHONY: lint
lint: ## gofmt (must list nothing) and go vet
	@unformatted=$$(gofmt -l $$($(GO) list -e -f '{{.Dir}}' ./...)); \
	if [ -n "$$unformatted" ]; then echo "gofmt -w needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(GOFLAGS_BUILD) ./...

.PHONY: proto
proto: $(STAMPS)/protoc-gen-go@$(PROTOC_GEN_GO_VERSION) $(STAMPS)/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION) ## Regenerate api/*/v1 Go code from the .proto files
	$(PROTOC) -I api \
		--plugin=protoc-gen-go=$(PROTOC_GEN_GO) --plugin=protoc-gen-go-grpc=$(PROTOC_GEN_GO_GRPC) \
		--go_out=api --go_opt=paths=source_relative \
		--go-grpc_out=api --go-grpc_opt=paths=source_relative \
		$(PROTOS)

.PHONY: generate
generate: $(STAMPS)/mdatagen@$(MDATAGEN_VERSION) ## Run mdatagen in every component directory with a metadata.yaml
	@set -e; for f in $$(find . -name metadata.yaml -not -path './_build/*' -not -path './.tools/*' -not -path './.run/*' | sort); do \
		echo "mdatagen $$f"; (cd "$$(dirname "$$f")" && $(MDATAGEN) metadata.yaml); \
	done

.PHONY: run
run: ## Build; run a local kube-apiserver with config/demo, kestrel-devcloud and otelcol-kestrel (Ctrl-C stops all; KESTREL_NO_KUBE=1: no cluster)
	scripts/run.sh

# A local Kubernetes control plane (internal/kubeenv) for make run, trying the collector and tests.
KUBEENV     := bin/kubeenv
KUBEENV_DIR ?= .run/kubeenv

# Not listed in help: the other kubeenv targets depend on it. Go's build cache makes it a
# link step when nothing changed.
.PHONY: kubeenv-cli
kubeenv-cli:
	$(GO) build $(GOFLAGS_BUILD) -o $(KUBEENV) ./cmd/kubeenv

.PHONY: kubeenv
kubeenv: kubeenv-cli ## Build etcd, kube-apiserver and kube-controller-manager once per machine (first time ~6-8 min on 2 cores)
	$(KUBEENV) build

.PHONY: kubeenv-up
kubeenv-up: kubeenv ## Start a detached local cluster in .run/kubeenv (then: export KUBECONFIG=.run/kubeenv/kubeconfig)
	$(KUBEENV) up --dir $(KUBEENV_DIR) --detach

.PHONY: kubeenv-demo
kubeenv-demo: kubeenv-cli ## Apply config/demo to the cluster in .run/kubeenv (server-side apply, no kubectl needed)
	$(KUBEENV) apply --kubeconfig $(KUBEENV_DIR)/kubeconfig -f config/demo -f config/demo/live

.PHONY: kubeenv-down
kubeenv-down: kubeenv-cli ## Stop the cluster in .run/kubeenv (started by kubeenv-up, or kept by KESTREL_KEEP_KUBE=1 make run)
	$(KUBEENV) down --dir $(KUBEENV_DIR)

.PHONY: clean
clean: ## Stop a kept local cluster, then remove build output and local run state (bin, _build, .run)
	@if [ -d $(KUBEENV_DIR) ]; then $(GO) run $(GOFLAGS_BUILD) ./cmd/kubeenv down --dir $(KUBEENV_DIR) || true; fi
	rm -rf bin _build .run

.PHONY: clean-tools
clean-tools: ## Remove the pinned tools (.tools)
	rm -rf $(TOOLS_DIR)
