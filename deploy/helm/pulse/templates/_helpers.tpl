{{/*
Names. The usual Helm conventions: fullname is <release>-pulse, or the release name when it already
contains "pulse"; every name is cut to 63 characters (DNS label).
*/}}
{{- define "pulse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pulse.fullname" -}}
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

{{- define "pulse.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels. Call with (dict "ctx" $ "component" "gateway"). The component is part of the selector, so the
gateway's Service, PDB, HPA and NetworkPolicy never pick up a simulator pod.
*/}}
{{- define "pulse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pulse.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "pulse.labels" -}}
helm.sh/chart: {{ include "pulse.chart" .ctx }}
{{ include "pulse.selectorLabels" . }}
app.kubernetes.io/part-of: pulse
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "pulse.image" -}}
{{- $img := .Values.image }}
{{- $ref := $img.repository }}
{{- with $img.registry }}{{ $ref = printf "%s/%s" . $ref }}{{ end }}
{{- if $img.digest }}
{{- printf "%s@%s" $ref $img.digest }}
{{- else }}
{{- printf "%s:%s" $ref (default .Chart.AppVersion $img.tag) }}
{{- end }}
{{- end }}

{{- define "pulse.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pulse.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret with token keys and the API key: the operator's, or the one this chart creates. */}}
{{- define "pulse.secretName" -}}
{{- default (include "pulse.fullname" .) .Values.auth.existingSecret }}
{{- end }}

{{/*
NATS: the bundled chart's client Service (the subchart's own naming rules: nats.fullnameOverride, the
release name when it contains "nats", else <release>-nats; nats.service.name wins), or externalNats.
*/}}
{{- define "pulse.natsFullname" -}}
{{- $n := .Values.nats }}
{{- if $n.fullnameOverride }}
{{- $n.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default "nats" $n.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "pulse.natsServiceName" -}}
{{- $n := .Values.nats }}
{{- if and $n.service $n.service.name }}
{{- $n.service.name }}
{{- else }}
{{- include "pulse.natsFullname" . }}
{{- end }}
{{- end }}

{{- define "pulse.natsPort" -}}
{{- $port := 4222 }}
{{- with .Values.nats.config }}{{ with .nats }}{{ with .port }}{{ $port = . }}{{ end }}{{ end }}{{ end }}
{{- $port }}
{{- end }}

{{- define "pulse.natsURL" -}}
{{- $host := include "pulse.natsServiceName" . }}
{{- with .Values.nats.namespaceOverride }}{{ $host = printf "%s.%s.svc" $host . }}{{ end }}
{{- printf "nats://%s:%s" $host (include "pulse.natsPort" .) }}
{{- end }}

{{/* The env entry PULSE_NATS_URL for every Pulse container. */}}
{{- define "pulse.natsURLEnv" -}}
- name: PULSE_NATS_URL
{{- if .Values.nats.enabled }}
  value: {{ include "pulse.natsURL" . | quote }}
{{- else if .Values.externalNats.existingSecret }}
  valueFrom:
    secretKeyRef:
      name: {{ .Values.externalNats.existingSecret }}
      key: {{ .Values.externalNats.existingSecretKey }}
{{- else }}
  value: {{ .Values.externalNats.url | quote }}
{{- end }}
{{- end }}

{{/* NATS client ports the pods connect to, as a list, for the NetworkPolicy. */}}
{{- define "pulse.natsPorts" -}}
{{- $ports := list }}
{{- if .Values.nats.enabled }}
{{- $ports = append $ports (include "pulse.natsPort" . | int) }}
{{- else if .Values.externalNats.url }}
{{- range splitList "," .Values.externalNats.url }}
{{- $host := (urlParse (trim .)).host }}
{{- $port := 4222 }}
{{- with regexFind ":[0-9]+$" $host }}{{ $port = trimPrefix ":" . | int }}{{ end }}
{{- $ports = append $ports $port }}
{{- end }}
{{- else }}
{{- $ports = list 4222 }}
{{- end }}
{{- toJson (uniq $ports) }}
{{- end }}

{{/*
Flags as PULSE_* variables: camelCase key → PULSE_SNAKE_CASE. null means "not set" (the binary's
default); lists are joined with commas; anything else is rendered as given, including "", 0 and false.
Numbers from values files arrive as float64: whole ones are printed without an exponent (20000000, not
2e+07), which the gateway's integer flags could not parse.
*/}}
{{- define "pulse.configEnv" -}}
{{- range $key, $value := . }}
{{- if not (kindIs "invalid" $value) }}
{{- $s := toString $value }}
{{- if kindIs "slice" $value }}
{{- $s = join "," $value }}
{{- else if and (kindIs "float64" $value) (eq $value (floor $value)) }}
{{- $s = printf "%.0f" $value }}
{{- end }}
- name: {{ printf "PULSE_%s" ($key | snakecase | upper) }}
  value: {{ $s | quote }}
{{- end }}
{{- end }}
{{- end }}

{{- define "pulse.gatewayReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ .Values.autoscaling.minReplicas }}{{ else }}{{ .Values.gateway.replicaCount }}{{ end }}
{{- end }}

{{/* Grace period: the whole of preStop + drain, plus a margin for the process to exit. */}}
{{- define "pulse.terminationGracePeriodSeconds" -}}
{{- $g := .Values.gateway }}
{{- $need := add $g.preStopSleepSeconds $g.shutdownTimeoutSeconds }}
{{- if kindIs "invalid" $g.terminationGracePeriodSeconds }}
{{- add $need 10 }}
{{- else }}
{{- $g.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/*
Checks of combinations the schema cannot express with a readable message. Included by the gateway
Deployment, so every install and template runs them.
*/}}
{{- define "pulse.validate" -}}
{{- $g := .Values.gateway }}
{{- $need := add $g.preStopSleepSeconds $g.shutdownTimeoutSeconds }}
{{- if le (include "pulse.terminationGracePeriodSeconds" . | int) (int $need) }}
{{- fail (printf "gateway.terminationGracePeriodSeconds (%v) must be longer than gateway.preStopSleepSeconds + gateway.shutdownTimeoutSeconds (%d): Kubernetes would kill the gateway before its drain deadline" $g.terminationGracePeriodSeconds $need) }}
{{- end }}
{{- $a := .Values.auth }}
{{- if not (or $a.jwtHmacSecret $a.jwtPublicKey $a.jwksUrl $a.existingSecret) }}
{{- fail "no token key: set auth.jwtHmacSecret (at least 32 bytes), auth.jwtPublicKey, auth.jwksUrl or auth.existingSecret" }}
{{- end }}
{{- if and $a.existingSecret (or $a.jwtHmacSecret $a.jwtPublicKey $a.apiKey) }}
{{- fail "auth.existingSecret is set: leave auth.jwtHmacSecret, auth.jwtPublicKey and auth.apiKey empty (put them in that Secret)" }}
{{- end }}
{{- if and $a.jwtHmacSecret (lt (len $a.jwtHmacSecret) 32) }}
{{- fail "auth.jwtHmacSecret must be at least 32 bytes" }}
{{- end }}
{{- if .Values.nats.enabled }}
{{- if or .Values.externalNats.url .Values.externalNats.existingSecret }}
{{- fail "externalNats is set while nats.enabled is true: pick one (--set nats.enabled=false to use an existing NATS cluster)" }}
{{- end }}
{{- $servers := 1 }}
{{- if .Values.nats.config.cluster.enabled }}{{ $servers = .Values.nats.config.cluster.replicas | int }}{{ end }}
{{- if gt (int .Values.streams.replicas) $servers }}
{{- fail (printf "streams.replicas (%v) is more than the bundled NATS servers (%d): set streams.replicas to at most nats.config.cluster.replicas (1 when the NATS cluster is disabled)" .Values.streams.replicas $servers) }}
{{- end }}
{{- if not .Values.nats.config.jetstream.enabled }}
{{- fail "nats.config.jetstream.enabled must be true: Pulse stores every event in JetStream" }}
{{- end }}
{{- else if not (or .Values.externalNats.url .Values.externalNats.existingSecret) }}
{{- fail "nats.enabled is false: set externalNats.url (or externalNats.existingSecret) to your NATS JetStream cluster" }}
{{- end }}
{{- end }}

{{/* Egress rules shared by the gateway and the simulators: DNS, NATS, extraEgress. */}}
{{- define "pulse.egressCommon" }}
{{- $np := .Values.networkPolicy }}
{{- $natsPorts := include "pulse.natsPorts" . | fromJsonArray }}
# DNS, wherever the cluster runs it.
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
# NATS client connections.
- ports:
    {{- range $natsPorts }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
  {{- if .Values.nats.enabled }}
  to:
    - podSelector:
        matchLabels:
          app.kubernetes.io/name: {{ default "nats" .Values.nats.nameOverride }}
          app.kubernetes.io/instance: {{ .Release.Name }}
          app.kubernetes.io/component: nats
      {{- with .Values.nats.namespaceOverride }}
      namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ . }}
      {{- end }}
  {{- else if $np.externalNatsTo }}
  to:
    {{- toYaml $np.externalNatsTo | nindent 4 }}
  {{- end }}
{{- with $np.extraEgress }}
{{ toYaml . }}
{{- end }}
{{- end }}
