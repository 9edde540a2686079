# syntax=docker/dockerfile:1
# The otelcol-kestrel image: the distribution built by ocb from builder-config.yaml, on a
# distroless static base (no shell, no package manager) as the nonroot user.
#
#   docker build -t ghcr.io/kestrelai/otelcol-kestrel:0.1.0 .
#
# OCB_VERSION must equal the Makefile's (test/image checks it).
ARG GO_VERSION=1.26
ARG OCB_VERSION=v0.165.0

FROM golang:${GO_VERSION} AS build
ARG OCB_VERSION
ENV CGO_ENABLED=0 GOWORK=off GOFLAGS="-buildvcs=false -e"
WORKDIR /src
RUN go install go.opentelemetry.io/collector/cmd/builder@${OCB_VERSION}
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN builder --config builder-config.yaml
RUN builder --config builder-config-agent.yaml

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/_build/otelcol-kestrel /otelcol-kestrel
# The node agent (the chart's node-mode DaemonSet runs it as its command): one image for both,
# so the chart names one image and one tag.
COPY --from=build /src/_build-agent/otelcol-kestrel-agent /otelcol-kestrel-agent
# nonroot of the distroless images; the chart's pod security context uses the same ids.
USER 65532:65532
# OTLP gRPC and HTTP, Envoy access logs, self-metrics, health_check.
EXPOSE 4317 4318 8080 8888 13133
ENTRYPOINT ["/otelcol-kestrel"]
CMD ["--config=/etc/otelcol-kestrel/config.yaml"]
