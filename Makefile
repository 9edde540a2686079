# otelcol-kestrel: build, test and run the distribution. `make` lists the targets.

# Pinned tool versions. ocb must match the collector core release in go.mod (`make bump-otel`).
# mdatagen is pinned apart: v0.159.0 is the newest whose sources (with internal/schemagen) the
# module proxy serves; its generated code builds against the current core.
OCB_VERSION                ?= v0.165.0
MDATAGEN_VERSION           ?= v0.159.0
BUF_VERSION                ?= v1.75.0
PROTOC_GEN_GO_VERSION      ?= v1.36.12
PROTOC_GEN_GO_GRPC_VERSION ?= v1.6.2
GOLANGCI_LINT_VERSION      ?= v2.15.0
CONTROLLER_GEN_VERSION     ?= v0.23.0
HELM_VERSION               ?= v4.3.2

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
BUF                := $(TOOLS_BIN)/buf
GOLANGCI_LINT      := $(TOOLS_BIN)/golangci-lint
CONTROLLER_GEN     := $(TOOLS_BIN)/controller-gen
HELM               := $(TOOLS_BIN)/helm

# buf compiles the .proto files itself (no system protoc); these are what api_test.go runs.
PROTO_TOOLS := $(STAMPS)/buf@$(BUF_VERSION) $(STAMPS)/protoc-gen-go@$(PROTOC_GEN_GO_VERSION) \
	$(STAMPS)/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
# The generated-code checks run these: the protobuf code and the ChangeRequest CRD.
GEN_TOOLS := $(PROTO_TOOLS) $(STAMPS)/controller-gen@$(CONTROLLER_GEN_VERSION)

# CGO off and -trimpath are ocb's build flags; using them everywhere lets tests and the
# distro build share one build cache instead of compiling the collector twice.
export CGO_ENABLED := 0
GOFLAGS_BUILD      := -trimpath

BENCH      ?= .
BENCHTIME  ?= 1s
BENCHCOUNT ?= 1
BENCH_DIR  := .run/bench

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this list
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-zA-Z_-]*:.*## / {printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: tools
tools: $(STAMPS)/builder@$(OCB_VERSION) $(PROTO_TOOLS) $(STAMPS)/mdatagen@$(MDATAGEN_VERSION) \
	$(STAMPS)/golangci-lint@$(GOLANGCI_LINT_VERSION) $(STAMPS)/controller-gen@$(CONTROLLER_GEN_VERSION) ## Install the pinned ocb, buf, protoc plugins, mdatagen, golangci-lint and controller-gen into .tools/bin

