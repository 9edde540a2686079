{{- define "kestrel-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's name, or release-chart when the release name does not contain the chart's. */}}
{{- define "kestrel-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kestrel-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "kestrel-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "kestrel-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kestrel-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kestrel-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kestrel-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kestrel-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* A memory quantity (Ki, Mi, Gi, K, M, G or bytes; the schema checks the form) in MiB. */}}
{{- define "kestrel-operator.mib" -}}
{{- $q := toString . }}
{{- if hasSuffix "Gi" $q }}{{ mul (trimSuffix "Gi" $q | int64) 1024 }}
{{- else if hasSuffix "Mi" $q }}{{ trimSuffix "Mi" $q | int64 }}
{{- else if hasSuffix "Ki" $q }}{{ div (trimSuffix "Ki" $q | int64) 1024 }}
{{- else if hasSuffix "G" $q }}{{ div (mul (trimSuffix "G" $q | int64) 1000000000) 1048576 }}
{{- else if hasSuffix "M" $q }}{{ div (mul (trimSuffix "M" $q | int64) 1000000) 1048576 }}
{{- else if hasSuffix "K" $q }}{{ div (mul (trimSuffix "K" $q | int64) 1000) 1048576 }}
{{- else }}{{ div ($q | int64) 1048576 }}
{{- end }}
{{- end }}

{{- define "kestrel-operator.tlsSecretName" -}}
{{- default (printf "%s-client-tls" (include "kestrel-operator.fullname" .)) .Values.certificates.existingSecret }}
{{- end }}

{{- define "kestrel-operator.tokenSecretName" -}}
{{- default (printf "%s-token" (include "kestrel-operator.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{- define "kestrel-operator.flows" -}}
{{- if not .Values.operator.cilium.disableFlows }}true{{ end }}
{{- end }}

{{/* Flows from Hubble Relay through the relay agent's Deployment (mode relay). */}}
{{- define "kestrel-operator.relayFlows" -}}
{{- if and (include "kestrel-operator.flows" .) (eq .Values.operator.cilium.mode "relay") }}true{{ end }}
{{- end }}

{{/* Flows from each node's Hubble server through the node-agent DaemonSet (mode node). */}}
{{- define "kestrel-operator.nodeFlows" -}}
{{- if and (include "kestrel-operator.flows" .) (eq .Values.operator.cilium.mode "node") }}true{{ end }}
{{- end }}

{{- define "kestrel-operator.hubbleTLS" -}}
{{- $t := .Values.operator.cilium.hubble.tls }}
{{- if and $t.existingSecret (not $t.forceDisable) }}true{{ end }}
{{- end }}

{{/* Hubble Relay client settings, shared by the hubble receiver and kestrel_tools. */}}
{{- define "kestrel-operator.hubbleClient" -}}
endpoint: {{ .Values.operator.cilium.hubble.address }}
{{- if include "kestrel-operator.hubbleTLS" . }}
tls:
  ca_file: /etc/kestrel/hubble/ca.crt
  server_name_override: {{ .Values.operator.cilium.hubble.tls.serverName }}
{{- else }}
tls:
  insecure: true
{{- end }}
{{- end }}

{{/*
The flow agents' collector configuration: hubble → memory_limiter → otlp_grpc to the
gateway's Service <release>-agents. Called with a dict: root (the chart's context), agent (the
agent's values: nodeAgent or relayAgent) and hubble (the hubble receiver's settings).
*/}}
{{- define "kestrel-operator.agentConfig" -}}
{{- $root := .root }}
{{- $memMiB := include "kestrel-operator.mib" .agent.resources.limits.memory | int64 -}}
extensions:
  health_check:
    endpoint: ${env:MY_POD_IP}:{{ $root.Values.healthcheck.port }}
receivers:
  hubble:
    {{- .hubble | nindent 4 }}
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: {{ div (mul $memMiB 80) 100 }}
    spike_limit_mib: {{ div (mul $memMiB 25) 100 }}
exporters:
  otlp_grpc:
    endpoint: {{ include "kestrel-operator.fullname" $root }}-agents.{{ $root.Release.Namespace }}.svc:{{ $root.Values.nodeAgent.port }}
    tls:
      insecure: true
service:
  extensions: [health_check]
  pipelines:
    logs:
      receivers: [hubble]
      processors: [memory_limiter]
      exporters: [otlp_grpc]
  telemetry:
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: ${env:MY_POD_IP}
                port: 8888
{{- end }}

{{/* The node agents' configuration: the hubble receiver follows the node's Hubble socket. */}}
{{- define "kestrel-operator.nodeAgentConfig" -}}
{{- $hubble := printf "endpoint: unix://%s\ntls:\n  insecure: true" .Values.nodeAgent.hubbleSocket }}
{{- include "kestrel-operator.agentConfig" (dict "root" . "agent" .Values.nodeAgent "hubble" $hubble) }}
{{- end }}

{{/* The relay agent's configuration: the hubble receiver follows Hubble Relay. */}}
{{- define "kestrel-operator.relayAgentConfig" -}}
{{- include "kestrel-operator.agentConfig" (dict "root" . "agent" .Values.relayAgent "hubble" (include "kestrel-operator.hubbleClient" .)) }}
{{- end }}

{{/*
"true" when one of the CRD-backed integrations (Argo CD, Argo Rollouts, Flux, Karpenter) is on.
*/}}
{{- define "kestrel-operator.crdIntegrations" -}}
{{- $op := .Values.operator }}
{{- if and $op.tools.enabled (or $op.argocd.enabled $op.rollouts.enabled $op.flux.enabled $op.karpenter.enabled) }}true{{ end }}
{{- end }}

{{/*
The rules of the ClusterRole in a config/rbac file copied into files/ by make chart-crds (its
first document), so that config/rbac stays their one home.
*/}}
{{- define "kestrel-operator.rbacRules" -}}
{{- $role := index (splitList "\n---\n" (.ctx.Files.Get .file)) 0 | fromYaml }}
{{- if or (hasKey $role "Error") (ne $role.kind "ClusterRole") }}{{ fail (printf "%s: the first document must be a ClusterRole (make chart-crds)" .file) }}{{ end }}
{{- toYaml $role.rules }}
{{- end }}

{{/*
The namespace of the Datadog keys' Secret.
*/}}
{{- define "kestrel-operator.datadogNamespace" -}}
{{- .Values.operator.datadog.namespace | default .Release.Namespace }}
{{- end }}
