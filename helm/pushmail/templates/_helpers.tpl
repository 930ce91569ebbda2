{{/*
The release's base name: the release name when it already says pushmail,
else "<release>-pushmail"; 63 characters at most (a DNS label).
*/}}
{{- define "pushmail.fullname" -}}
{{- if contains "pushmail" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-pushmail" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* One service's object name; called with (dict "root" $ "service" "session"). */}}
{{- define "pushmail.serviceName" -}}
{{- printf "%s-%s" (include "pushmail.fullname" .root) .service | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pushmail.selectorLabels" -}}
app.kubernetes.io/name: pushmail
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .service }}
{{- end -}}

{{- define "pushmail.labels" -}}
{{ include "pushmail.selectorLabels" . }}
app.kubernetes.io/part-of: pushmail
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/* Labels of the chart's objects that belong to no one service. */}}
{{- define "pushmail.commonLabels" -}}
app.kubernetes.io/name: pushmail
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: pushmail
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/* The services in the order they start (binding first: the others call it). */}}
{{- define "pushmail.services" -}}
- binding
- session
- dispatch
- ingest
- transcode
- mailbox
- gateway
- activesync
{{- end -}}

{{/*
What the chart knows of each service: where it listens (the binaries'
defaults), which secrets it reads (setting under PUSHMAIL_<SERVICE>__ →
key of the Secret), which settings take a Redis URL, whether it is on the
Kafka bus, which peers it calls over gRPC (setting → service), and how it
mounts the blob volume. Fixed by the code, not by values. (Binding's and
mailbox's database URLs are Secrets named by postgresql.* values.)
*/}}
{{- define "pushmail.catalog" -}}
binding:
  ports: { grpc: 7101, admin: 9101 }
  secrets:
    SECURITY__CREDENTIALS_KEY: PUSHMAIL_CREDENTIALS_KEY
    SECURITY__OTP_KEY: PUSHMAIL_OTP_KEY
    SECURITY__DEVICE_TOKEN_SEED: PUSHMAIL_DEVICE_TOKEN_SEED
    SECURITY__SERVICE_KEYS: PUSHMAIL_SERVICE_KEYS
    SECURITY__OPERATOR_TOKEN: PUSHMAIL_OPERATOR_TOKEN
  redis: [CACHE__SHARED__REDIS__URL]
  kafka: true
  peers: {}
  blobs: ""
session:
  ports: { grpc: 7102, devices: 8102, admin: 9102 }
  secrets:
    TOKENS__PUBLIC_KEY: PUSHMAIL_DEVICE_TOKEN_PUBLIC_KEY
    SECURITY__SERVICE_KEYS: PUSHMAIL_SERVICE_KEYS
    SECURITY__CREDENTIAL: PUSHMAIL_SESSION_CREDENTIAL
  redis: [DIRECTORY__REDIS__URL, OUTBOX__REDIS__URL]
  kafka: true
  peers: {}
  blobs: ""
dispatch:
  ports: { admin: 9105 }
  secrets:
    BINDING__TOKEN: PUSHMAIL_DISPATCH_CREDENTIAL
    SESSION__TOKEN: PUSHMAIL_DISPATCH_CREDENTIAL
  redis: [STATE__REDIS__URL, OUTBOX__REDIS__URL]
  kafka: true
  peers: { BINDING__ENDPOINT: binding, SESSION__ENDPOINT: session }
  blobs: ""
ingest:
  ports: { smtp: 2525, lmtp: 2424, webhook: 8104, admin: 9104 }
  secrets:
    BINDING__TOKEN: PUSHMAIL_INGEST_CREDENTIAL
  redis: [MARKS__REDIS__URL]
  kafka: true
  peers: { BINDING__ENDPOINT: binding }
  blobs: rw
transcode:
  ports: { grpc: 7103, admin: 9103 }
  secrets:
    SECURITY__SERVICE_KEYS: PUSHMAIL_SERVICE_KEYS
  redis: []
  kafka: false
  peers: {}
  blobs: ro
mailbox:
  ports: { grpc: 7108, admin: 9108 }
  secrets:
    BINDING__TOKEN: PUSHMAIL_MAILBOX_CREDENTIAL
    SECURITY__SERVICE_KEYS: PUSHMAIL_SERVICE_KEYS
  redis: []
  kafka: true
  peers: { BINDING__ENDPOINT: binding }
  blobs: rw
gateway:
  ports: { http: 8080, admin: 9106 }
  secrets:
    BINDING__TOKEN: PUSHMAIL_GATEWAY_CREDENTIAL
    TRANSCODE__TOKEN: PUSHMAIL_GATEWAY_CREDENTIAL
    SESSION__TOKEN: PUSHMAIL_GATEWAY_CREDENTIAL
    MAILBOX__TOKEN: PUSHMAIL_GATEWAY_CREDENTIAL
    TOKENS__PUBLIC_KEY: PUSHMAIL_DEVICE_TOKEN_PUBLIC_KEY
    PORTAL__SESSION_KEY: PUSHMAIL_PORTAL_SESSION_KEY
  redis: []
  kafka: false
  peers: { BINDING__ENDPOINT: binding, TRANSCODE__ENDPOINT: transcode, SESSION__ENDPOINT: session, MAILBOX__ENDPOINT: mailbox }
  blobs: ""
