{{/*
The flow agents' workloads: the DaemonSet <release>-node-agent (mode node) and the Deployment
<release>-relay-agent (mode relay). Both run the image's slim otelcol-kestrel-agent with the
configuration of "kestrel-operator.agentConfig", and send their aggregates to the gateway's
flow_merge. Called with a dict: root, agent (nodeAgent or relayAgent), name (the workload's
suffix), config (the rendered configuration) and node (true for the DaemonSet).
*/}}
{{- define "kestrel-operator.agentObjects" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- $a := .agent }}
{{- $name := printf "%s-%s" (include "kestrel-operator.fullname" $root) .name }}
{{- $memMiB := include "kestrel-operator.mib" $a.resources.limits.memory | int64 }}
{{- /* Its own name label, so that the Deployment's selector and the Services never match it. */}}
{{- $selector := dict "app.kubernetes.io/name" (printf "%s-%s" (include "kestrel-operator.name" $root) .name) "app.kubernetes.io/instance" $root.Release.Name -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "kestrel-operator.labels" $root | nindent 4 }}
data:
  config.yaml: |
    {{- .config | nindent 4 }}
---
apiVersion: apps/v1
{{- if .node }}
kind: DaemonSet
{{- else }}
kind: Deployment
{{- end }}
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "kestrel-operator.labels" $root | nindent 4 }}
spec:
  {{- if not .node }}
  # One follower of Relay: two would send every flow twice, so the old pod stops before the
  # new one starts.
  replicas: 1
  strategy:
    type: Recreate
  {{- end }}
  selector:
    matchLabels:
      {{- toYaml $selector | nindent 6 }}
  template:
    metadata:
      annotations:
        checksum/config: {{ .config | sha256sum }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      labels:
        {{- toYaml $selector | nindent 8 }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      # The agent reads only Hubble: no Kubernetes API, no token.
      automountServiceAccountToken: false
      {{- with $v.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $a.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      securityContext:
        {{- toYaml $v.podSecurityContext | nindent 8 }}
        {{- if .node }}
        # Cilium creates the socket 0660, owned by the group cilium when the node has one,
        # else by root's group (0): the agent joins that group, and stays non-root.
        supplementalGroups: [{{ int64 $a.socketGroup }}]
        {{- end }}
      containers:
        - name: otelcol-kestrel
          image: {{ include "kestrel-operator.image" $root }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          # The image's slim agent: only the components this configuration uses, so the
          # process touches far less of its binary (docs/benchmarks.md).
          command: [/otelcol-kestrel-agent]
          args:
            - --config=/etc/otelcol-kestrel/config.yaml
          securityContext:
            {{- toYaml $v.securityContext | nindent 12 }}
          env:
            - name: MY_POD_IP
              valueFrom:
                fieldRef:
                  fieldPath: status.podIP
            - name: GOMEMLIMIT
              value: {{ printf "%dMiB" (div (mul $memMiB 80) 100) | quote }}
            - name: GOGC
              value: {{ $a.gogc | quote }}
            {{- with $a.gomaxprocs }}
            - name: GOMAXPROCS
              value: {{ . | quote }}
            {{- end }}
          ports:
            - name: health
              containerPort: {{ $v.healthcheck.port }}
            - name: metrics
              containerPort: 8888
          livenessProbe:
            httpGet:
              path: /
              port: health
            {{- toYaml $v.healthcheck.livenessProbe | nindent 12 }}
          readinessProbe:
            httpGet:
              path: /
              port: health
            {{- toYaml $v.healthcheck.readinessProbe | nindent 12 }}
          resources:
            {{- toYaml $a.resources | nindent 12 }}
          volumeMounts:
            - name: config
              mountPath: /etc/otelcol-kestrel
              readOnly: true
            {{- if .node }}
            - name: hubble-sock
              mountPath: {{ dir $a.hubbleSocket }}
              readOnly: true
            {{- else if include "kestrel-operator.hubbleTLS" $root }}
            - name: hubble-tls
              mountPath: /etc/kestrel/hubble
              readOnly: true
            {{- end }}
      volumes:
        - name: config
          configMap:
            name: {{ $name }}
        {{- if .node }}
        # The directory, not the socket: Cilium recreates the socket when its agent restarts.
        - name: hubble-sock
          hostPath:
            path: {{ dir $a.hubbleSocket }}
            type: Directory
        {{- else if include "kestrel-operator.hubbleTLS" $root }}
        - name: hubble-tls
          secret:
            secretName: {{ $v.operator.cilium.hubble.tls.existingSecret }}
        {{- end }}
      {{- with $a.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $a.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $a.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}
