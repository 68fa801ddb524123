{{/* Names, labels and the facts several templates share. */}}

{{- define "meshgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "meshgate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "meshgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "meshgate.version" -}}
{{- default .Chart.AppVersion .Values.image.tag | replace "+" "_" | replace "@" "_" | replace ":" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that never change for a pod: what Services and the PDB select on. */}}
{{- define "meshgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "meshgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: proxy
{{- end -}}

{{/* Every object's labels; call with (dict "root" $ "component" "proxy"). */}}
{{- define "meshgate.labels" -}}
{{- $root := .root -}}
helm.sh/chart: {{ include "meshgate.chart" $root }}
app.kubernetes.io/name: {{ include "meshgate.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/version: {{ include "meshgate.version" $root | quote }}
app.kubernetes.io/component: {{ .component | default "proxy" }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: meshgate
{{- end -}}

{{- define "meshgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "meshgate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name: name the existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "meshgate.tlsSecret" -}}
{{- default (printf "%s-tls" (include "meshgate.fullname" .)) .Values.tls.existingSecret -}}
{{- end -}}

{{- define "meshgate.adminSecret" -}}
{{- default (printf "%s-mariadb-admin" (include "meshgate.fullname" .)) .Values.upstream.credentials.admin.existingSecret -}}
{{- end -}}

{{/* Seconds of a duration such as 20s, 2m or 1h. */}}
{{- define "meshgate.seconds" -}}
{{- $n := regexFind "^[0-9]+" . | int -}}
{{- $unit := trimPrefix (regexFind "^[0-9]+" .) . -}}
{{- if eq $unit "m" -}}{{ mul $n 60 }}{{- else if eq $unit "h" -}}{{ mul $n 3600 }}{{- else if eq $unit "d" -}}{{ mul $n 86400 }}{{- else -}}{{ $n }}{{- end -}}
{{- end -}}

{{/*
terminationGracePeriodSeconds: open sessions may run shutdown.gracePeriod after SIGTERM,
then each listener waits up to its drain timeout for upstream answers, then the audit is
flushed and this replica's leases revoked (the margin).
*/}}
{{- define "meshgate.terminationGracePeriodSeconds" -}}
{{- if not (kindIs "invalid" .Values.shutdown.terminationGracePeriodSeconds) -}}
{{- .Values.shutdown.terminationGracePeriodSeconds -}}
{{- else -}}
{{- $drain := 0 -}}
{{- if .Values.mysql.enabled -}}{{- $drain = include "meshgate.seconds" .Values.mysql.timeouts.drain | int -}}{{- end -}}
{{- if .Values.firestore.enabled -}}{{- $drain = max $drain (include "meshgate.seconds" .Values.firestore.timeouts.drain | int) -}}{{- end -}}
{{- add (include "meshgate.seconds" .Values.shutdown.gracePeriod | int) $drain .Values.shutdown.marginSeconds -}}
{{- end -}}
{{- end -}}

{{/*
The ports meshgate terminates TLS on itself: the caller's certificate is the identity, so
the sidecar must not touch these bytes (docs/istio.md, src/render-istio/ports.ts).
MySQL in both modes, Firestore in mtls mode, the admin API, the signer. A comma-separated list.
*/}}
{{- define "meshgate.excludedPorts" -}}
{{- $ports := list -}}
{{- if .Values.mysql.enabled -}}{{- $ports = append $ports (int .Values.mysql.port) -}}{{- end -}}
{{- if and .Values.firestore.enabled (eq .Values.firestore.mode "mtls") -}}{{- $ports = append $ports (int .Values.firestore.port) -}}{{- end -}}
{{- if .Values.admin.enabled -}}{{- $ports = append $ports (int .Values.admin.port) -}}{{- end -}}
{{- if .Values.signer.enabled -}}{{- $ports = append $ports (int .Values.signer.port) -}}{{- end -}}
{{- $ports | uniq | join "," -}}
{{- end -}}

{{/* Settings that cannot work together, refused at render time with what to do. */}}
{{- define "meshgate.validate" -}}
{{- if and (not .Values.mysql.enabled) (not .Values.firestore.enabled) -}}
{{- fail "enable an engine: mysql.enabled (MariaDB) or firestore.enabled" -}}
{{- end -}}
{{- if and .Values.mysql.enabled (not .Values.upstream.credentials.enabled) (eq (len .Values.upstream.roles) 0) -}}
{{- fail "mysql needs upstream accounts: upstream.credentials.enabled (dynamic, recommended) or static accounts in upstream.roles" -}}
{{- end -}}
{{- if and .Values.firestore.enabled (not .Values.firestore.project) -}}
{{- fail "firestore.project: name the Google Cloud project callers may use, e.g. shop-prod" -}}
{{- end -}}
{{- if and .Values.firestore.enabled (eq .Values.firestore.mode "xfcc") (not .Values.istio.enabled) -}}
{{- fail "firestore.mode xfcc trusts the pod's Istio sidecar for the caller's identity: set istio.enabled, or use firestore.mode mtls" -}}
{{- end -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.state.postgres.enabled) -}}
{{- fail "replicaCount > 1 needs state.postgres.enabled: replicas share leases through PostgreSQL (the embedded store belongs to one pod)" -}}
{{- end -}}
{{- if and (gt (int .Values.replicaCount) 1) .Values.audit.persistence.existingClaim -}}
{{- fail "audit.persistence.existingClaim is for one replica: replicas would write the same audit file; use audit.export.postgres to keep their record together" -}}
{{- end -}}
{{- if and .Values.state.postgres.enabled .Values.state.embedded.existingClaim -}}
{{- fail "state.embedded.existingClaim and state.postgres.enabled: choose one place for leases" -}}
{{- end -}}
{{- if and .Values.state.postgres.enabled (not .Values.state.postgres.existingSecret) -}}
{{- fail "state.postgres.existingSecret: name the Secret holding the PostgreSQL URL (key state.postgres.urlKey)" -}}
{{- end -}}
{{- if and .Values.audit.export.postgres.enabled (not .Values.audit.export.postgres.existingSecret) -}}
{{- fail "audit.export.postgres.existingSecret: name the Secret holding the PostgreSQL URL (key audit.export.postgres.urlKey)" -}}
{{- end -}}
{{- if .Values.redis.enabled -}}
{{- if eq (len (.Values.throttle.classes | default dict)) 0 -}}
{{- fail "redis shares throttle limits: define throttle.classes (e.g. { default: { rate: { perSecond: 100 } } })" -}}
{{- end -}}
{{- if eq (len (compact (list .Values.redis.url .Values.redis.existingSecret))) 1 | not -}}
{{- fail "redis: give exactly one of redis.url (no password) or redis.existingSecret (a URL with a password)" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.upstream.tls.enabled (not .Values.upstream.tls.existingSecret) -}}
{{- fail "upstream.tls.existingSecret: name the Secret holding the CA, client certificate and key toward MariaDB" -}}
{{- end -}}
{{- if eq .Values.policy.source "git" -}}
{{- if not .Values.policy.git.url -}}
{{- fail "policy.git.url: name the repository holding the policy (policy.source is git)" -}}
{{- end -}}
{{- else if and (eq (len .Values.policy.files) 0) (not .Values.policy.existingConfigMap) -}}
{{- fail "policy: give policy.files, policy.existingConfigMap, or policy.source git" -}}
{{- end -}}
{{- if .Values.signer.enabled -}}
{{- if not .Values.signer.caSecret -}}
{{- fail "signer.caSecret: name the Secret holding the CA that signs SVIDs (kubectl create secret generic NAME --from-file=ca/ after `meshgate ca init --dir ca`: ca.crt, ca.key, bundle.pem, ca.json)" -}}
{{- end -}}
{{- if and .Values.signer.joinTokens (gt (int .Values.replicaCount) 1) -}}
{{- fail "signer.joinTokens with replicaCount > 1: each replica keeps its own copy of join-tokens.json, so a one-time token would work once per replica; turn join tokens off, or run one replica" -}}
{{- end -}}
{{- $others := dict "metrics.port" .Values.metrics.port -}}
{{- if .Values.mysql.enabled -}}{{- $_ := set $others "mysql.port" .Values.mysql.port -}}{{- end -}}
{{- if .Values.firestore.enabled -}}{{- $_ := set $others "firestore.port" .Values.firestore.port -}}{{- end -}}
{{- if .Values.admin.enabled -}}{{- $_ := set $others "admin.port" .Values.admin.port -}}{{- end -}}
{{- range $name, $port := $others -}}
{{- if eq (int $port) (int $.Values.signer.port) -}}
{{- fail (printf "signer.port %d is %s too: give the signer its own port (8444 by default; 8443 is Firestore's)" (int $port) $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and (not .Values.trust.istioRootCa) (eq (len .Values.trust.bundles) 0) -}}
{{- fail "trust: give a bundle that signs workload certificates: trust.istioRootCa or trust.bundles" -}}
{{- end -}}
{{- end -}}