activesync:
  ports: { http: 8082, admin: 9109 }
  secrets:
    BINDING__TOKEN: PUSHMAIL_ACTIVESYNC_CREDENTIAL
    MAILBOX__TOKEN: PUSHMAIL_ACTIVESYNC_CREDENTIAL
    SESSION__TOKEN: PUSHMAIL_ACTIVESYNC_CREDENTIAL
  redis: []
  kafka: false
  peers: { BINDING__ENDPOINT: binding, MAILBOX__ENDPOINT: mailbox, SESSION__ENDPOINT: session }
  blobs: ""
{{- end -}}

{{/*
The Redis URL the services use when no Secret holds it: the bundled
primary's Service, or redis.url.
*/}}
{{- define "pushmail.redisUrl" -}}
{{- if .Values.redis.bundled.enabled -}}
{{- printf "redis://%s:6379/0" (include "pushmail.serviceName" (dict "root" . "service" "redis")) -}}
{{- else -}}
{{- required "redis.url (or redis.existingSecret) is required with redis.bundled.enabled false" .Values.redis.url -}}
{{- end -}}
{{- end -}}

{{/* The services whose settings take a Redis URL (the catalog's), as a YAML list. */}}
{{- define "pushmail.redisUsers" -}}
{{- $catalog := include "pushmail.catalog" . | fromYaml -}}
{{- range $svc := include "pushmail.services" . | fromYamlArray }}
{{- if (get $catalog $svc).redis }}
- {{ $svc }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Where the Kafka CA bundle is mounted. */}}
{{- define "pushmail.kafkaCaDir" -}}
/etc/pushmail/kafka-ca
{{- end -}}

{{/*
One service's non-secret settings (its ConfigMap's data); called with
(dict "root" $ "service" name). The deployment hashes it so a change rolls
the pods.
*/}}
{{- define "pushmail.configData" -}}
{{- $root := .root -}}
{{- $svc := .service -}}
{{- $v := $root.Values -}}
{{- $catalog := include "pushmail.catalog" $root | fromYaml -}}
{{- $spec := get $catalog $svc -}}
{{- $values := get $v.services $svc -}}
{{- $prefix := printf "PUSHMAIL_%s__" (upper $svc) -}}
{{ $prefix }}TELEMETRY__LOG_FORMAT: {{ $v.telemetry.logFormat | quote }}
{{- with $v.telemetry.otlpEndpoint }}
{{ $prefix }}TELEMETRY__OTLP_ENDPOINT: {{ . | quote }}
{{- end }}
{{- if $spec.kafka }}
{{ $prefix }}BUS__KAFKA__BROKERS: {{ $v.kafka.brokers | quote }}
{{ $prefix }}BUS__KAFKA__SECURITY_PROTOCOL: {{ $v.kafka.securityProtocol | quote }}
{{ $prefix }}BUS__KAFKA__DEFAULT_PARTITIONS: {{ $v.kafka.defaultPartitions | toJson | quote }}
{{ $prefix }}BUS__KAFKA__REPLICATION_FACTOR: {{ $v.kafka.replicationFactor | toJson | quote }}
{{- if hasPrefix "sasl" $v.kafka.securityProtocol }}
{{ $prefix }}BUS__KAFKA__SASL_MECHANISM: {{ required "kafka.sasl.mechanism is required with SASL" $v.kafka.sasl.mechanism | quote }}
{{ $prefix }}BUS__KAFKA__SASL_USERNAME: {{ required "kafka.sasl.username is required with SASL" $v.kafka.sasl.username | quote }}
{{- end }}
{{- if $v.kafka.tls.caSecret }}
{{ $prefix }}BUS__KAFKA__SSL_CA_LOCATION: {{ printf "%s/%s" (include "pushmail.kafkaCaDir" $root) $v.kafka.tls.caKey | quote }}
{{- end }}
{{- end }}
{{- if not $v.redis.existingSecret }}
{{- $redisUrl := include "pushmail.redisUrl" $root }}
{{- range $spec.redis }}
{{ $prefix }}{{ . }}: {{ $redisUrl | quote }}
{{- end }}
{{- end }}
{{- range $setting, $peer := $spec.peers }}
{{ $prefix }}{{ $setting }}: {{ printf "http://%s:%v" (include "pushmail.serviceName" (dict "root" $root "service" $peer)) (get $catalog $peer).ports.grpc | quote }}
{{- end }}
{{- if eq $svc "session" }}
{{ $prefix }}DEVICES__DRAIN_WINDOW_SECONDS: {{ $values.drainWindowSeconds | toJson | quote }}
{{ $prefix }}SHUTDOWN__GRACE_SECONDS: {{ $values.shutdownGraceSeconds | toJson | quote }}
{{- end }}
{{- if eq $svc "dispatch" }}
{{ $prefix }}DELIVERY__PUBLIC_URL: {{ $v.publicUrl | quote }}
{{- end }}
{{- if eq $svc "mailbox" }}
{{ $prefix }}SUBMISSION__HELLO_NAME: {{ $values.helloName | quote }}
{{- end }}
{{- if eq $svc "activesync" }}
{{ $prefix }}PUBLIC_URL: {{ printf "https://%s/Microsoft-Server-ActiveSync" $v.ingress.activesync.host | quote }}
{{- end }}
{{- range $key, $value := $values.config }}
{{ $prefix }}{{ $key | replace "." "__" | upper }}: {{ if kindIs "string" $value }}{{ $value | quote }}{{ else }}{{ $value | toJson | quote }}{{ end }}
{{- end }}
{{- end -}}
