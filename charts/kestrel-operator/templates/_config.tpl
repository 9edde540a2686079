{{/*
The collector configuration generated from the values. "kestrel-operator.config" merges
.Values.config into it (maps key by key, lists replaced; config wins).
*/}}
{{- define "kestrel-operator.generatedConfig" -}}
{{- $v := .Values }}
{{- $op := $v.operator }}
{{- $memMiB := include "kestrel-operator.mib" $v.resources.limits.memory | int64 }}
extensions:
  health_check:
    endpoint: ${env:MY_POD_IP}:{{ $v.healthcheck.port }}
  file_storage/queue:
    directory: /var/lib/otelcol-kestrel/queue
    create_directory: true
  kestrel_command:
    endpoint: {{ printf "%s:%v" $v.server.host $v.server.port }}
    tls:
      cert_file: /etc/kestrel/tls/tls.crt
      key_file: /etc/kestrel/tls/tls.key
      {{- if or $v.certificates.ca.cert $v.certificates.existingSecret }}
      ca_file: /etc/kestrel/tls/ca.crt
      include_system_ca_certs_pool: true
      {{- end }}
      {{- if $v.server.tls.insecureSkipVerify }}
      insecure_skip_verify: true
      {{- end }}
    certificate_renewal:
      secret:
        namespace: {{ .Release.Namespace }}
        name: {{ include "kestrel-operator.tlsSecretName" . }}
    {{- $tokenKey := ternary $v.auth.existingSecretKey "token" (not (empty $v.auth.existingSecret)) }}
    token:
      file: /etc/kestrel/token/{{ $tokenKey }}
      # Renewed tokens go back into the Secret the token is mounted from, so that a new pod
      # starts from the newest token.
      persist_secret:
        namespace: {{ .Release.Namespace }}
        name: {{ include "kestrel-operator.tokenSecretName" . }}
        key: {{ $tokenKey }}
    # The collector's own warnings and errors go to the cloud as PodLogs of this pod.
    self_logs:
      pod_name: ${env:POD_NAME}
      namespace: ${env:POD_NAMESPACE}
      pod_uid: ${env:POD_UID}
      node_name: ${env:NODE_NAME}