$(STAMPS)/builder@$(OCB_VERSION):
	GOBIN=$(TOOLS_BIN) $(GO) install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/protoc-gen-go@$(PROTOC_GEN_GO_VERSION):
	GOBIN=$(TOOLS_BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION):
	GOBIN=$(TOOLS_BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/buf@$(BUF_VERSION):
	GOBIN=$(TOOLS_BIN) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/helm@$(HELM_VERSION):
	GOBIN=$(TOOLS_BIN) $(GO) install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/golangci-lint@$(GOLANGCI_LINT_VERSION):
	GOBIN=$(TOOLS_BIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/controller-gen@$(CONTROLLER_GEN_VERSION):
	GOBIN=$(TOOLS_BIN) $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
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
build: $(STAMPS)/builder@$(OCB_VERSION) ## Build bin/otelcol-kestrel and bin/otelcol-kestrel-agent (ocb), and bin/kestrel-devcloud
	@# -e: ocb runs `go mod tidy`, which also loads the tests of the components we import; some
	@# contrib test-only modules (pkg/semconvtest) are not served by the module proxy.
	GOWORK=off GOFLAGS="$$($(GO) env GOFLAGS) -e" $(OCB) --config builder-config.yaml
	@# The node agent: the same module, only the components the chart's DaemonSet runs.
	GOWORK=off GOFLAGS="$$($(GO) env GOFLAGS) -e" $(OCB) --config builder-config-agent.yaml
	@mkdir -p bin
	cp _build/otelcol-kestrel bin/otelcol-kestrel
	cp _build-agent/otelcol-kestrel-agent bin/otelcol-kestrel-agent
	$(GO) build $(GOFLAGS_BUILD) -o bin/kestrel-devcloud ./cmd/kestrel-devcloud

.PHONY: test
test: $(GEN_TOOLS) ## Run all tests (installs the pinned code generators the generated-code checks run)
	$(GO) test $(GOFLAGS_BUILD) -timeout 15m ./...

# The packages with concurrent code: the connection, the exporter and its mirror, the
# aggregation window, the receivers, the metrics store, the shared informers and the
# end-to-end tests. -race needs cgo (gcc), so this is a second build flavour of the tree.
RACE_PKGS ?= ./extension/... ./exporter/... ./internal/flowagg/... ./internal/k8scache/... \
	./internal/podowner/... ./internal/devcloud/... ./receiver/... ./processor/... ./test/e2e/...

.PHONY: test-race
test-race: $(GEN_TOOLS) ## Run the concurrent packages' tests with the race detector (needs gcc)
	CGO_ENABLED=1 $(GO) test -race -timeout 25m $(RACE_PKGS)

# The longer runs of the sources' fault tests (docs/reliability.md): Hubble Relay flapping
# (SOAK_RELAY_FLAPS) and kube-apiserver restarts with 429s (SOAK_APISERVER_RESTARTS).
# `make test` runs the short versions (TestRelayFlapping, TestAPIServerRestartsAnd429s).
SOAK_RELAY_FLAPS        ?= 40
SOAK_APISERVER_RESTARTS ?= 20

.PHONY: soak-sources
soak-sources: ## Longer fault runs of the sources: Hubble Relay flapping, kube-apiserver restarts and 429s
	SOAK_RELAY_FLAPS=$(SOAK_RELAY_FLAPS) SOAK_APISERVER_RESTARTS=$(SOAK_APISERVER_RESTARTS) \
		$(GO) test $(GOFLAGS_BUILD) -count=1 -v -timeout 60m -run '^TestSoak(RelayFlapping|APIServerRestarts)$$' \
		./receiver/hubblereceiver/ ./receiver/k8sinventoryreceiver/

# The chart's tests (test/chart) need the pinned helm, the built collector and the kubeenv
# binaries; `make test` skips them (no CHART_TEST_HELM).
.PHONY: chart-test
chart-test: $(STAMPS)/helm@$(HELM_VERSION) build kubeenv ## Test charts/kestrel-operator: lint, golden renders, schema, validate, a real install and its RBAC
	CHART_TEST_HELM=$(HELM) $(GO) test $(GOFLAGS_BUILD) -count=1 -timeout 20m ./test/chart/

# The chart ships the ChangeRequest CRD and its admission policy from their one home,
# config/crd: the CRDs into crds/, the admission policy (not a CRD, which crds/ may only hold)
# into files/, which a template includes. test/chart checks both copies against config/crd.
# Likewise the integrations' read and write profiles from config/rbac: a template takes their
# rules from files/.
.PHONY: chart-crds
chart-crds: ## Copy config/crd and config/rbac/integrations-*.yaml into the chart (crds/ and files/)
	rm -f charts/kestrel-operator/crds/*.yaml charts/kestrel-operator/files/*_admission.yaml charts/kestrel-operator/files/integrations-*.yaml
	mkdir -p charts/kestrel-operator/crds charts/kestrel-operator/files
	cp $$(ls config/crd/*.yaml | grep -v '_admission\.yaml$$') charts/kestrel-operator/crds/
	cp config/crd/*_admission.yaml config/rbac/integrations-*.yaml charts/kestrel-operator/files/

.PHONY: chart-golden
chart-golden: $(STAMPS)/helm@$(HELM_VERSION) build ## Rewrite the chart examples' rendered.yaml golden files
	CHART_TEST_HELM=$(HELM) UPDATE_GOLDEN=1 $(GO) test $(GOFLAGS_BUILD) -count=1 -run 'TestExamples' ./test/chart/

.PHONY: bench
bench: ## Run Go benchmarks; results go to .run/bench/ (see docs/benchmarks.md)
	@mkdir -p $(BENCH_DIR)
	@set -eo pipefail; out=$(BENCH_DIR)/bench-$$(date -u +%Y%m%dT%H%M%SZ).txt; \
	{ echo "# $$(date -u +%FT%TZ) commit $$(git rev-parse --short HEAD 2>/dev/null) $$($(GO) version)"; \
	  echo "# $$(nproc) CPUs: $$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"; \
	  $(GO) test $(GOFLAGS_BUILD) -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) ./...; \
	} 2>&1 | tee "$$out"; \
	ln -sf "$$(basename "$$out")" $(BENCH_DIR)/latest.txt; echo "saved $$out"

# The whole collector as a separate process under load from real peers (cmd/bench-e2e); run by
# hand, not by CI. BENCH_E2E_FLAGS: -short (quick), -run REGEXP, -count N, -profile, -env K=V.
BENCH_E2E_FLAGS ?=

.PHONY: bench-e2e
bench-e2e: build ## Measure bin/otelcol-kestrel end to end: CPU per 100k items, peak RSS, delivered vs sent; inventory at 5k/20k pods (docs/benchmarks.md)
	$(GO) build $(GOFLAGS_BUILD) -o bin/bench-e2e ./cmd/bench-e2e
	@mkdir -p .run/bench-e2e
	bin/bench-e2e -out .run/bench-e2e/latest.md $(BENCH_E2E_FLAGS)

# Fault tests with the built binaries as separate processes (test/soak): kill -9 of the
# collector and of the cloud, a 10-minute cloud outage at 2,000 records/s with file_storage,
# an in-memory queue overflowing. Run by hand, not by CI; docs/reliability.md has the results.
# SOAK_FLAGS: e.g. -run Kill9; SOAK_OUTAGE=2m shortens the outage.
SOAK_FLAGS ?=

.PHONY: soak
soak: build ## Fault tests of bin/otelcol-kestrel and bin/kestrel-devcloud: kill -9, 10-min outage, queue overflow (docs/reliability.md)
	@mkdir -p .run/soak
	set -o pipefail; SOAK_COLLECTOR=$(CURDIR)/bin/otelcol-kestrel SOAK_DEVCLOUD=$(CURDIR)/bin/kestrel-devcloud \
		$(GO) test $(GOFLAGS_BUILD) -count=1 -v -timeout 90m ./test/soak/ $(SOAK_FLAGS) 2>&1 | tee .run/soak/latest.txt

.PHONY: lint
lint: $(STAMPS)/golangci-lint@$(GOLANGCI_LINT_VERSION) ## golangci-lint (.golangci.yml): formatting, vet, staticcheck, gosec, layering, ...
	GOFLAGS="$$($(GO) env GOFLAGS) $(GOFLAGS_BUILD)" $(GOLANGCI_LINT) run ./...

.PHONY: proto
proto: $(PROTO_TOOLS) ## Regenerate api/*/v1 Go code from the .proto files (buf, pinned plugins)
	cd api && PATH=$(TOOLS_BIN):$$PATH $(BUF) generate

.PHONY: generate
generate: $(STAMPS)/mdatagen@$(MDATAGEN_VERSION) ## Run mdatagen in every component directory with a metadata.yaml
	@set -e; for f in $$(find . -name metadata.yaml -not -path './_build/*' -not -path './.tools/*' -not -path './.run/*' | sort); do \
		echo "mdatagen $$f"; (cd "$$(dirname "$$f")" && $(MDATAGEN) metadata.yaml); \
	done

.PHONY: crds
crds: $(STAMPS)/controller-gen@$(CONTROLLER_GEN_VERSION) ## Regenerate config/crd from the Go types in api/kestrel (controller-gen)
	$(CONTROLLER_GEN) crd paths=./api/kestrel/... output:crd:artifacts:config=config/crd

.PHONY: bump-otel
bump-otel: ## Move every collector module to one release: VERSION=v0.X.Y [CONTRIB=v0.X.Z] [K8SATTRIBUTES=v1.A.B]
	VERSION=$(VERSION) CONTRIB=$(CONTRIB) K8SATTRIBUTES=$(K8SATTRIBUTES) scripts/bump-otel.sh

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