receivers:
  k8s_inventory:
    {{- if gt (int $v.replicaCount) 1 }}
    leader_election:
      lease_name: {{ include "kestrel-operator.fullname" . }}-inventory
    {{- else }}
    {}
    {{- end }}
  {{- if $op.risk.enabled }}
  k8s_risk:
    {{- if $op.risk.policyReports }}
    policy_reports:
      enabled: true
    {{- else }}
    {}
    {{- end }}
  {{- end }}
  {{- if include "kestrel-operator.flows" . }}
  # The flow agents' aggregates (the relay agent's or the node agents').
  otlp/agents:
    protocols:
      grpc:
        endpoint: ${env:MY_POD_IP}:{{ $v.nodeAgent.port }}
  {{- end }}
  {{- if $op.istio.enabled }}
  envoy_access_log:
    endpoint: ${env:MY_POD_IP}:{{ $op.istio.alsPort }}
    keepalive:
      server_parameters:
        max_connection_idle: 5m
    kubernetes:
      enabled: true
  {{- end }}
  {{- if $op.otel.enabled }}
  # Limits against broken or hostile peers, as in config/local.yaml (docs/reliability.md).
  otlp:
    protocols:
      grpc:
        endpoint: ${env:MY_POD_IP}:{{ $op.otel.receiverPort }}
        max_recv_msg_size_mib: 4
        max_concurrent_streams: 100
        keepalive:
          server_parameters:
            max_connection_idle: 5m
      http:
        endpoint: ${env:MY_POD_IP}:{{ $op.otel.httpPort }}
        max_request_body_size: 20971520
        read_header_timeout: 10s
  {{- end }}
  {{- if $op.tools.enabled }}
  kestrel_tools:
    identity:
      service_account: {{ $op.tools.reader.name }}
    {{- if $op.changes.apply.enabled }}
    changes:
      service_account: {{ $op.changes.serviceAccount }}
      apply:
        enabled: true
        expiry: {{ $op.changes.apply.expiry }}
        {{- with $op.changes.apply.autoApprove }}
        auto_approve:
          {{- toYaml . | nindent 10 }}
        {{- end }}
    {{- end }}
    {{- if $op.restart.mode }}
    restart:
      mode: {{ $op.restart.mode }}
      {{- if eq $op.restart.mode "rollout" }}
      deployment: {{ include "kestrel-operator.fullname" . }}
      {{- end }}
    {{- end }}
    # DatadogQueryRequest: each integration on when switched on here and present (its CRDs
    # served; for Datadog its keys' Secret readable).
    integrations:
      argocd:
        enabled: {{ $op.argocd.enabled }}
        {{- with $op.argocd.namespace }}
        namespace: {{ . }}
        {{- end }}
      rollouts:
        enabled: {{ $op.rollouts.enabled }}
      flux:
        enabled: {{ $op.flux.enabled }}
      karpenter:
        enabled: {{ $op.karpenter.enabled }}
      datadog:
        enabled: {{ $op.datadog.enabled }}
        {{- if $op.datadog.enabled }}
        # The keys stay in the Secret; the collector reads them at every call.
        secret:
          namespace: {{ include "kestrel-operator.datadogNamespace" . }}
          name: {{ $op.datadog.secretName }}
          api_key: {{ $op.datadog.secretKeys.apiKey }}
          app_key: {{ $op.datadog.secretKeys.appKey }}
        site: {{ $op.datadog.site | default "datadoghq.com" }}
        {{- with $op.datadog.endpoint }}
        endpoint: {{ . }}
        {{- end }}
        monitor_poll_interval: {{ $op.datadog.monitorPollInterval }}
        {{- end }}
    {{- if include "kestrel-operator.flows" . }}
    shell:
      hubble_relay:
        {{- include "kestrel-operator.hubbleClient" . | nindent 8 }}
    {{- end }}
  {{- end }}
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: {{ div (mul $memMiB 80) 100 }}
    spike_limit_mib: {{ div (mul $memMiB 25) 100 }}
  batch: {}
  {{- if include "kestrel-operator.relayFlows" . }}
  # One sender, the relay agent: its aggregates are complete, so none is held to be merged.
  flow_merge:
    window: 0s
  {{- else if include "kestrel-operator.nodeFlows" . }}
  flow_merge: {}
  {{- end }}
  {{- if $op.otel.enabled }}
  metrics_store:
    retention: {{ $op.metricsStore.retention }}
    max_series: {{ int64 $op.metricsStore.maxSeries }}
    ring_size: {{ int64 $op.metricsStore.ringSize }}
    kubernetes:
      enabled: true
  {{- end }}
exporters:
  kestrel:
    sending_queue:
      storage: file_storage/queue
  {{- if or $op.tools.enabled $op.otel.enabled }}
  nop: {}
  {{- end }}
service:
  extensions: [health_check, file_storage/queue, kestrel_command]
  pipelines:
    logs:
      receivers:
        - k8s_inventory
        {{- if $op.risk.enabled }}
        - k8s_risk
        {{- end }}
        {{- if $op.istio.enabled }}
        - envoy_access_log
        {{- end }}
      processors: [memory_limiter, batch]
      exporters: [kestrel]
    {{- if include "kestrel-operator.flows" . }}
    # The agents' aggregates, merged per key and window before the one cloud connection.
    logs/flows:
      receivers: [otlp/agents]
      processors: [memory_limiter, flow_merge, batch]
      exporters: [kestrel]
    {{- end }}
    {{- if $op.tools.enabled }}
    # The read tools' audit trail; every record is also in the collector's log.
    logs/tools:
      receivers: [kestrel_tools]
      exporters: [nop]
    {{- end }}
    {{- if $op.otel.enabled }}
    # metrics_store keeps what Kestrel Cloud queries.
    metrics:
      receivers: [otlp]
      processors: [memory_limiter, metrics_store]
      exporters: [nop]
    {{- end }}
  telemetry:
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: ${env:MY_POD_IP}
                port: 8888
{{- end }}

{{- define "kestrel-operator.config" -}}
{{- $gen := include "kestrel-operator.generatedConfig" . | fromYaml }}
{{- if hasKey $gen "Error" }}{{ fail (printf "generated config: %s" $gen.Error) }}{{ end }}
{{- mustMergeOverwrite $gen (deepCopy .Values.config) | toYaml }}
{{- end }}
